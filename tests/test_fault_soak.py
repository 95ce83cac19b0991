"""A small seeded fault soak over every entry point (the full one: ``bench/faults.py``).

Every request ends with the right answer or, only when its last attempt was cut
mid-answer or stalled past the deadline, with the documented error: nothing wrong,
nothing hangs, nothing is cached from a failed answer, the language server stays up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fault_soak import soak_complete, soak_lsp, soak_review


def test_review_soak(tmp_path: Path):
    tally = soak_review(tmp_path, seed=3, requests=12)
    assert tally.wrong == []
    assert tally.requests >= 12 and tally.recovered > 0 and sum(tally.injected.values()) > 0


def test_complete_soak(tmp_path: Path):
    tally = soak_complete(tmp_path, seed=12, requests=15)
    assert tally.wrong == []
    assert tally.requests >= 15 and tally.recovered > 0


def test_language_server_soak(tmp_path: Path):
    tally = asyncio.run(soak_lsp(tmp_path, seed=13, requests=24))
    assert tally.wrong == []
    assert tally.requests >= 24 and tally.recovered > 0
