"""Formats tools read: plain JSON, GitHub workflow commands, GitLab Code Quality, reviewdog."""

from __future__ import annotations

import json
from typing import Any

from tandem.review.findings import RANK, ReviewResult
from tandem.review.formats.common import (
    INFORMATION_URI,
    TOOL_NAME,
    end_line,
    fingerprinted,
    full_message,
    ordered,
    ordered_skipped,
    summary_line,
)
from tandem.review.formats.human import md_escape


def dump(data: Any) -> str:
    """Indented, non-ASCII kept readable, always the same bytes for the same data."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_json(result: ReviewResult, tool_version: str) -> str:
    return dump(
        {
            "findings": [f.as_dict() for f in ordered(result.findings)],
            "summary": result.summary(),
            "skipped": [
                {"path": s.path, "reason": s.reason} for s in ordered_skipped(result.skipped)
            ],
        }
    )


# GitHub Actions workflow commands, escaped as @actions/core's command.ts does.
ANNOTATIONS = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Also ``:`` and ``,``, which would otherwise end the value or the property list."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int) -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def render_github(result: ReviewResult, tool_version: str) -> str:
    """One annotation per finding, then one notice with the summary and the skipped files.

    Skipped files share that one notice rather than getting one each: GitHub shows only a few
    annotations of each kind per step, and findings should have them.
    """
    lines = [
        command(
            ANNOTATIONS[f.severity],
            full_message(f),
            file=f.path,
            line=f.line,
            endLine=end_line(f),
            title=f"{TOOL_NAME}: {f.rule}",
        )
        for f in ordered(result.findings)
    ]
    summary = [summary_line(result)]
    summary += [f"{s.path}: skipped: {s.reason}" for s in ordered_skipped(result.skipped)]
    lines.append(command("notice", "\n".join(summary), title=f"{TOOL_NAME} review"))
    return "\n".join(lines) + "\n"


# GitLab Code Quality. An "error" is a likely bug the model saw, not a proven one, so it is
# "major" (as eslint's GitLab formatter maps errors), leaving critical and blocker for tools
# that can be certain.
GITLAB_SEVERITY = {"error": "major", "warning": "minor", "info": "info"}


def render_gitlab(result: ReviewResult, tool_version: str) -> str:
    """The Code Quality array; skipped files have no place in it (they are not issues)."""
    issues = [
        {
            "type": "issue",
            "engine_name": TOOL_NAME,
            "check_name": f.rule,
            "description": full_message(f),
            "fingerprint": fp,
            "severity": GITLAB_SEVERITY[f.severity],
            "location": {"path": f.path, "lines": {"begin": f.line, "end": end_line(f)}},
        }
        for f, fp in fingerprinted(result.findings)
    ]
    return dump(issues)


RDJSON_SEVERITY = {"error": "ERROR", "warning": "WARNING", "info": "INFO"}


def render_rdjson(result: ReviewResult, tool_version: str) -> str:
    """reviewdog's DiagnosticResult, line-wise ranges (no columns: the end line is inclusive).

    ``suggestions`` is left out: reviewdog applies one as replacement text for the range, and
    ours is prose, so it goes into the message instead. reviewdog pastes messages into the
    pull request as Markdown, so they are escaped as the Markdown report's are: no images
    (a request to any URL), links, HTML or @-mentions from text the change could steer.
    """
    diagnostics = [
        {
            "message": md_escape(full_message(f)),
            "location": {
                "path": f.path,
                "range": {"start": {"line": f.line}, "end": {"line": end_line(f)}},
            },
            "severity": RDJSON_SEVERITY[f.severity],
            "code": {"value": f.rule},
        }
        for f in ordered(result.findings)
    ]
    data: dict[str, Any] = {"source": {"name": TOOL_NAME, "url": INFORMATION_URI}}
    if result.findings:
        worst = max((f.severity for f in result.findings), key=RANK.__getitem__)
        data["severity"] = RDJSON_SEVERITY[worst]
    data["diagnostics"] = diagnostics
    return dump(data)
