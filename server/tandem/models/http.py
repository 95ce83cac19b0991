"""One HTTP endpoint: a shared httpx client, a deadline, retries, streaming lines.

Every provider talks to its server through ``HttpEndpoint.stream_lines``, so
timeouts, retries (the policy is in ``retry.py``) and error mapping are decided once.
The deadline covers the whole answer, retries included; it is checked around each
await, never across a ``yield`` (a timeout scope spanning a yield would cancel the
consumer instead). An answer is read within bounds (a longest line, a largest body): a server gone
mad costs an error status, never the editor's memory.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpcore
import httpx

from tandem.models.errors import (
    ModelAuthError,
    ModelError,
    ModelHTTPError,
    ModelNotFound,
    ModelRateLimited,
    ModelResponseError,
    ModelTimeout,
    ModelUnavailable,
    ModelUnreachable,
)
from tandem.models.redact import redact_body, redact_log
from tandem.models.retry import (
    DISCONNECTS,
    RETRY_STATUSES,
    Attempts,
    RetryPolicy,
    describe_failure,
    parse_retry_after,
    safe_to_retry,
)
from tandem.stages import stage

__all__ = ["KEEPALIVE_EXPIRY", "RETRY_STATUSES", "HttpEndpoint", "RetryPolicy",
           "parse_retry_after"]  # fmt: skip

# Idle pooled connections are dropped before the servers we know drop them (llama.cpp's
# cpp-httplib and Node close idle keep-alive connections after 5 s, nginx 75 s, cloud load
# balancers 60 s), so a request rarely meets a connection that the server already closed.
KEEPALIVE_EXPIRY = 3.0
# No streamed event or JSON answer comes near these; a body past them is a fault, not an answer.
MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_ANSWER_BYTES = 32 * 1024 * 1024


class HttpEndpoint:
    """A base URL with its headers, served by one pooled ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        key_setting: str = "api_key",
        transport: httpx.AsyncBaseTransport | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.key_setting = key_setting
        self.max_line_bytes = max_line_bytes
        self.max_answer_bytes = max_answer_bytes
        self._client = httpx.AsyncClient(
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            limits=httpx.Limits(
                max_connections=16, max_keepalive_connections=8, keepalive_expiry=KEEPALIVE_EXPIRY
            ),
            trust_env=True,  # HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, SSL_CERT_DIR
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def resolve_base(self) -> str:
        """The base URL to send to now. A managed endpoint starts its server here."""
        return self.base_url

    async def transport_failure(self, error: ModelError) -> ModelError:
        """The error to report for a broken connection; a managed endpoint names a dead server."""
        return error

    async def stream_lines(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[str]:
        """POST ``body`` as JSON and yield the response body line by line.

        Retries happen only before the first line is yielded: once the caller
        has seen text, a retry would repeat it. Every body is redacted here, the one
        place a request leaves the process.
        """
        with stage("http: redact + encode"):
            content = _json_bytes(redact_body(body))
        deadline = time.monotonic() + self.timeout
        tries = Attempts(self.retry)
        while True:
            url = self.url(path)
            try:
                async with asyncio.timeout_at(_loop_deadline(deadline)):
                    url = f"{(await self.resolve_base()).rstrip('/')}/{path.lstrip('/')}"
                    request = self._client.build_request(
                        "POST", url, content=content, headers=JSON, params=params
                    )
                    with stage("http: send to headers"):
                        response = await self._client.send(request, stream=True)
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise tries.final(
                    ModelTimeout(f"no answer from {url} within {self.timeout:g}s"), "timed out"
                ) from exc
            except httpx.HTTPError as exc:
                error = await self.transport_failure(_unreachable(self.base_url, _host(url), exc))
                if not safe_to_retry(exc):
                    raise tries.final(error, describe_failure(exc)) from exc
                died = isinstance(error, ModelUnavailable)
                wait = tries.failed(describe_failure(exc), exc, died=died)
                if wait is None or time.monotonic() + wait >= deadline:
                    raise tries.final(error) from exc
                await asyncio.sleep(wait)
                continue
            try:
                if response.status_code >= 400:
                    error = await self._read_error(response, url, deadline)
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    if response.status_code not in RETRY_STATUSES:
                        raise tries.final(error, f"HTTP {response.status_code}")
                    wait = tries.failed(
                        f"HTTP {response.status_code}", None, retry_after=retry_after
                    )
                    if wait is None or time.monotonic() + wait >= deadline:
                        raise tries.final(error)
                    await response.aclose()
                    await asyncio.sleep(wait)
                    continue
                lines = _bounded_lines(
                    response.aiter_bytes(), url, self.max_line_bytes, self.max_answer_bytes
                )
                while True:
                    try:
                        async with asyncio.timeout_at(_loop_deadline(deadline)):
                            line = await anext(lines)
                    except StopAsyncIteration:
                        return
                    except TimeoutError as exc:
                        raise ModelTimeout(
                            f"answer from {url} not finished within {self.timeout:g}s"
                        ) from exc
                    except httpx.TimeoutException as exc:
                        raise ModelTimeout(f"{url} stopped sending for too long") from exc
                    except httpx.HTTPError as exc:
                        raise await self.transport_failure(
                            ModelResponseError(
                                f"stream from {url} broke off ({describe_failure(exc)})",
                                hint="the server closed the connection mid-answer; try again",
                            )
                        ) from exc
                    yield line
            finally:
                await response.aclose()

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST and parse one JSON answer (tokenize, non-streaming probes)."""
        text = "\n".join([line async for line in self.stream_lines(path, body)])
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ModelResponseError(f"{self.url(path)} did not answer JSON") from exc

    async def _read_error(self, response: httpx.Response, url: str, deadline: float) -> ModelError:
        try:
            async with asyncio.timeout_at(_loop_deadline(deadline)):
                raw = await response.aread()
            # A provider's 401 may echo the key it refused: never print it.
            sent = [
                value.removeprefix("Bearer ").strip()
                for name, value in self._client.headers.items()
                if name.lower() in ("authorization", "api-key", "x-api-key")
            ]
            detail = _error_detail(raw, sent)
        except (TimeoutError, httpx.HTTPError):
            detail = ""
        status = response.status_code
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            return ModelAuthError(
                f"{url} refused the credentials (HTTP {status}){suffix}",
                hint=f"set a valid key in the {self.key_setting} setting",
            )
        if status == 404:
            return ModelNotFound(
                f"{url} answered 404{suffix}",
                hint="check the model (or Azure deployment) name and the endpoint path",
            )
        if status == 429:
            return ModelRateLimited(f"{url} answered 429 Too Many Requests{suffix}")
        return ModelHTTPError(f"{url} answered HTTP {status}{suffix}", status)


def warm_up_transport() -> None:
    """Import now what httpx's first request would import: anyio's asyncio backend, its
    sockets and streams (30-90 ms on a 2-core machine, paid by the editor's first
    completion; issue 12). Call it on the event loop (the backend is the loop's); no
    request is made."""
    import anyio
    import anyio.abc
    import anyio.lowlevel
    import anyio.streams.memory
    import anyio.streams.stapled
    import anyio.streams.tls
    import anyio.to_thread

    anyio.Event()  # loads the running loop's backend
    _ = anyio.connect_tcp  # a lazy attribute: loads anyio's socket layer
    _ = httpcore.AnyIOBackend  # httpcore's own layer over it


def _loop_deadline(monotonic_deadline: float) -> float:
    """asyncio measures deadlines on the loop clock, which need not be time.monotonic."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


JSON = {"Content-Type": "application/json"}


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    """httpx's ``json=``, except that a lone surrogate (a chat question can hold one) is sent
    as U+FFFD instead of raising UnicodeEncodeError out of the request."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return re.sub("[\ud800-\udfff]", "\ufffd", text).encode("utf-8")


def _error_detail(raw: bytes, secrets: list[str] | None = None) -> str:
    """The server's own error message, if it gave one, shortened to one line.

    Redacted (the key sent, configured keys, secret-looking text) before it is cut, so
    a cut cannot leave half a key behind.
    """
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = text
    if isinstance(data, dict):
        err = data.get("error", data.get("message", data))
        if isinstance(err, dict):
            err = err.get("message", err)
        data = err
    text = redact_log(" ".join(str(data).split()), secrets or ())
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


_LINE_BREAK = re.compile(rb"\r\n?|\n")


async def _bounded_lines(
    chunks: AsyncIterator[bytes], url: str, max_line: int, max_total: int
) -> AsyncIterator[str]:
    """The body's lines, split only at "\n", "\r\n" and "\r" (as SSE and NDJSON define them).

    httpx's ``aiter_lines`` splits at every ``str.splitlines`` break, and U+2028 or U+0085
    may stand unescaped inside a JSON string; it also buffers a line of any length.
    """
    buffer = bytearray()
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_total:
            raise ModelResponseError(
                f"the answer from {url} is over {max_total // 2**20} MiB; stopped reading",
                hint="the server ignores max_tokens or is not a model server",
            )
        scan = max(0, len(buffer) - 1)  # a "\r" kept back may be half of "\r\n"
        buffer += chunk
        start = 0
        for match in _LINE_BREAK.finditer(buffer, scan):
            if match.group() == b"\r" and match.end() == len(buffer):
                break  # wait for the next chunk: "\r" or "\r\n"
            yield buffer[start : match.start()].decode("utf-8", "replace")
            start = match.end()
        del buffer[:start]
        if len(buffer) > max_line:
            raise ModelResponseError(
                f"{url} sent a line over {max_line // 2**20} MiB; stopped reading",
                hint="the server ignores max_tokens or is not a model server",
            )
    if buffer:
        yield buffer.rstrip(b"\r").decode("utf-8", "replace")


def _unreachable(base_url: str, host: str, exc: httpx.HTTPError) -> ModelUnreachable:
    """Name the step that failed: a DNS name, a TLS handshake and a closed port differ."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return ModelUnreachable(
                f"cannot resolve {host} ({describe_failure(exc)})",
                hint="check the host name in the endpoint setting, and the network",
            )
        if isinstance(cause, ssl.SSLError):
            return ModelUnreachable(
                f"TLS handshake with {base_url} failed ({describe_failure(exc)})",
                hint="check http:// or https:// in the endpoint; for a private CA set "
                "SSL_CERT_FILE",
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, DISCONNECTS):  # it was reached: it (or a proxy) hung up on us
        return ModelUnreachable(
            f"{base_url} closed the connection before answering ({describe_failure(exc)})",
            hint="the server or a proxy in between dropped the request; if it keeps "
            "happening, check the server's log",
        )
    return ModelUnreachable(f"cannot reach {base_url} ({describe_failure(exc)})")


def _host(url: str) -> str:
    return httpx.URL(url).host
