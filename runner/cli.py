"""The `runner` command line: argument parsing only; every command's module is imported lazily.

`runner --help` must start fast, so nothing heavy (pydantic, jinja2, celery, rich) is imported here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

# Exit code for the runner's own errors, as `docker run` uses it.
EXIT_RUNNER_ERROR = 125


def _lazy(target: str) -> Callable[[argparse.Namespace], int]:
    """A handler that imports `module:function` only when its command runs."""
    module_name, _, func_name = target.partition(":")

    def handler(args: argparse.Namespace) -> int:
        func = getattr(import_module(module_name), func_name)
        return int(func(args))

    return handler


def _add_exec(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exec", help="run the pipeline of a working tree locally, with the workers' engine")
    p.add_argument("dir", nargs="?", default=".", help="the repository (default: .)")
    p.add_argument(
        "--job", action="append", default=[], metavar="NAME", help="run this job and what it needs"
    )
    p.add_argument("--file", default=None, metavar="CI_YML", help="the pipeline file (default: DIR/ci.yml)")
    p.add_argument("--secrets-file", default=None, metavar="F", help="NAME=value lines for jobs' secrets")
    p.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="extra environment for every job"
    )
    p.add_argument(
        "--out", default=None, metavar="DIR", help="results directory (default: DIR/.runner/runs/<n>)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_lazy("runner.commands.exec:main"))


def _add_config(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a ci.yml without running it")
    p.add_argument("file", nargs="?", default="ci.yml")
    p.set_defaults(handler=_lazy("runner.config.commands:validate_command"))
    p = sub.add_parser("schema", help="print the JSON Schema of ci.yml")
    p.set_defaults(handler=_lazy("runner.config.commands:schema_command"))


def _add_sandbox(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sandbox",
        help="run one command in a throwaway container",
        usage="runner sandbox [options] -- CMD [ARG]...",
    )
    p.add_argument("--image", default="host", help="image reference (default: host)")
    p.add_argument("--memory", default=None, help="memory limit, e.g. 256M")
    p.add_argument("--cpus", default=None, help="CPU quota, e.g. 1.5")
    p.add_argument("--pids", default=None, help="maximum number of tasks")
    p.add_argument("--disk", default=None, help="size of the writable layer, e.g. 2G (ENOSPC past it)")
    p.add_argument("--io-read-bps", default=None, metavar="RATE", help="disk read limit, e.g. 10M (bytes/s)")
    p.add_argument(
        "--io-write-bps", default=None, metavar="RATE", help="disk write limit, e.g. 10M (bytes/s)"
    )
    p.add_argument("--bandwidth", default=None, help="network rate each way, e.g. 10mbit (needs bridge)")
    p.add_argument("--network", default="none", help="none | bridge | host (default: none)")
    p.add_argument("--timeout", default=None, help="e.g. 10s, 2m")
    p.add_argument("--workspace", default=None, metavar="DIR", help="mounted read-write at /workspace")
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--tty", action="store_true", help="run the command on a pseudo-terminal")
    p.add_argument(
        "--seccomp",
        choices=["default", "unconfined"],
        default="default",
        help="syscall filter: default (Docker-like allow-list) or unconfined (none)",
    )
    p.add_argument(
        "--userns",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="container root as an unprivileged host uid (default: where the kernel allows; RUNNER_USERNS)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    p.set_defaults(handler=_lazy("runner.commands.sandbox:main"))


def _add_image(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="build and manage images")
    isub = p.add_subparsers(dest="image_command", metavar="COMMAND", required=True)
    b = isub.add_parser("build", help="build a layered image with caching")
    b.add_argument("-f", "--file", default=None, metavar="Dockerfile")
    b.add_argument("-t", "--tag", default=None)
    b.add_argument("--no-cache", action="store_true")
    b.add_argument("context", nargs="?", default=".")
    isub.add_parser("ls", help="list images")
    for name, text in (("pull", "pull from a registry"), ("push", "push to a registry"), ("rm", "remove")):
        q = isub.add_parser(name, help=text)
        q.add_argument("ref")
    q = isub.add_parser("import", help="import a docker-save tarball or an OCI layout")
    q.add_argument("file")
    q.add_argument("-t", "--tag", default=None)
    q = isub.add_parser("export", help="write an OCI layout tar")
    q.add_argument("ref")
    q.add_argument("-o", "--output", required=True)
    q = isub.add_parser("prune", help="remove least recently used layers")
    q.add_argument("--keep", default="0", metavar="BYTES")
    p.set_defaults(handler=_lazy("runner.commands.image:main"))


def _add_server(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="web server: webhooks, results pages, JSON API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(handler=_lazy("runner.commands.server:serve"))
    p = sub.add_parser("worker", help="a Celery worker that runs builds")
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--queues", default=None)
    p.set_defaults(handler=_lazy("runner.commands.server:worker"))
    p = sub.add_parser("up", help="the whole stack on one machine")
    p.add_argument("--host", default=None, help="address of the web server (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="web server port (default 8000, or a free one)")
    p.set_defaults(handler=_lazy("runner.commands.server:up"))


def build_parser() -> argparse.ArgumentParser:
    from runner import __version__

    parser = argparse.ArgumentParser(
        prog="runner", description="A CI system that runs every job in throwaway Linux containers."
    )
    parser.add_argument("--version", action="version", version=f"runner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_exec(sub)
    _add_config(sub)
    _add_sandbox(sub)
    _add_image(sub)
    _add_server(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("runner: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("runner."):
            print(f"runner: `runner {args.command}` is not available in this version", file=sys.stderr)
            return EXIT_RUNNER_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
