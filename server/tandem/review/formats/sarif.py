"""SARIF 2.1.0, the format GitHub code scanning and most SARIF viewers ingest."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from tandem.review.findings import ReviewResult
from tandem.review.formats.common import (
    INFORMATION_URI,
    TOOL_NAME,
    end_line,
    fingerprinted,
    full_message,
    ordered_skipped,
)

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
# Our own key, versioned as SARIF recommends. Not ``primaryLocationLineHash``: GitHub's upload
# action computes that one from the checked-out file (also stable when lines move) and warns
# on every result whose supplied value differs; leaving it to GitHub also keeps alerts matched
# when a rerun words its message differently, which ours (it hashes the message) would not.
FINGERPRINT_KEY = "tandemFingerprint/v1"


def artifact_uri(path: str) -> str | None:
    """Repo-relative URI: spaces and non-ASCII percent-encoded, undecodable bytes restored.

    None for anything that is not a plain repo-relative path (absolute, ``..``, a drive,
    a backslash, an escaped control character): such a location is dropped, never sent
    to a viewer that would resolve it against the disk.
    """
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or re.match(r"[A-Za-z]:", path)
        or any(p in ("", ".", "..") for p in parts)
    ):
        return None
    return quote(path, safe="/", errors="surrogateescape")


def _location(path: str) -> dict[str, Any] | None:
    uri = artifact_uri(path)
    if uri is None:
        return None
    return {"artifactLocation": {"uri": uri, "uriBaseId": SRCROOT}}


def rule_description(rule: str) -> str:
    """``null-dereference`` -> ``Null dereference``: the model gives ids, not descriptions."""
    words = rule.replace("-", " ").replace("_", " ").strip()
    return (words[:1].upper() + words[1:]) or rule


def render_sarif_log(result: ReviewResult, tool_version: str) -> dict[str, Any]:
    findings = fingerprinted(result.findings)
    rule_ids = sorted({f.rule for f, _ in findings})
    index = {rule: i for i, rule in enumerate(rule_ids)}
    results = []
    for f, fp in findings:
        region: dict[str, Any] = {"startLine": max(f.line, 1), "endLine": max(end_line(f), 1)}
        if f.code.strip():
            region["snippet"] = {"text": f.code}
        location = _location(f.path)
        sarif_result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": LEVELS[f.severity],
            "message": {"text": full_message(f)},
            "partialFingerprints": {FINGERPRINT_KEY: fp},
            "properties": {"kind": f.kind, "verified": f.verified},
        }
        if location is not None:
            location["region"] = region
            sarif_result["locations"] = [{"physicalLocation": location}]
        results.append(sarif_result)
    notifications = []
    for s in ordered_skipped(result.skipped):
        location = _location(s.path)
        notification: dict[str, Any] = {
            "level": "note",
            "message": {"text": f"Not reviewed: {s.reason}"},
            "descriptor": {"id": "skipped-file"},
        }
        if location is not None:
            notification["locations"] = [{"physicalLocation": location}]
        else:
            notification["message"]["text"] = f"Not reviewed ({s.path}): {s.reason}"
        notifications.append(notification)
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    driver = {
        "name": TOOL_NAME,
        "version": tool_version,
        "informationUri": INFORMATION_URI,
        "rules": [{"id": r, "shortDescription": {"text": rule_description(r)}} for r in rule_ids],
    }
    run = {
        "tool": {"driver": driver},
        "invocations": [invocation],
        "results": results,
        "properties": {"summary": result.summary()},
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
