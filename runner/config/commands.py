"""`runner validate` and `runner schema`: the command-line face of runner.config."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from runner.config import ConfigError, EvalContext, compile_pipeline, json_schema, load

EXIT_OK = 0
EXIT_INVALID = 2


def validate_command(args: argparse.Namespace) -> int:
    """Load and compile `args.file` (as `runner exec` would, without a checkout); 0 valid, 2 invalid."""
    path = Path(getattr(args, "file", None) or "ci.yml")
    if not path.exists():
        print(f"runner: {path}: no such file (give the path of a ci.yml)", file=sys.stderr)
        return EXIT_INVALID
    try:
        document = load(path)
        pipeline = compile_pipeline(document, EvalContext(git={"event": "exec"}))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        count = len(exc.diagnostics)
        print(f"{path}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return EXIT_INVALID
    count = len(pipeline.jobs)
    print(f"{path}: valid ({count} job{'s' if count != 1 else ''})")
    return EXIT_OK


def schema_command(args: argparse.Namespace) -> int:
    """Print the JSON Schema of ci.yml."""
    try:
        print(json.dumps(json_schema(), indent=2))
        sys.stdout.flush()
    except BrokenPipeError:  # `runner schema | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK
