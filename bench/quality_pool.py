"""Completion quality over several runs of bench/quality.py: one table from their ``--details``.

    .venv/bin/python bench/quality_pool.py /tmp/f0.json /tmp/f1.json /tmp/f2.json

Runs with other ``--seed`` values draw other holes, and a sample of 40 moves by a hole or
two that flip; pooled, the interval narrows. Two seeds can draw the same hole: it is
counted once (the first file's). Columns as bench/quality.py prints them (see its
docstring), scored again from the texts each run wrote: this reads files and asks no model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tandem.evaluation.metrics import Score, paired, score, summarise

from tables import table

HEADERS = ["path", "placement", "holes", "exact alone", "exact Tandem", "edit sim alone",
           "edit sim Tandem", "Tandem - alone [95%]", "won/tied/lost", "edit sim Tandem, cut",
           "Tandem, cut - alone [95%]", "empty Tandem", "empty, alone usable"]  # fmt: skip


def pooled(files: list[Path]) -> dict[tuple[str, str], list[dict]]:
    """The holes of every file by (path, placement), each distinct hole once."""
    groups: dict[tuple[str, str], list[dict]] = {}
    seen: set[tuple[str, str, str, int]] = set()
    for file in files:
        for hole in json.loads(file.read_text()):
            key = (hole["path"], hole["placement"], hole["file"], hole["line"])
            if key not in seen:
                seen.add(key)
                groups.setdefault(key[:2], []).append(hole)
    return groups


def row(path: str, placement: str, holes: list[dict]) -> list[str]:
    ours = [score(h["tandem"], h["expected"]) for h in holes]
    theirs = [score(h["alone"], h["expected"]) for h in holes]
    # the cut text is not written, only its score (bench/quality.py's ``sim_tandem_cut``)
    cut = [Score(False, h["sim_tandem_cut"], False, 0.0) for h in holes]
    t, a, c = summarise(ours), summarise(theirs), summarise(cut)
    d, e = paired(ours, theirs), paired(cut, theirs)
    lost = sum(h["usable"] and not h["tandem"].strip() for h in holes)
    return [path, placement, str(t.holes), f"{a.exact:.0%}", f"{t.exact:.0%}",
            f"{a.similarity:.3f}", f"{t.similarity:.3f}",
            f"{d.difference:+.3f} [{d.low:+.3f}, {d.high:+.3f}]", f"{d.wins}/{d.ties}/{d.losses}",
            f"{c.similarity:.3f}", f"{e.difference:+.3f} [{e.low:+.3f}, {e.high:+.3f}]",
            f"{t.empty:.0%}", str(lost)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "details", nargs="+", type=Path, help="files bench/quality.py --details wrote"
    )
    args = parser.parse_args()
    groups = pooled(args.details)
    print(table(HEADERS, [row(*key, holes) for key, holes in groups.items()]))


if __name__ == "__main__":
    main()
