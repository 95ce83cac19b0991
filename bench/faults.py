"""The fault soak: ``tandem review``, ``tandem complete`` and ``tandem serve`` against a
loopback model server that drops, resets, rate-limits, cuts and stalls at random.

Run from the project root::

    .venv/bin/python bench/faults.py                      # seed 1, 200 requests per entry point
    .venv/bin/python bench/faults.py --seed 7 --requests 50

The server is ``tests/faultserver.py`` with a seeded ``FaultPlan`` (35% of the requests
get a fault, at most two in a row for one request: transient faults), the harness is
``tests/fault_soak.py``, the deadline (``TANDEM_TIMEOUT``) 3 s. A request is recovered
(the right answer after a fault), right with no fault, failed as designed (cut after the
answer began, or stalled past the deadline: the documented error and exit code), or
wrong (anything else; each is listed). Figures are counts from this run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fault_soak import run_soak, tables  # noqa: E402

from tables import table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=200, help="per entry point")
    ns = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tandem-faults-") as work:
        tallies = run_soak(Path(work), ns.seed, ns.requests)
    head, rows, kinds_head, kinds = tables(tallies)
    print(f"fault soak: seed {ns.seed}, {ns.requests} requests per entry point, "
          f"{time.monotonic() - started:.0f}s\n")  # fmt: skip
    print(table(head, rows))
    print()
    print(table(kinds_head, kinds))
    wrong = [w for t in tallies for w in t.wrong]
    for line in wrong:
        print("WRONG:", line)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
