"""Benchmark of the context engine: cross-file recall, prompt assembly, the index, re-parsing.

Run from the project root::

    .venv/bin/python bench/context.py            # full run (a few minutes on 2 cores)
    .venv/bin/python bench/context.py --quick    # fewer cases and repeats (under a minute)

Section 1 measures whether a prompt built for a cursor right after ``f(`` contains the
definition of ``f`` when ``f`` lives in another module of the same package. The cases
come from real code we did not write: pure-Python packages installed in the venv, copied
into a temporary workspace (so nothing in the venv is touched and the absolute imports
``from pkg.mod import f`` resolve from the workspace root). A case is a call ``f(`` or
``mod.f(`` in module A whose ``f`` is a function defined at module level (possibly
under ``if``/``try``) in module B of the same package and bound in A by a from-import or
a module import (found with ``ast``). The call's arguments are deleted, as if the user
had just typed ``f(`` with the editor closing the bracket. A hit is a ``definition``
part of the prompt, from B's path, whose text holds the line ``def f(...`` of B.

Section 2 times prompt assembly (``prepare_sync``) at a 2k budget on a 5,000-line module
of a generated workspace of 1,000+ modules, section 3 the workspace index (cold, warm,
one-file update), section 4 the incremental re-parse after a one-character edit.

Tokens are counted with o200k (``openai_bpe("o200k_base")``; with ``BENCH_TOKENIZER=model``,
with what the server uses for the model, ``tokenizer_for_model``) and prompts rendered with
the Qwen FIM template by ``OpenAIClient.fim_request`` (no network). Everything printed is
a measurement; nothing is asserted.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import os
import platform
import random
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tree_sitter as ts

import tandem.context.engine as engine_module
from tandem.completion import prepare_sync
from tandem.context.definitions import nearby_names
from tandem.context.documents import DocumentStore
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.imports import resolve_imports
from tandem.context.index import WorkspaceIndex
from tandem.context.languages import QUERIES, LanguageSpec, language_for_path
from tandem.context.prompt import (
    INDEX_DEFINITION_RANK,
    Prompt,
    PromptBudget,
    build_prompt,
    scope_headers,
)
from tandem.context.tags import extract_tags
from tandem.models.base import FimRequest
from tandem.models.fim import get_template
from tandem.models.http import HttpEndpoint
from tandem.models.openai import OpenAIClient
from tandem.models.tokens import Tokenizer, openai_bpe, tokenizer_for_model

from tables import ms, percentile, table

SITE = Path(sysconfig.get_paths()["purelib"])  # the venv's site-packages
# Sizeable pure-Python packages, in order of preference; the first six found are used.
PACKAGES = ("httpx", "pygls", "_pytest", "jinja2", "anyio", "hypothesis", "cattrs", "click")
USE_PACKAGES = 6
BUDGETS = (1000, 2000, 4000)
TARGETS = {
    "recall": 0.9,  # at 2k
    "assembly_ms": 10.0,  # p50
    "warm_s": 0.5,
    "update_ms": 20.0,
}
MAX_TOKENS = 128


# ---- statistics and printing (as in bench/models.py) -----------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@contextlib.contextmanager
def settled(pause_gc: bool = False) -> Iterator[None]:
    """A collection first; the collector stays on (as in the server) unless ``pause_gc``."""
    gc.collect()
    if pause_gc:
        gc.disable()
    try:
        yield
    finally:
        gc.enable()


# ---- the model side: rendering only ----------------------------------------------------


@dataclass
class Setup:
    client: OpenAIClient
    tokenizer: Tokenizer
    request: FimRequest = field(
        default_factory=lambda: FimRequest(prefix="", max_tokens=MAX_TOKENS)
    )


def make_setup() -> Setup:
    endpoint = HttpEndpoint("http://127.0.0.1:9/v1")  # never contacted: prompts are only rendered
    client = OpenAIClient(endpoint, "qwen2.5-coder", get_template("qwen"))
    if os.environ.get("BENCH_TOKENIZER") == "model":  # what the server counts with for qwen
        return Setup(client, tokenizer_for_model("qwen2.5-coder"))
    return Setup(client, openai_bpe("o200k_base"))


def build(
    setup: Setup, engine: ContextEngine, cursor: Cursor, total: int, neighbours: Sequence = ()
) -> Prompt:
    return engine.prompt(
        setup.client, setup.tokenizer, cursor, PromptBudget(total=total), setup.request, neighbours
    )


# ---- section 1: recall of cross-file definitions ---------------------------------------


@dataclass(frozen=True)
class Case:
    package: str
    module: Path  # A, absolute, inside the temporary workspace
    line: int  # 1-based line of the call in A
    text: str  # A with the call's arguments removed
    offset: int  # right after "f("
    name: str  # the function's name in B
    form: str  # "f(" or "mod.f("
    how: str  # "relative" or "absolute" import
    definition: Path  # B
    def_lines: tuple[str, ...]  # B's "def f(..." lines, stripped


def module_file(base: Path, dotted: str) -> Path | None:
    """``base/a/b.py`` or ``base/a/b/__init__.py`` for "a.b"; ``base/__init__.py`` for ""."""
    if not dotted:
        init = base / "__init__.py"
        return init if init.is_file() else None
    rel = Path(*dotted.split("."))
    for candidate in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def top_level_defs(tree: ast.Module) -> dict[str, list[int]]:
    """Functions at module level (also under if/try/with), name -> lines of their ``def``."""
    found: dict[str, list[int]] = defaultdict(list)
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name].append(node.lineno)
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for attr in ("body", "orelse", "finalbody", "handlers"):
                stack.extend(getattr(node, attr, []))
        elif isinstance(node, ast.ExceptHandler):
            stack.extend(node.body)
    return found


class Modules:
    """Parsed modules of the workspace (ast), each once."""

    def __init__(self) -> None:
        self._trees: dict[Path, tuple[str, ast.Module] | None] = {}

    def get(self, path: Path) -> tuple[str, ast.Module] | None:
        if path not in self._trees:
            try:
                source = path.read_text(encoding="utf-8")
                self._trees[path] = (source, ast.parse(source))
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                self._trees[path] = None
        return self._trees[path]


def bindings(
    path: Path, tree: ast.Module, root: Path
) -> tuple[dict[str, tuple[Path, str, str]], dict[str, tuple[Path, str]]]:
    """Names bound by A's imports: functions (local -> B, name, how), modules (local -> B, how)."""
    names: dict[str, tuple[Path, str, str]] = {}
    modules: dict[str, tuple[Path, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                how = "relative"
            else:
                base, how = root, "absolute"
            dotted = node.module or ""
            target = module_file(base, dotted)
            for alias in node.names:
                if alias.name == "*":
                    continue
                local = alias.asname or alias.name
                sub = module_file(base, f"{dotted}.{alias.name}" if dotted else alias.name)
                if sub is not None:
                    modules[local] = (sub, how)
                elif target is not None:
                    names[local] = (target, alias.name, how)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is None and "." in alias.name:
                    continue  # binds only the top package: calls read pkg.mod.f(
                target = module_file(root, alias.name)
                if target is not None:
                    modules[alias.asname or alias.name] = (target, "absolute")
    return names, modules


def find_cases(package: str, root: Path, modules: Modules) -> list[Case]:
    """Every qualifying call of the package, at most one per (module A, function)."""
    cases: list[Case] = []
    package_dir = root / package
    for path in sorted(package_dir.rglob("*.py")):
        parsed = modules.get(path)
        if parsed is None:
            continue
        source, tree = parsed
        names, mods = bindings(path, tree, root)
        if not names and not mods:
            continue
        own = {
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        lines = source.split("\n")
        seen: set[tuple[Path, str]] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or node.end_lineno is None:
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in names and func.id not in own:
                target, name, how = names[func.id]
                form = "f("
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in mods
            ):
                (target, how), name = mods[func.value.id], func.attr
                form = "mod.f("
            else:
                continue
            target = target.resolve()
            if target == path.resolve() or package_dir.resolve() not in target.parents:
                continue
            other = modules.get(target)
            if other is None:
                continue
            defs = top_level_defs(other[1]).get(name)
            if not defs or (target, name) in seen:
                continue
            case = make_case(package, path, lines, node, func, name, form, how, target, other, defs)
            if case is not None:
                seen.add((target, name))
                cases.append(case)
    return cases


def make_case(
    package: str,
    path: Path,
    lines: list[str],
    call: ast.Call,
    func: ast.expr,
    name: str,
    form: str,
    how: str,
    target: Path,
    other: tuple[str, ast.Module],
    defs: list[int],
) -> Case | None:
    """The file with the call's arguments deleted and the cursor right after ``f(``."""
    assert func.end_lineno is not None and func.end_col_offset is not None
    assert call.end_lineno is not None and call.end_col_offset is not None
    row = func.end_lineno - 1
    raw = lines[row].encode("utf-8")
    column = len(raw[: func.end_col_offset].decode("utf-8", "replace"))
    if lines[row][column : column + 1] != "(":
        return None  # `f (` or a line break before the bracket
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    offset = starts[row] + column + 1
    end_row = call.end_lineno - 1
    end_raw = lines[end_row].encode("utf-8")
    end = starts[end_row] + len(end_raw[: call.end_col_offset].decode("utf-8", "replace"))
    text = "\n".join(lines)
    if text[end - 1 : end] != ")":
        return None
    text = text[:offset] + text[end - 1 :]  # keep the closing bracket
    b_lines = other[0].split("\n")
    def_lines = tuple(b_lines[n - 1].strip() for n in defs)
    return Case(package, path, row + 1, text, offset, name, form, how, target, def_lines)


@dataclass
class RecallRow:
    label: str
    hits: dict[int, int] = field(default_factory=lambda: Counter())  # budget -> hits
    found: int = 0  # among the candidates at all (no budget)
    via_index: int = 0  # hits at 2k that came from the index, not the imports
    seconds: list[float] = field(default_factory=list)  # engine.prompt at 2k
    misses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (form, how) at 2k


def is_hit(prompt_parts: Sequence, case: Case, root: Path) -> tuple[bool, bool]:
    rel = case.definition.relative_to(root).as_posix()
    for part in prompt_parts:
        kept = part.kind == "definition" and part.path == rel
        if kept and any(line in part.text for line in case.def_lines):
            return True, part.rank == INDEX_DEFINITION_RANK
    return False, False


@contextlib.contextmanager
def imports_ignored() -> Iterator[None]:
    """The engine with import resolution switched off: only the index can find ``f``."""
    original = engine_module.resolve_imports
    engine_module.resolve_imports = lambda *args, **kwargs: []
    try:
        yield
    finally:
        engine_module.resolve_imports = original


@dataclass(frozen=True)
class IndexStatsRow:
    files: int
    seconds: float


def copy_packages(names: Sequence[str], root: Path) -> list[str]:
    copied = []
    for name in names:
        source = SITE / name
        if not (source / "__init__.py").is_file():
            continue
        shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        copied.append(name)
        if len(copied) == USE_PACKAGES:
            break
    return copied


def count_lines(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        with path.open("rb") as fh:
            total += sum(1 for _ in fh)
    return total


def bench_recall(
    setup: Setup, root: Path, cache: Path, per_package: int, seed: int
) -> tuple[list[list[str]], list[RecallRow], list[Case], dict[str, IndexStatsRow]]:
    names = copy_packages(PACKAGES, root)
    modules = Modules()
    rng = random.Random(seed)
    package_rows: list[list[str]] = []
    rows = [
        RecallRow("imports only (no index)"),
        RecallRow("imports + index of the package"),
        RecallRow("index only (import resolution switched off)"),
    ]
    index_stats: dict[str, IndexStatsRow] = {}
    used: list[Case] = []
    for package in names:
        files = sorted((root / package).rglob("*.py"))
        every = find_cases(package, root, modules)
        cases = rng.sample(every, min(per_package, len(every)))
        used += cases
        forms = Counter(c.form for c in cases)
        hows = Counter(c.how for c in cases)
        package_rows.append(
            [
                package,
                str(len(files)),
                str(count_lines(files)),
                str(len(every)),
                str(len(cases)),
                f"{forms['f(']}/{forms['mod.f(']}",
                f"{hows['relative']}/{hows['absolute']}",
            ]
        )
        index = WorkspaceIndex(root / package, cache / package)
        stats = index.build()
        index_stats[package] = IndexStatsRow(stats.files, stats.seconds)
        plain = ContextEngine(root)
        indexed = ContextEngine(root, index)
        only_index = ContextEngine(root, index)
        for case in cases:
            spec = language_for_path(case.module)
            assert spec is not None
            tree = spec.parser().parse(case.text.encode("utf-8"))
            cursor = Cursor(case.text, case.offset, case.module, spec, tree)
            for row, engine in zip(rows, (plain, indexed, only_index), strict=True):
                ignore = imports_ignored() if engine is only_index else contextlib.nullcontext()
                with ignore:
                    candidates = engine.candidates(cursor, setup.tokenizer)
                    row.found += is_hit(candidates.definitions, case, root)[0]
                    for total in BUDGETS:
                        started = time.perf_counter()
                        prompt = build(setup, engine, cursor, total)
                        elapsed = time.perf_counter() - started
                        hit, from_index = is_hit(prompt.parts, case, root)
                        row.hits[total] += hit
                        if total == 2000:
                            row.seconds.append(elapsed)
                            row.via_index += hit and from_index
                            if not hit:
                                row.misses[(case.form, case.how)] += 1
        index.close()
    return package_rows, rows, used, index_stats


def recall_table(rows: Sequence[RecallRow], cases: int) -> str:
    out = []
    for row in rows:
        rates = [row.hits[b] / cases for b in BUDGETS]
        out.append(
            [
                row.label,
                str(cases),
                *(f"{r:.3f}" for r in rates),
                f"{row.found / cases:.3f}",
                str(row.via_index),
                ms(statistics.median(row.seconds)),
                ms(percentile(row.seconds, 95)),
                verdict(rates[1] >= TARGETS["recall"]),
            ]
        )
    return table(
        [
            "engine",
            "cases",
            *(f"recall @{b}" for b in BUDGETS),
            "in candidates",
            "hits @2000 via index",
            "prompt p50 ms",
            "prompt p95 ms",
            f"target >= {TARGETS['recall']} @2000",
        ],
        out,
    )


def miss_table(rows: Sequence[RecallRow], cases: Sequence[Case]) -> str:
    totals = Counter((c.form, c.how) for c in cases)
    out = []
    for key in sorted(totals):
        out.append(
            [f"{key[0]} ({key[1]} import)", str(totals[key])]
            + [str(row.misses[key]) for row in rows]
        )
    return table(["call form", "cases", *(f"misses: {r.label}" for r in rows)], out)


# ---- the synthetic workspace (sections 2-4) -------------------------------------------

VERBS = ("load", "parse", "merge", "compute", "render", "validate", "fetch", "store", "apply")
NOUNS = ("config", "record", "token", "user", "order", "batch", "report", "span", "event", "node")
ROLES = ("Store", "Cache", "Builder", "Reader", "Writer", "Index", "Queue", "Pool")
PACKAGES_SYN = 20
MODULES_PER_PACKAGE = 50
BIG_LINES = 5000


@dataclass
class Synthetic:
    root: Path
    files: list[Path]
    lines: int
    big: Path
    big_text: str
    call_sites: list[int]  # offsets right after "f(" in big.py
    modules: list[Path]  # the generated modules (not __init__)


def _function(rng: random.Random, name: str, calls: Sequence[str]) -> list[str]:
    arg = rng.choice(NOUNS)
    call = rng.choice(calls) if calls else "len"
    return [
        f"def {name}({arg}: str, count: int = {rng.randint(1, 9)}) -> dict[str, int]:",
        f'    """{name.replace("_", " ").capitalize()} for each {arg} and count them."""',
        "    result: dict[str, int] = {}",
        f"    data = {call}({arg}, count)",
        "    for index in range(count):",
        f'        key = f"{{{arg}}}:{{index}}"',
        "        result[key] = len(str(data)) + index",
        "        if index % 3 == 0:",
        f"            result[key] += {rng.randint(1, 99)}",
        "    if not result:",
        f'        raise ValueError("no {arg}")',
        "    return result",
        "",
        "",
    ]


def _class(rng: random.Random, name: str, calls: Sequence[str]) -> list[str]:
    call = rng.choice(calls) if calls else "len"
    return [
        "@dataclass",
        f"class {name}:",
        f'    """A {name} of named items."""',
        "",
        "    name: str",
        "    size: int = 0",
        "    items: list[str] = field(default_factory=list)",
        "",
        "    def add(self, item: str) -> None:",
        "        self.items.append(item)",
        "        self.size += 1",
        "",
        "    def refresh(self, limit: int = 10) -> list[str]:",
        f"        found = {call}(self.name, limit)",
        "        kept = [i for i in self.items if i and i not in found][:limit]",
        "        self.items = kept",
        "        return kept",
        "",
        "    def close(self) -> None:",
        "        self.items.clear()",
        "        self.size = 0",
        "",
        "",
    ]


def generate_workspace(root: Path, seed: int, modules_count: int) -> Synthetic:
    """``modules_count`` modules of about 110 lines importing each other, and one big module."""
    rng = random.Random(seed)
    app = root / "app"
    exported: list[tuple[str, list[str]]] = []  # dotted module -> its function names
    files: list[Path] = []
    modules: list[Path] = []
    per_package = MODULES_PER_PACKAGE
    packages = max(1, -(-modules_count // per_package))
    for p in range(packages):
        folder = app / f"pkg{p:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text(f'"""Package {p}."""\n')
        files.append(folder / "__init__.py")
    (app / "__init__.py").write_text('"""The app."""\n')
    files.append(app / "__init__.py")
    for i in range(modules_count):
        p, m = divmod(i, per_package)
        dotted = f"app.pkg{p:02d}.mod{m:02d}"
        head = [
            f'"""{rng.choice(NOUNS).capitalize()} helpers of {dotted}."""',
            "",
            "from __future__ import annotations",
            "",
            "import os",
            "from dataclasses import dataclass, field",
            "",
        ]
        calls: list[str] = []
        if exported:
            for other, funcs in rng.sample(exported[-200:], min(3, len(exported))):
                fn = rng.choice(funcs)
                if other.startswith(f"app.pkg{p:02d}.") and rng.random() < 0.5:
                    head.append(f"from .{other.rsplit('.', 1)[1]} import {fn}")
                else:
                    head.append(f"from {other} import {fn}")
                calls.append(fn)
            other, funcs = rng.choice(exported[-200:])
            package, leaf = other.rsplit(".", 1)
            head.append(f"from {package} import {leaf}")
            calls.append(f"{leaf}.{rng.choice(funcs)}")
        head += ["", f"LIMIT = {rng.randint(10, 999)}", "", ""]
        body: list[str] = []
        names: list[str] = []
        for _ in range(6):
            name = f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}"
            if rng.random() < 0.5:
                name += f"_{rng.randint(0, 99)}"
            if name in names:
                continue
            names.append(name)
            body += _function(rng, name, calls)
        for _ in range(2):
            body += _class(rng, rng.choice(NOUNS).capitalize() + rng.choice(ROLES), calls)
        path = app / f"pkg{p:02d}" / f"mod{m:02d}.py"
        path.write_text("\n".join(head + body).rstrip() + "\n")
        files.append(path)
        modules.append(path)
        exported.append((dotted, names))
    big, text, sites = generate_big(app, rng, exported)
    files += [big, big.parent / "__init__.py"]
    lines = count_lines(files)
    return Synthetic(root, files, lines, big, text, sites, modules)


def generate_big(
    app: Path, rng: random.Random, exported: Sequence[tuple[str, list[str]]]
) -> tuple[Path, str, list[int]]:
    """A 5,000-line module importing a dozen functions and four modules."""
    head = ['"""The core: everything else is called from here."""', ""]
    head += ["from __future__ import annotations", "", "import os"]
    head += ["from dataclasses import dataclass, field", ""]
    calls: list[str] = []
    for other, funcs in rng.sample(list(exported), 12):
        fn = rng.choice(funcs)
        head.append(f"from {other} import {fn}")
        calls.append(fn)
    for other, funcs in rng.sample(list(exported), 4):
        package, leaf = other.rsplit(".", 1)
        head.append(f"from {package} import {leaf} as {leaf}_{package[-2:]}")
        calls.append(f"{leaf}_{package[-2:]}.{rng.choice(funcs)}")
    lines = [*head, "", ""]
    n = 0
    while len(lines) < BIG_LINES - 25:
        n += 1
        if n % 5 == 0:
            lines += _class(rng, f"Core{rng.choice(ROLES)}{n}", calls)
        else:
            lines += _function(rng, f"core_{rng.choice(VERBS)}_{n}", calls)
    lines += [f"# end of the core ({n})" for n in range(BIG_LINES - len(lines))]
    text = "\n".join(lines) + "\n"
    sites = []
    for call in calls:
        start = 0
        marker = f" = {call}("
        while (found := text.find(marker, start)) >= 0:
            sites.append(found + len(marker))
            start = found + 1
    folder = app / "core"
    folder.mkdir(exist_ok=True)
    (folder / "__init__.py").write_text("")
    path = folder / "big.py"
    path.write_text(text)
    return path, text, sorted(sites)


# ---- section 2: prompt assembly -----------------------------------------------------------


def bench_assembly(
    setup: Setup, syn: Synthetic, index: WorkspaceIndex, sites: int, repeats: int, seed: int
) -> list[list[str]]:
    rng = random.Random(seed)
    spec = language_for_path(syn.big)
    assert spec is not None
    tree = spec.parser().parse(syn.big_text.encode("utf-8"))
    chosen = rng.sample(syn.call_sites, min(sites, len(syn.call_sites)))
    neighbours = [(p, p.read_text()) for p in rng.sample(syn.modules, 8)]
    engine = ContextEngine(syn.root, index)

    def run(
        pre_parsed: bool, extra: Sequence = (), fresh: bool = False, pause_gc: bool = False
    ) -> list[float]:
        nonlocal engine
        times: list[float] = []
        for offset in chosen:
            cursor = Cursor(syn.big_text, offset, syn.big, spec, tree if pre_parsed else None)
            prepare_once(setup, engine, cursor, extra)  # warm the engine's parsed files
            with settled(pause_gc):
                for _ in range(repeats):
                    if fresh:
                        engine = ContextEngine(syn.root, index)
                    started = time.perf_counter()
                    prepare_once(setup, engine, cursor, extra)
                    times.append(time.perf_counter() - started)
        return times

    rows = [
        ("prepare_sync, tree passed in (as the language server)", run(True)),
        ("prepare_sync, no tree (parses the 5,000 lines)", run(False)),
        ("prepare_sync, tree passed in, 8 open files as neighbours", run(True, neighbours)),
        ("prepare_sync, tree passed in, fresh ContextEngine each time", run(True, fresh=True)),
        ("prepare_sync, tree passed in, garbage collector paused", run(True, pause_gc=True)),
    ]
    out = []
    for label, times in rows:
        out.append(
            [
                label,
                str(len(times)),
                ms(statistics.median(times)),
                ms(percentile(times, 95)),
                ms(max(times)),
                verdict(statistics.median(times) * 1000 <= TARGETS["assembly_ms"]),
            ]
        )
    return out


def prepare_once(setup: Setup, engine: ContextEngine, cursor: Cursor, neighbours: Sequence) -> None:
    prepare_sync(
        engine,
        setup.client,
        setup.tokenizer,
        cursor,
        budget=PromptBudget(total=2000),
        max_tokens=MAX_TOKENS,
        temperature=0.2,
        neighbours=neighbours,
    )


def definitions_query(spec: LanguageSpec) -> ts.Query | None:
    """The tags query's definition patterns alone: what ``defined_here`` would need."""
    text = (QUERIES / f"{spec.name}-tags.scm").read_text()
    head, marker, _ = text.partition("; References")
    return ts.Query(spec.language, head) if marker else None


def assembly_profile(
    setup: Setup, syn: Synthetic, index: WorkspaceIndex, offset: int, repeats: int
) -> list[list[str]]:
    """Where one prepare_sync's time goes, by stage, with the tree passed in."""
    spec = language_for_path(syn.big)
    assert spec is not None
    source = syn.big_text.encode("utf-8")
    tree = spec.parser().parse(source)
    engine = ContextEngine(syn.root, index)
    cursor = Cursor(syn.big_text, offset, syn.big, spec, tree)
    prepare_once(setup, engine, cursor, ())
    candidates = engine.candidates(cursor, setup.tokenizer)
    names = nearby_names(cursor.text, cursor.offset)
    byte_offset = len(syn.big_text[:offset].encode("utf-8"))
    stages: list[tuple[str, Callable[[], object]]] = [
        ("scope_headers", lambda: scope_headers(tree, spec, source, byte_offset)),
        ("nearby_names", lambda: nearby_names(cursor.text, cursor.offset)),
        ("extract_tags(whole file), for defined_here", lambda: extract_tags(spec, tree)),
        ("resolve_imports", lambda: resolve_imports(spec, tree, syn.big, syn.root)),
        ("index.rank of the nearby names", lambda: index.rank(names, near=syn.big)),
        (
            "engine.candidates (all of the above)",
            lambda: engine.candidates(cursor, setup.tokenizer),
        ),
        (
            "build_prompt (shares, token counts, render)",
            lambda: build_prompt(
                setup.client,
                setup.tokenizer,
                text=cursor.text,
                offset=cursor.offset,
                path="app/core/big.py",
                budget=PromptBudget(total=2000),
                candidates=candidates,
                request=setup.request,
            ),
        ),
        ("prepare_sync (whole)", lambda: prepare_once(setup, engine, cursor, ())),
    ]
    query = definitions_query(spec)
    if query is not None:
        stages.append(
            (
                "  reference: definition patterns of the tags query alone (not used)",
                lambda: list(ts.QueryCursor(query).matches(tree.root_node)),
            )
        )
    out = []
    for label, fn in stages:
        with settled():
            times = [timed(fn) for _ in range(repeats)]
        out.append([label, ms(statistics.median(times)), ms(percentile(times, 95))])
    return out


# ---- section 3: the index -------------------------------------------------------------------


def bench_index(
    root: Path, cache: Path, label: str, lines: int, without_cache: bool
) -> tuple[list[list[str]], WorkspaceIndex]:
    """Cold and warm builds; returns the warm index for the update timings."""
    cold = WorkspaceIndex(root, cache)
    stats_cold = cold.build()
    cold.close()
    warm = WorkspaceIndex(root, cache)
    stats_warm = warm.build()
    rows = [
        [
            f"{label}: cold build (empty cache dir)",
            str(stats_cold.files),
            str(lines),
            f"{stats_cold.seconds:.3f}",
            f"parsed {stats_cold.parsed}",
            "",
        ],
        [
            f"{label}: warm build (new WorkspaceIndex, same cache dir)",
            str(stats_warm.files),
            str(lines),
            f"{stats_warm.seconds:.3f}",
            f"reused {stats_warm.reused}, parsed {stats_warm.parsed}",
            verdict(stats_warm.seconds <= TARGETS["warm_s"]),
        ],
    ]
    if without_cache:
        bare = WorkspaceIndex(root, None)
        stats = bare.build()
        bare.close()
        rows.append(
            [
                f"{label}: build without a disk cache",
                str(stats.files),
                str(lines),
                f"{stats.seconds:.3f}",
                f"parsed {stats.parsed}",
                "",
            ]
        )
    return rows, warm


def bench_update(index: WorkspaceIndex, label: str, path: Path, rounds: int) -> list[str]:
    """``update(path)`` after each of ``rounds`` real changes (a new function each time)."""
    original = path.read_text()
    times = []
    try:
        for n in range(rounds):
            path.write_text(original + f"\n\ndef edited_{n}(x: int) -> int:\n    return x\n")
            with settled():
                times.append(timed(lambda: index.update(path)))
            assert any(t.rel.endswith(path.name) for t in index.definitions(f"edited_{n}"))
    finally:
        path.write_text(original)
        index.update(path)
    return [
        f"{label}: {path.name} ({count_lines([path])} lines)",
        str(rounds),
        ms(statistics.median(times)),
        ms(percentile(times, 95)),
        ms(max(times)),
        verdict(statistics.median(times) * 1000 <= TARGETS["update_ms"]),
    ]


# ---- section 4: incremental re-parse ----------------------------------------------------------


EDIT_PLACES = ("inside a line", "at the end of a line", "on a blank line")


def edit_places(text: str, rng: random.Random, per_place: int) -> dict[str, list[tuple[int, int]]]:
    """(line, column) positions for one-character edits: typing happens mostly at line ends."""
    lines = text.split("\n")[:-1]
    code = [n for n, line in enumerate(lines) if line.strip()]
    blank = [n for n, line in enumerate(lines) if not line.strip()]
    places: dict[str, list[tuple[int, int]]] = {p: [] for p in EDIT_PLACES}
    for _ in range(per_place):
        row = rng.choice(code)
        line = lines[row]
        indent = len(line) - len(line.lstrip())
        places["inside a line"].append(
            (row, rng.randint(indent + 1, max(indent + 1, len(line) - 1)))
        )
        row = rng.choice(code)
        places["at the end of a line"].append((row, len(lines[row])))
        row = rng.choice(blank)
        places["on a blank line"].append((row, len(lines[row])))
    return places


def bench_reparse(syn: Synthetic, edits: int, seed: int) -> list[list[str]]:
    """One-character edits through DocumentStore.change, by where they land, and references."""
    rng = random.Random(seed)
    store = DocumentStore()
    uri = syn.big.as_uri()
    store.open(uri, syn.big_text, "python")
    spec = language_for_path(syn.big)
    assert spec is not None
    data = syn.big_text.encode("utf-8")
    starts = [0]
    for line in syn.big_text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    parser = spec.parser()
    tree = parser.parse(data)
    per_place = max(1, edits // (2 * len(EDIT_PLACES)))
    places = edit_places(syn.big_text, rng, per_place)
    through_store: dict[str, list[float]] = {}
    bare: dict[str, list[float]] = {}
    version = 0
    with settled():
        for place, positions in places.items():
            through_store[place], bare[place] = [], []
            for row, column in positions:
                here = ((row, column), (row, column))
                after = ((row, column), (row, column + 1))
                version += 1
                through_store[place].append(
                    timed(lambda v=version, r=here: store.change(uri, v, [(r, "x")]))
                )
                version += 1
                through_store[place].append(
                    timed(lambda v=version, r=after: store.change(uri, v, [(r, "")]))
                )
                # The same insertion, with the tree edited by hand: tree-sitter's own share.
                at = starts[row] + column  # ASCII text: characters are bytes
                edited = data[:at] + b"x" + data[at:]
                copy = tree.copy()
                copy.edit(at, at, at + 1, (row, column), (row, column), (row, column + 1))
                bare[place].append(timed(lambda c=copy, e=edited: parser.parse(e, c)))
        doc = store.get(uri)
        assert doc is not None and doc.text == syn.big_text
        full = [timed(lambda: parser.parse(data)) for _ in range(max(20, edits // 10))]
        opens = [timed(lambda: store.open(uri, syn.big_text, "python")) for _ in range(20)]

    def row(label: str, times: Sequence[float]) -> list[str]:
        return [
            label,
            str(len(times)),
            ms(statistics.median(times)),
            ms(percentile(times, 95)),
            ms(max(times)),
        ]

    rows = []
    for place in EDIT_PLACES:
        rows.append(
            row(f"DocumentStore.change, {place} (insert, then delete)", through_store[place])
        )
        rows.append(row(f"  reference: Parser.parse alone, {place}", bare[place]))
    every = [t for times in through_store.values() for t in times]
    rows.append(row("DocumentStore.change, all places", every))
    rows.append(row("full parse of the 5,000 lines (Parser.parse(bytes))", full))
    rows.append(row("DocumentStore.open (full parse)", opens))
    return rows


# ---- main -------------------------------------------------------------------------------------


def header() -> str:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 0
    return (
        f"# tandem context-engine benchmark: cpu_count={os.cpu_count()} (usable {affinity}), "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.machine()}, py-tree-sitter {_version('tree-sitter')}, "
        f"tree-sitter-python {_version('tree-sitter-python')}"
    )


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


@dataclass(frozen=True)
class Plan:
    per_package: int  # recall cases per package
    sites: int  # call sites for assembly timings
    repeats: int  # timed runs per site
    profile: int  # runs per profiled stage
    rounds: int  # index updates per file
    edits: int  # one-character edits
    without_cache: bool  # also build the index with no disk cache


QUICK = Plan(per_package=8, sites=3, repeats=4, profile=6, rounds=10, edits=60, without_cache=False)
FULL = Plan(
    per_package=80, sites=12, repeats=10, profile=40, rounds=40, edits=240, without_cache=True
)


def main(ns: argparse.Namespace) -> None:
    plan = QUICK if ns.quick else FULL
    started = time.perf_counter()
    setup = make_setup()
    print(header())
    print()
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        base = Path(tmp)
        real = base / "real"
        real.mkdir()
        timed_section(lambda: section_recall(setup, real, base / "cache", plan, ns.seed))
        synthetic = base / "synthetic"
        synthetic.mkdir()
        t0 = time.perf_counter()
        syn = generate_workspace(synthetic, ns.seed, PACKAGES_SYN * MODULES_PER_PACKAGE)
        generated = time.perf_counter() - t0
        timed_section(
            lambda: section_assembly(setup, syn, base / "syn-cache", plan, ns.seed, generated)
        )
        timed_section(lambda: section_index(syn, real, base, plan))
        timed_section(lambda: section_reparse(syn, plan, ns.seed))
    print(f"total benchmark time: {time.perf_counter() - started:.1f}s")


def timed_section(run: Callable[[], None]) -> None:
    seconds = timed(run)
    print(f"(section time {seconds:.1f}s)")
    print()
    sys.stdout.flush()


def section_recall(setup: Setup, real: Path, cache: Path, plan: Plan, seed: int) -> None:
    package_rows, rows, cases, index_stats = bench_recall(
        setup, real, cache, plan.per_package, seed
    )
    print("## 1. Recall of cross-file definitions (real packages from the venv)")
    print()
    print(
        f"Packages copied from {SITE} into a temporary workspace root (the engine's root). "
        f"At most {plan.per_package} cases per package (seed {seed}), at most one per "
        "(calling module, function). Calls `f(` / `mod.f(`; imports relative / absolute. "
        "'index build': the package's own WorkspaceIndex, cold."
    )
    print()
    for r in package_rows:
        stats = index_stats[r[0]]
        r.append(f"{stats.files} files, {stats.seconds:.2f}s")
    headers = [
        "package",
        ".py files",
        "lines",
        "cases found",
        "cases used",
        "f( / mod.f(",
        "rel / abs",
        "index build",
    ]
    total = ["all", *(str(sum(int(r[i]) for r in package_rows)) for i in range(1, 5))]
    print(table(headers, [*package_rows, [*total, "", "", ""]]))
    print()
    print(
        "Recall: share of cases whose prompt holds B's `def f(` line in a definition part "
        "from B. 'in candidates': among the engine's definition candidates, before any "
        "budget. Prompt times: engine.prompt at 2k, the edited file's tree passed in."
    )
    print()
    print(recall_table(rows, len(cases)))
    print()
    print("Misses at 2000 tokens, by kind of case:")
    print()
    print(miss_table(rows, cases))
    print()


def section_assembly(
    setup: Setup, syn: Synthetic, cache: Path, plan: Plan, seed: int, generated: float
) -> None:
    index = WorkspaceIndex(syn.root, cache)
    index.build()
    sites = min(plan.sites, len(syn.call_sites))
    print("## 2. Prompt assembly at a 2,000-token budget")
    print()
    print(
        f"Generated workspace: {len(syn.files)} Python files, {syn.lines} lines (written in "
        f"{generated:.1f}s). Cursor right after `f(` at {sites} random call sites (of "
        f"{len(syn.call_sites)}) in the {syn.big_text.count(chr(10))}-line app/core/big.py, "
        f"which imports 12 functions and 4 modules; {plan.repeats} timed runs per site after "
        "one warm-up; index built beforehand; the garbage collector on (as in the server) "
        "unless the row says otherwise."
    )
    print()
    rows = bench_assembly(setup, syn, index, sites, plan.repeats, seed)
    target = f"target p50 <= {TARGETS['assembly_ms']:g} ms"
    print(table(["case", "runs", "p50 ms", "p95 ms", "max ms", target], rows))
    print()
    print(f"Where the time goes (one call site, {plan.profile} runs per stage, tree passed in):")
    print()
    offset = syn.call_sites[len(syn.call_sites) // 2]
    profile = assembly_profile(setup, syn, index, offset, plan.profile)
    print(table(["stage", "p50 ms", "p95 ms"], profile))
    print()
    index.close()


def section_index(syn: Synthetic, real: Path, base: Path, plan: Plan) -> None:
    print("## 3. Workspace index")
    print()
    real_files = sorted(real.rglob("*.py"))
    builds, generated = bench_index(
        syn.root, base / "syn-cache-2", "generated", syn.lines, plan.without_cache
    )
    more, packages = bench_index(
        real, base / "real-cache", "real packages", count_lines(real_files), plan.without_cache
    )
    builds += more
    target = f"target warm <= {TARGETS['warm_s']:g} s"
    print(table(["build", "files", "lines", "seconds", "files parsed/reused", target], builds))
    print()
    largest = max(real_files, key=lambda p: p.stat().st_size)
    updates = [
        bench_update(generated, "generated", syn.modules[len(syn.modules) // 2], plan.rounds),
        bench_update(generated, "generated", syn.big, plan.rounds),
        bench_update(packages, f"real, largest file, {largest.parent.name}", largest, plan.rounds),
    ]
    generated.close()
    packages.close()
    print(
        f"update(path) after a real change (a function appended, {plan.rounds} times per "
        "file), on the warm index:"
    )
    print()
    target = f"target p50 <= {TARGETS['update_ms']:g} ms"
    print(table(["file", "runs", "p50 ms", "p95 ms", "max ms", target], updates))
    print()


def section_reparse(syn: Synthetic, plan: Plan, seed: int) -> None:
    print("## 4. Re-parse after a one-character edit (app/core/big.py, 5,000 lines)")
    print()
    per_place = max(1, plan.edits // (2 * len(EDIT_PLACES)))
    print(
        f"{per_place} positions per place; at each, DocumentStore.change inserts one 'x' and "
        "the next change deletes it (tree.edit + incremental parse + line index), so each "
        "row's runs are both edits. The reference times only Parser.parse(new bytes, old "
        "tree) for the same insertion, on an edited copy of the tree of a fresh full parse."
    )
    print()
    rows = bench_reparse(syn, plan.edits, seed)
    print(table(["case", "runs", "p50 ms", "p95 ms", "max ms"], rows))
    print()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases, sites and repeats")
    parser.add_argument("--seed", type=int, default=7, help="for sampling and generation")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
