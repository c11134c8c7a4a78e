"""Registry credentials and challenges: RUNNER_REGISTRY_AUTH, docker's config.json, WWW-Authenticate."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from pathlib import Path
from typing import Any

from runner.images.errors import ImageError
from runner.images.reference import DOCKER_HUB

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", DOCKER_HUB)
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


def _keys(registry: str) -> list[str]:
    if registry == DOCKER_HUB:
        return list(_HUB_KEYS)
    return [registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v2/"]


def _from_entry(entry: Any, where: str) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("username") is not None and entry.get("password") is not None:
        return str(entry["username"]), str(entry["password"])
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ImageError(f"{where}: an 'auth' value is not base64 of user:password") from None
        if sep:
            return user, password
    return None


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def credentials(registry: str) -> tuple[str, str] | None:
    """(username, password) for `registry` from RUNNER_REGISTRY_AUTH, else ~/.docker/config.json `auths`."""
    raw = os.environ.get("RUNNER_REGISTRY_AUTH")
    if raw:
        try:
            table = json.loads(raw)
        except ValueError:
            raise ImageError(
                'RUNNER_REGISTRY_AUTH is not JSON: use {"host": {"username": ..., "password": ...}}'
            ) from None
        if isinstance(table, dict):
            for key in _keys(registry):
                found = _from_entry(table.get(key), "RUNNER_REGISTRY_AUTH")
                if found:
                    return found
    path = docker_config_path()
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    auths = config.get("auths") if isinstance(config, dict) else None
    if isinstance(auths, dict):
        for key in _keys(registry):
            found = _from_entry(auths.get(key), str(path))
            if found:
                return found
    return None


def basic_header(creds: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
