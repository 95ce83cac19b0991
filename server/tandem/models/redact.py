"""The one redactor: secrets in text bound for a model become placeholders first.

Every request body passes ``redact_body`` just before it leaves the process: in
``HttpEndpoint.stream_lines`` for every HTTP provider and in ``LocalClient`` for the
embedded model. ``tandem context`` prints the same function's output, so what users are
shown is what a model gets. A secret becomes ``<redacted:KIND>`` in place (inside its
quotes, after its ``=``), so the code around it keeps its shape; the same secret always
gives the same text, so the caches keep working.

The same redactor guards what Tandem prints: ``redact_log`` takes out the configured
keys (``remember_secret``, called as settings are built) and anything the secret rules
find, from model error bodies (a provider's 401 may echo the key it refused) and, through
``install_log_redaction``, from every log record, whatever handler prints it.

What a secret is lives in ``secret_rules``. The cost is a few regex passes over the text,
most skipped by a substring test (about a millisecond for a 2k-token prompt; see
``bench/redaction.py``).
"""

from __future__ import annotations

import logging
import re
import threading
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

from tandem.models.line_rules import line_local
from tandem.models.pem import key_line, pem_spans
from tandem.models.secret_rules import (
    NAME_HINTS,
    OWN_RULES,
    TOKEN,
    Rule,
    assignment_spans,
    library_rules,
)

PLACEHOLDER = re.compile(r"<redacted:[a-z0-9\-]+>")
MARK = "<redacted"

_TOKEN_CHARS = frozenset(TOKEN)
_rules: tuple[Rule, ...] | None = None
_rules_lock = threading.Lock()


@dataclass(frozen=True)
class Finding:
    """A secret in a text; ``value`` never leaves the process."""

    kind: str
    start: int
    end: int
    value: str


def placeholder(kind: str) -> str:
    return f"<redacted:{kind}>"


def rules() -> tuple[Rule, ...]:
    """Our rules, then detect-secrets' (imported on first use: ~0.1 s, so not at startup)."""
    global _rules
    with _rules_lock:
        if _rules is None:
            _rules = (*OWN_RULES, *library_rules())
        return _rules


@lru_cache(maxsize=1)
def _all_hints() -> frozenset[str]:
    """Every rule's hints, once: 47 substrings where the rules list 134."""
    return frozenset(hint for rule in rules() for hint in rule.hints)


def warm_up() -> None:
    """Load the rules now rather than on the first request (the language server's start),
    and decide which run line by line (parsing their patterns: a few ms)."""
    rules()
    _local_rules()


# ---- finding and replacing ----------------------------------------------------------------

_NAME_HINT = re.compile("|".join(NAME_HINTS), re.IGNORECASE)
# The same names in lower case: matched in the lowered text, ~12x faster than IGNORECASE
# (1.5 ms a prompt), where lowering keeps every offset (one character for one).
_NAME_HINT_LOWER = re.compile("|".join(h.lower() for h in NAME_HINTS))


def _hint_lines(text: str, lowered: str | None = None) -> list[tuple[int, int]]:
    """The lines holding a secret-like name: the assignment rule reads only these."""
    out: list[tuple[int, int]] = []
    if lowered is not None and len(lowered) == len(text) and text.isascii():
        hits = _NAME_HINT_LOWER.finditer(lowered)
    else:
        hits = _NAME_HINT.finditer(text)
    for hit in hits:
        if out and hit.start() < out[-1][1]:
            continue
        start = text.rfind("\n", 0, hit.start()) + 1
        end = text.find("\n", hit.end())
        out.append((start, len(text) if end < 0 else end))
    return out


def _rule_spans(rule: Rule, text: str) -> list[tuple[int, int, str]]:
    spans = []
    for match in rule.pattern.finditer(text):
        start, end = match.span(rule.group)
        if start < 0 or end <= start:
            continue
        if rule.group == 0 and start and text[start - 1] in _TOKEN_CHARS:
            continue  # the middle of a longer word (a DNA string, a hash), not a token
        while end < len(text) and text[end] in rule.extend:
            end += 1  # a longer variant of the format: never leave its tail behind
        if rule.check is None or rule.check(text[start:end]):
            spans.append((start, end, rule.kind))
    return spans


def find_secrets(text: str) -> list[Finding]:
    """The secrets in ``text``, in order, overlapping finds merged into one.

    Line by line where that finds the same (``line_rules``), each line's finds kept: a
    prompt differs from the last by a keystroke, so most of its lines were read before
    (issue 12, fifth round). The rules that can match across a line end still read all of
    it, and private keys too when a line looks like a key's or "PRIVATE KEY" occurs.
    """
    if len(text) < 8:
        return []
    local = _local_rules()
    lines = text.split("\n")
    finds = _line_finds(lines)
    found: set[str] = set().union(*[f.hints for f in finds if f.hints])
    by_rule: dict[int, list[tuple[int, int, str]]] = {}
    assigned: list[tuple[int, int, str]] = []
    key_lines = False
    at = 0
    for line, f in zip(lines, finds, strict=True):
        if f.spans:
            for index, start, end, kind in f.spans:
                by_rule.setdefault(index, []).append((start + at, end + at, kind))
        if f.assigned:
            assigned.extend((start + at, end + at, kind) for start, end, kind in f.assigned)
        key_lines = key_lines or f.key_line
        at += len(line) + 1
    spans: list[tuple[int, int, str]] = []
    for index, rule in enumerate(rules()):
        if not rule.hints or not found.isdisjoint(rule.hints):
            if local[index]:
                spans.extend(by_rule.get(index, ()))
            else:
                spans.extend(_rule_spans(rule, text))
    if key_lines or "PRIVATE KEY" in text:  # else pem_spans finds nothing (pem.key_line)
        spans.extend(pem_spans(text))
    spans.extend(assigned)
    return _findings(text, spans)


def find_secrets_whole(text: str) -> list[Finding]:
    """``find_secrets`` reading the whole text with every rule: what the lines must equal."""
    if len(text) < 8:
        return []
    lowered = text.lower()
    spans: list[tuple[int, int, str]] = []
    found = {hint for hint in _all_hints() if hint in lowered}  # each hint looked for once
    for rule in rules():
        if not rule.hints or not found.isdisjoint(rule.hints):
            spans.extend(_rule_spans(rule, text))
    spans.extend(pem_spans(text))
    for start, end in _hint_lines(text, lowered):
        spans.extend((s + start, e + start, k) for s, e, k in assignment_spans(text[start:end]))
    return _findings(text, spans)


def _findings(text: str, spans: list[tuple[int, int, str]]) -> list[Finding]:
    merged: list[list[Any]] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], s[0] - s[1])):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            continue
        merged.append([start, end, kind])
    return [Finding(kind, start, end, text[start:end]) for start, end, kind in merged]


@dataclass(frozen=True, slots=True)
class _LineFinds:
    """One line's share of ``find_secrets``: the rule hints in it, the finds of every
    line-local rule (whether or not its hints occur in the text: that is decided per
    text), and the secret values assigned to secret-like names."""

    hints: frozenset[str]
    spans: tuple[tuple[int, int, int, str], ...]  # (rule index, start, end, kind)
    assigned: tuple[tuple[int, int, str], ...]
    key_line: bool  # a private key's body line (``pem.key_line``)


LINES_KEPT = 8192  # lines whose finds are kept (~2 MB); all are forgotten when full
_lines: dict[str, _LineFinds] = {}
_no_hints: frozenset[str] = frozenset()


def _line_finds(lines: list[str]) -> list[_LineFinds]:
    """Each line's finds, those of lines not seen before read all at once."""
    finds = [_lines.get(line) for line in lines]
    if None in finds:
        new = list(dict.fromkeys(line for line, f in zip(lines, finds, strict=True) if f is None))
        read = _read_new(new)  # (not from _lines: another thread may clear it meanwhile)
        finds = [f if f is not None else read[line] for line, f in zip(lines, finds, strict=True)]
    return finds  # type: ignore[return-value]


def _read_new(new: list[str]) -> dict[str, _LineFinds]:
    """The finds of lines not seen before, kept and returned. Each line-local rule runs
    once over the lines joined (in the join it finds what it finds in each line:
    ``line_rules``), not once a line: a new file's prompt is all new lines."""
    joined = "\n".join(new)
    starts = list(accumulate((len(line) + 1 for line in new[:-1]), initial=0))
    lowered = joined.lower()
    present = [hint for hint in _all_hints() if hint in lowered]  # no hint holds a "\n"
    spans: list[list[tuple[int, int, int, str]]] = [[] for _ in new]
    for index, rule in enumerate(rules()):
        if _local_rules()[index]:
            for start, end, kind in _rule_spans(rule, joined):
                i = bisect_right(starts, start) - 1
                spans[i].append((index, start - starts[i], end - starts[i], kind))
    # The lines _hint_lines picks: a secret-like name, matched as it matches it (on an
    # ASCII line, IGNORECASE matches what the lowered pattern does).
    ascii = joined.isascii()
    hits = _NAME_HINT_LOWER.finditer(lowered) if ascii else _NAME_HINT.finditer(joined)
    named = {bisect_right(starts, hit.start()) - 1 for hit in hits}
    read: dict[str, _LineFinds] = {}
    for i, line in enumerate(new):
        lowered_line = line.lower() if present else ""
        hints = frozenset(h for h in present if h in lowered_line) if present else _no_hints
        read[line] = _LineFinds(
            hints or _no_hints,
            tuple(spans[i]),
            tuple(assignment_spans(line)) if i in named else (),
            len(line) >= 64 and key_line(line),  # a key line's core has 64-72 characters
        )
    if len(_lines) + len(read) > LINES_KEPT:
        _lines.clear()
    _lines.update(read)
    return read


@lru_cache(maxsize=1)
def _local_rules() -> tuple[bool, ...]:
    """Per rule, whether it runs line by line (``line_rules.line_local``)."""
    if any("\n" in hint for hint in _all_hints()):
        return tuple(False for _ in rules())  # a hint across lines: all whole-text
    return tuple(line_local(rule.pattern, rule.extend) for rule in rules())


@lru_cache(maxsize=512)
def redact_text(text: str) -> str:
    """``text`` with every secret replaced by its placeholder (cached: prompts repeat)."""
    found = find_secrets(text)
    if not found:
        return text
    pieces: list[str] = []
    at = 0
    for finding in found:
        pieces.append(text[at : finding.start])
        pieces.append(placeholder(finding.kind))
        at = finding.end
    pieces.append(text[at:])
    return "".join(pieces)


def redact_body(body: Any) -> Any:
    """A JSON-like request body with every string value redacted (keys are left alone)."""
    if isinstance(body, str):
        return redact_text(body)
    if isinstance(body, Mapping):
        return {key: redact_body(value) for key, value in body.items()}
    if isinstance(body, list | tuple):
        return [redact_body(value) for value in body]
    return body


def has_placeholder(text: str) -> bool:
    """Whether ``text`` holds a placeholder, or the start of one cut off by a stop."""
    lowered = text.lower()
    return MARK in lowered or lowered.endswith(tuple(MARK[:n] for n in range(4, len(MARK))))


def restore(answer: str, source: str) -> str | None:
    """``answer`` with each placeholder put back as the one secret of ``source`` it stands for.

    For edits of the user's own code (Fix, Add docstring): the model saw placeholders, so
    its rewrite holds them, and writing them into the file would destroy the real values.
    None when a placeholder cannot be traced to exactly one secret of ``source``.
    """
    if not has_placeholder(answer):
        return answer
    values: dict[str, set[str]] = {}
    for finding in find_secrets(source):
        values.setdefault(placeholder(finding.kind), set()).add(finding.value)
    unknown = False

    def put_back(match: re.Match[str]) -> str:
        nonlocal unknown
        found = values.get(match.group(0), set())
        if len(found) != 1:
            unknown = True
            return match.group(0)
        return next(iter(found))

    restored = PLACEHOLDER.sub(put_back, answer)
    if unknown or has_placeholder(restored):
        return None
    return restored


# ---- what Tandem prints -------------------------------------------------------------------

MIN_KNOWN_SECRET = 8  # shorter "keys" ("ollama", "EMPTY": placeholders) would garble lines
KEY_PLACEHOLDER = placeholder("api-key")
_known: set[str] = set()
_known_lock = threading.Lock()
_factory_installed = False


def remember_secret(value: str | None) -> None:
    """A configured key or token: from now on it is taken out of everything printed."""
    if value and len(value.strip()) >= MIN_KNOWN_SECRET:
        with _known_lock:
            _known.add(value.strip())


def redact_log(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` without the configured keys, ``extra`` values, or anything the rules find."""
    with _known_lock:
        values = {*_known, *(v.strip() for v in extra if v and len(v.strip()) >= MIN_KNOWN_SECRET)}
    for value in sorted(values, key=len, reverse=True):  # a key inside a longer one: longest first
        if value in text:
            text = text.replace(value, KEY_PLACEHOLDER)
    return redact_text(text)


def install_log_redaction() -> None:
    """Every log record redacted as it is made, so no handler can print a key (idempotent)."""
    global _factory_installed
    with _known_lock:
        if _factory_installed:
            return
        _factory_installed = True
    make = logging.getLogRecordFactory()

    def redacted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's own error path
            return record
        record.msg, record.args = redact_log(message), ()
        return record

    logging.setLogRecordFactory(redacted)
