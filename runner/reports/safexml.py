"""Reading untrusted XML safely: size cap, no DTDs, no entities, no network, namespaces stripped.

Test reports are written by the code under test, so they are hostile input: an XXE reading a host
file or a billion-laughs bomb must be refused before anything is expanded. defusedxml refuses the
``<!DOCTYPE`` itself, so no entity is ever declared and expansion never starts.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final
from xml.etree.ElementTree import Element

from runner.reports.errors import ReportError

#: Largest report file accepted, in bytes (50 MiB).
MAX_REPORT_BYTES: Final = 50 * 1024 * 1024


def read_capped(path: Path, source: str, max_bytes: int = MAX_REPORT_BYTES) -> bytes:
    """The bytes of a regular file, refusing anything larger than ``max_bytes``.

    The last path component is opened with O_NOFOLLOW and O_NONBLOCK, so a symlink swapped in at the
    last moment or a FIFO cannot redirect or hang the read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ReportError(source, "refused: the path is a symbolic link") from None
        raise ReportError(source, f"cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ReportError(source, "not a regular file")
        if info.st_size > max_bytes:
            raise ReportError(source, f"refused: {_size(info.st_size)} is over the {_size(max_bytes)} limit")
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise ReportError(source, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise ReportError(source, f"refused: the file grew over the {_size(max_bytes)} limit while read")
    return data


def parse_untrusted(data: bytes, source: str, max_bytes: int = MAX_REPORT_BYTES) -> Element:
    """The root element of ``data``, parsed with DTDs, entities and external references refused.

    Tags come back without their ``{namespace}`` prefix, so ``<testsuites xmlns="...">`` reads like
    the plain form. Every failure is a `ReportError` naming ``source``.
    """
    from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
    from defusedxml.ElementTree import ParseError, fromstring

    if len(data) > max_bytes:
        raise ReportError(source, f"refused: {_size(len(data))} is over the {_size(max_bytes)} limit")
    if not data.strip():
        raise ReportError(source, "the file is empty")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise ReportError(
            source, "refused: the file declares a DTD (<!DOCTYPE ...>); test reports never need one"
        ) from None
    except EntitiesForbidden:
        raise ReportError(source, "refused: the file declares XML entities") from None
    except ExternalReferenceForbidden:
        raise ReportError(source, "refused: the file references an external resource") from None
    except DefusedXmlException as exc:
        raise ReportError(source, f"refused: unsafe XML ({type(exc).__name__})") from None
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        reason = str(exc).split(":", 1)[0]
        where = f"line {line}, column {column + 1}"
        raise ReportError(source, f"not well-formed XML at {where}: {reason}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ReportError(source, f"cannot parse: {type(exc).__name__}") from None
    for elem in root.iter():
        if isinstance(elem.tag, str) and elem.tag.startswith("{"):
            elem.tag = elem.tag.rpartition("}")[2]
    return root


def _size(n: int) -> str:
    """``52428800`` → ``50.0 MiB``."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"
