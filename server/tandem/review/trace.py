"""``--trace FILE``: what happened to every finding, one JSON object a line.

A finding a reviewer expected and did not get was lost somewhere: the model never said
it, said it on a line outside the change, quoted code that is not there, or a rule,
the severity cap or the second pass took it. The summary only counts those; the trace
says which finding went where, with the model's raw answer first, so a person tuning
the checks (or ``bench/review_precision.py --dump``) can see the loss. Everything in
it came from the model or the change: it is JSON-encoded (escaped) and only written to
the file the user named, never printed.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from tandem.review.findings import Finding

MAX_TEXT = 20_000  # characters of one raw answer kept in the trace


class Trace:
    """A JSON-lines sink; ``Trace()`` (no stream) writes nothing and costs nothing."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def event(self, stage: str, **data: Any) -> None:
        if self.stream is None:
            return
        line = json.dumps({"stage": stage, **data}, ensure_ascii=True, default=str)
        self.stream.write(line + "\n")
        self.stream.flush()

    def finding(self, stage: str, finding: Finding, outcome: str, **data: Any) -> None:
        """One finding's fate at one check."""
        if self.stream is None:
            return
        brief = {
            k: getattr(finding, k)
            for k in ("path", "line", "end_line", "severity", "kind", "rule", "quote", "message")
        }
        self.event(stage, outcome=outcome, finding=brief, **data)

    def answer(self, paths: tuple[str, ...], text: str, cached: bool) -> None:
        self.event("answer", paths=list(paths), cached=cached, text=text[:MAX_TEXT])


NO_TRACE = Trace()
