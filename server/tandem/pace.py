"""The user's typing pace per document and the model's latency -> how long to hold a new call.

A model call started on every keystroke of a fast typist is superseded before it answers.
Tabby adapts its debounce to the typing speed; here the delay is chosen from two
measurements: the median interval between the recent keystrokes of this document, and
the model's recent latency. When the model answers before the next keystroke is due,
nothing is held. Otherwise a new call waits until the user has paused for about one and
a half of their usual intervals (a newer request in the meantime supersedes it, so no call
is made at all), and never longer than ``MAX_DELAY``.
"""

from __future__ import annotations

import statistics
import time
from collections import deque

WINDOW = 8  # keystroke intervals remembered per document
BURST_GAP = 1.0  # seconds: a longer pause ends a burst of typing
MIN_INTERVALS = 3  # fewer intervals say nothing about a pace
PAUSE_FACTOR = 1.5  # a pause this many usual intervals long: the user stopped typing
MAX_DELAY = 0.35  # seconds
LATENCY_WEIGHT = 0.3  # exponential moving average of the model's latency


class Pace:
    """Keystroke intervals per document and the model's moving-average latency."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._intervals: dict[str, deque[float]] = {}
        self.latency: float | None = None  # seconds

    def keystroke(self, uri: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        last = self._last.get(uri)
        self._last[uri] = now
        if last is None:
            return
        gap = now - last
        intervals = self._intervals.setdefault(uri, deque(maxlen=WINDOW))
        if gap > BURST_GAP:
            intervals.clear()  # a new burst: the old pace may not hold
        elif gap > 0:
            intervals.append(gap)

    def model_answered(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += LATENCY_WEIGHT * (seconds - self.latency)

    def interval(self, uri: str) -> float | None:
        """The user's usual interval between keystrokes in this document, when typing."""
        intervals = self._intervals.get(uri)
        if not intervals or len(intervals) < MIN_INTERVALS:
            return None
        return statistics.median(intervals)

    def delay(self, uri: str, now: float | None = None) -> float:
        """Seconds to hold a new model call for this document (0: start it at once)."""
        now = time.monotonic() if now is None else now
        interval = self.interval(uri)
        last = self._last.get(uri)
        if interval is None or last is None or self.latency is None:
            return 0.0
        if self.latency <= interval:
            return 0.0  # the answer comes before the next keystroke would
        wanted = min(MAX_DELAY, PAUSE_FACTOR * interval)
        return max(0.0, wanted - (now - last))

    def forget(self, uri: str) -> None:
        self._last.pop(uri, None)
        self._intervals.pop(uri, None)
