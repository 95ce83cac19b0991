"""Scores of one completion against the text it should restore (CrossCodeEval's metrics)."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def normalise(text: str) -> str:
    """Trailing spaces, and blank lines at either end, are not what a reader compares."""
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n").strip()


def exact(got: str, expected: str) -> bool:
    return normalise(got) == normalise(expected)


def edit_similarity(got: str, expected: str) -> float:
    """1 - Levenshtein distance / the longer length, on normalised text (1.0: equal)."""
    a, b = normalise(got), normalise(expected)
    if not a and not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


@dataclass(frozen=True)
class Score:
    """One filled hole."""

    exact: bool
    similarity: float
    empty: bool
    elapsed_ms: float


def score(got: str, expected: str, elapsed_ms: float = 0.0) -> Score:
    return Score(exact(got, expected), edit_similarity(got, expected), not got.strip(), elapsed_ms)


@dataclass(frozen=True)
class Summary:
    holes: int
    exact: float  # fractions of the holes
    similarity: float  # mean
    empty: float
    latency_ms: float  # median

    def as_dict(self) -> dict[str, float | int]:
        return {
            "holes": self.holes,
            "exact_match": round(self.exact, 4),
            "edit_similarity": round(self.similarity, 4),
            "empty_rate": round(self.empty, 4),
            "median_latency_ms": round(self.latency_ms, 1),
        }


def summarise(scores: Sequence[Score]) -> Summary:
    n = len(scores)
    if not n:
        return Summary(0, 0.0, 0.0, 0.0, 0.0)
    return Summary(
        n,
        sum(s.exact for s in scores) / n,
        sum(s.similarity for s in scores) / n,
        sum(s.empty for s in scores) / n,
        statistics.median(s.elapsed_ms for s in scores),
    )


@dataclass(frozen=True)
class Paired:
    """Two ways of filling the same holes, hole by hole: a handful of holes that flip decide a
    small sample's means, so the difference is given with its bootstrap interval."""

    wins: int
    ties: int
    losses: int
    difference: float  # mean of ours - theirs (edit similarity)
    low: float  # 95% bootstrap interval of that mean
    high: float


def paired(ours: Sequence[Score], theirs: Sequence[Score], resamples: int = 2000) -> Paired:
    """``ours`` against ``theirs`` on the same holes, in the same order."""
    if len(ours) != len(theirs):
        raise ValueError("paired scores need the same holes on both sides")
    diffs = [a.similarity - b.similarity for a, b in zip(ours, theirs, strict=True)]
    n = len(diffs)
    if not n:
        return Paired(0, 0, 0, 0.0, 0.0, 0.0)
    wins = sum(d > 1e-9 for d in diffs)
    losses = sum(d < -1e-9 for d in diffs)
    rng = random.Random(0)  # the same scores give the same interval
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    low, high = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    return Paired(wins, n - wins - losses, losses, sum(diffs) / n, low, high)
