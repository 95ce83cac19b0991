"""Token counts remembered between reviews, so a rerun does not load a tokenizer.

Packing a review needs the chat model's token counts, and loading its tokenizer (a BPE's
tables) takes about half a second: as long as everything else a cached rerun does.
``RememberedCounts`` answers texts counted before from a digest of the text, and loads
the real tokenizer only for the first text it has not seen (at once, when nothing is
remembered for the model: then every text is new). Counting may block until the
tokenizer has loaded, so it must run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable

from tandem.cache import CompletionCache
from tandem.models.tokens import Tokenizer

COUNTS_VERSION = 1
MAX_REMEMBERED = 200_000  # texts; about 6 MB of JSON


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


class RememberedCounts:
    """A ``Tokenizer`` that answers from remembered counts, else from the real one."""

    def __init__(
        self,
        model: str,
        load: Callable[[], Awaitable[Tokenizer]],
        loop: asyncio.AbstractEventLoop,
        cache: CompletionCache | None = None,
    ) -> None:
        self.key = f"review-counts:{COUNTS_VERSION}:{model}"
        self.cache = cache
        self.name = f"remembered counts of {model}"
        self.exact = False
        self._load = load
        self._loop = loop
        self._lock = threading.Lock()
        self._future: concurrent.futures.Future[Tokenizer] | None = None
        self._remembered: dict[str, int] = {}
        self._used: dict[str, int] = {}
        self.loaded_tokenizer = False
        stored = cache.get(self.key) if cache is not None else None
        if stored:
            try:
                self._remembered = {str(k): int(v) for k, v in json.loads(stored).items()}
            except (ValueError, TypeError, AttributeError):
                self._remembered = {}
        if not self._remembered:
            self._start()  # a first run: every text is new, so load while other work goes on

    def _start(self) -> concurrent.futures.Future[Tokenizer]:
        with self._lock:
            if self._future is None:
                self._future = asyncio.run_coroutine_threadsafe(self._load(), self._loop)
            return self._future

    def count(self, text: str) -> int:
        key = _digest(text)
        number = self._remembered.get(key)
        if number is None:
            number = self._start().result().count(text)
            self.loaded_tokenizer = True
            self._remembered[key] = number
        self._used[key] = number
        return number

    def save(self) -> None:
        """Remember this run's counts (first) and older ones, if anything new was counted."""
        if self.cache is None or not self.loaded_tokenizer:
            return
        kept = dict(self._used)
        for key, number in self._remembered.items():
            if len(kept) >= MAX_REMEMBERED:
                break
            kept.setdefault(key, number)
        self.cache.set(self.key, json.dumps(kept, separators=(",", ":")))

    def close(self) -> None:
        """Stop a load nobody waits for, or collect its error so nothing logs it later."""
        future = self._future
        if future is None:
            return
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()
