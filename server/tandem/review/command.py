"""``tandem review`` from gathered inputs to a finished run, on an ``open_workspace``.

The reviewer gets its chat model, context engine, cache and exclusion rules from the
same workspace builder as completions and the editor, so a review outside a git
repository (``--diff FILE``) leaves out exactly the files a review inside one does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tandem.review.inputs import ReviewInputs
from tandem.review.limits import DEFAULT_MAX_VERIFY, DEFAULT_THRESHOLD, Limits
from tandem.review.progress import Progress
from tandem.review.run import Reviewer, ReviewOptions, ReviewRun
from tandem.review.trace import NO_TRACE, Trace
from tandem.workspace import open_workspace


@dataclass(frozen=True)
class Checks:
    """How findings are checked before they count (the evidence rules, the second pass)."""

    evidence: bool = True
    verify: bool = True
    verify_threshold: int = DEFAULT_THRESHOLD
    max_verify: int = DEFAULT_MAX_VERIFY


async def review(
    inputs: ReviewInputs,
    *,
    concurrency: int | None = None,
    max_findings: int | None = None,
    limits: Limits | None = None,
    quiet: bool = False,
    checks: Checks | None = None,
    trace: Trace = NO_TRACE,
    per_hunk: bool | None = None,
) -> ReviewRun:
    """Review ``inputs``: ``ReviewerFailed`` or ``ReviewConfigError`` when it cannot."""
    settings = inputs.settings
    options = ReviewOptions(
        budget=settings.chat.context_tokens,
        max_tokens=settings.chat.max_tokens,
        concurrency=concurrency or settings.max_concurrent,
        max_findings=max_findings,
        filters=inputs.filters,
        limits=limits or Limits(),
        per_hunk=per_hunk,
        **vars(checks or Checks()),
    )
    progress = Progress(quiet=quiet)
    progress.note(inputs.settings_note())
    # The symbol index is worth building in a repository; outside one the root may be
    # any folder (the current one, for --diff), so definitions come from imports only.
    workspace = open_workspace(settings, inputs.root, index=inputs.in_git, cache="review")
    try:
        if workspace.index is not None:
            await asyncio.to_thread(workspace.index.build)
        reviewer = Reviewer(
            workspace.models.chat,
            inputs.root,
            options,
            cache=workspace.cache,
            engine=workspace.engine,
            progress=progress,
            trace=trace,
        )
        return await reviewer.review(inputs.files, inputs.source)
    finally:
        await workspace.aclose()
