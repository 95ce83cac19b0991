"""Cached review answers that carry what they answer, and are checked on read.

The cache key is a digest of the model, the endpoint and the exact request; the entry
stores those again next to the answer, so an entry written for another model, endpoint
or prompt (a stale format, a copied cache, a planted row) is a miss, never an answer.
Only complete answers are stored: one cut off mid-JSON is never cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from tandem.models.base import ChatMessage, ChatOptions

CACHE_VERSION = 2


def prompt_digest(
    model: str, endpoint: str, messages: Sequence[ChatMessage], options: ChatOptions
) -> str:
    """The model, the endpoint and the exact request: any change to them asks again."""
    blob = json.dumps(
        [
            CACHE_VERSION,
            model,
            endpoint,
            [m.as_dict() for m in messages],
            options.json_schema,
            options.max_tokens,
            options.temperature,
        ],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def cache_key(digest: str) -> str:
    return "review:" + digest


def entry(model: str, endpoint: str, digest: str, answer: str) -> str:
    data = {"v": CACHE_VERSION, "model": model, "endpoint": endpoint, "prompt": digest}
    return json.dumps({**data, "answer": answer}, ensure_ascii=False)


def answer_of(stored: str | None, model: str, endpoint: str, digest: str) -> str | None:
    """The stored answer, if the entry was written for exactly this model, endpoint, prompt."""
    if stored is None:
        return None
    try:
        data: Any = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    expected = {"v": CACHE_VERSION, "model": model, "endpoint": endpoint, "prompt": digest}
    if any(data.get(k) != v for k, v in expected.items()):
        return None
    answer = data.get("answer")
    return answer if isinstance(answer, str) else None
