"""Wire formats of streamed answers: server-sent events and newline-delimited JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from tandem.models.errors import ModelResponseError


async def sse_events(lines: AsyncIterator[str], source: str) -> AsyncIterator[dict[str, Any]]:
    """JSON payloads of ``data:`` lines, until ``[DONE]`` or the end of the stream.

    After ``[DONE]`` the rest of the body is still read (it is only the end of
    the chunked encoding): a response read to its end returns its connection
    to the pool, one abandoned midway costs a new connection. A body that opens
    with lines no event stream has (binary junk, a proxy's HTML page) is an error:
    skipping them would turn a broken server into a silent empty answer.
    """
    done = seen = False
    async for line in lines:
        if done or not line.startswith("data:"):
            if not seen and not done and not _sse_line(line):
                raise ModelResponseError(
                    f"{source} sent something that is not server-sent events: {line[:80]!r}"
                )
            continue  # comments (": ping"), event names, blank separators
        seen = True
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
        elif data:
            yield _parse(data, source)


def _sse_line(line: str) -> bool:
    """Blank, a comment, or one of the four fields the SSE specification defines."""
    if not line or line.startswith(":"):
        return True
    return line.partition(":")[0] in ("data", "event", "id", "retry")


async def ndjson_events(lines: AsyncIterator[str], source: str) -> AsyncIterator[dict[str, Any]]:
    async for line in lines:
        if line.strip():
            yield _parse(line, source)


def _parse(data: str, source: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ModelResponseError(f"{source} sent a line that is not JSON: {data[:80]!r}") from exc
    if not isinstance(value, dict):
        raise ModelResponseError(f"{source} sent JSON that is not an object: {data[:80]!r}")
    if value.get("error"):
        err = value["error"]
        message = err.get("message", err) if isinstance(err, dict) else err
        raise ModelResponseError(f"{source} reported an error mid-stream: {message}")
    return value


def dig(value: dict[str, Any], *path: str | int) -> Any:
    """``value[path...]`` or None, for the optional fields of streamed chunks."""
    current: Any = value
    for key in path:
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            return None
    return current
