"""Private keys in text: whole PEM blocks, and blocks the prompt window cut at either end.

A prompt holds windows of files, so a key may arrive whole, with only its BEGIN line (the
window ends inside it), with only its END line (the window starts inside it), or with
neither (a snippet from its middle). Each case is found, and the key's body goes whole:
base64 lines, bare or as string literals, with real or escaped line breaks.
"""

from __future__ import annotations

import re
import string

KIND = "private-key"
MAX_KEY_CHARS = 20_000
BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
END = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
# Everything a block may hold between its markers: base64, line breaks (real or escaped),
# quotes and concatenation between literal lines, and header lines. Used only when the END
# marker follows, so it may be loose.
BETWEEN = re.compile(
    r"""(?:[A-Za-z0-9+/=\s"',]|\\[nr]|(?:Proc-Type|DEK-Info|Comment|Version):[^\n]*)*"""
)
# Body on the marker's own line (a JSON or one-line string): base64 and escaped breaks only.
INLINE = re.compile(r"(?:\\[nr]|[A-Za-z0-9+/=])*")
_INLINE_CHARS = frozenset(string.ascii_letters + string.digits + "+/=\\")
# One body line with its decoration stripped: long base64, a short padded last line, a header.
BODY_LINE = re.compile(
    r"[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9+/]+={1,2}|(?:Proc-Type|DEK-Info|Comment):.*"
)
DECORATION = " \t\r\"',+;"
GUTTER = re.compile(r"^[ \t]*(?:\d+[ \t]*[|:+\-][ \t]?|[+\-])")  # "  12 + ", a diff's "+"
# A window inside a key with neither marker: four or more 64-character base64 lines
# (with mixed case and digits, which hex digests lack), bare or as string literals.
KEY_LINE = re.compile(
    r"""[ \t]*["']?(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9])[A-Za-z0-9+/]{64}(?:\\n)?["']?,?"""
)
KEY_LINE_RUN = 4
# A key line glued to a template's special token (``<|fim_prefix|>`` + the first line of a
# window that starts inside a key, the last line + ``<|fim_suffix|>``): its base64 tail or
# head, at least 40 characters, next to a key body found on the lines beside it.
TAIL = re.compile(r"""[A-Za-z0-9+/]{40,}={0,2}(?:\\n)?["',;+ \t\r]*$""")
HEAD = re.compile(r"""[ \t"']*[A-Za-z0-9+/]{40,}={0,2}""")
LAST_LINE = re.compile(r"""[ \t"']*[A-Za-z0-9+/]{4,}={1,2}(?![A-Za-z0-9+/=])""")  # short, padded


def _body_line(line: str) -> bool:
    core = GUTTER.sub("", line, count=1).strip(DECORATION)
    core = core.removesuffix("\\n").removesuffix("\\r").removeprefix("\\n").strip(DECORATION)
    return bool(core) and BODY_LINE.fullmatch(core) is not None


def _base64_chars(text: str) -> int:
    return sum(c.isalnum() or c in "+/" for c in text)


def _forward(text: str, start: int) -> int:
    """The end of the body that starts at ``start`` and has no END marker after it."""
    stop = INLINE.match(text, start).end()
    line_end = text.find("\n", stop)
    rest = text[stop:] if line_end < 0 else text[stop:line_end]
    if line_end < 0 or rest.strip(DECORATION):
        return stop  # the text ends, or the line goes on with code: the body ended there
    limit = start + MAX_KEY_CHARS
    while 0 <= line_end < limit:
        next_end = text.find("\n", line_end + 1)
        line = text[line_end + 1 : len(text) if next_end < 0 else next_end]
        if not _body_line(line):
            head = HEAD.match(line)
            if head is not None:
                stop = line_end + 1 + head.end()
            break
        stop = line_end + 1 + len(line.rstrip(DECORATION))
        line_end = next_end
    return stop


def _backward(text: str, end: int) -> int:
    """The start of the body that ends at ``end`` (an END marker) with no BEGIN before it."""
    line_start = text.rfind("\n", 0, end) + 1
    start = end
    while start > line_start and text[start - 1] in _INLINE_CHARS:
        start -= 1  # a scan, not a regex search: that would be quadratic on a long line
    if GUTTER.sub("", text[line_start:start], count=1).strip(DECORATION):
        return start  # code before the body on this line
    floor = max(0, end - MAX_KEY_CHARS)
    while line_start > floor:
        prev_start = text.rfind("\n", 0, line_start - 1) + 1
        line = text[prev_start : line_start - 1]
        if not _body_line(line):
            tail = TAIL.search(line)
            if tail is not None:
                start = prev_start + tail.start()
            break
        start = prev_start + len(line) - len(line.lstrip(DECORATION))
        line_start = prev_start
    return start


def pem_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of private keys in ``text``, whole or cut off."""
    if "PRIVATE KEY" not in text:
        return _key_lines(text)
    spans: list[tuple[int, int, str]] = []
    covered_to = 0
    for begin in BEGIN.finditer(text):
        if begin.start() < covered_to:
            continue
        between = BETWEEN.match(text, begin.end(), begin.end() + MAX_KEY_CHARS).end()
        end = END.match(text, between)
        stop = end.end() if end is not None else _forward(text, begin.end())
        if _base64_chars(text[begin.end() : stop]) >= 16:
            spans.append((begin.start(), stop, KIND))
            covered_to = stop
    for end in END.finditer(text):
        if not any(s <= end.start() < e for s, e, _ in spans):
            start = _backward(text, end.start())
            if _base64_chars(text[start : end.start()]) >= 16:
                spans.append((start, end.end(), KIND))
    spans.extend(_key_lines(text))
    return spans


def key_line(line: str) -> bool:
    """Whether ``line`` is a key body line without a marker: a text none of whose lines is
    one, and which has no "PRIVATE KEY", has no private key (``pem_spans`` finds nothing)."""
    core = GUTTER.sub("", line, count=1).strip()
    return 64 <= len(core) <= 72 and KEY_LINE.fullmatch(core) is not None


def _key_lines(text: str) -> list[tuple[int, int, str]]:
    """Runs of key body lines with neither marker (a window inside a key)."""
    spans: list[tuple[int, int, str]] = []
    run_start = run_end = -1
    count = at = 0
    previous, previous_at = "", 0
    for line in text.split("\n"):
        if key_line(line):
            if count == 0:
                run_start = at + len(line) - len(line.lstrip())
                tail = TAIL.search(previous) if at else None
                if tail is not None:  # the run's first line, glued to a token before it
                    run_start = previous_at + tail.start()
            count += 1
            run_end = at + len(line.rstrip())
        else:
            if count >= KEY_LINE_RUN:
                spans.append((run_start, _run_end(line, at, run_end), KIND))
            count = 0
        previous, previous_at = line, at
        at += len(line) + 1
    if count >= KEY_LINE_RUN:
        spans.append((run_start, run_end, KIND))
    return spans


def _run_end(line: str, at: int, run_end: int) -> int:
    """Where a run of key lines ends, given the ``line`` (at offset ``at``) right after it:
    past that line's base64 head when it is the key's last line, glued to a template token
    or short and padded, behind a diff's or a listing's gutter or not."""
    gutter = GUTTER.match(line)
    skip = gutter.end() if gutter else 0
    head = HEAD.match(line, skip) or LAST_LINE.match(line, skip)
    return at + head.end() if head else run_end
