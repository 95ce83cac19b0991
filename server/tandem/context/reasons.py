"""Why Tandem will not read a file, or has no syntax tree for a document: typed reasons.

Each reason is the text users are shown (a ``str``, so logs, the status bar and review
reports print it as they always did) and a ``Why`` that code decides on: a binary file
is not the same failure as an excluded one, and no caller has to parse the text to tell.
"""

from __future__ import annotations

from enum import Enum


class Why(Enum):
    """What kind of rule or fact keeps a file out; the value is its short name."""

    SETTING = "excluded by the exclude setting"
    IGNORED = "ignored"  # .gitignore, .tandemignore, .git/info/exclude
    SECRET = "may hold secrets"
    DENIED = "denied"  # lock, minified, generated files; dependency and build folders
    OUTSIDE = "outside the workspace"  # or reached through a symlink
    BINARY = "binary"
    TOO_LARGE = "too large"
    UNREADABLE = "unreadable"
    UNKNOWN_LANGUAGE = "unknown language"  # documents: read, but without a grammar
    PARSE_FAILED = "the parser gave up"


# Facts about what is in a file, not rules about which files may be read.
CONTENT = frozenset({Why.BINARY, Why.TOO_LARGE, Why.UNREADABLE})


class Reason(str):
    """The text shown for a reason, carrying its ``Why``."""

    why: Why

    def __new__(cls, why: Why, text: str | None = None) -> Reason:
        reason = super().__new__(cls, why.value if text is None else text)
        reason.why = why
        return reason

    @property
    def about_content(self) -> bool:
        """Binary, too large or unreadable: the file is not text Tandem can use."""
        return self.why in CONTENT
