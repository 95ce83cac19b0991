"""What ``tandem review``'s exit status means, in one place: the help text and the rule.

CI reads the status: 1 must mean "the code has findings", never "the reviewer broke".
"""

from __future__ import annotations

CLEAN = 0  # no findings at or above --fail-on
FINDINGS = 1  # findings at or above --fail-on
BAD_USAGE = 2  # bad usage, invalid setting, git or diff error
BROKEN = 3  # the model could not be reached or failed after retries; or a bug

DESCRIPTION = (
    f"{CLEAN} no findings at or above --fail-on; {FINDINGS} findings at or above --fail-on; "
    f"{BAD_USAGE} bad usage, invalid setting, git or diff error; "
    f"{BROKEN} the model could not be reached, or failed after retries (the reviewer is "
    "broken, not the code)"
)


def exit_code(failed_requests: int, has_failing_findings: bool) -> int:
    """The status of a finished review: a broken reviewer wins over findings."""
    if failed_requests:
        return BROKEN
    return FINDINGS if has_failing_findings else CLEAN
