"""One review, start to end: skip what is not reviewed, build units, pack, ask, check.

Requests run at most ``concurrency`` at a time. Each answer is cached (diskcache under
``cache_dir/review``) under a key of the model, the endpoint and the exact request, so a
rerun on the same diff asks nothing and a diff that changed one hunk asks again only for
the request that holds it (token counts are remembered too: a rerun loads no tokenizer).
Each request is asked by ``asking`` (its retries, and answers that were cut off or
looped). A model that cannot be reached ends the review (exit 3), so CI can tell a
broken reviewer from bad code.
Files, requests and tokens are capped (``limits``); findings are capped too, the most
severe kept.

Before anything is reported, findings without evidence or ruled out are dropped
(``evidence``), and with ``verify`` every error and warning left is put to the model
once more (``verify``): only what that second pass confirms can fail a build.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tandem.cache import CompletionCache
from tandem.context.engine import ContextEngine
from tandem.models.base import ModelClient
from tandem.models.errors import ModelError
from tandem.models.tokens import Tokenizer
from tandem.review import exits
from tandem.review.ask import overhead_text, path_text
from tandem.review.asking import Asker, endpoint_of
from tandem.review.context import PreparedFile, UnitBuilder
from tandem.review.counts import RememberedCounts
from tandem.review.diff import FileDiff, FileFilter, content_reason, skip_reason
from tandem.review.findings import RANK, Finding, ReviewResult, Skipped, checks_phrase
from tandem.review.limits import (
    DEFAULT_MAX_FINDINGS,
    DEFAULT_MAX_VERIFY,
    DEFAULT_THRESHOLD,
    Limits,
    Spending,
)
from tandem.review.packing import ReviewRequest, pack
from tandem.review.progress import Progress
from tandem.review.source import ChangeSource
from tandem.review.trace import NO_TRACE, Trace
from tandem.review.units import ReviewUnit
from tandem.review.verify import Verifier

AUTO_REQUESTS_PER_HUNK = 2  # auto per-hunk: a hunk's request and its retry
CUT_OFF = "incompletely reviewed: the model's answer was cut off, twice (raise [chat] max_tokens)"
MIN_UNIT_TOKENS = 256  # a budget leaving less than this for code is a configuration error
SAFETY_TOKENS = 16


class ReviewerFailed(ModelError):
    """The model could not be reached or failed after retries: exit 3, not "findings"."""

    exit_code = exits.BROKEN


class ReviewConfigError(ValueError):
    """Settings a review cannot work with (a budget too small for any code): exit 2."""

    exit_code = exits.BAD_USAGE


@dataclass(frozen=True)
class ReviewOptions:
    budget: int  # prompt tokens per request
    max_tokens: int = 1024  # answer tokens per request
    temperature: float = 0.0  # greedy: the same change gets the same review
    concurrency: int = 2
    max_findings: int | None = DEFAULT_MAX_FINDINGS
    filters: FileFilter = field(default_factory=FileFilter)
    limits: Limits = field(default_factory=Limits)
    evidence: bool = True  # drop findings without a matching quote, or ruled out
    verify: bool = True  # the second pass; off: every finding counts as the first pass gave it
    verify_threshold: int = DEFAULT_THRESHOLD  # 0-10
    max_verify: int = DEFAULT_MAX_VERIFY
    # one hunk a request: more calls, less for a small model to read; None: auto
    per_hunk: bool | None = None


@dataclass
class ReviewRun:
    """A finished review: the result, plus what the command's exit code and log need."""

    result: ReviewResult
    requests: int = 0
    failed_requests: int = 0
    incomplete_requests: int = 0  # answers still cut off (not a loop after closed findings)
    per_hunk: bool = False  # what the review did (``--per-hunk`` or auto)
    cut_findings: int = 0  # over --max-findings
    pairs: list[tuple[Finding, ReviewUnit]] = field(default_factory=list)  # first pass


class Reviewer:
    def __init__(
        self,
        client: ModelClient,
        root: Path,
        options: ReviewOptions,
        *,
        cache: CompletionCache | None = None,
        engine: ContextEngine | None = None,
        progress: Progress | None = None,
        trace: Trace = NO_TRACE,
    ) -> None:
        self.trace = trace
        self.client = client
        self.root = root
        self.options = options
        self.cache = cache
        self.engine = engine
        self.progress = progress or Progress(quiet=True)
        self.spending = Spending(options.limits, options.budget)
        self.asker = Asker(client, cache, self.spending, trace, options.max_tokens,
                           options.temperature, options.evidence)  # fmt: skip

    async def review(self, files: Sequence[FileDiff], source: ChangeSource) -> ReviewRun:
        """Review ``files``; a failing model (or its tokenizer) raises ``ReviewerFailed``."""
        loop = asyncio.get_running_loop()
        counts = RememberedCounts(self.client.describe(), self.client.tokenizer, loop, self.cache)
        run = ReviewRun(ReviewResult(model=self.client.describe()))
        try:
            run.per_hunk = self._per_hunk(files)
            units, skipped, reviewed = await self._units(files, source, counts, run.per_hunk)
            run.result.skipped.extend(skipped)

            def packed() -> list[ReviewRequest]:
                budget = self._data_budget(counts)
                return pack(units, budget, lambda p: counts.count(path_text(p)), run.per_hunk)

            requests = await asyncio.to_thread(packed) if units else []
            counts.save()
            run.requests = len(requests)
            self.spending.check_plan(len(requests), self.options.max_tokens)
            await self._ask_all(requests, reviewed, run)
            await self._verify(run)
        except ReviewerFailed:
            raise
        except ModelError as exc:
            raise ReviewerFailed(exc.one_line()) from exc
        finally:
            counts.close()
        self._finish(run)
        return run

    # ---- units ---------------------------------------------------------------------------

    def _per_hunk(self, files: Sequence[FileDiff]) -> bool:
        """One request per hunk, unless switched off, or (auto) unless the change has so many
        hunks that their requests, retries and second-pass questions could pass
        ``--max-requests`` or ``--max-total-tokens`` (each counted at its whole prompt budget
        and answer allowance): a big change is packed, as before, rather than stopped
        (exit 13).

        Shown one hunk at a time, a small model comments on that hunk's changed rows rather
        than on whatever else the request held (README "How findings are checked").
        """
        if self.options.per_hunk is not None:
            return self.options.per_hunk
        asks = sum(len(d.hunks) for d in files) * AUTO_REQUESTS_PER_HUNK + self.options.max_verify
        limits = self.options.limits
        tokens = asks * (self.options.budget + self.options.max_tokens)
        return asks <= limits.max_requests and tokens <= limits.max_tokens

    def _data_budget(self, tokenizer: Tokenizer) -> int:
        """Tokens a request may spend on data, once its fixed text is counted."""
        fixed = overhead_text(schema=self.client.schema_in_prompt)
        return self.options.budget - tokenizer.count(fixed) - SAFETY_TOKENS

    async def _units(
        self,
        files: Sequence[FileDiff],
        source: ChangeSource,
        counts: Tokenizer,
        per_hunk: bool,
    ) -> tuple[list[ReviewUnit], list[Skipped], dict[str, int]]:
        skipped: list[Skipped] = []
        candidates: list[FileDiff] = []
        for diff in files:
            reason = skip_reason(diff, self.options.filters)
            if reason:
                skipped.append(Skipped(diff.path, reason))
                self.progress.skipped(diff.path, reason)
            else:
                candidates.append(diff)
        readable: list[FileDiff] = []
        for diff in candidates:
            reason = source.link_reason(diff.path, self.options.filters)
            if reason:
                skipped.append(Skipped(diff.path, reason))
                self.progress.skipped(diff.path, reason)
            else:
                readable.append(diff)
        candidates = readable
        if not candidates:
            return [], skipped, {}
        self.spending.check_files(len(candidates))
        contents = await asyncio.to_thread(source.read, [d.path for d in candidates])
        builder = UnitBuilder(self.root, self.engine, separate=per_hunk)

        def prepare() -> list[PreparedFile]:
            """Parsing and definitions: no tokenizer needed, so it overlaps its loading."""
            prepared: list[PreparedFile] = []
            for diff in candidates:
                data = contents.get(diff.path)
                text = None
                if data is not None:
                    reason = content_reason(data, frozenset(n for h in diff.hunks for n in h.added))
                    if reason:
                        skipped.append(Skipped(diff.path, reason))
                        self.progress.skipped(diff.path, reason)
                        continue
                    text = data.decode("utf-8", "replace")
                prepared.append(builder.prepare(diff, text))
            for file in prepared:  # after all are parsed: they are each other's definitions
                file.prepare_definitions()
            return prepared

        prepared = await asyncio.to_thread(prepare)

        def build() -> tuple[list[ReviewUnit], dict[str, int]]:
            """Counting and fitting: in a thread, as counting may wait for the tokenizer."""
            paths = max((counts.count(path_text(p.diff.path)) for p in prepared), default=0)
            budget = self._data_budget(counts) - paths
            if budget < MIN_UNIT_TOKENS:
                raise ReviewConfigError(
                    f"a review request of {self.options.budget} tokens leaves {budget} for "
                    "code; raise [chat] context_tokens (at least 2048 is sensible)"
                )
            units: list[ReviewUnit] = []
            reviewed: dict[str, int] = {}
            for file in prepared:
                found, left_out = builder.build(file, counts, budget)
                units.extend(found)
                skipped.extend(left_out)
                if found:
                    reviewed[file.diff.path] = len(file.diff.hunks)
            return units, reviewed

        units, reviewed = await asyncio.to_thread(build)
        return units, skipped, reviewed

    # ---- asking --------------------------------------------------------------------------

    async def _ask_all(
        self, requests: list[ReviewRequest], hunks: dict[str, int], run: ReviewRun
    ) -> None:
        self.progress.start(len(hunks), sum(hunks.values()), len(requests))
        pending = Counter(p for r in requests for p in r.paths)
        found: Counter[str] = Counter()
        failed: set[str] = set()
        incomplete: set[str] = set()
        answered: set[str] = set()
        gate = asyncio.Semaphore(max(1, self.options.concurrency))

        async def one(request: ReviewRequest) -> None:
            async with gate:
                asked = await self.asker.ask(request, run.result)
            if asked is None:
                run.failed_requests += 1
                failed.update(request.paths)
            else:
                run.pairs.extend(asked.findings)
                run.result.dropped_findings += asked.dropped
                found.update(f.path for f, _ in asked.findings)
                answered.update(request.paths)
                if asked.incomplete:
                    run.incomplete_requests += 1
                    incomplete.update(request.paths)
                elif asked.truncated:
                    run.result.truncated_requests += 1
            for path in request.paths:
                pending[path] -= 1
                if pending[path] == 0:
                    self.progress.file_done(path, hunks.get(path, 0), found[path], path in failed)

        try:
            async with asyncio.TaskGroup() as group:
                for request in requests:
                    group.create_task(one(request))
        except* ModelError as errors:
            first = errors.exceptions[0]
            message = first.one_line() if isinstance(first, ModelError) else str(first)
            raise ReviewerFailed(message) from first
        for path in sorted(failed):
            reason = "could not be reviewed: the model's answer was not valid JSON, twice"
            run.result.skipped.append(Skipped(path, reason))
        for path in sorted(incomplete):
            run.result.skipped.append(Skipped(path, CUT_OFF))
        run.result.files_reviewed = len(answered)
        run.result.hunks_reviewed = sum(hunks[p] for p in answered)

    async def _verify(self, run: ReviewRun) -> None:
        """The second pass over the first pass's findings (each asked once, duplicates aside)."""
        unique: dict[tuple[str, int, str, str], tuple[Finding, ReviewUnit]] = {}
        for f, unit in run.pairs:
            unique.setdefault((f.path, f.line, f.rule, f.message), (f, unit))
        pairs = list(unique.values())
        if not self.options.verify:
            run.result.findings = [f for f, _ in pairs]
            return
        verifier = Verifier(
            self.client,
            endpoint_of(self.client),
            self.cache,
            self.spending,
            threshold=self.options.verify_threshold,
            max_verify=self.options.max_verify,
            concurrency=self.options.concurrency,
            trace=self.trace,
        )
        run.result.findings = await verifier.verify(pairs, run.result)

    # ---- the result ----------------------------------------------------------------------

    def _finish(self, run: ReviewRun) -> None:
        result = run.result
        unique: dict[tuple[str, int, str, str], Finding] = {}  # hashing: O(n), not O(n^2)
        for f in result.findings:
            unique.setdefault((f.path, f.line, f.rule, f.message), f)
        findings = list(unique.values())
        limit = self.options.max_findings
        if limit is not None and len(findings) > limit:
            findings.sort(key=lambda f: (-RANK[f.severity], f.path, f.line))
            run.cut_findings = result.more_findings = len(findings) - limit
            findings = findings[:limit]
        findings.sort(key=lambda f: (f.path, f.line, -RANK[f.severity], f.rule))
        result.findings = findings
        first = {s.path: i for i, s in reversed(list(enumerate(result.skipped)))}
        result.skipped = sorted(dict.fromkeys(result.skipped), key=lambda s: first[s.path])
        counts = result.counts()
        shown = ", ".join(f"{counts[s]} {s}" for s in ("error", "warning", "info") if counts[s])
        self.progress.finish(
            f"{result.files_reviewed} files, {result.hunks_reviewed} hunks, "
            f"{len(findings)} findings{f' ({shown})' if shown else ''}; "
            f"{result.model_requests} model requests, {result.cached_requests} cached"
            + (f"; {checks}" if (checks := checks_phrase(result)) else "")
        )
