"""What a review produces: findings, skipped files, and a summary; shared by every format."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")  # ascending
RANK = {name: i for i, name in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Finding:
    """One problem the model reported, already checked against the diff."""

    path: str  # repo-relative, forward slashes
    line: int  # 1-based, in the new version of the file
    end_line: int
    severity: Severity
    rule: str  # short kebab-case id, e.g. "null-dereference"
    message: str
    suggestion: str | None = None
    code: str = ""  # the source line at ``line`` (for Markdown and fingerprints)
    kind: str = "other"  # the defect class the model named (``severity.KINDS``)
    quote: str = ""  # the changed code the model quoted as evidence
    verified: bool = False  # confirmed by the second pass (see ``verify``)

    def fingerprint(self) -> str:
        """Stable across runs and line shifts: path, rule and the code, not the line number."""
        blob = "\0".join([self.path, self.rule, " ".join(self.code.split()), self.message[:80]])
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("code")
        if not data["quote"]:
            data.pop("quote")
        if data["suggestion"] is None:
            data.pop("suggestion")
        return data


@dataclass(frozen=True)
class Skipped:
    """A file (or part of one) that was not reviewed, and why."""

    path: str
    reason: str  # e.g. "lock file", "binary", "deleted", "generated", "could not be reviewed: ..."


@dataclass
class ReviewResult:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files_reviewed: int = 0
    hunks_reviewed: int = 0
    model_requests: int = 0
    cached_requests: int = 0
    dropped_findings: int = 0  # invalid entries, or outside the diff
    more_findings: int = 0  # less severe findings left out by the findings cap
    model: str = ""
    unsupported_findings: int = 0  # no quote, or one that is not on the changed lines
    ruled_out: dict[str, int] = field(default_factory=dict)  # dropped by a rule, per rule
    demoted_findings: int = 0  # the second pass could not confirm them: now info
    verified_findings: int = 0  # the second pass confirmed them
    verify_requests: int = 0  # second-pass questions asked of the model (not cached)
    verification: bool = False  # the second pass ran: only verified findings fail a build
    truncated_requests: int = 0  # answers cut off in a loop: the findings they closed kept

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for f in self.findings if f.severity == s) for s in SEVERITIES}

    def summary(self) -> dict[str, Any]:
        return {
            "files_reviewed": self.files_reviewed,
            "hunks_reviewed": self.hunks_reviewed,
            "findings": len(self.findings),
            "by_severity": self.counts(),
            "skipped": len(self.skipped),
            "dropped_findings": self.dropped_findings,
            "more_findings": self.more_findings,
            "model_requests": self.model_requests,
            "cached_requests": self.cached_requests,
            "unsupported_findings": self.unsupported_findings,
            "ruled_out": dict(sorted(self.ruled_out.items())),
            "demoted_findings": self.demoted_findings,
            "verified_findings": self.verified_findings,
            "verify_requests": self.verify_requests,
            "truncated_requests": self.truncated_requests,
            "model": self.model,
        }

    def fails(self, fail_on: str) -> bool:
        """True when a finding at or above ``fail_on`` counts (``none`` never fails).

        After a verification pass only verified findings count: a finding the second
        pass could not confirm is reported, but it does not fail a build.
        """
        if fail_on == "none":
            return False
        return any(
            RANK[f.severity] >= RANK[fail_on]  # type: ignore[index]
            and (f.verified or not self.verification)
            for f in self.findings
        )


def checks_phrase(result: ReviewResult) -> str:
    """What the evidence rules and the second pass did, for summary lines ("" if nothing)."""
    parts = []
    if result.unsupported_findings:
        parts.append(f"{result.unsupported_findings} unsupported (no matching quote)")
    for reason, count in sorted(result.ruled_out.items()):
        parts.append(f"{count} ruled out ({reason})")
    if result.verification:
        parts.append(f"{result.verified_findings} verified, {result.demoted_findings} demoted")
    if result.truncated_requests:
        n = result.truncated_requests
        parts.append(f"{n} answer{'s' * (n != 1)} cut off looping (closed findings kept)")
    return ", ".join(parts)
