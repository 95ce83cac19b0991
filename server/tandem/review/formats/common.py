"""What every output format shares: one order, one fingerprint per finding, one summary line."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from tandem.review.findings import (
    RANK,
    SEVERITIES,
    Finding,
    ReviewResult,
    Skipped,
    checks_phrase,
)
from tandem.review.sanitize import printable

TOOL_NAME = "tandem"
# Where SARIF viewers and reviewdog link "tandem"; change it here when the project has a home page.
INFORMATION_URI = "https://pypi.org/project/tandem-ls/"


MAX_CODE_CHARS = 500  # of the source line shown with a finding (a minified line can be huge)


def neutralised(result: ReviewResult) -> ReviewResult:
    """The result with the change author's text made inert for every format.

    File names, skip reasons (they quote file names) and source lines get their control
    characters, bidi controls and line separators escaped; model text was cleaned when
    it was read. Ordinary names are unchanged.
    """
    findings = [
        replace(
            f,
            path=printable(f.path),
            code=printable(f.code[:MAX_CODE_CHARS], keep_tabs=True),
        )
        for f in result.findings
    ]
    skipped = [Skipped(printable(s.path), printable(s.reason)) for s in result.skipped]
    return replace(result, findings=findings, skipped=skipped)


def severity_ranked(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first (then by place): what a cap keeps."""
    return sorted(findings, key=lambda f: (-RANK[f.severity], f.path, f.line, f.rule, f.message))


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Sorted by path and line (most severe first on a line), so equal input gives equal bytes."""
    return sorted(
        findings,
        key=lambda f: (
            f.path,
            f.line,
            f.end_line,
            -RANK[f.severity],
            f.rule,
            f.message,
            f.suggestion or "",
            f.code,
        ),
    )


def ordered_skipped(skipped: Iterable[Skipped]) -> list[Skipped]:
    return sorted(skipped, key=lambda s: (s.path, s.reason))


def end_line(finding: Finding) -> int:
    """The last line, never before the first (a model may give end_line 0 or less than line)."""
    return max(finding.line, finding.end_line)


def fingerprinted(findings: Iterable[Finding]) -> list[tuple[Finding, str]]:
    """Findings in order, each with a fingerprint unique within the run.

    ``Finding.fingerprint`` ignores the line number, so two identical findings on two identical
    lines of one file share it; the second and later get the occurrence number mixed in, the
    way GitHub numbers equal line hashes, so each stays stable and all stay distinct.
    """
    seen: Counter[str] = Counter()
    out = []
    for finding in ordered(findings):
        base = finding.fingerprint()
        seen[base] += 1
        n = seen[base]
        fp = base if n == 1 else hashlib.sha256(f"{base}:{n}".encode()).hexdigest()[:32]
        out.append((finding, fp))
    return out


def full_message(finding: Finding) -> str:
    """The message with the suggestion appended, for formats that have no field for prose fixes."""
    if finding.suggestion:
        return f"{finding.message}\n\nSuggestion: {finding.suggestion}"
    return finding.message


def plural(n: int, word: str, words: str = "") -> str:
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def counts_phrase(result: ReviewResult) -> str:
    """``1 error, 2 warnings`` (most severe first, zero counts left out)."""
    counts = result.counts()
    return ", ".join(
        plural(counts[s], s, "info" if s == "info" else "")
        for s in reversed(SEVERITIES)
        if counts[s]
    )


def summary_line(result: ReviewResult) -> str:
    """One line for logs and annotations: what was found, in how much, and what was left out."""
    files = plural(result.files_reviewed, "file")
    if result.findings:
        head = f"{plural(len(result.findings), 'finding')} ({counts_phrase(result)}) in {files}"
    else:
        head = f"no findings in {files}"
    tail = [f"{len(result.skipped)} skipped"] if result.skipped else []
    if result.dropped_findings:
        tail.append(f"{plural(result.dropped_findings, 'invalid finding')} dropped")
    if result.more_findings:
        tail.append(f"{result.more_findings} more less severe (over --max-findings)")
    if checks := checks_phrase(result):
        tail.append(checks)
    return f"{TOOL_NAME}: " + "; ".join([head, *tail])


def encodable(text: str) -> str:
    """Lone surrogates (undecodable bytes in git paths) as ``\\udcff`` so the output can be written.

    The escape is also a valid JSON string escape, so JSON formats stay parseable and decode
    back to the same path.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
