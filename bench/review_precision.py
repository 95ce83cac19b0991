"""Precision bench of ``tandem review``: shipped changes a good reviewer fails none of, and
the same changes with one changed line turned into a bug.

Run from the project root (about 30 minutes a run on two busy cores with a 0.5B model)::

    .venv/bin/python bench/review_precision.py --model /path/to/model.gguf

Cases (``precision_cases.py``): every changed ``.py`` file of a package release (tests
and docs aside) with at most ``--max-changed`` changed lines is a benign case: a git
repository made by the bench with the old file committed, then the new one. Seeded
cases take the changes of at most ``--seed-max-changed`` lines (few small ones hold a
line that takes a bug) and mutate one added line of code into a bug (a flipped
comparison, a swapped boolean, an off-by-one, a dropped ``not``, a ``return None``).

The model runs in the project's embedded runtime (``python -m tandem.models.llamaserver``,
llama.cpp's server from ``xllamacpp``), started once; each case runs the real
``tandem review --base HEAD~1 --format json --fail-on error`` against it, first the old
way (``--no-verify --no-evidence``: every first-pass finding counts as given; or, with
``--before-rev REV``, tandem's own code at that revision, its older prompt included),
then the new way (the working tree, or ``--after-rev REV``). Both share one cache, so
without ``--before-rev`` the new run reuses the first-pass answers and its model calls
and time are what the checks add. ``--runs before`` and ``--runs after`` in two
processes use two cores. Printed: benign commits failing ``--fail-on error``, error
findings per benign commit, seeded bugs with a finding on their line (give or take one)
and whether one of those names the bug, unsupported/ruled-out/demoted counts, model
calls and seconds per commit. The messages on seeded lines go to ``--messages`` for a
human to judge; ``--dump DIR`` keeps each case's diff, report and ``--trace`` (the
model's raw answer and every finding's fate at each check). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from precision_cases import Case, benign_cases, seed, spread

from child import GIT_ENV
from tables import table

ROOT = Path(__file__).resolve().parent.parent
TANDEM = str(Path(sys.executable).parent / "tandem")


# (package, old, new): consecutive patch releases, BSD/MIT/Apache licensed, pure Python.
@dataclass
class Outcome:
    code: int
    findings: list[dict]
    summary: dict
    seconds: float
    stderr: str = ""


@dataclass
class Tally:
    rows: list[tuple[Case, Outcome]] = field(default_factory=list)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})  # fmt: skip


def make_repo(where: Path, case: Case) -> Path:
    where.mkdir(parents=True)
    git(where, "init", "-q", "-b", "main")
    target = where / case.path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(case.old, encoding="utf-8")
    git(where, "add", "-A")
    git(where, "commit", "-q", "-m", "old release")
    target.write_text(case.new, encoding="utf-8")
    git(where, "add", "-A")
    git(where, "commit", "-q", "-m", "new release")
    return where


def start_model(model: Path, threads: int) -> tuple[subprocess.Popen[str], str]:
    """The embedded runtime's child, started once; its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tandem.models.llamaserver", "--model", str(model),
         "--ctx", "8192", "--threads", str(threads), "--parallel", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("the model server did not start")
    return proc, json.loads(line)["url"]


def old_tandem(rev: str, where: Path) -> Path:
    """The ``server`` folder of this repository at ``rev`` (``git archive``), to run as it was."""
    where.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "server"], cwd=ROOT, check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where / "server"


def review(
    repo: Path,
    url: str,
    cache: Path,
    old: bool,
    timeout: float,
    before: Path | None = None,
    trace: Path | None = None,
    after: Path | None = None,
    extra: tuple[str, ...] = (),
) -> Outcome:
    env = {
        **os.environ, **GIT_ENV,
        "TANDEM_PROVIDER": "llamacpp", "TANDEM_ENDPOINT": url, "TANDEM_MODEL": "bench-model",
        "TANDEM_CACHE_DIR": str(cache), "TANDEM_TIMEOUT": str(timeout),
    }  # fmt: skip
    args = [TANDEM, "review", "--base", "HEAD~1", "--format", "json", "--fail-on", "error"]
    code = before if old else after
    if code is not None:  # tandem as it was at --before-rev or --after-rev, on this venv
        env["PYTHONPATH"] = str(code)
        run = "import sys; from tandem.cli import main; sys.exit(main(sys.argv[1:]))"
        args = [sys.executable, "-c", run, *args[1:]]
    if old and before is None:
        args += ["--no-verify", "--no-evidence"]
    if not old:
        args += extra
    if trace is not None and not (old and before is not None):  # the old code has no --trace
        args += ["--trace", str(trace)]
    start = time.monotonic()
    done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = {"findings": [], "summary": {}}
    return Outcome(done.returncode, report["findings"], report["summary"], seconds, done.stderr)


def dump(stem: Path, repo: Path, case: Case, out: Outcome) -> None:
    """The case (its diff, the seeded line) and the report, next to the run's trace."""
    diff = subprocess.run(["git", "diff", "HEAD~1", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout  # fmt: skip
    seeded = ""
    if case.seeded_line is not None:
        row = case.new.splitlines()[case.seeded_line - 1]
        seeded = f"seeded line {case.seeded_line} [{case.bug}]: {row.strip()}\n"
    head = f"{case.name} {case.path}\n{seeded}exit {out.code}\n"
    report = json.dumps({"findings": out.findings, "summary": out.summary}, indent=1)
    stem.with_suffix(".txt").write_text(f"{head}\n{report}\n\n{diff}", encoding="utf-8")


def near(finding: dict, line: int) -> bool:
    return finding["line"] - 1 <= line <= max(finding["line"], finding["end_line"]) + 1


def about(message: str, bug: str) -> bool:
    """A crude guess that the message names the bug (the judged list is in --messages)."""
    words = (
        "compar", "condition", "invert", "negat", "boolean", "off-by-one", "off by one",
        "boundary", "operator", "none", "always", "never", "wrong", "incorrect", "opposite",
    )  # fmt: skip
    text = message.lower()
    return any(w in text for w in words) or any(t in message for t in re.findall(r"[<>=!]=?", bug))


def summarise(label: str, tally: Tally) -> list[str]:
    benign = [(c, o) for c, o in tally.rows if c.seeded_line is None]
    seeded = [(c, o) for c, o in tally.rows if c.seeded_line is not None]
    fails = sum(o.code == 1 for _, o in benign)
    errors = sum(sum(f["severity"] == "error" for f in o.findings) for _, o in benign)
    flagged = [[f for f in o.findings if near(f, c.seeded_line or 0)] for c, o in seeded]
    hit = sum(bool(f) for f in flagged)
    named = sum(
        any(about(x["message"], c.bug) for x in f)
        for (c, _), f in zip(seeded, flagged, strict=True)
    )
    everyone = [o for _, o in tally.rows]
    calls = sum(o.summary.get("model_requests", 0) for o in everyone)
    ruled = sum(sum(o.summary.get("ruled_out", {}).values()) for o in everyone)
    return [
        label,
        f"{fails}/{len(benign)}",
        f"{errors / max(1, len(benign)):.2f}",
        f"{hit}/{len(seeded)}",
        f"{named}/{len(seeded)}",
        str(sum(o.summary.get("unsupported_findings", 0) for o in everyone)),
        str(ruled),
        str(sum(o.summary.get("demoted_findings", 0) for o in everyone)),
        str(sum(o.summary.get("verified_findings", 0) for o in everyone)),
        f"{calls / max(1, len(everyone)):.1f}",
        f"{sum(o.seconds for o in everyone) / max(1, len(everyone)):.1f}",
        ",".join(sorted({str(o.code) for o in everyone})),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a GGUF code model")
    parser.add_argument("--data", type=Path, default=Path("/work/bench-data"))
    parser.add_argument("--benign", type=int, default=10, help="benign cases at most")
    parser.add_argument("--seeded", type=int, default=4, help="seeded cases at most")
    parser.add_argument("--max-changed", type=int, default=30, help="changed lines a case")
    parser.add_argument("--seed-max-changed", type=int, default=80,
                        help="changed lines a seeded case (few small ones take a bug)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--before-rev",
        help="run 'before' as tandem was at this git revision (its own prompt), not as this "
        "tandem with --no-verify --no-evidence",
    )
    parser.add_argument(
        "--after-rev",
        help="run 'after' as tandem is at this git revision (a committed state, so the "
        "working tree can change while the bench runs), not as the working tree",
    )
    parser.add_argument("--after-arg", action="append", default=[], metavar="ARG",
                        help="one more argument of the 'after' run's tandem review, e.g. "
                        "--after-arg=--per-hunk (repeatable)")  # fmt: skip
    parser.add_argument("--messages", type=Path, default=Path("/tmp/review_precision.txt"))
    parser.add_argument("--only", choices=("benign", "seeded"), help="run one kind of case")
    parser.add_argument("--cases", action="append", metavar="TEXT",
                        help="only the cases whose path holds TEXT (repeatable)")  # fmt: skip
    parser.add_argument(
        "--runs",
        choices=("both", "before", "after"),
        default="both",
        help="one of the runs only ('after' to look at the checks quickly; 'before' and "
        "'after' in two processes to use two cores)",
    )
    parser.add_argument(
        "--dump", type=Path,
        help="write each case's diff, report and --trace (the model's raw answer, then every "
        "finding's fate at each check) to this folder",
    )  # fmt: skip
    args = parser.parse_args()

    every = benign_cases(args.data, args.max_changed)
    benign = [] if args.only == "seeded" else spread(every, args.benign)
    seeded = [] if args.only == "benign" else spread(
        [s for s in map(seed, benign_cases(args.data, args.seed_max_changed)) if s is not None],
        args.seeded,
    )  # fmt: skip
    if args.cases:
        benign = [c for c in benign if any(t in c.path for t in args.cases)]
        seeded = [c for c in seeded if any(t in c.path for t in args.cases)]
    if args.dump is not None:
        args.dump.mkdir(parents=True, exist_ok=True)
    labels = tuple(
        (label, label == "before") for label in ("before", "after") if args.runs in ("both", label)
    )
    cases = benign + seeded
    print(f"{len(benign)} benign and {len(seeded)} seeded cases; model {args.model.name}")
    proc, url = start_model(args.model, args.threads)
    tallies = {label: Tally() for label, _ in labels}
    notes: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="review-precision-") as tmp:
            cache = Path(tmp) / "cache"
            before = old_tandem(args.before_rev, Path(tmp) / "old") if args.before_rev else None
            after = old_tandem(args.after_rev, Path(tmp) / "new") if args.after_rev else None
            for i, case in enumerate(cases):
                repo = make_repo(Path(tmp) / f"case{i}", case)
                for label, old in labels:
                    trace = args.dump / f"case{i}-{label}.trace.jsonl" if args.dump else None
                    out = review(repo, url, cache, old, args.timeout, before, trace, after,
                                 tuple(args.after_arg))  # fmt: skip
                    tallies[label].rows.append((case, out))
                    if args.dump is not None:
                        dump(args.dump / f"case{i}-{label}", repo, case, out)
                    errors = sum(f["severity"] == "error" for f in out.findings)
                    print(f"  {label:6} {case.name} {case.path}: exit {out.code}, "
                          f"{len(out.findings)} findings ({errors} errors), "
                          f"{out.summary.get('model_requests', 0)} calls, {out.seconds:.0f}s",
                          flush=True)  # fmt: skip
                    if out.code not in (0, 1):
                        notes.append(f"{label} {case.path}: exit {out.code}: "
                                     f"{out.stderr.strip()[-300:]}")  # fmt: skip
                    if case.seeded_line is not None:
                        for f in out.findings:
                            mark = "ON LINE" if near(f, case.seeded_line) else "elsewhere"
                            notes.append(
                                f"{label} {case.path}:{case.seeded_line} [{case.bug}] {mark} "
                                f"{f['line']} {f['severity']} verified={f.get('verified')}: "
                                f"{f['message']!r}"
                            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    args.messages.write_text("\n".join(notes) + "\n", encoding="utf-8")
    headers = ["run", "benign failing --fail-on error", "errors / benign commit",
               "seeded flagged on line ±1", "…naming the bug (guess)", "unsupported",
               "ruled out", "demoted", "verified", "model calls / commit", "s / commit",
               "exit codes"]  # fmt: skip
    rows = [summarise(label, tally) for label, tally in tallies.items()]
    print()
    print(table(headers, rows))
    print(f"\nseeded-line messages and odd exits: {args.messages}")


if __name__ == "__main__":
    main()
