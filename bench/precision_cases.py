"""The cases of ``review_precision.py``: shipped changes, and the same with a bug seeded.

Benign cases are the diffs between consecutive patch releases of small, permissively
licensed pure-Python packages (their sdists, fetched with ``pip download --no-deps
--no-binary :all: PKG==X`` when missing); seeded cases mutate one added line of one of
them (never a line of a docstring) into a bug.
"""

from __future__ import annotations

import ast
import difflib
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

RELEASES = [
    ("click", "8.1.6", "8.1.7"),
    ("itsdangerous", "2.1.1", "2.1.2"),
    ("requests", "2.32.2", "2.32.3"),
    ("flask", "3.0.2", "3.0.3"),
    ("platformdirs", "4.2.1", "4.2.2"),
    ("jinja2", "3.1.3", "3.1.4"),
]
# (pattern, replacement, what the bug is): the first that applies to an added line.
MUTATIONS = [
    (r" == ", " != ", "inverted comparison (== became !=)"),
    (r" != ", " == ", "inverted comparison (!= became ==)"),
    (r" is not ", " is ", "inverted identity test (is not became is)"),
    (r" is (?!not\b|None\b)", " is not ", "inverted identity test (is became is not)"),
    (r"except \(\w+, ", "except (", "narrowed except (an exception type dropped)"),
    (r" <= ", " < ", "off-by-one (<= became <)"),
    (r" >= ", " > ", "off-by-one (>= became >)"),
    (r" < ", " <= ", "off-by-one (< became <=)"),
    (r" > ", " >= ", "off-by-one (> became >=)"),
    (r"\bif not ", "if ", "inverted condition (not dropped)"),
    (r"\bTrue\b", "False", "swapped boolean (True became False)"),
    (r"\bFalse\b", "True", "swapped boolean (False became True)"),
    (r" \+ 1\b", " - 1", "off-by-one (+ 1 became - 1)"),
    (r"\band\b", "or", "wrong operator (and became or)"),
    (r"\bor\b", "and", "wrong operator (or became and)"),
    (r" is None\b", " is not None", "inverted None test (is None became is not None)"),
    (r" not in ", " in ", "inverted membership test (not in became in)"),
    (r" in ", " not in ", "inverted membership test (in became not in)"),
    (r"\[0\]", "[1]", "wrong index ([0] became [1])"),
    (r"\[1:\]", "[2:]", "off-by-one slice ([1:] became [2:])"),
    (r"^(\s*)return \S.*$", r"\1return None", "lost result (returns None)"),
]


_PUNCT = re.compile(r"[()\[\].=:]")  # prose in a docstring has none of these
_CODE = re.compile(r"^\s*(if|elif|while|return|assert|for|except)\b|[=(]|\b(and|or|is|in)\b")


@dataclass
class Case:
    name: str
    path: str
    old: str
    new: str
    seeded_line: int | None = None  # new-file line of the mutated row
    bug: str = ""


def fetch(data: Path, package: str, version: str) -> Path:
    """The sdist of ``package==version`` in ``data``, downloaded with pip when missing."""
    data.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^{re.escape(package)}-{re.escape(version)}\.(tar\.gz|zip)$", re.I)
    found = [p for p in data.iterdir() if pattern.match(p.name)]
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "-d", str(data), f"{package}=={version}"],
            check=True, capture_output=True,
        )  # fmt: skip
        found = [p for p in data.iterdir() if pattern.match(p.name)]
    return found[0]


def sources(sdist: Path) -> dict[str, str]:
    """The package's ``.py`` files (tests, docs and examples aside), by path under src/."""
    out: dict[str, str] = {}
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")[1:]
            if not member.isfile() or not parts or not parts[-1].endswith(".py"):
                continue
            if parts[0] == "src":
                parts = parts[1:]
            if not parts or parts[0] in ("tests", "docs", "examples", "artwork", "scripts"):
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                out["/".join(parts)] = handle.read().decode("utf-8", "replace")
    return out


def changed_count(old: str, new: str) -> int:
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
    return sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))


def benign_cases(data: Path, max_changed: int) -> list[Case]:
    cases: list[Case] = []
    for package, old, new in RELEASES:
        before, after = sources(fetch(data, package, old)), sources(fetch(data, package, new))
        for path in sorted(before.keys() & after.keys()):
            n = changed_count(before[path], after[path])
            if 0 < n <= max_changed:
                cases.append(Case(f"{package} {old}->{new}", path, before[path], after[path]))
    return cases


def spread(cases: list[Case], count: int) -> list[Case]:
    """``count`` cases taken from each release in turn, so no one release fills the bench."""
    by_release: dict[str, list[Case]] = {}
    for case in cases:
        by_release.setdefault(case.name.removesuffix(" (seeded)"), []).append(case)
    out: list[Case] = []
    while len(out) < count and any(by_release.values()):
        for queue in by_release.values():
            if queue and len(out) < count:
                out.append(queue.pop(0))
    return out


def string_lines(source: str) -> set[int]:
    """1-based lines inside a string statement (a docstring): prose, not code."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    out: set[int] = set()
    for node in ast.walk(tree):
        value = node.value if isinstance(node, ast.Expr) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            out.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return out


def seed(case: Case) -> Case | None:
    """The case with one added line mutated into a bug, or None when no line takes one."""
    old, new = case.old.splitlines(), case.new.splitlines()
    prose = string_lines(case.new)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    added = [j for tag, _, _, j1, j2 in matcher.get_opcodes() if tag != "equal"
             for j in range(j1, j2)]  # fmt: skip
    for j in added:
        text = new[j]
        if j + 1 in prose or text.strip()[:1] in "#\"'":
            continue
        if not (_CODE.search(text) and _PUNCT.search(text)):
            continue  # prose in a docstring is no place for a bug
        for pattern, replacement, bug in MUTATIONS:
            if pattern == " in " and re.match(r"\s*(async\s+)?for\b", text):
                continue  # "for x not in y" is a syntax error, not a bug to find
            mutated = re.sub(pattern, replacement, text, count=1)
            if mutated != text:
                lines = [*new[:j], mutated, *new[j + 1 :]]
                body = "\n".join(lines) + ("\n" if case.new.endswith("\n") else "")
                return Case(case.name + " (seeded)", case.path, case.old, body, j + 1, bug)
    return None
