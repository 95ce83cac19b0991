"""What may be sent again, and how often: the one retry policy of every model request.

A request is sent again only when nothing of its answer was read: a connection refused or
lost before the status line, or a status that says "not now". ``Attempts`` keeps one
request's tries and writes the error that says what each of them got.
"""

from __future__ import annotations

import email.utils
import errno
import os
import random
import socket
import ssl
import time
from dataclasses import dataclass

import httpx

from tandem.models.errors import ModelError

# As the OpenAI SDK: timeouts aside, these say "not now", never "not this request".
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


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


def describe_failure(exc: BaseException) -> str:
    """What went wrong, in words: httpx often wraps a socket error in an exception with no
    message (a reset is ``ReadError('')``), so the errno is looked for down the causes."""
    cause: BaseException | None = exc
    while cause is not None:
        # A TLS or name lookup error's number is the library's own code, not an errno: its
        # message (CERTIFICATE_VERIFY_FAILED, "Name or service not known") is the words.
        if isinstance(cause, ssl.SSLError | socket.gaierror | socket.herror):
            break
        if isinstance(cause, OSError) and cause.errno in errno.errorcode:
            # os.strerror, not .strerror: asyncio puts "Connect call failed (...)" there
            words = os.strerror(cause.errno).lower()
            return f"{words} ({errno.errorcode[cause.errno]})"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return " ".join(text.split())[:160]


# A connection lost before any byte of the answer: the request may be sent again.
DISCONNECTS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


def safe_to_retry(exc: httpx.HTTPError) -> bool:
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
