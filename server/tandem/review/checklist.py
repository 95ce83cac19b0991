"""The checklist after the review's data: the changed rows, by number only.

A small model asked to review a whole unit comments on whatever it reads first; asked
afterwards to check each changed row in turn (named by line number, never by text, so
nothing the change wrote leaves the fence), it looks at the rows that changed.
"""

from __future__ import annotations

from tandem.review.packing import ReviewRequest

CHECK = """\
Before you answer, check the changed rows one at a time ({rows}): is each right? A wrong \
condition, comparison, operator, value, index, return value or caught exception is easy to \
miss. Report each row that could be wrong, quoting it, even when unsure (then as "info"): \
every finding is checked again before it can fail a build."""
MAX_CHECK_RUNS = 8  # runs of consecutive changed rows listed; past them, "and N more rows"


def _runs(lines: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in lines:
        if runs and runs[-1][1] + 1 == n:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def changed_rows(request: ReviewRequest) -> str:
    """The changed rows' line numbers, per file, for the checklist after the data.

    Runs of consecutive rows are written as ranges (``126-131``) and at most
    ``MAX_CHECK_RUNS`` are listed, so the list costs a request little, and its widest
    form is counted in every request's fixed text. Only numbers and the files' places
    in the data's file list: nothing the change wrote leaves the fence.
    """
    parts: list[str] = []
    listed = left = 0
    for index, path in enumerate(request.paths, start=1):
        runs = _runs(sorted({n for u in request.units_of(path) for n in u.changed}))
        shown = runs[: max(0, MAX_CHECK_RUNS - listed)]
        listed += len(shown)
        left += sum(b - a + 1 for a, b in runs[len(shown) :])
        if not shown:
            continue
        many = len(shown) > 1 or shown[0][0] != shown[0][1]
        text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in shown)
        where = f" of file {index}" if len(request.paths) > 1 else ""
        parts.append(f"line{'s' if many else ''} {text}{where}")
    more = f", and {left} more rows" if left else ""
    return "; ".join(parts) + more
