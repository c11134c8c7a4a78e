"""A local HTTP server standing in for a forge's status API: it records every call it gets."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class StatusRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refused = 0  # calls answered with an error (`refuse`), not recorded in `calls`
        self._refusals: list[int] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with recorder._lock:
                    code = recorder._refusals.pop(0) if recorder._refusals else 0
                    if code:
                        recorder.refused += 1
                    else:
                        recorder.calls.append((self.path, body))
                if code:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StatusRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def refuse(self, count: int, code: int = 503) -> None:
        """Answer the next `count` calls with HTTP `code` (the forge is down), then accept again."""
        with self._lock:
            self._refusals.extend([code] * count)

    def by_path(self) -> dict[str, list[str]]:
        """The states posted to each path, in order."""
        found: dict[str, list[str]] = {}
        with self._lock:
            for path, body in self.calls:
                found.setdefault(path, []).append(str(body.get("state", "")))
        return found
