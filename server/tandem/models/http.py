"""One HTTP endpoint: a shared httpx client, a deadline, retries, streaming lines.

Every provider talks to its server through ``HttpEndpoint.stream_lines``, so
timeouts, retries and error mapping are decided once. The deadline covers the
whole answer, retries included; it is checked around each await, never across
a ``yield`` (a timeout scope spanning a yield would cancel the consumer instead).
An answer is read within bounds (a longest line, a largest body): a server gone
mad costs an error status, never the editor's memory.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import json
import os
import random
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

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

# As the OpenAI SDK: timeouts aside, these say "not now", never "not this request".
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# Idle pooled connections are dropped before the servers we know drop them (llama.cpp's
# cpp-httplib and Node close idle keep-alive connections after 5 s, nginx 75 s, cloud load
# balancers 60 s), so a request rarely meets a connection that the server already closed.
KEEPALIVE_EXPIRY = 3.0
# No streamed event or JSON answer comes near these; a body past them is a fault, not an answer.
MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_ANSWER_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """Jittered exponential backoff ("full jitter"), overridden by Retry-After."""

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class Attempts:
    """One request's attempts under a ``RetryPolicy``: how long to wait before the next one,
    and an error that tells what each attempt got once there is no next one."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.outcomes: list[str] = []
        self.counted = 0
        self.deaths = 0
        self.free_retry = True

    def failed(
        self,
        outcome: str,
        exc: BaseException | None,
        *,
        retry_after: float | None = None,
        died: bool = False,
    ) -> float | None:
        """Record a failed attempt; the seconds to wait before the next, or None to give up.

        A disconnect before any answer is, first of all, a pooled connection that the
        server had closed: that one is retried at once and not counted. A managed server
        that died before answering is restarted for one more try, never in a loop: a prompt
        that kills it twice ends with the error that says how it died. (Whether it died just
        before or just after the request reached it cannot be told apart: the kernel takes
        a moment to reap a killed process.)
        """
        self.outcomes.append(outcome)
        if died:
            self.deaths += 1
            return 0.0 if self.deaths == 1 else None
        if self.free_retry and isinstance(exc, DISCONNECTS):
            self.free_retry = False
            return 0.0
        self.counted += 1
        if self.counted >= self.policy.attempts:
            return None
        return self.policy.delay(self.counted - 1, retry_after)

    def final(self, error: ModelError, outcome: str | None = None) -> ModelError:
        """``error``, saying what each attempt got when there was more than one.

        ``outcome`` is the last attempt's, when it was not recorded as a failed try."""
        outcomes = [*self.outcomes, outcome] if outcome else self.outcomes
        if len(outcomes) > 1:
            runs: list[tuple[int, int, str]] = []  # attempts first..last got the same
            for i, got in enumerate(outcomes, 1):
                if runs and runs[-1][2] == got:
                    runs[-1] = (runs[-1][0], i, got)
                else:
                    runs.append((i, i, got))
            tried = "; ".join(f"{a}{f'-{b}' if b > a else ''}: {got}" for a, b, got in runs)
            error.args = (f"{error.args[0]} (after {len(outcomes)} attempts: {tried})",)
        return error


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


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

    def transport_failure(self, error: ModelError) -> ModelError:
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
                    response = await self._client.send(request, stream=True)
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise tries.final(
                    ModelTimeout(f"no answer from {url} within {self.timeout:g}s"), "timed out"
                ) from exc
            except httpx.HTTPError as exc:
                error = self.transport_failure(_unreachable(self.base_url, _host(url), exc))
                if not _safe_to_retry(exc):
                    raise tries.final(error, _reason(exc)) from exc
                wait = tries.failed(_reason(exc), exc, died=isinstance(error, ModelUnavailable))
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
                        raise self.transport_failure(
                            ModelResponseError(
                                f"stream from {url} broke off ({_reason(exc)})",
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
                f"cannot resolve {host} ({_reason(exc)})",
                hint="check the host name in the endpoint setting, and the network",
            )
        if isinstance(cause, ssl.SSLError):
            return ModelUnreachable(
                f"TLS handshake with {base_url} failed ({_reason(exc)})",
                hint="check http:// or https:// in the endpoint; for a private CA set "
                "SSL_CERT_FILE",
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, DISCONNECTS):  # it was reached: it (or a proxy) hung up on us
        return ModelUnreachable(
            f"{base_url} closed the connection before answering ({_reason(exc)})",
            hint="the server or a proxy in between dropped the request; if it keeps "
            "happening, check the server's log",
        )
    return ModelUnreachable(f"cannot reach {base_url} ({_reason(exc)})")


def _reason(exc: BaseException) -> str:
    """What went wrong, in words: httpx often wraps a socket error in an exception with no
    message (a reset is ``ReadError('')``), so the errno is looked for down the causes."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno is not None:
            name = errno.errorcode.get(cause.errno, str(cause.errno))
            # os.strerror, not .strerror: asyncio puts "Connect call failed (...)" there
            words = os.strerror(cause.errno).lower()
            return f"{words} ({name})"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return " ".join(text.split())[:160]


# A connection lost before any byte of the answer: the request may be sent again.
DISCONNECTS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def _safe_to_retry(exc: httpx.HTTPError) -> bool:
    """Connection refused or lost before the answer began, but not a DNS or TLS failure
    (those do not heal in a second) and not a timeout (that is the deadline speaking)."""
    if not isinstance(exc, (httpx.ConnectError, *DISCONNECTS)):
        return False
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror | ssl.SSLError):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def _host(url: str) -> str:
    return httpx.URL(url).host
