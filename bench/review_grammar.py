"""What bounding the review answer's strings costs llama.cpp's grammar-constrained sampling.

Where the findings schema is a grammar, ``quote``, ``rule``, ``message`` and
``suggestion`` carry a JSON-schema ``maxLength`` (``ask.GRAMMAR_LENGTHS``), so a looping
message is closed by the grammar rather than cut off with the whole answer. This asks the
embedded runtime (llama.cpp's server from ``xllamacpp``, started once) the same first-pass
request with the schema unbounded and bounded, in turns, greedily and without the prompt
cache, and prints the medians of llama.cpp's own timings (prompt, per generated token,
whole request) and the answers' lengths. Nothing is asserted.

    .venv/bin/python bench/review_grammar.py --model /path/to/model.gguf --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx

from review_precision import start_model
from tandem.review.ask import AFTER, RULES, SYSTEM, fence, findings_schema
from tandem.review.checklist import CHECK
from tandem.review.severity import kinds_text

from tables import table

CODE = """\
File: app/pricing.py
   10     def total(self, prices):
   11 -       if self.count >= 0:
   11 +       if self.count > 0:
   12             return sum(prices[s] * q for s, q in self.items.items())
   13         return 0
"""


def messages() -> list[dict[str, str]]:
    data, _ = fence('Files under review: ["app/pricing.py"]\n\n' + CODE)
    user = (
        f"Review the change below (1 file).\n\n{RULES.format(kinds=kinds_text())}\n\n{data}"
        f"\n\n{AFTER}\n\n{CHECK.format(rows='line 11 of file 1')}"
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def ask(client: httpx.Client, url: str, bounded: bool, max_tokens: int) -> dict[str, float]:
    schema = findings_schema(("app/pricing.py",), max_items=3, bounded=bounded)
    body = {
        "messages": messages(),
        "max_tokens": max_tokens,
        "temperature": 0,
        "cache_prompt": False,
        "response_format": {"type": "json_object", "schema": schema},
    }
    start = time.monotonic()
    reply = client.post(f"{url}/v1/chat/completions", json=body).json()
    wall = (time.monotonic() - start) * 1000
    timings = reply.get("timings", {})
    text = reply["choices"][0]["message"]["content"]
    return {
        "prompt_ms": timings.get("prompt_ms", float("nan")),
        "per_token_ms": timings.get("predicted_per_token_ms", float("nan")),
        "tokens": timings.get("predicted_n", float("nan")),
        "wall_ms": wall,
        "chars": len(text),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a GGUF code model")
    parser.add_argument("--runs", type=int, default=3, help="requests per schema, in turns")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=1024)
    args = parser.parse_args()
    proc, url = start_model(args.model, args.threads)
    seen: dict[str, list[dict[str, float]]] = {"unbounded": [], "bounded": []}
    try:
        with httpx.Client(timeout=1800, trust_env=False) as client:
            for _ in range(args.runs):
                for label in seen:
                    seen[label].append(ask(client, url, label == "bounded", args.max_tokens))
    finally:
        proc.terminate()
        proc.wait()
    rows = []
    for label, runs in seen.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rows.append([label, f"{med['prompt_ms']:.0f}", f"{med['per_token_ms']:.1f}",
                     f"{med['tokens']:.0f}", f"{med['wall_ms'] / 1000:.1f}",
                     f"{med['chars']:.0f}"])  # fmt: skip
    header = ["schema", "prompt ms", "ms / generated token", "tokens", "s / request", "chars"]
    print(table(header, rows))


if __name__ == "__main__":
    main()
