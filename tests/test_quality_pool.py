"""``bench/quality_pool.py``: several bench runs read as one sample, each hole once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def hole(file: str, line: int, tandem: str, alone: str, expected: str, **extra: object) -> dict:
    from tandem.evaluation.metrics import edit_similarity

    return {"path": "fim", "placement": "line", "file": file, "line": line,
            "expected": expected, "tandem": tandem, "alone": alone,
            "sim_tandem": edit_similarity(tandem, expected),
            "sim_alone": edit_similarity(alone, expected),
            "sim_tandem_cut": edit_similarity(tandem.split("\n")[0], expected),
            "usable": edit_similarity(alone, expected) >= 0.5} | extra  # fmt: skip


def test_two_runs_pool_into_one_row_with_a_shared_hole_counted_once(tmp_path: Path):
    first = [
        hole("a.py", 3, "x = 1", "x = 2", "x = 1"),
        hole("b.py", 9, "", "return y", "return y"),
    ]
    # the second seed drew b.py:9 again (answered differently there): the first file's counts
    second = [
        hole("b.py", 9, "return y", "return y", "return y"),
        hole("c.py", 1, "f(a)", "g", "f(a)"),
    ]
    files = []
    for n, holes in enumerate((first, second)):
        files.append(tmp_path / f"d{n}.json")
        files[-1].write_text(json.dumps(holes))
    out = subprocess.run([sys.executable, str(BENCH / "quality_pool.py"), *map(str, files)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    rows = [line for line in out.splitlines() if line.startswith("| fim")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[:5] == ["fim", "line", "3", "33%", "67%"]  # a.py, b.py (first run's), c.py
    # Tandem won a.py and c.py, lost b.py (empty where the bare line was right and usable)
    assert cells[8] == "2/0/1"
    assert cells[11] == "33%" and cells[12] == "1"
