"""The adaptive debounce: keystroke intervals and the model's latency decide the hold."""

from __future__ import annotations

import pytest

from tandem.pace import BURST_GAP, MAX_DELAY, Pace

URI = "file:///a.py"


def typed(pace: Pace, interval: float, keys: int, start: float = 100.0) -> float:
    """``keys`` keystrokes ``interval`` seconds apart; the time of the last one."""
    now = start
    for i in range(keys):
        now = start + i * interval
        pace.keystroke(URI, now)
    return now


def test_no_hold_before_a_pace_and_a_latency_are_known() -> None:
    pace = Pace()
    assert pace.delay(URI, 0.0) == 0.0
    last = typed(pace, 0.12, 10)
    assert pace.delay(URI, last) == 0.0  # no model answer measured yet
    pace.model_answered(0.3)
    assert pace.delay(URI, last) > 0.0


def test_a_fast_typist_against_a_slow_model_is_held_until_a_pause() -> None:
    pace = Pace()
    pace.model_answered(0.3)
    last = typed(pace, 0.12, 10)
    assert pace.interval(URI) == pytest.approx(0.12)
    assert pace.delay(URI, last) == pytest.approx(1.5 * 0.12)
    # part of the pause has already passed: only the rest is held
    assert pace.delay(URI, last + 0.1) == pytest.approx(1.5 * 0.12 - 0.1)
    assert pace.delay(URI, last + 1.0) == 0.0


def test_no_hold_when_the_model_answers_before_the_next_keystroke() -> None:
    pace = Pace()
    pace.model_answered(0.1)
    last = typed(pace, 0.2, 10)
    assert pace.delay(URI, last) == 0.0


def test_the_hold_is_bounded() -> None:
    pace = Pace()
    pace.model_answered(5.0)
    last = typed(pace, 0.9, 10)
    assert pace.delay(URI, last) == MAX_DELAY


def test_a_long_pause_starts_a_new_burst() -> None:
    pace = Pace()
    pace.model_answered(0.3)
    last = typed(pace, 0.12, 10)
    pace.keystroke(URI, last + BURST_GAP + 1)
    assert pace.interval(URI) is None  # the old pace no longer holds
    assert pace.delay(URI, last + BURST_GAP + 1) == 0.0


def test_documents_are_paced_apart_and_forgotten() -> None:
    pace = Pace()
    pace.model_answered(0.3)
    last = typed(pace, 0.12, 10)
    assert pace.delay("file:///other.py", last) == 0.0
    pace.forget(URI)
    assert pace.delay(URI, last) == 0.0


def test_latency_is_a_moving_average() -> None:
    pace = Pace()
    pace.model_answered(0.1)
    pace.model_answered(1.1)
    assert pace.latency is not None and 0.1 < pace.latency < 1.1
    pace.model_answered(0.0)  # nothing measured: ignored
    assert pace.latency is not None and pace.latency > 0.1
