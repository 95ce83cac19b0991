"""Evidence or it is not a finding: rules that drop findings before any second pass.

A finding must quote the changed code it is about. The quote is compared with the rows
changed at the finding's line (one line either side, as models miscount by one), all
whitespace ignored: a quote found there moves the finding onto the row it quotes; a
quote of an unchanged row is a finding about a line the change did not touch; no quote,
or one found nowhere near, is "unsupported". A quote of several rows, changed and
unchanged, is about its changed row, and a quote of an unchanged row of a statement the
change touched (a call of several lines, one argument changed) is about that statement's
changed row. Rules then drop findings on files that are
not code (changelogs, version files, manifests, docs) or on a version line, and messages
that only restate what the code does (no word in them says anything is wrong).
Prompt-injection and secret findings are exempt from those two rules: they matter in
any file. What survives has its severity capped by its kind (``severity``).
Every drop is counted in the result's summary; nothing here asks the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import PurePosixPath

from tandem.review.findings import Finding, ReviewResult
from tandem.review.packing import ReviewRequest
from tandem.review.severity import calibrated
from tandem.review.trace import NO_TRACE, Trace
from tandem.review.units import ReviewUnit, Row

# What a model wraps a copied row in: "  12 + " (number and marker, as the data shows
# them), "12: " or "L12 " (a number), or a marker glued to the code ("+return x").
_ROW_PREFIX = re.compile(r"^\s*(?:[Ll](?:ine)?\s*)?\d+\s*(?:[+-]\s|[:|]\s*|\s)|^\s*[+-](?=\s|\S)")
_ELLIPSIS = re.compile(r"\.\.\.|\u2026")
_COMMENT = re.compile(r"\s(#|//).*$")
MIN_QUOTE = 3  # characters (whitespace aside): shorter quotes match almost anything
SLACK = 1  # lines either side of the finding where its quote may be

UNTOUCHED = "untouched line"
NOT_CODE = "not code"
VERSION = "version number"
RESTATEMENT = "restatement"
ANY_FILE_RULES = re.compile(r"prompt-injection|secret|credential|password|api-key|token-leak")

_NOT_CODE_NAMES = re.compile(
    r"^(changelog|changes|history|news|authors|contributors|release[-_]?notes|version)"
    r"([._-].*)?$|^(pkg-info|pyproject\.toml|setup\.cfg|package\.json|cargo\.toml|"
    r"(_+)?version(_+)?\.py|manifest\.in)$",
    re.I,
)
_NOT_CODE_SUFFIXES = {".md", ".rst", ".txt", ".lock", ".adoc", ".cfg", ".ini"}
_VERSION_LINE = re.compile(
    r"^\s*[\"']?(__version__|version|VERSION|__version_info__|version_info)[\"']?\s*[:=]"
)
# Words that say something is wrong; a message with none of them only describes the code.
_CONCERN = re.compile(
    r"\b(not?|never|without|missing|wrong|incorrect(ly)?|bug|error|fail\w*|crash\w*|leak\w*|"
    r"race|deadlock|null|none|undefined|uninitiali[sz]ed|unused|unsafe|insecure|inject\w*|"
    r"overflow|exception|raises?|may|might|could|should|must|instead|but|however|risk\w*|"
    r"vulnerab\w*|break\w*|broken|lost|loss|mismatch\w*|inconsistent|invalid|unexpected\w*|"
    r"ignor\w*|forg[eo]t\w*|overwrit\w*|off-by-one|infinite|hang\w*|block\w*|leaks|unbounded|"
    r"deprecated|typo|avoid|dangerous|problem\w*|issue|cannot|can't|doesn't|isn't|won't|"
    r"consider|improve|better|hard-?coded|redundant|duplicat\w*|slow|inefficient|only|"
    r"always|invert\w*|revers\w*|opposite|swap\w*|flip\w*|negat\w*|narrow\w*|unhandled|"
    r"uncaught|suspicious|unintend\w*|accidental\w*|wrongly|erroneous\w*|likely|"
    r"potential(ly)?|possibl[ey]|intended|expected|supposed)\b",
    re.I,
)


def squeeze(text: str) -> str:
    """Text with every whitespace character removed: how quotes and rows are compared."""
    return "".join(text.split())


_LOOSE = str.maketrans({"'": '"', "{": None, "}": None})


def loose(text: str) -> str:
    """Squeezed text as quotes and rows are matched: one kind of quotation mark, no
    braces, one case (a model copies ``f"x: {key}"`` as ``"x: key"``, swaps ``'`` for
    ``"``, and starts a quoted sentence with a small letter)."""
    return squeeze(text).translate(_LOOSE).casefold()


def _raw_lines(quote: str) -> list[str]:
    """The quote's lines without the wrapping a model adds (backticks, a diff row's number
    and marker)."""
    out = []
    for line in quote.strip().strip("`").split("\n"):
        line = _ROW_PREFIX.sub("", line, count=1)
        if line.strip():
            out.append(line)
    return out


def _variants(line: str) -> list[tuple[str, ...]]:
    """Ways one quote line may sit in a row, each a run of pieces found there in order:
    as written, without a trailing comment the model added or changed, cut at an
    ellipsis where it shortened the code, and without quotation marks around it."""
    forms = [line]
    code = _COMMENT.sub("", line)
    if code.strip() and code != line:
        forms.append(code)
    for form in list(forms):
        bare = form.strip()
        if len(bare) > 2 and bare[0] == bare[-1] and bare[0] in "\"'":
            forms.append(bare[1:-1])
    out: list[tuple[str, ...]] = []
    for form in forms:
        out.append((loose(form),))
        if _ELLIPSIS.search(form):
            out.append(tuple(p for p in map(loose, _ELLIPSIS.split(form)) if p))
    return [v for v in out if sum(map(len, v)) >= MIN_QUOTE]


def not_code(path: str) -> bool:
    """A changelog, version file, manifest or document: nothing there breaks a build."""
    pure = PurePosixPath(path)
    if any(part.endswith(".egg-info") for part in pure.parts):
        return True
    return bool(_NOT_CODE_NAMES.match(pure.name)) or pure.suffix.lower() in _NOT_CODE_SUFFIXES


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def restates(message: str, code: str) -> bool:
    """True when the message only describes the code: it names the code's identifiers and
    no word in it says anything is wrong."""
    if _CONCERN.search(message):
        return False
    names = set(_WORD.findall(code))
    return any(word in names for word in _WORD.findall(message))


def _window(unit: ReviewUnit, first: int, last: int) -> list[Row]:
    """The rows of ``unit`` from line ``first`` to ``last``, removed rows among them."""
    rows: list[Row] = []
    pending: list[Row] = []
    for row in unit.rows:
        if row.new is None:
            pending.append(row)
            continue
        if first <= row.new <= last:
            rows.extend(pending)
            rows.append(row)
        elif row.new > last:
            if row.new == last + 1:
                rows.extend(pending)  # lines removed just before the window's end
            break
        pending = []
    return rows


def _in_order(pieces: tuple[str, ...], row: str) -> bool:
    at = 0
    for piece in pieces:
        found = row.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def _matches(variants: list[tuple[str, ...]], row: str) -> int:
    """2: a quote line is part of the row (in one of its forms); 1: it starts or ends
    with the whole row (a quote running on into the next row or from the one before);
    0: neither. A row somewhere inside a quote line is no match: a sentence ("should
    not return 0.0 here") holds a short row ("return 0.0") without quoting it."""
    if any(_in_order(v, row) for v in variants):
        return 2
    ends = (v[0] for v in variants if len(v) == 1)
    return int(len(row) >= MIN_QUOTE and any(q.startswith(row) or q.endswith(row) for q in ends))


def _found(lines: list[list[tuple[str, ...]]], rows: list[Row], line: int) -> Row | None:
    """The row holding the quote's first line, if every line of the quote is in some row:
    one holding it whole before one it runs on from, then the nearest to ``line`` (a
    removed row counts as where the row after it is, and after an added row there)."""
    texts = [(row, loose(row.text)) for row in rows]
    if not lines or not all(any(t and _matches(v, t) for _, t in texts) for v in lines):
        return None
    at: dict[int, int] = {}
    following = line
    for i in reversed(range(len(rows))):
        following = rows[i].new if rows[i].new is not None else following
        at[i] = following
    scored = [
        (-_matches(lines[0], t), abs(at[i] - line), rows[i].new is None, i)
        for i, (_, t) in enumerate(texts)
        if t and _matches(lines[0], t)
    ]
    return rows[min(scored)[3]]


def quoted(quote: str) -> list[list[tuple[str, ...]]]:
    """The quote ready to look for: each line's variants; [] when it is too short."""
    lines = [_variants(line) for line in _raw_lines(quote)]
    lines = [v for v in lines if v]
    return lines if sum(len(v[0][0]) for v in lines) >= MIN_QUOTE else []


def supporting_row(finding: Finding, unit: ReviewUnit) -> tuple[Row | None, str]:
    """The changed row the finding's quote is on, or None and why it is dropped.

    Near the finding's line (one either side) first; a quote of an unchanged row there is
    about a line the change did not touch. Elsewhere in the unit, the changed row nearest
    the line that the quote matches: a small model often miscounts the line numbers but
    copies the code right, and its finding belongs on the code it copied.
    """
    lines = quoted(finding.quote)
    if not lines:
        return None, ""
    near = _window(unit, finding.line - SLACK, finding.end_line + SLACK)
    touched = [r for r in near if r.kind != " "]
    changed = _found(lines, touched, finding.line)
    if changed is not None:
        return changed, ""
    unchanged = _found(lines, near, finding.line)
    if unchanged is not None:
        # A quote of several rows, one of them changed (a condition and the unchanged
        # line under it): about the changed one.
        part = (_found([v], touched, finding.line) for v in lines) if len(lines) > 1 else ()
        changed = next((row for row in part if row is not None), None)
        if changed is not None:
            return changed, ""
        # An unchanged row of a statement the change touched (the first line of a call
        # whose argument changed): about that statement's changed row.
        row = unit.statement_change(unchanged.new) if unchanged.new is not None else None
        return (row, "") if row is not None else (None, UNTOUCHED)
    elsewhere = _found(lines, [r for r in unit.rows if r.kind != " "], finding.line)
    if elsewhere is not None:
        return elsewhere, ""
    # Elsewhere in the unit, an unchanged row of a changed statement (the checks moved a
    # finding off that row onto the nearest changed one).
    rows = [r for r in unit.rows if r.new is not None and unit.statement_change(r.new)]
    row = _found(lines, rows, finding.line)
    if row is not None and row.new is not None:
        return unit.statement_change(row.new), ""
    return None, ""


def quoted_row(quote: str, units: Iterable[ReviewUnit], line: int) -> tuple[ReviewUnit, Row] | None:
    """The added row, in any of ``units``, that the quote matches, nearest to ``line``:
    where a finding whose line is outside the code shown belongs."""
    lines = quoted(quote)
    found: list[tuple[int, ReviewUnit, Row]] = []
    for unit in units if lines else ():
        row = _found(lines, [r for r in unit.rows if r.kind == "+" and r.new is not None], line)
        if row is not None and row.new is not None:
            found.append((abs(row.new - line), unit, row))
    return min(found, key=lambda f: f[0])[1:] if found else None


def screen(
    findings: Iterable[Finding],
    request: ReviewRequest,
    result: ReviewResult,
    trace: Trace = NO_TRACE,
) -> list[tuple[Finding, ReviewUnit]]:
    """The findings that keep their evidence and pass the rules, each with its unit;
    the rest are counted in ``result``."""
    kept: list[tuple[Finding, ReviewUnit]] = []
    for finding in findings:
        unit = next((u for u in request.units_of(finding.path) if finding.line in u.changed), None)
        if unit is None:  # ask's checks put every finding on a changed line; belt and braces
            result.unsupported_findings += 1
            trace.finding("evidence", finding, "unsupported: not on a changed line")
            continue
        row, reason = supporting_row(finding, unit)
        if row is None:
            if reason:
                result.ruled_out[reason] = result.ruled_out.get(reason, 0) + 1
                trace.finding("evidence", finding, f"ruled out: {reason}")
            else:
                result.unsupported_findings += 1
                trace.finding("evidence", finding, "unsupported: no matching quote")
            continue
        if row.new is not None and row.new != finding.line:
            trace.finding("evidence", finding, f"moved to line {row.new}, the row it quotes")
            line = row.new
            end = max(line, finding.end_line)
            finding = replace(finding, line=line, end_line=end, code=row.text)
        reason = _rule_out(finding, row)
        if reason:
            result.ruled_out[reason] = result.ruled_out.get(reason, 0) + 1
            trace.finding("evidence", finding, f"ruled out: {reason}")
            continue
        severity = calibrated(finding.severity, finding.kind, finding.rule, finding.message)
        outcome = "kept" if severity == finding.severity else f"severity capped to {severity}"
        trace.finding("severity", finding, outcome)
        kept.append((replace(finding, severity=severity), unit))
    return kept


def _rule_out(finding: Finding, row: Row) -> str:
    if ANY_FILE_RULES.search(finding.rule):
        return ""
    if not_code(finding.path):
        return NOT_CODE
    if _VERSION_LINE.match(row.text) or _VERSION_LINE.match(finding.code):
        return VERSION
    if restates(finding.message, f"{row.text}\n{finding.quote}"):
        return RESTATEMENT
    return ""


def unit_of(finding: Finding, request: ReviewRequest) -> ReviewUnit | None:
    """The unit showing the finding's line (for the second pass when rules are off)."""
    return next((u for u in request.units_of(finding.path) if finding.line in u.changed), None)
