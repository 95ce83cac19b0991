"""Evidence or it is not a finding: rules that drop findings before any second pass.

A finding must quote the changed code it is about. The quote is compared with the rows
changed at the finding's line (one line either side, as models miscount by one), all
whitespace ignored: a quote found there moves the finding onto the row it quotes; a
quote of an unchanged row is a finding about a line the change did not touch; no quote,
or one found nowhere near, is "unsupported". Rules then drop findings on files that are
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
from tandem.review.units import ReviewUnit, Row

_ROW_PREFIX = re.compile(r"^\s*\d*\s*[+-]\s")  # "  12 + " copied from the data
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
    r"consider|improve|better|hard-?coded|redundant|duplicat\w*|slow|inefficient)\b",
    re.I,
)


def squeeze(text: str) -> str:
    """Text with every whitespace character removed: how quotes and rows are compared."""
    return "".join(text.split())


def quote_lines(quote: str) -> list[str]:
    """The quote's lines, squeezed, without the wrapping a model adds (backticks, a diff
    row's number and marker)."""
    out = []
    for line in quote.strip().strip("`").split("\n"):
        line = _ROW_PREFIX.sub("", line)
        line = squeeze(line)
        if line:
            out.append(line)
    return out


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


def _matches(quote: str, row: str) -> bool:
    """A quote line is part of the row, or holds the whole row (a quote running on)."""
    return quote in row or (len(row) >= MIN_QUOTE and row in quote)


def _found(lines: list[str], rows: list[Row]) -> Row | None:
    """The first row holding a line of the quote, if every line of it is in some row."""
    texts = [(row, squeeze(row.text)) for row in rows]
    first: Row | None = None
    for line in lines:
        row = next((r for r, t in texts if t and _matches(line, t)), None)
        if row is None:
            return None
        first = first or row
    return first


def supporting_row(finding: Finding, unit: ReviewUnit) -> tuple[Row | None, str]:
    """The changed row the finding's quote is on, or None and why it is dropped."""
    lines = quote_lines(finding.quote)
    if sum(len(line) for line in lines) < MIN_QUOTE:
        return None, ""
    near = _window(unit, finding.line - SLACK, finding.end_line + SLACK)
    changed = _found(lines, [r for r in near if r.kind != " "])
    if changed is not None:
        return changed, ""
    if _found(lines, near) is not None:
        return None, UNTOUCHED
    return None, ""


def screen(
    findings: Iterable[Finding], request: ReviewRequest, result: ReviewResult
) -> list[tuple[Finding, ReviewUnit]]:
    """The findings that keep their evidence and pass the rules, each with its unit;
    the rest are counted in ``result``."""
    kept: list[tuple[Finding, ReviewUnit]] = []
    for finding in findings:
        unit = next((u for u in request.units_of(finding.path) if finding.line in u.changed), None)
        if unit is None:  # ask's checks put every finding on a changed line; belt and braces
            result.unsupported_findings += 1
            continue
        row, reason = supporting_row(finding, unit)
        if row is None:
            if reason:
                result.ruled_out[reason] = result.ruled_out.get(reason, 0) + 1
            else:
                result.unsupported_findings += 1
            continue
        if row.new is not None and row.new != finding.line:
            line = row.new
            end = max(line, finding.end_line)
            finding = replace(finding, line=line, end_line=end, code=row.text)
        reason = _rule_out(finding, row)
        if reason:
            result.ruled_out[reason] = result.ruled_out.get(reason, 0) + 1
            continue
        severity = calibrated(finding.severity, finding.kind, finding.rule, finding.message)
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
