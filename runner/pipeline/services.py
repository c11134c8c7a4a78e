"""Services: sidecar containers started before a job's steps, in the job's network namespace.

Each service runs over its own root filesystem (never the job's), its output kept as `LogLine`
events on stream `service:<name>`. Its `ready` probe runs again and again in a container over the
service's filesystem, in the same network, until it exits 0; past `ready_timeout` the job fails
with the reason and the tail of the service's log. Services are killed after the steps.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from runner.config.spec import SeccompMode, ServiceSpec
from runner.pipeline.control import JobControl
from runner.pipeline.events import LogLine, Sink
from runner.pipeline.image import ImageUnavailable, resolve_rootfs
from runner.sandbox import (
    Container,
    ContainerSpec,
    Limits,
    NetworkNamespace,
    Result,
    Rootfs,
    SandboxError,
    spawn,
)
from runner.settings import Paths

PROBE_INTERVAL = 0.2  # seconds between two ready probes
PROBE_TIMEOUT = 10.0  # seconds one probe may take
TAIL_LINES = 10


class ServiceFailed(Exception):
    """A service could not start or never became ready; one line (plus its log tail) for the user."""


@dataclass
class _Running:
    spec: ServiceSpec
    rootfs: Rootfs
    container: Container | None = None
    thread: threading.Thread | None = None
    result: Result | None = None
    error: str = ""
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))

    def exited(self) -> bool:
        return self.thread is not None and not self.thread.is_alive()

    def tail_text(self) -> str:
        return " | ".join(self.tail) if self.tail else "(no output)"


class Services:
    """The services of one job attempt: `start()` them all (ready), then `stop()` them all."""

    def __init__(
        self,
        specs: tuple[ServiceSpec, ...],
        *,
        job: str,
        network: NetworkNamespace,
        paths: Paths,
        sink: Sink,
        mask: Callable[[str], str],
        control: JobControl,
        env: dict[str, str],
        limits: Limits | None = None,
        seccomp: SeccompMode = "default",
        userns: bool = True,
    ) -> None:
        self.specs = specs
        self.seccomp: SeccompMode = seccomp  # the job's `security.seccomp`, for services and probes
        self.userns: Literal["auto"] | None = "auto" if userns else None  # and its `security.userns`
        self.limits = limits or Limits()  # the job's resources: each service gets them as a step does
        self.job = job
        self.network = network
        self.paths = paths
        self.sink = sink
        self.mask = mask
        self.control = control
        self.env = env
        self.hosts = {spec.name: "127.0.0.1" for spec in specs}
        self.running: list[_Running] = []

    def start(self) -> None:
        """Start every service, then wait until each is ready; raises `ServiceFailed`."""
        for spec in self.specs:
            if not spec.command:
                raise ServiceFailed(f"service {spec.name!r} has no command")
            try:
                rootfs = resolve_rootfs(spec.image, self.paths, seccomp=self.seccomp)
            except Exception as exc:  # a pull or build that failed: the runner's side, an error
                raise ImageUnavailable(f"service {spec.name!r}: image {spec.image.ref}: {exc}") from None
            service = _Running(spec, rootfs)
            self.running.append(service)
            self._spawn(service)
        for service in self.running:
            self._wait_ready(service)

    def _spawn(self, service: _Running) -> None:
        spec = service.spec
        name = spec.name

        def on_output(stream: str, data: bytes) -> None:
            text = self.mask(data.decode("utf-8", errors="replace"))
            service.tail.append(text)
            self.sink.emit(LogLine(self.job, None, f"service:{name}", text))

        container_spec = ContainerSpec(
            argv=list(spec.command),
            env={**self.env, **spec.env},
            cwd="/",
            hostname=name,
            hosts=self.hosts,
            limits=self.limits,
            seccomp=self.seccomp,
            userns=self.userns,
        )
        try:
            container = service.container = spawn(
                container_spec,
                rootfs=service.rootfs,
                network=self.network,
                on_output=on_output,
                paths=self.paths,
            )
        except SandboxError as exc:
            raise ServiceFailed(f"service {name!r} could not start: {exc}") from None
        self.control.track(container)

        def wait() -> None:
            try:
                service.result = container.wait()
            except Exception as exc:  # the sandbox's fault: reported as the service's exit
                service.error = str(exc)

        service.thread = threading.Thread(target=wait, name=f"service-{name}", daemon=True)
        service.thread.start()

    def _wait_ready(self, service: _Running) -> None:
        spec = service.spec
        if spec.ready is None:
            return
        started = time.monotonic()
        deadline = started + spec.ready_timeout
        while True:
            if self.control.stopped:
                why = "was canceled" if self.control.stopped == "canceled" else "timed out"
                raise ServiceFailed(f"the job {why} before service {spec.name!r} was ready")
            if service.exited():
                raise ServiceFailed(
                    f"service {spec.name!r} {self._ending(service)} before it was ready; "
                    f"last output: {service.tail_text()}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._probe(service, min(PROBE_TIMEOUT, left)):
                if service.exited():  # a probe can pass while the service is already gone
                    raise ServiceFailed(
                        f"service {spec.name!r} {self._ending(service)} before it was ready; "
                        f"last output: {service.tail_text()}"
                    )
                self.sink.emit(
                    LogLine(
                        self.job,
                        None,
                        "runner",
                        f"service {spec.name} ready after {time.monotonic() - started:.1f}s",
                    )
                )
                return
            self.control.sleep(min(PROBE_INTERVAL, max(0.0, deadline - time.monotonic())))
        raise ServiceFailed(
            f"service {spec.name!r} was not ready within {spec.ready_timeout:g}s "
            f"(probe: {spec.ready}); last output: {service.tail_text()}"
        )

    def _probe(self, service: _Running, timeout: float) -> bool:
        assert service.spec.ready is not None
        probe = ContainerSpec(
            argv=["/bin/sh", "-c", service.spec.ready],
            env={**self.env, **service.spec.env},
            cwd="/",
            hostname=service.spec.name,
            hosts=self.hosts,
            timeout=self.control.bound(timeout),
            seccomp=self.seccomp,
            userns=self.userns,
        )
        try:
            container = spawn(
                probe,
                rootfs=service.rootfs,
                network=self.network,
                on_output=lambda stream, data: None,
                paths=self.paths,
            )
        except SandboxError as exc:
            raise ServiceFailed(
                f"the ready probe of service {service.spec.name!r} could not start: {exc}"
            ) from None
        self.control.track(container)
        try:
            return bool(container.wait().ok)
        finally:
            self.control.untrack(container)

    @staticmethod
    def _ending(service: _Running) -> str:
        if service.error:
            return f"failed ({service.error})"
        result = service.result
        if result is None:
            return "ended"
        if result.reason != "exited":
            return f"was stopped ({result.reason})"
        return f"exited with code {result.exit_code}"

    def stop(self) -> None:
        """Kill every service, wait for it, and discard its filesystem."""
        for service in self.running:
            if service.container is not None:
                try:
                    service.container.kill()
                except Exception:  # already gone
                    pass
        for service in self.running:
            if service.thread is not None:
                service.thread.join(timeout=30)
            if service.container is not None:
                self.control.untrack(service.container)
            service.rootfs.destroy()
        self.running = []
