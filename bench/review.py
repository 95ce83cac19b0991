"""Benchmark of ``tandem review``: the time it adds to the model's, and the cached rerun.

Run from the project root::

    .venv/bin/python bench/review.py            # ~2,000 changed lines in 50 files
    .venv/bin/python bench/review.py --quick    # 12 files

The repository under review is real code: pytest's own package (``_pytest``, copied
from this virtualenv) committed on ``main``; ``feature`` then carries synthetic but
ordinary edits to 50 of its files (a module logger, a trace line in up to seven functions,
a ``return`` split in two, a new helper at the end), about 40 changed lines a file.
The test model (``tests/modelserver.py`` through ``tests/review_support.ReviewModel``)
runs in a child process and answers every request after a fixed latency with one
finding on the request's first changed line, so each answer is parsed and checked.

Each row runs the real ``tandem review --base main --format json`` command in a fresh
process (Python start-up and imports included). "Model time" is what the model alone
needs: the fixed latency times the number of request waves (requests / concurrency,
rounded up). "Tandem adds" is the rest: git, parsing, the symbol index, tree-sitter
context, token counting, packing, HTTP, checks and output. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from child import GIT_ENV
from tables import table

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
TANDEM = str(Path(sys.executable).parent / "tandem")
SERVE_FLAG = "--serve"


# ---- the repository -------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, env={**os.environ, **GIT_ENV}, check=True
    )
    return done.stdout.decode()


def package_source() -> Path:
    import _pytest

    return Path(_pytest.__file__).parent


HELPER = '''

def _describe_{name}(value: object, limit: int = 80) -> str:
    """A short, printable description of ``value`` for trace output."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break tracing
        text = f"<unrepresentable {{type(value).__name__}}: {{exc}}>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
'''


def edit_module(text: str, name: str, rng: random.Random, functions: int = 7) -> str | None:
    """Ordinary edits to one module, or None when it has too few functions to edit."""
    tree = ast.parse(text)
    lines = text.split("\n")
    candidates = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and len(node.body) >= 2
    ]
    if len(candidates) < 3:
        return None
    picked = rng.sample(candidates, min(functions, len(candidates)))
    chosen = sorted(picked, key=lambda n: n.lineno, reverse=True)
    for node in chosen:  # bottom up, so earlier line numbers stay valid
        first = node.body[0]
        returns = [
            r
            for r in ast.walk(node)
            if isinstance(r, ast.Return) and r.value is not None and r.lineno == r.end_lineno
        ]
        if returns:
            ret = returns[-1]
            line = lines[ret.lineno - 1]
            indent = line[: len(line) - len(line.lstrip())]
            value = line.strip()[len("return ") :]
            if line.strip().startswith("return ") and value:
                lines[ret.lineno - 1 : ret.lineno] = [
                    f"{indent}result = {value}",
                    f"{indent}return result",
                ]
        docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        after = first.end_lineno if docstring else first.lineno - 1
        body_line = lines[node.body[0].lineno - 1]
        indent = body_line[: len(body_line) - len(body_line.lstrip())]
        lines[after:after] = [
            f"{indent}if _TRACE:",
            f'{indent}    _log.debug("%s(%s)", "{node.name}", _describe_{name}(locals()))',
        ]
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    at = imports[-1].end_lineno if imports else 0
    lines[at:at] = ["import logging", "", "_log = logging.getLogger(__name__)", "_TRACE = False"]
    return "\n".join(lines).rstrip("\n") + "\n" + HELPER.format(name=name)


def build_repo(path: Path, files: int, seed: int = 7) -> tuple[int, int]:
    """The repository under review; (files changed, lines changed) of its diff."""
    package = path / "src" / "_pytest"
    shutil.copytree(package_source(), package, ignore=shutil.ignore_patterns("__pycache__"))
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "pytest as released")
    git(path, "checkout", "-q", "-b", "feature")
    rng = random.Random(seed)
    modules = sorted(p for p in package.rglob("*.py") if p.stat().st_size > 2000)
    edited = 0
    for module in modules:
        if edited == files:
            break
        text = module.read_text(encoding="utf-8")
        new = edit_module(text, module.stem.strip("_") or "module", rng)
        if new is None:
            continue
        ast.parse(new)  # the edits keep it valid Python
        module.write_text(new, encoding="utf-8")
        edited += 1
    git(path, "commit", "-q", "-am", "trace output in up to seven functions a module")
    stat = git(path, "diff", "--numstat", "main", "feature")
    changed = sum(int(a) + int(d) for a, d, _ in (line.split("\t") for line in stat.splitlines()))
    return edited, changed


def touch_one_hunk(path: Path) -> None:
    """A follow-up commit changing one trace line in one function of one file."""
    for module in sorted((path / "src" / "_pytest").rglob("*.py")):
        text = module.read_text(encoding="utf-8")
        if '_log.debug("%s(%s)"' in text:
            new = text.replace('_log.debug("%s(%s)"', '_log.debug("%s called with %s"', 1)
            module.write_text(new, encoding="utf-8")
            break
    git(path, "commit", "-q", "-am", "one more change")


# ---- the model server ------------------------------------------------------------------------


def serve(port: int, latency: float) -> None:
    """The child process: a review model answering one finding per request after ``latency``."""
    sys.path.insert(0, str(TESTS))
    import modelserver
    from review_support import ReviewModel, answer, finding

    modelserver._Handler.disable_nagle_algorithm = True

    def respond(files: list[str], body: dict) -> str:
        match = re.search(r"^ *(\d+) \+ ", body["messages"][-1]["content"], re.M)
        return answer(finding(files[0], int(match.group(1)), rule="bench")) if match else answer()

    server = ReviewModel(respond, latency=latency, port=port)
    server.httpd.serve_forever()


class ServerProcess:
    def __init__(self, latency: float) -> None:
        sys.path.insert(0, str(Path(__file__).parent))
        from models import free_port, wait_for_port

        self.port = free_port()
        cmd = [sys.executable, __file__, SERVE_FLAG, str(self.port), "--latency", str(latency)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=5)


# ---- runs --------------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    seconds: float
    cpu: float  # user + system seconds of the tandem process
    requests: int
    cached: int
    findings: int
    concurrency: int


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def review(repo: Path, env: dict[str, str], label: str, concurrency: int) -> Run:
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [TANDEM, "review", "--base", "main", "--format", "json", "--quiet",
         "--concurrency", str(concurrency)],
        cwd=repo, capture_output=True, env=env, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"tandem review failed ({done.returncode}): {done.stderr.decode()}")
    summary = json.loads(done.stdout)["summary"]
    return Run(
        label,
        seconds,
        children_cpu() - cpu,
        summary["model_requests"],
        summary["cached_requests"],
        summary["findings"],
        concurrency,
    )


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return time.perf_counter() - started


BREAKDOWN = """\
import asyncio, json, threading, time
from pathlib import Path
t, c = time.perf_counter(), time.process_time()
laps = []
def lap(label):
    global t, c
    laps.append((label, time.perf_counter() - t, time.process_time() - c))
    t, c = time.perf_counter(), time.process_time()
from tandem.cache import CompletionCache
from tandem.cli import main
from tandem.context.engine import ContextEngine
from tandem.context.index import WorkspaceIndex
from tandem.models.tokens import tokenizer_for_model
from tandem.review.ask import overhead_text, path_text
from tandem.review.context import UnitBuilder
from tandem.review.counts import RememberedCounts
from tandem.review.diff import skip_reason
from tandem.review.inputs import gather
from tandem.review.packing import pack
lap("imports (python start-up not included)")
inputs = gather(Path.cwd(), base="main")
lap("git diff, parse the diff, settings")
index = WorkspaceIndex(inputs.root, inputs.settings.cache_dir)
index.build()
lap("symbol index (from its cache)")
files = [f for f in inputs.files if not skip_reason(f, inputs.filters)]
blobs = inputs.source.read([f.path for f in files])
builder = UnitBuilder(inputs.root, ContextEngine(inputs.root, index))
prepared = [builder.prepare(f, blobs[f.path].decode()) for f in files]
for file in prepared:
    file.prepare_definitions()
lap("tree-sitter context and definitions")
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()
cache = CompletionCache(inputs.settings.cache_dir / "review")
async def load():
    return tokenizer_for_model("bench-model")
tokenizer = RememberedCounts("openai:bench-model", load, loop, cache)
budget = inputs.settings.chat.context_tokens - tokenizer.count(overhead_text()) - 40
units = [u for p in prepared for u in builder.build(p, tokenizer, budget)[0]]
pack(units, budget, lambda p: tokenizer.count(path_text(p)))
lap("count (remembered), fit and pack units")
tokenizer_for_model("bench-model").count("x")
lap("(not in a rerun) load the tokenizer")
print(json.dumps(laps))
"""


def breakdown(repo: Path, env: dict[str, str]) -> list[tuple[str, float, float]]:
    """Where a cached rerun's time goes, each step alone (the command overlaps some)."""
    done = subprocess.run(
        [sys.executable, "-c", BREAKDOWN], cwd=repo, capture_output=True, env=env, check=True
    )
    return [tuple(step) for step in json.loads(done.stdout)]


def main(ns: argparse.Namespace) -> None:
    files = 12 if ns.quick else ns.files
    with tempfile.TemporaryDirectory(prefix="tandem-review-bench-") as tmp:
        work = Path(tmp)
        repo = work / "repo"
        repo.mkdir()
        edited, changed = build_repo(repo, files)
        (repo / ".tandem.toml").write_text(f"[chat]\ncontext_tokens = {ns.budget}\n")
        server = ServerProcess(ns.latency)
        try:
            env = {
                **os.environ,
                **GIT_ENV,
                "TANDEM_PROVIDER": "openai",
                "TANDEM_ENDPOINT": server.url + "/v1",
                "TANDEM_MODEL": "bench-model",
                "TANDEM_CACHE_DIR": str(work / "cache"),
                "XDG_CONFIG_HOME": str(work / "config"),
            }
            runs = [
                review(repo, env, "cold (empty cache)", ns.concurrency),
                review(repo, env, "cached rerun", ns.concurrency),
            ]
            steps = breakdown(repo, env)
            shutil.rmtree(work / "cache" / "review")  # answers only: the index stays cached
            runs.append(review(repo, env, "uncached, index cached", ns.concurrency))
            shutil.rmtree(work / "cache" / "review")
            runs.append(review(repo, env, "uncached, concurrency 1", 1))
            touch_one_hunk(repo)
            runs.append(review(repo, env, "one hunk changed", ns.concurrency))
            runs.append(review(repo, env, "cached rerun again", ns.concurrency))
            runs.append(review(repo, env, "cached rerun again", ns.concurrency))
        finally:
            server.stop()
    startup = min(timed([TANDEM, "--version"]) for _ in range(3))
    print(
        f"tandem review on {edited} files / {changed} changed lines of _pytest "
        f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}), test model latency {ns.latency * 1000:.0f} ms, "
        f"[chat] context_tokens {ns.budget}; `tandem --version` alone takes {startup:.2f} s\n"
    )
    rows = []
    for run in runs:
        waves = math.ceil(run.requests / run.concurrency) if run.requests else 0
        model = waves * ns.latency
        rows.append(
            [
                run.label,
                str(run.concurrency),
                str(run.requests),
                str(run.cached),
                str(run.findings),
                f"{run.seconds:.2f}",
                f"{run.cpu:.2f}",
                f"{model:.2f}",
                f"{run.seconds - model:.2f}",
            ]
        )
    headers = [
        "run", "concurrency", "model requests", "cached", "findings", "wall s", "cpu s",
        "model time s", "Tandem adds s",
    ]  # fmt: skip
    print(table(headers, rows))
    print("\nWhere a cached rerun's time goes (each step alone, in one process):\n")
    step_rows = [[label, f"{wall:.3f}", f"{cpu:.3f}"] for label, wall, cpu in steps]
    print(table(["step", "wall s", "cpu s"], step_rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 files instead of 50")
    parser.add_argument("--files", type=int, default=50, help="files to edit (default 50)")
    parser.add_argument("--latency", type=float, default=0.25, help="model seconds per answer")
    parser.add_argument("--concurrency", type=int, default=4, help="review --concurrency")
    parser.add_argument("--budget", type=int, default=2048, help="[chat] context_tokens")
    parser.add_argument(SERVE_FLAG, type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    if args.serve is not None:
        serve(args.serve, args.latency)
    else:
        main(args)
