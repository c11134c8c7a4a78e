"""Downloads that break: a proxy in front of a real registry cuts the first blob transfer short."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from image_merge import image_from_tars
from image_tars import TarBuilder
from registry_helpers import Registry

from runner.images.errors import ImageError
from runner.images.reference import parse_ref
from runner.images.store import Store
from runner.images.transfer import pull, push
from runner.settings import Paths

pytestmark = pytest.mark.kernel

LAYER = TarBuilder().file("big", bytes(range(256)) * 4000).bytes()


def flaky_proxy(upstream: str, cuts: int) -> tuple[ThreadingHTTPServer, list[str]]:
    """Forward to `upstream`; the first `cuts` blob downloads stop halfway with the connection closed."""
    cut: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            reply = httpx.get(
                f"http://{upstream}{self.path}", headers={"Accept": self.headers.get("Accept", "*/*")}
            )
            body = reply.content
            self.send_response(reply.status_code)
            for key in ("Content-Type", "Docker-Content-Digest"):
                if key in reply.headers:
                    self.send_header(key, reply.headers[key])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if "/blobs/" in self.path and len(cut) < cuts and len(body) > 1000:
                cut.append(self.path)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler), cut


@pytest.fixture
def proxied(registry: Registry, request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    server, cut = flaky_proxy(registry.host, request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", cut
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _publish(registry: Registry, store: Store) -> None:
    record = image_from_tars(store, [LAYER])
    store.tag(parse_ref("localhost/flaky:1"), record.id)
    push(f"{registry.host}/flaky/img:1", store, source="localhost/flaky:1")


@pytest.mark.parametrize("proxied", [1], indirect=True)
def test_a_dropped_download_is_retried(
    registry: Registry, proxied: tuple[str, list[str]], store: Store
) -> None:
    _publish(registry, store)
    host, cut = proxied
    other = Store(Paths(store.paths.home.parent / "other"))
    record = pull(f"{host}/flaky/img:1", other)
    assert len(cut) == 1  # the first transfer really broke
    assert (other.layer_path(record.layers[0]) / "big").read_bytes() == bytes(range(256)) * 4000


@pytest.mark.parametrize("proxied", [10], indirect=True)
def test_a_download_that_keeps_breaking_fails_cleanly(
    registry: Registry, proxied: tuple[str, list[str]], store: Store
) -> None:
    _publish(registry, store)
    host, cut = proxied
    other = Store(Paths(store.paths.home.parent / "other"))
    with pytest.raises(ImageError, match=r"broken off|truncated"):
        pull(f"{host}/flaky/img:1", other)
    assert len(cut) == 3
    assert other.images() == [] and other.all_layers() == [] and list(other.tmp.iterdir()) == []
