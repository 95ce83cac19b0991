"""Untrusted text made inert before it reaches a sink: a log line, a report, a prompt line.

File names, skip reasons that quote them, and source lines are written by whoever made
the change. Written raw, a newline in a file name starts a new log line (on GitHub, a
workflow command such as ``::error``), an escape sequence retitles or recolours the
terminal, and a bidi override makes a line read differently from what it is. Every
such character becomes a visible escape (``\\n``, ``\\x1b``, ``\\u202e``), so an
ordinary name is unchanged and a hostile one is shown for what it is.
"""

from __future__ import annotations

import re
import unicodedata

# Bidi controls and the line/paragraph separators some renderers break lines at.
_INVISIBLE = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SUSPECT = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_tabs: bool = False) -> str:
    """``text`` with control characters, bidi controls and line separators escaped."""
    if not _SUSPECT.search(text):
        return text
    out = []
    for char in text:
        if keep_tabs and char == "\t":
            out.append(char)
        elif char in _INVISIBLE or unicodedata.category(char) == "Cc":
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)
