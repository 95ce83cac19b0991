"""How a review shows it is working: a bar on a terminal, one line per file in a CI log.

Everything goes to stderr, so stdout carries only the report (it may be piped into a
file or another tool). ``--quiet`` silences it all. File names and reasons are the
change author's text: control characters in them are escaped (a newline would start a
new log line, which GitHub reads as a workflow command), and every line passes the
secret redactor on its way out.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tandem.models.redact import redact_log
from tandem.review.sanitize import printable

BAR_WIDTH = 24


class Progress:
    """Counts files and hunks done and findings so far, and shows them."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.files = self.hunks = 0
        self.files_done = self.hunks_done = self.findings = 0
        self.started = time.perf_counter()
        self._drawn = False

    def _write(self, text: str) -> None:
        if self.quiet:
            return
        try:
            self.stream.write(redact_log(text))
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not fail the review
            self.quiet = True

    def skipped(self, path: str, reason: str) -> None:
        if not self.tty:
            self._write(f"review: {printable(path)}: skipped: {printable(reason)}\n")

    def start(self, files: int, hunks: int, requests: int) -> None:
        self.files, self.hunks = files, hunks
        if not self.tty:
            self._write(f"review: {files} files, {hunks} hunks in {requests} requests\n")
        self._draw()

    def file_done(self, path: str, hunks: int, findings: int, failed: bool = False) -> None:
        self.files_done += 1
        self.hunks_done += hunks
        self.findings += findings
        if self.tty:
            self._draw()
        else:
            state = "could not be reviewed" if failed else _plural(findings, "finding")
            self._write(f"review: {printable(path)}: {_plural(hunks, 'hunk')}, {state}\n")

    def _draw(self) -> None:
        if not self.tty:
            return
        share = self.files_done / self.files if self.files else 1.0
        filled = round(share * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self._write(
            f"\r\x1b[Kreview [{bar}] {self.files_done}/{self.files} files, "
            f"{self.hunks_done}/{self.hunks} hunks, {_plural(self.findings, 'finding')}"
        )
        self._drawn = True

    def note(self, text: str) -> None:
        """One line about the review itself (where its configuration came from, a cap)."""
        if self._drawn:
            self._write("\r\x1b[K")
        self._write(f"review: {printable(text)}\n")
        self._draw()

    def finish(self, summary: str) -> None:
        if self._drawn:
            self._write("\r\x1b[K")
        elapsed = time.perf_counter() - self.started
        self._write(f"review: {summary} ({elapsed:.1f}s)\n")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
