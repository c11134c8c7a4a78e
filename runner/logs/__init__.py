"""Job logs and artifacts: a bounded live Redis stream per job, durable storage, and Server-Sent Events.

A worker records every line with `LogRecorder` (storage first, then the stream, one stored line per
stream entry, numbered from 1); the web app serves `sse_events`, whose event ids are those line
numbers, so a client resumes with Last-Event-ID whether the line came from Redis or from storage.
"""

from runner.logs.recorder import LogRecorder
from runner.logs.sse import sse_events
from runner.logs.storage import (
    ArtifactNotFound,
    DirectoryStorage,
    Storage,
    StorageError,
    UnsafePath,
    encode_name,
)
from runner.logs.stream import LogStream

__all__ = [
    "ArtifactNotFound",
    "DirectoryStorage",
    "LogRecorder",
    "LogStream",
    "Storage",
    "StorageError",
    "UnsafePath",
    "encode_name",
    "sse_events",
]
