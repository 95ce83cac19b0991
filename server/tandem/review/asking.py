"""Asking the model one review request: the cache, a retry, and answers that were cut off.

An answer that is not JSON is asked once more and never cached. One cut off mid-JSON
(the model ran out of tokens: a lost finding may be the worst one) is asked again with
twice the room; still cut, its closed findings are kept and the request is incomplete
(exit 12). A small model sampled greedily can instead loop ("... is not valid ... is not
valid ...") until it is cut off, and asked again it loops the same way, only longer: so
an answer cut off while repeating itself is not asked again, and when it closed findings
before the loop they are kept and the request is counted as truncated, not incomplete
(what was lost is the loop). Where the schema is a grammar, its strings and its list are
bounded too (``ask.findings_schema``), so a loop mostly ends before the cut. No cut-off
answer is ever cached.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tandem.cache import CompletionCache
from tandem.models.base import ChatOptions, ModelClient, collect
from tandem.review.answers import answer_of, cache_key, entry, prompt_digest
from tandem.review.ask import (
    Answer,
    build_messages,
    check_findings,
    findings_schema,
    most_findings,
    parse_answer,
)
from tandem.review.evidence import screen, unit_of
from tandem.review.findings import Finding, ReviewResult
from tandem.review.limits import Spending
from tandem.review.packing import ReviewRequest
from tandem.review.trace import Trace
from tandem.review.units import ReviewUnit

ASKS = 2  # an answer that is not JSON, or cut off, is asked once more
LOOP_TAIL = 48  # characters: the shortest repeating end of a cut answer that is a loop
MAX_PERIOD = 1000  # characters: the longest piece whose repeats are looked for


def looping(text: str) -> bool:
    """Whether a cut-off answer ends repeating itself: one piece three times back to back
    (at least ``LOOP_TAIL`` characters in all). Sampled greedily, a model asked again with
    more room writes the same tokens again, so the retry would only loop for longer.

    Back to back: the JSON around each finding ("path": ..., "line": ...) comes back in
    every answer of several findings, with other text between, and is no loop.
    """
    end = text.rstrip()
    for period in range(1, min(MAX_PERIOD, len(end) // 3) + 1):
        span = max(3 * period, LOOP_TAIL)
        if span > len(end):
            break
        tail = end[-span:]
        if tail[period:] == tail[:-period]:
            return True
    return False


def endpoint_of(client: ModelClient) -> str:
    """The URL a client sends to (part of every cache entry), or "" when it has none."""
    return str(getattr(getattr(client, "endpoint", None), "base_url", ""))


@dataclass
class Asked:
    """One request's outcome: checked findings (with their units), entries dropped, and
    whether it was cut."""

    findings: list[tuple[Finding, ReviewUnit]]
    dropped: int
    incomplete: bool = False  # cut off twice, or looping with no finding closed
    truncated: bool = False  # cut off looping: the findings it closed kept


@dataclass
class Asker:
    """Asks one request at a time of ``client``, through ``cache``, within ``spending``."""

    client: ModelClient
    cache: CompletionCache | None
    spending: Spending
    trace: Trace
    max_tokens: int
    temperature: float
    evidence: bool  # drop findings without a matching quote, or ruled out

    async def ask(self, request: ReviewRequest, result: ReviewResult) -> Asked | None:
        """One request's findings, from the cache or the model; None: no JSON, twice."""
        messages = build_messages(request)
        grammar = not self.client.schema_in_prompt
        options = ChatOptions(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            json_schema=findings_schema(
                request.paths,
                # a grammar can end a looping list or string; a schema in the prompt stays
                max_items=most_findings(request) if grammar else None,
                bounded=grammar,
            ),
        )
        model, endpoint = self.client.describe(), endpoint_of(self.client)
        digest = prompt_digest(model, endpoint, messages, options)
        if self.cache is not None:
            cached = answer_of(self.cache.get(cache_key(digest)), model, endpoint, digest)
            answer = parse_answer(cached) if cached is not None else None
            if answer is not None and not answer.cut:
                result.cached_requests += 1
                self.trace.answer(request.paths, cached or "", cached=True)
                return self._checked(answer, request, result)
        cut, loop = None, False
        for _ in range(ASKS):
            if not self.spending.spend(options.max_tokens):
                break  # a cost cap: this request gets no more asks
            result.model_requests += 1
            text = await collect(self.client.chat(messages, options))
            self.trace.answer(request.paths, text, cached=False)
            answer = parse_answer(text)
            if answer is None:
                continue
            if answer.cut:
                cut, loop = answer, looping(text)
                if loop:
                    break  # greedy decoding would loop again, only longer
                options = replace(options, max_tokens=options.max_tokens * 2)
                continue
            if self.cache is not None:
                self.cache.set(cache_key(digest), entry(model, endpoint, digest, text))
            return self._checked(answer, request, result)
        if cut is not None:
            salvaged = loop and bool(cut.entries)  # only a loop was lost
            asked = self._checked(cut, request, result, incomplete=not salvaged)
            asked.truncated = salvaged
            return asked
        return None

    def _checked(
        self,
        answer: Answer,
        request: ReviewRequest,
        result: ReviewResult,
        incomplete: bool = False,
    ) -> Asked:
        """The answer's findings after the checks and, unless switched off, the evidence rules."""
        findings, dropped = check_findings(answer, request, self.trace)
        if self.evidence:
            return Asked(screen(findings, request, result, self.trace), dropped, incomplete)
        pairs = [(f, u) for f in findings if (u := unit_of(f, request)) is not None]
        return Asked(pairs, dropped + len(findings) - len(pairs), incomplete)
