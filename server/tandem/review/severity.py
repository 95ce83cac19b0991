"""Severity by rule: ``error`` only for defect classes that break behaviour or security.

A small model calls everything an error; a reviewer that fails good builds gets switched
off. So each finding names its ``kind``, from a short typed list shown to the model with a
one-line definition each, and the severity it may carry is capped by that kind: only a
defect class may be an ``error``, anything else at most a ``warning``, and style,
naming, docs and "consider" advice never above ``info``, whatever the model said.
"""

from __future__ import annotations

import re

from tandem.review.findings import RANK, Severity

# Defect classes that may be an error: what breaks behaviour or security.
DEFECTS: dict[str, str] = {
    "crash": "an exception, null/None dereference or type error the changed code will raise",
    "wrong-result": "wrong logic: a wrong condition, operator, value, index or off-by-one",
    "security": "injection, unsafe deserialisation, path traversal, a leaked secret, a "
    "missing permission check",
    "data-loss": "data overwritten, deleted, corrupted or never saved",
    "resource-leak": "a file, socket, lock or process not released",
    "concurrency": "a race, deadlock or unsynchronised shared state",
    "hang": "an infinite loop or an unbounded wait",
    "broken-api": "a changed signature or behaviour that breaks existing callers",
}
# Never above info.
ADVICE: dict[str, str] = {
    "style": "formatting, naming, idiom or readability",
    "docs": "comments, docstrings, documentation",
    "suggestion": 'an improvement that is not a defect ("consider ...")',
}
OTHER = "other"  # anything else: at most a warning
KINDS: tuple[str, ...] = (*DEFECTS, *ADVICE, OTHER)

_ADVICE_WORDS = re.compile(
    r"\b(consider(ing)?|you (may|might|could) want|for readability|more readable|"
    r"more pythonic|naming|docstring|typo|style|formatting|nit(pick)?)\b",
    re.I,
)
_ADVICE_RULES = re.compile(r"style|naming|doc|readab|format|typo|comment|convention|nit")


def kinds_text() -> str:
    """The list shown to the model: each kind with its one-line definition."""
    lines = [f'  - "{k}": {d}' for k, d in DEFECTS.items()]
    lines += [f'  - "{k}": {d} (never above info)' for k, d in ADVICE.items()]
    lines.append(f'  - "{OTHER}": any other likely problem (never above warning)')
    return "\n".join(lines)


def kind_of(value: object) -> str:
    """The model's kind, read leniently ("Wrong result" -> wrong-result), else other."""
    if not isinstance(value, str):
        return OTHER
    text = re.sub(r"[^a-z]+", "-", value.lower()).strip("-")
    return text if text in KINDS else OTHER


def cap_for(kind: str, rule: str, message: str) -> Severity:
    """The highest severity a finding of this kind, rule and message may carry."""
    if kind in ADVICE or _ADVICE_RULES.search(rule) or _ADVICE_WORDS.search(message):
        return "info"
    if kind in DEFECTS:
        return "error"
    return "warning"


def calibrated(severity: Severity, kind: str, rule: str, message: str) -> Severity:
    """``severity`` lowered to the cap of its kind (never raised)."""
    cap = cap_for(kind, rule, message)
    return cap if RANK[severity] > RANK[cap] else severity
