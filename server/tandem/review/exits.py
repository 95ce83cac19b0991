"""What ``tandem review``'s exit status means, in one place: the help text and the rule.

CI reads the status: 1 must mean "the code has findings", never "the reviewer broke".
"""

from __future__ import annotations

CLEAN = 0  # no findings at or above --fail-on
FINDINGS = 1  # findings at or above --fail-on
BAD_USAGE = 2  # bad usage, invalid setting, git or diff error
BROKEN = 3  # the model could not be reached or failed after retries; or a bug
INCOMPLETE = 12  # an answer was still cut off after a retry (or looping, with no finding closed)
CAPPED = 13  # a cost cap was reached (files, requests, tokens): nothing was sent

DESCRIPTION = (
    f"{CLEAN} no findings at or above --fail-on; {FINDINGS} findings at or above --fail-on; "
    f"{BAD_USAGE} bad usage, invalid setting, git or diff error; "
    f"{BROKEN} the model could not be reached, or failed after retries (the reviewer is "
    f"broken, not the code); {INCOMPLETE} a model answer was still cut off after a retry "
    "with more room (those files are listed as incompletely reviewed; an answer cut off "
    "while the model repeated itself is not asked again, and when it held complete findings "
    "it is counted as truncated, not incomplete; --allow-incomplete "
    f"makes this {CLEAN}); {CAPPED} a cost cap was reached (--max-files, --max-requests, "
    "--max-total-tokens): nothing was sent"
)


def exit_code(
    failed_requests: int,
    has_failing_findings: bool,
    incomplete_requests: int = 0,
    allow_incomplete: bool = False,
) -> int:
    """The status of a finished review: a broken reviewer wins over findings, and findings
    over answers that were cut off."""
    if failed_requests:
        return BROKEN
    if has_failing_findings:
        return FINDINGS
    if incomplete_requests and not allow_incomplete:
        return INCOMPLETE
    return CLEAN
