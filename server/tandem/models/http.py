"""One HTTP endpoint: a shared httpx client, a deadline, retries, streaming lines.

Every provider talks to its server through ``HttpEndpoint.stream_lines``, so
timeouts, retries and error mapping are decided once. The deadline covers the
whole answer, retries included; it is checked around each await, never across
a ``yield`` (a timeout scope spanning a yield would cancel the consumer instead).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
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
    ModelUnreachable,
)

RETRY_STATUSES = frozenset({429, 502, 503, 504})


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.key_setting = key_setting
        self._client = httpx.AsyncClient(
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
            trust_env=True,  # HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE, SSL_CERT_DIR
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def stream_lines(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[str]:
        """POST ``body`` as JSON and yield the response body line by line.

        Retries happen only before the first line is yielded: once the caller
        has seen text, a retry would repeat it.
        """
        deadline = time.monotonic() + self.timeout
        url = self.url(path)
        attempt = 0
        while True:
            request = self._client.build_request("POST", url, json=body, params=params)
            try:
                async with asyncio.timeout_at(_loop_deadline(deadline)):
                    response = await self._client.send(request, stream=True)
            except TimeoutError as exc:
                raise ModelTimeout(f"no answer from {url} within {self.timeout:g}s") from exc
            except httpx.TimeoutException as exc:
                raise ModelTimeout(f"no answer from {url} within {self.timeout:g}s") from exc
            except httpx.HTTPError as exc:
                raise ModelUnreachable(f"cannot reach {self.base_url} ({_reason(exc)})") from exc
            try:
                if response.status_code >= 400:
                    error = await self._read_error(response, url, deadline)
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    if response.status_code not in RETRY_STATUSES:
                        raise error
                    attempt += 1
                    wait = self.retry.delay(attempt - 1, retry_after)
                    if attempt >= self.retry.attempts or time.monotonic() + wait >= deadline:
                        raise error
                    await response.aclose()
                    await asyncio.sleep(wait)
                    continue
                lines = response.aiter_lines()
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
                        raise ModelResponseError(
                            f"stream from {url} broke off ({_reason(exc)})",
                            hint="the server closed the connection mid-answer; try again",
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
            detail = _error_detail(raw)
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


def _error_detail(raw: bytes) -> str:
    """The server's own error message, if it gave one, shortened to one line."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(data, dict):
        err = data.get("error", data.get("message", data))
        if isinstance(err, dict):
            err = err.get("message", err)
        return " ".join(str(err).split())[:200]
    return " ".join(str(data).split())[:200]


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:160]
