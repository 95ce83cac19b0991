"""Bounded work: caps on files, model requests and tokens per review, and their spending.

A pull request decides how much there is to review, so without a cap it decides what
the review costs. The plan (files, then requests) is checked before anything is sent,
and every ask, retries included, is counted as it is made: a retry that would pass a
cap is not made (its request is reported as not, or incompletely, reviewed).
A request counts as its whole prompt budget plus its answer allowance: an upper bound,
so the cap holds whatever the tokenizer says.
"""

from __future__ import annotations

from dataclasses import dataclass

from tandem.review import exits

DEFAULT_MAX_FINDINGS = 200
DEFAULT_MAX_FILES = 300
DEFAULT_MAX_REQUESTS = 200
DEFAULT_MAX_TOKENS = 2_000_000
DEFAULT_MAX_VERIFY = 40  # second-pass questions per review
DEFAULT_THRESHOLD = 7  # second-pass score (0-10) a finding needs to count


class CapReached(Exception):
    """The review would pass a cost cap: nothing more is sent (exit 13)."""

    exit_code = exits.CAPPED


@dataclass(frozen=True)
class Limits:
    max_files: int = DEFAULT_MAX_FILES
    max_requests: int = DEFAULT_MAX_REQUESTS
    max_tokens: int = DEFAULT_MAX_TOKENS  # prompt budget + answer allowance, summed


@dataclass
class Spending:
    """What this review has asked of the model so far, against its limits."""

    limits: Limits
    budget: int  # prompt tokens per request
    requests: int = 0
    tokens: int = 0

    def check_files(self, files: int) -> None:
        if files > self.limits.max_files:
            raise CapReached(
                f"{files} files to review, over the cap of {self.limits.max_files} "
                "(--max-files): nothing was sent; review a smaller change or raise the cap"
            )

    def check_plan(self, requests: int, answer_tokens: int) -> None:
        if requests > self.limits.max_requests:
            raise CapReached(
                f"{requests} model requests needed, over the cap of {self.limits.max_requests} "
                "(--max-requests): nothing was sent"
            )
        tokens = requests * (self.budget + answer_tokens)
        if tokens > self.limits.max_tokens:
            raise CapReached(
                f"up to {tokens:,} tokens needed ({requests} request{'s' * (requests != 1)} of "
                f"{self.budget} + "
                f"{answer_tokens}), over the cap of {self.limits.max_tokens:,} "
                "(--max-total-tokens): nothing was sent"
            )

    def spend(self, answer_tokens: int) -> bool:
        """Count one ask; False (and nothing counted) when it would pass a cap."""
        cost = self.budget + answer_tokens
        if (
            self.requests + 1 > self.limits.max_requests
            or self.tokens + cost > self.limits.max_tokens
        ):
            return False
        self.requests += 1
        self.tokens += cost
        return True
