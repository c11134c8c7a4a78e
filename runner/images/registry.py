"""A distribution-spec v2 registry client on httpx: auth challenges, manifests, blob download and upload.

HTTPS always, plain HTTP only for registries in RUNNER_INSECURE_REGISTRIES. Anonymous access first;
on a 401 it follows the challenge (Bearer token from the realm, or Basic) with the credentials of
`runner.images.auth`. Every blob is verified by size, then digest, before anyone reads it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urljoin

import httpx

from runner.images.auth import basic_header, credentials, parse_challenge
from runner.images.digest import CHUNK, check, sha256_bytes
from runner.images.errors import ImageError
from runner.images.manifest import ACCEPT, Descriptor
from runner.settings import insecure_registries

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_MANIFEST = 4 << 20
CHUNK_SIZE = 16 << 20  # blobs above this go up in PATCH chunks of this size
FETCH_ATTEMPTS = 3
Content = Callable[[], Any]


class _Transient(ImageError):
    """A download failure worth another try: a dropped connection, a short read, a 5xx."""


def scheme_for(registry: str) -> str:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    insecure = insecure_registries()
    return "http" if registry in insecure or host.strip("[]") in insecure else "https"


def _error_text(response: httpx.Response) -> str:
    """The registry's own words from an error body, else the status line."""
    try:
        errors = response.json().get("errors") or []
        parts = [f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


class RegistryClient:
    """One registry host. Thread-safe: blobs are fetched from a thread pool through one client."""

    def __init__(self, registry: str, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.registry = registry
        self.base = f"{scheme_for(registry)}://{registry}"
        self.chunk_size = chunk_size
        self._creds = credentials(registry)
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._basic = False
        self.http = httpx.Client(timeout=TIMEOUT, follow_redirects=True)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- requests and auth -----------------------------------------------------------------------------

    def _auth_headers(self, scope: str) -> dict[str, str]:
        with self._lock:
            token = self._tokens.get(scope)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self._basic and self._creds:
            return {"Authorization": basic_header(self._creds)}
        return {}

    def _answer_challenge(self, response: httpx.Response, scope: str) -> bool:
        """Get what the 401 asks for; False when there is nothing more to try."""
        header = response.headers.get("www-authenticate", "")
        scheme, params = parse_challenge(header)
        if scheme == "basic":
            if self._creds is None or self._basic:
                return False
            self._basic = True
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        for item in scope.split(" "):
            if item:
                query.append(("scope", item))
        headers = {"Authorization": basic_header(self._creds)} if self._creds else {}
        try:
            reply = self.http.get(params["realm"], params=urlencode(query), headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ImageError(f"{self.registry}: token service {params['realm']} unreachable: {exc}") from None
        if reply.status_code != 200:
            hint = "" if self._creds else " (no credentials: set RUNNER_REGISTRY_AUTH or docker login)"
            raise ImageError(f"{self.registry}: token refused for {scope}: {_error_text(reply)}{hint}")
        try:
            body = reply.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise ImageError(f"{self.registry}: token service answered without a token")
        with self._lock:
            self._tokens[scope] = str(token)
        return True

    def url(self, path: str) -> str:
        return urljoin(self.base + "/", path.lstrip("/")) if not path.startswith("http") else path

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        content: Content | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request, answering an auth challenge once; `content` is a factory so the body can be resent."""
        for attempt in range(2):
            try:
                response = self.http.request(
                    method,
                    self.url(path),
                    headers={**(headers or {}), **self._auth_headers(scope)},
                    content=content() if content else None,
                    params=params,
                )
            except httpx.HTTPError as exc:
                raise ImageError(f"{self.registry}: {method} {path} failed: {exc}") from None
            if response.status_code == 401 and attempt == 0 and self._answer_challenge(response, scope):
                continue
            break
        self._refuse_unauthorized(response, f"{method} {path}")
        return response

    def _refuse_unauthorized(self, response: httpx.Response, what: str) -> None:
        """A 401 left after answering the challenge is the user's to fix: say how."""
        if response.status_code != 401:
            return
        if self._creds is None:
            hint = "no credentials for it: set RUNNER_REGISTRY_AUTH or `docker login`"
        else:
            hint = "its credentials were refused"
        raise ImageError(f"{self.registry}: {what}: authentication required, {hint}")

    @contextlib.contextmanager
    def _stream(self, path: str, *, scope: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
        for attempt in range(2):
            try:
                with self.http.stream(
                    "GET", self.url(path), headers={**headers, **self._auth_headers(scope)}
                ) as response:
                    if response.status_code == 401 and attempt == 0:
                        response.read()
                        if self._answer_challenge(response, scope):
                            continue
                    self._refuse_unauthorized(response, f"GET {path}")
                    yield response
                    return
            except httpx.HTTPError as exc:
                raise _Transient(f"{self.registry}: GET {path} failed: {exc}") from None

    def ping(self) -> None:
        """GET /v2/: reachable and speaking the distribution API (401 counts: it wants a token)."""
        response = self.request("GET", "/v2/", scope="")
        if response.status_code not in (200, 401):
            raise ImageError(f"{self.registry}: not a v2 registry: {_error_text(response)}")

    # ---- manifests -------------------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """(bytes, content type, digest) of a manifest or index; a digest reference is verified."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": ACCEPT},
        )
        what = f"{self.registry}/{repository}:{reference}"
        if response.status_code == 404:
            raise ImageError(f"{what}: not found in the registry")
        if response.status_code != 200:
            raise ImageError(f"{what}: cannot get the manifest: {_error_text(response)}")
        data = response.content
        if len(data) > MAX_MANIFEST:
            raise ImageError(f"{what}: manifest larger than {MAX_MANIFEST} bytes")
        digest = sha256_bytes(data)
        if reference.startswith("sha256:") and digest != reference:
            raise ImageError(f"{what}: manifest content is {digest}, not the digest asked for")
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        return data, content_type, digest

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type},
            content=lambda: data,
        )
        if response.status_code not in (200, 201):
            raise ImageError(f"{self.registry}/{repository}: manifest refused: {_error_text(response)}")
        return sha256_bytes(data)

    # ---- blobs -----------------------------------------------------------------------------------------

    def get_blob_bytes(self, repository: str, desc: Descriptor, *, limit: int = MAX_MANIFEST) -> bytes:
        """A small blob (a config) in memory, verified."""
        if desc.size > limit:
            raise ImageError(
                f"{self.registry}/{repository}: blob {desc.digest} is too large ({desc.size} bytes)"
            )
        with tempfile.TemporaryFile() as f:
            self._fetch(repository, desc, f)
            f.seek(0)
            return f.read()

    @contextlib.contextmanager
    def blob(self, repository: str, desc: Descriptor, tmp: Path) -> Iterator[BinaryIO]:
        """The blob streamed to a temporary file in `tmp`, verified, open for reading; deleted afterwards."""
        tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="blob-", dir=tmp)
        try:
            with os.fdopen(fd, "w+b") as f:
                self._fetch(repository, desc, f)
                f.seek(0)
                yield f
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def _fetch(self, repository: str, desc: Descriptor, out: BinaryIO) -> None:
        """Download with a few retries for a dropped connection or a server error; never for bad content."""
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            try:
                self._fetch_once(repository, desc, out)
                return
            except _Transient:
                if attempt == FETCH_ATTEMPTS:
                    raise
                out.seek(0)
                out.truncate()
                time.sleep(0.5 * attempt)

    def _fetch_once(self, repository: str, desc: Descriptor, out: BinaryIO) -> None:
        what = f"{self.registry}/{repository}: blob {desc.digest}"
        path = f"/v2/{repository}/blobs/{desc.digest}"
        with self._stream(path, scope=f"repository:{repository}:pull", headers={}) as response:
            if response.status_code != 200:
                response.read()
                kind = _Transient if response.status_code >= 500 else ImageError
                raise kind(f"{what}: {_error_text(response)}")
            h = hashlib.sha256()
            size = 0
            try:
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > desc.size:
                        raise ImageError(f"{what}: larger than the {desc.size} bytes its descriptor declares")
                    h.update(chunk)
                    out.write(chunk)
            except httpx.HTTPError as exc:
                raise _Transient(f"{what}: download broken off after {size} bytes: {exc}") from None
        if size < desc.size:
            raise _Transient(f"{what}: truncated: {size} bytes, its descriptor says {desc.size}")
        check(
            what,
            want_digest=desc.digest,
            want_size=desc.size,
            got_digest="sha256:" + h.hexdigest(),
            got_size=size,
        )

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull,push"
        )
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise ImageError(f"{self.registry}/{repository}: HEAD blob {digest}: {_error_text(response)}")

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Cross-repository mount of a blob the registry already has under `source`; False if it declines."""
        scope = f"repository:{repository}:pull,push repository:{source}:pull"
        response = self.request(
            "POST", f"/v2/{repository}/blobs/uploads/", scope=scope, params={"mount": digest, "from": source}
        )
        if response.status_code == 201:
            return True
        if response.status_code == 202 and response.headers.get("location"):
            self.request("DELETE", response.headers["location"], scope=scope)  # abandon the session it opened
        return False

    def upload_blob(self, repository: str, path: Path, desc: Descriptor) -> None:
        """Upload a blob from a file: monolithic PUT when small, else PATCH chunks then PUT ?digest=."""
        scope = f"repository:{repository}:pull,push"
        what = f"{self.registry}/{repository}: upload of {desc.digest}"
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope)
        if response.status_code != 202 or "location" not in response.headers:
            raise ImageError(f"{what}: {_error_text(response)}")
        location = self.url_from(response)
        octets = {"Content-Type": "application/octet-stream"}
        if desc.size > self.chunk_size:
            with open(path, "rb") as f:
                offset = 0
                while chunk := f.read(self.chunk_size):
                    headers = {**octets, "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
                    response = self.request(
                        "PATCH",
                        location,
                        scope=scope,
                        headers=headers,
                        content=functools.partial(bytes, chunk),
                    )
                    if response.status_code != 202:
                        raise ImageError(f"{what}: chunk at {offset} refused: {_error_text(response)}")
                    location = self.url_from(response)
                    offset += len(chunk)
            body: Content | None = None
        else:
            body = lambda: path.read_bytes()  # noqa: E731 - resent as a whole after an auth challenge
        response = self.request(
            "PUT", _with_query(location, digest=desc.digest), scope=scope, headers=octets, content=body
        )
        if response.status_code not in (201, 204):
            raise ImageError(f"{what}: {_error_text(response)}")

    def url_from(self, response: httpx.Response) -> str:
        return urljoin(str(response.url), response.headers["location"])


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
