"""Test helper: a small token service for a real docker-registry configured with `auth: token`.

It signs RS256 JWTs with a throwaway key through the `openssl` command line, carrying the certificate
in the `x5c` header so the registry can check it against its root bundle. Anonymous callers get
`pull` only; callers with the right Basic credentials get what they ask for.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

SERVICE = "test-registry"
ISSUER = "test-issuer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenService:
    realm: str
    cert: Path
    user: str
    password: str
    requests: list[dict[str, object]] = field(default_factory=list)

    def registry_config(self) -> str:
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
            f"    rootcertbundle: {self.cert}\n"
        )


def _keypair(folder: Path) -> tuple[Path, Path, bytes]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=test-token-issuer"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], check=True, capture_output=True, timeout=30
    ).stdout
    return key, cert, der


def _sign(key: Path, der: bytes, subject: str, access: list[dict[str, object]]) -> str:
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 600,
        "nbf": now - 60,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "access": access,
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", str(key)],
        input=signing_input.encode(),
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    return f"{signing_input}.{_b64url(signature)}"


@contextmanager
def token_service(folder: Path, user: str = "alice", password: str = "s3cret") -> Iterator[TokenService]:
    key, cert, der = _keypair(folder)
    good = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    service: TokenService

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlparse(self.path).query)
            auth = self.headers.get("Authorization")
            service.requests.append({"scopes": query.get("scope", []), "authorized": auth == good})
            if auth is not None and auth != good:
                self.send_response(401)
                self.end_headers()
                return
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                wanted = actions.split(",")
                granted = wanted if auth == good else [a for a in wanted if a == "pull"]
                access.append({"type": kind, "name": name, "actions": granted})
            body = json.dumps(
                {"token": _sign(key, der, user if auth else "", access), "expires_in": 600}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service = TokenService(f"http://127.0.0.1:{server.server_address[1]}/token", cert, user, password)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
