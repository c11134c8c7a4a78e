"""Live job logs in Redis: one bounded stream per job (`runner:log:{build_id}:{job}`), read and tailed.

Entry ids are `<line number>-0`: the n-th line appended to a job's stream has id `n-0`, numbered by a
counter kept beside the stream, so ids match the line numbers of the stored log. `end` adds the entry
`<last line>-1` with the field `end`, which readers see as the end of the log. Streams are trimmed to
about `maxlen` entries and expire `ttl` seconds after the last write (`ended_ttl` once ended): Redis
holds the live tail, storage holds the whole log.
"""

from __future__ import annotations

import json
from typing import Any

import redis

DEFAULT_MAXLEN = 10_000
DEFAULT_TTL = 24 * 3600
DEFAULT_ENDED_TTL = 3600

Entry = tuple[str, dict[str, Any]]

# KEYS: stream, counter. ARGV: maxlen, ttl, json line, line number or "". Returns the line number used.
# A given number wins (storage numbers lines); it is raised past the last entry if it would go back.
_APPEND = """
local n
if ARGV[4] == '' then
  n = redis.call('INCR', KEYS[2])
else
  n = tonumber(ARGV[4])
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 then
    local previous = tonumber(string.match(last[1][1], '^(%d+)'))
    if previous >= n then n = previous + 1 end
  end
  redis.call('SET', KEYS[2], n)
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], n .. '-0', 'line', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return n
"""

# KEYS: stream, counter. ARGV: ttl. Idempotent: a second end adds nothing.
_END = """
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = n .. '-1'
if #last == 0 or last[1][1] ~= id then
  redis.call('XADD', KEYS[1], id, 'end', '1')
end
redis.call('SET', KEYS[2], n)
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return n
"""


def line_number(entry_id: str) -> int:
    """The line number in a stream entry id (`"42-0"` -> 42)."""
    return int(entry_id.split("-", 1)[0])


_SOCKET_TIMEOUT = 30.0  # seconds; reads block at most half of it


class LogStream:
    """The Redis side of job logs. Thread-safe (redis-py pools its connections); Redis errors propagate."""

    def __init__(
        self,
        redis_url: str,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        ttl: int = DEFAULT_TTL,
        ended_ttl: int = DEFAULT_ENDED_TTL,
    ) -> None:
        # a blocking XREAD must end before the socket gives up on it (redis-py's default is 5 s)
        self.client = redis.Redis.from_url(redis_url, socket_timeout=_SOCKET_TIMEOUT)
        self.maxlen = maxlen
        self.ttl = ttl
        self.ended_ttl = ended_ttl
        self._append = self.client.register_script(_APPEND)
        self._end = self.client.register_script(_END)

    @staticmethod
    def key(build_id: int, job: str) -> str:
        return f"runner:log:{int(build_id)}:{job}"

    def _keys(self, build_id: int, job: str) -> list[str]:
        key = self.key(build_id, job)
        return [key, key + ":n"]

    def append(self, build_id: int, job: str, line: dict[str, Any], number: int | None = None) -> str:
        """Add one line (a JSON-able dict, normally with `text`); returns its entry id `<n>-0`.

        `number` is the line's number in the stored log when the caller knows it (LogRecorder does),
        so the two stay aligned even after the stream missed lines (Redis down, a worker killed between
        the two writes); without it, lines are numbered on from the stream's own counter.
        """
        payload = json.dumps(line, separators=(",", ":"), ensure_ascii=False, default=str)
        given = "" if number is None else str(int(number))
        number = self._append(keys=self._keys(build_id, job), args=[self.maxlen, self.ttl, payload, given])
        return f"{int(number)}-0"

    def end(self, build_id: int, job: str) -> None:
        """Mark the log complete; readers get `ended=True`. Safe to call twice."""
        self._end(keys=self._keys(build_id, job), args=[self.ended_ttl])

    def read(
        self, build_id: int, job: str, after: str = "0", block_ms: int = 0, count: int = 500
    ) -> tuple[list[Entry], str, bool]:
        """Entries after the id `after` (`"0"`: from the start), waiting up to `block_ms` for the first.

        Returns `(entries, last_id, ended)`: `entries` are `(id, line)` pairs without the end marker,
        `last_id` is the id to pass as `after` next time, `ended` says the end marker was reached.
        """
        key = self.key(build_id, job)
        start = after if "-" in after else f"{int(after or 0)}-0"
        reply: Any
        if block_ms > 0:
            block_ms = min(block_ms, int(_SOCKET_TIMEOUT * 1000) // 2)
            reply = self.client.xread({key: start}, count=count, block=block_ms)
        else:
            reply = self.client.xread({key: start}, count=count)
        entries: list[Entry] = []
        last_id = after
        ended = False
        for _stream, items in reply or []:
            for raw_id, fields in items:
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                last_id = entry_id
                if b"end" in fields:
                    ended = True
                    break
                try:
                    line = json.loads(fields.get(b"line", b"{}"))
                except ValueError:
                    line = {"text": fields.get(b"line", b"").decode("utf-8", "replace")}
                entries.append((entry_id, line if isinstance(line, dict) else {"text": str(line)}))
        return entries, last_id, ended

    def first_id(self, build_id: int, job: str) -> str | None:
        """The oldest entry still held (later than `1-0` once the stream was trimmed), or None."""
        items: Any = self.client.xrange(self.key(build_id, job), count=1)
        if not items:
            return None
        raw = items[0][0]
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def exists(self, build_id: int, job: str) -> bool:
        return bool(self.client.exists(self.key(build_id, job)))

    def delete(self, build_id: int, job: str) -> None:
        self.client.delete(*self._keys(build_id, job))
