"""Benchmark of the secret redactor: speed per prompt, false positives on real code, recall.

Run from the project root::

    .venv/bin/python bench/redaction.py                 # a minute or so
    .venv/bin/python bench/redaction.py --quick         # a tenth of the files
    .venv/bin/python bench/redaction.py --compare       # also detect-secrets' own engine

1. Speed: prompts of 2,000 tokens (o200k) cut from the venv's larger ``.py`` files, each
   redacted uncached (``find_secrets``, and ``redact_body`` on an OpenAI FIM body), and the
   same prompt again (cached, as when a request is retried). Then a 2k-token prompt made of
   the planted-secrets corpus (every rule fires).
2. False positives: every ``.py`` file in the venv's site-packages (code we did not write)
   and this repository's own code; redactions per 10,000 lines, by kind, each one listed.
3. Recall: the planted secrets of ``tests/data/secrets`` that ``redact_text`` removes.
4. ``--compare``: detect-secrets' scan engine with its default plugins and filters
   (``scan_line``) on a sample of the same files: time per line and findings per 10k lines.

Everything printed is a measurement; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

from tandem.models.redact import find_secrets, redact_body, redact_text, rules
from tandem.models.tokens import openai_bpe

from tables import percentile, table

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(sysconfig.get_paths()["purelib"])
CORPUS = ROOT / "tests" / "data" / "secrets"
PROMPT_TOKENS = 2000


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def prompts_from(texts: list[str], count: int, seed: int = 1) -> list[str]:
    """Windows of ``PROMPT_TOKENS`` tokens of code, whole lines, from random places."""
    bpe = openai_bpe("o200k_base")
    rng = random.Random(seed)
    big = [t for t in texts if len(t) > 20_000]
    out = []
    for text in rng.sample(big, min(count, len(big))):
        lines = text.split("\n")
        start = rng.randrange(0, max(1, len(lines) - 400))
        kept: list[str] = []
        for line in lines[start:]:
            if bpe.count("\n".join([*kept, line])) > PROMPT_TOKENS:
                break
            kept.append(line)
        out.append("\n".join(kept))
    return out


def timed(function, argument, repeat: int = 1) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        function(argument)
    return (time.perf_counter() - started) / repeat


def speed(texts: list[str], count: int) -> None:
    prompts = prompts_from(texts, count)
    bpe = openai_bpe("o200k_base")
    tokens = statistics.mean(bpe.count(p) for p in prompts)
    rules()  # loading the rules (detect-secrets' import) is a one-off, timed apart
    uncached = [timed(find_secrets, p) for p in prompts]
    bodies = [{"model": "m", "prompt": p, "max_tokens": 64, "stop": ["\n\n"]} for p in prompts]
    redact_text.cache_clear()
    whole = [timed(redact_body, b) for b in bodies]
    cached = [timed(redact_body, b) for b in bodies]
    corpus = "\n".join(read(p) for p in sorted(CORPUS.iterdir()) if p.name != "planted.json")
    dense = prompts_from([corpus * 3], 1)[0]
    redact_text.cache_clear()
    dense_ms = timed(redact_text, dense)
    rows = []
    for name, values in (("find_secrets", uncached), ("redact_body", whole), ("cached", cached)):
        rows.append([name, *(f"{percentile(values, q) * 1000:.2f}" for q in (50, 95, 100))])
    rows.append(["corpus prompt (every rule fires)", f"{dense_ms * 1000:.2f}", "", ""])
    print(f"\n## 1. Speed: {len(prompts)} prompts of ~{tokens:.0f} tokens (o200k)\n")
    print(table(["", "p50 ms", "p95 ms", "max ms"], rows))
    code = "import time; t = time.perf_counter(); from tandem.models.redact import rules; "
    code += "rules(); print((time.perf_counter() - t) * 1000)"
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(f"\nloading the rules in a new process (imports detect-secrets): {float(cold.stdout):.0f}"
          " ms, once per process (the language server does it at start)")  # fmt: skip


def false_positives(files: list[Path], label: str, show: int = 40) -> None:
    lines = 0
    hits: list[tuple[str, int, str, str]] = []
    started = time.perf_counter()
    for path in files:
        text = read(path)
        lines += text.count("\n") + 1
        for found in find_secrets(text):
            number = text.count("\n", 0, found.start) + 1
            line = text.split("\n")[number - 1].strip()
            hits.append((str(path.relative_to(path.anchor)), number, found.kind, line[:110]))
    seconds = time.perf_counter() - started
    rate = len(hits) / max(lines, 1) * 10_000
    print(f"\n## 2. False positives: {label}\n")
    print(
        table(
            ["files", "lines", "redactions", "per 10k lines", "seconds"],
            [[f"{len(files):,}", f"{lines:,}", str(len(hits)), f"{rate:.3f}", f"{seconds:.1f}"]],
        )
    )
    if hits:
        print("\nby kind: " + ", ".join(f"{k} {n}" for k, n in Counter(h[2] for h in hits).items()))
        for path, number, kind, line in hits[:show]:
            print(f"- {path}:{number} [{kind}] {line}")


def recall() -> None:
    planted: dict[str, list[str]] = json.loads((CORPUS / "planted.json").read_text())
    total = sum(len(v) for v in planted.values())
    missed = [
        (name, value[:24])
        for name, values in planted.items()
        for value in values
        if value in redact_text(read(CORPUS / name))
    ]
    print(f"\n## 3. Recall on the planted corpus: {total - len(missed)}/{total} secrets removed")
    for name, value in missed:
        print(f"- missed in {name}: {value}...")


def compare(files: list[Path], max_lines: int) -> None:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    lines: list[str] = []
    for path in files:
        lines.extend(read(path).split("\n"))
        if len(lines) >= max_lines:
            break
    with default_settings():
        started = time.perf_counter()
        found = Counter(s.type for line in lines for s in scan_line(line))
        seconds = time.perf_counter() - started
    ours = sum(len(find_secrets(line)) for line in lines)
    total = sum(found.values())
    print(f"\n## 4. detect-secrets' own engine on {len(lines):,} lines\n")
    per_line = seconds / len(lines)
    theirs = ["detect-secrets scan_line", f"{per_line * 1e6:.0f}", f"{per_line * 250 * 1000:.0f}"]
    theirs.append(f"{total / len(lines) * 1e4:.0f}")
    mine = ["tandem find_secrets (same lines)", "", "", f"{ours / len(lines) * 1e4:.2f}"]
    headers = ["engine", "µs per line", "ms per 2k-token prompt (~250 lines)", "per 10k lines"]
    print(table(headers, [theirs, mine]))
    print("\nits findings by type: " + ", ".join(f"{k} {n}" for k, n in found.most_common()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every tenth file")
    parser.add_argument("--compare", action="store_true", help="also detect-secrets' engine")
    args = parser.parse_args()
    print(f"# Redaction benchmark ({platform.python_implementation()} {platform.python_version()}"
          f", {platform.machine()})")  # fmt: skip
    files = sorted(SITE.rglob("*.py"))
    if args.quick:
        files = files[::10]
    texts = [read(p) for p in files]
    speed(texts, 60 if args.quick else 200)
    false_positives(files, f"{SITE} (*.py)")
    own = [p for d in ("server", "bench", "examples") for p in sorted((ROOT / d).rglob("*.py"))]
    false_positives(own, "this repository's code (server/, bench/, examples/)")
    recall()
    if args.compare:
        compare(files[::7], 20_000)


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
