"""Completion quality: holes cut from real code, filled by Tandem and by the bare model.

Run from the project root (a GGUF code model; see README "Completion quality")::

    .venv/bin/python bench/quality.py --model-path /work/models/qwen0.5b.gguf --holes 40
    .venv/bin/python bench/quality.py --url http://127.0.0.1:8080 --holes 40   # a running llama.cpp

The corpus is the pure-Python source of packages installed in this venv (pathspec, unidiff,
attrs, packaging, idna: permissively licensed, and no model here wrote them), copied into a
scratch workspace. Holes: ``line``, ``block`` and ``midline`` placements
(``tandem.evaluation.holes``). Paths: ``fim`` (the openai provider with the model's FIM
tokens on llama.cpp's ``/v1/completions``) and ``chat`` (the ``chat`` template on
``/v1/chat/completions``: what chat-only deployments get). Each hole goes through the real
pipeline (``tandem.evaluation.runner``: prepare, read_answer, clean, as ``tandem complete``)
and, beside it, to the same server with the same prefix and suffix as a bare FIM prompt (or
the bare hole-filling chat), read as Tandem reads it (one line or a block, by the same
decision). Two baselines: "alone" is that answer cut as the bench knows the hole (its first
line for line and midline holes, all of it for blocks; of a chat reply, its largest fenced
block), which an editor could not know: the bar Tandem is held to; "alone, as asked" is cut
by Tandem's own one-line/block decision, as an editor without post-processing shows it.
"Tandem, cut" is Tandem's text cut the way "alone" is (the first line on line and midline
holes): the like-for-like comparison, where neither keeps lines past the hole's known shape
(Tandem offers a compound statement with its body, or the rest of a block, where an editor
cannot know that the hole was one line). Printed per path x placement: exact match, edit
similarity, empty rate, the holes where Tandem gave nothing although the bare model's first
line was usable (``usable``), and the holes Tandem lost, by cause (``cause``). Tandem
against "alone" is also given hole by hole: the mean difference with its 95% bootstrap
interval, and holes won/tied/lost (a small sample's means move by a hole or two that flip).
Greedy decoding: the same model gives the same table. ``--answers FILE`` remembers raw
answers by request; with ``--replay`` no model runs and only remembered holes are scored, so
a change to post-processing is measured again in seconds. ``--without NAME`` switches a
post-processing lever off (``postprocess.LEVERS``) to measure what it is worth. Everything
printed is a measurement; nothing is asserted."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tables import table

ROOT = Path(__file__).resolve().parent.parent

from tandem.chat_prompts import extract_code  # noqa: E402
from tandem.completion import read_answer  # noqa: E402
from tandem.config import load_settings  # noqa: E402
from tandem.context.chatreply import recover_hole  # noqa: E402
from tandem.context.languages import language_for_path  # noqa: E402
from tandem.context.postprocess import LEVERS  # noqa: E402
from tandem.context.prompt import PromptBudget, without_indent  # noqa: E402
from tandem.evaluation.holes import PLACEMENTS, Hole, cut_holes  # noqa: E402
from tandem.evaluation.metrics import Score, edit_similarity, paired, score, summarise  # noqa: E402
from tandem.evaluation.runner import Filled, fill  # noqa: E402
from tandem.workspace import Workspace, open_workspace  # noqa: E402

PACKAGES = ("pathspec", "unidiff", "attr", "packaging", "idna")
SKIP_FILES = ("idnadata.py", "uts46data.py", "_version.py", "__init__.py")
PATHS = ("fim", "chat")
USABLE = 0.5  # edit similarity of the bare model's first line to the hole's: "usable"


def corpus(dest: Path) -> list[Path]:
    """The packages' Python files, copied under ``dest`` (the scratch workspace)."""
    import importlib

    files: list[Path] = []
    for name in PACKAGES:
        package = Path(importlib.import_module(name).__file__ or "").parent
        for src in sorted(package.rglob("*.py")):
            if src.name in SKIP_FILES or "test" in src.name:
                continue
            target = dest / name / src.relative_to(package)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            files.append(target)
    return files


def pick(files: list[Path], placement: str, count: int, seed: int) -> list[Hole]:
    every: list[Hole] = []
    for path in files:
        spec = language_for_path(path)
        if spec is not None:
            every += cut_holes(path, path.read_text(), spec, placement, 10**6, seed)
    rng = random.Random(f"{seed}:{placement}")
    return sorted(rng.sample(every, min(count, len(every))), key=lambda h: (str(h.path), h.line))


def start_server(model: Path, ctx: int) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "tandem.models.llamaserver", "--model", str(model),
               "--ctx", str(ctx), "--threads", "1", "--parallel", "1"]  # fmt: skip
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"the model server did not start ({proc.wait()})")
    return proc, json.loads(line)["url"]


def workspace(root: Path, url: str, path: str, args: argparse.Namespace) -> Workspace:
    keys = {
        "completion.provider": "openai",
        "completion.endpoint": url + "/v1",
        "completion.model": "qwen2.5-coder",
        "completion.fim": "qwen" if path == "fim" else "chat",
        "completion.temperature": 0.0,
        "completion.max_tokens": args.max_tokens,
        "completion.context_tokens": args.budget,
        "timeout": 600,
    }
    settings = load_settings(root, environ={"HOME": str(root)}, overrides=keys)
    settings = dataclasses.replace(settings, cache_dir=root / ".cache")
    ws = open_workspace(settings, root, cache=None)
    if args.no_context:  # the prompt without cross-file context: what that context is worth
        total = ws.completion_budget().total
        ws.completion_budget = lambda total=total: PromptBudget(total=total, context_share=0.0)  # type: ignore[method-assign]
    return ws


# Per path x placement: Tandem's scores, the bare model's (as shown; as asked), the empty
# answers where the bare model's first line was usable, and why Tandem lost where it did.
Result = tuple[list[Score], list[Score], list[Score], list[Score], Counter[str], dict[str, int]]


class Missing(Exception):
    """``--replay``: an answer the file does not remember."""


async def alone(
    ws: Workspace, filled: Filled, answers: dict[str, str], replay: bool
) -> tuple[str, float]:
    """The same model asked directly: the bare FIM prompt (or chat) on the same prefix/suffix,
    read as Tandem reads (one line or a block, by the same decision). Raw answer, latency."""
    prepared = filled.prepared
    client, wire = ws.models.completion, prepared.wire
    parts = {p.kind: p.text for p in prepared.prompt.parts}
    prefix, suffix = parts.get("prefix", ""), parts.get("suffix", "")
    # The bare model is asked with the text up to the cursor as it is: Tandem's FIM
    # prompt leaves out a blank cursor line's indentation, which goes back here.
    cursor = prepared.cursor
    before, after = cursor.text[: cursor.offset], cursor.text[cursor.offset :]
    if not wire.chat:
        prefix += before[len(without_indent(before, after)) :]
    template = client.template
    if wire.chat:
        spec = prepared.cursor.spec
        messages = template.render_chat(prefix, suffix, language=spec.name if spec else None)
        body = {**wire.body, "messages": messages}
    else:
        body = {**wire.body, "prompt": template.render(prefix, suffix)}
    bare = dataclasses.replace(wire, body=body)
    key = json.dumps(["alone", bare.path, body], sort_keys=True)
    started = time.perf_counter()
    raw = answers.get(key)
    if raw is None and bare.path == wire.path and body == wire.body:
        raw = answers[key] = filled.first  # the very request Tandem sent (no context, no scope)
    if raw is None and replay:
        raise Missing(key)
    if raw is None:
        block = prepared.multiline or wire.chat
        raw = await read_answer(client, bare, prepared.prompt.request.max_tokens, block)
        answers[key] = raw
    elapsed = (time.perf_counter() - started) * 1000
    return raw, elapsed


def shown(raw: str, filled: Filled, one_line: bool) -> str:
    """The bare answer as an editor shows it: a chat reply's code, one line or all of it."""
    prepared = filled.prepared
    text = (extract_code(raw) or "") if prepared.wire.chat else raw
    if one_line:
        cursor = prepared.cursor
        text = first_line(text, cursor.text[: cursor.offset])
    return text.rstrip()


def first_line(text: str, prefix: str) -> str:
    """What an editor shows of a one-line answer: on a blank line, the first one with code."""
    return text.lstrip("\n").split("\n")[0] if not prefix.split("\n")[-1].strip() else (
        text.split("\n")[0])  # fmt: skip


def cause(filled: Filled, alone_text: str, alone_score: Score) -> str | None:
    """Why Tandem scored below the bare model on a hole (None: it did not).

    ``empty``: post-processing (or the chat reply) gave nothing; ``prompt``: Tandem's own
    request (its context) made the model start differently; with the same first line,
    ``more lines`` or ``fewer lines`` than the bare answer shown, or ``line changed`` (a cut
    of the end that repeats the rest of the line).
    """
    if filled.score.similarity >= alone_score.similarity:
        return None
    if filled.score.empty:
        return "empty"
    raw = filled.raw
    if filled.prepared.wire.chat:
        cursor = filled.prepared.cursor
        before, after = cursor.text[: cursor.offset], cursor.text[cursor.offset :]
        raw = recover_hole(before, after, raw).text or ""
    mine = " ".join(raw.strip("\n").split("\n")[0].split())
    theirs = " ".join(alone_text.strip("\n").split("\n")[0].split())
    if mine != theirs:
        return "prompt"
    mine_lines, theirs_lines = filled.text.count("\n"), alone_text.strip("\n").count("\n")
    if mine_lines != theirs_lines:
        return "more lines" if mine_lines > theirs_lines else "fewer lines"
    return "line changed"


def usable(alone_text: str, hole: Hole) -> bool:
    """Whether the bare model's first line is worth showing: close to the hole's first line
    (edit similarity at least ``USABLE``)."""
    got = alone_text.strip("\n").split("\n")[0]
    want = hole.expected.strip("\n").split("\n")[0]
    return bool(got.strip()) and edit_similarity(got, want) >= USABLE


class Remembered(dict[str, str]):
    """``--replay``: the answers file only; a request it does not hold is skipped."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        if key not in self:
            raise Missing(key)
        return self[key]


def load_answers(path: str | None) -> dict[str, str]:
    if not path or not Path(path).exists():
        return {}
    for _ in range(5):  # another run may be writing it
        try:
            return json.loads(Path(path).read_text())
        except json.JSONDecodeError:
            time.sleep(1)
    raise SystemExit(f"{path}: not a JSON answers file")


async def run(args: argparse.Namespace) -> None:
    answers = load_answers(args.answers)
    if args.replay:
        answers = Remembered(answers)
    proc = None
    url = args.url or "http://127.0.0.1:9"  # --replay: never asked
    if args.model_path and not args.replay:
        proc, url = start_server(args.model_path, args.ctx)
    results: dict[tuple[str, str], Result] = {}
    details: list[dict[str, object]] = []
    skipped = 0
    with tempfile.TemporaryDirectory(prefix="tandem-quality-") as scratch:
        root = Path(scratch)
        (root / ".git").mkdir()
        files = corpus(root)
        holes = {p: pick(files, p, args.holes, args.seed) for p in args.placements}
        try:
            for path in args.paths:
                ws = workspace(root, url, path, args)
                try:
                    for placement, chosen in holes.items():
                        ours, cut, theirs, plain = [], [], [], []
                        tally = Counter[str]()
                        causes: dict[str, int] = {}
                        for i, hole in enumerate(chosen):
                            try:
                                filled = await fill(ws, hole, answers=answers)
                                raw, ms = await alone(ws, filled, answers, args.replay)
                            except Missing:
                                skipped += 1
                                continue
                            # The bench knows a line hole wants one line; Tandem does not.
                            text = shown(raw, filled, placement != "block")
                            asked = shown(raw, filled, not filled.prepared.multiline)
                            ours.append(filled.score)
                            mine = filled.text
                            if placement != "block":  # as "alone" is cut: the first line
                                at = filled.prepared.cursor
                                mine = first_line(mine, at.text[: at.offset])
                            cut.append(score(mine.rstrip(), hole.expected, filled.score.elapsed_ms))
                            theirs.append(score(text, hole.expected, ms))
                            plain.append(score(asked, hole.expected, ms))
                            first_usable = usable(text, hole)
                            tally["lost"] += filled.score.empty and first_usable
                            tally["alone"] += first_usable
                            tally["Tandem"] += usable(filled.text, hole)
                            why = cause(filled, text, theirs[-1])
                            if why:
                                causes[why] = causes.get(why, 0) + 1
                            cursor = filled.prepared.cursor
                            before, after = (
                                cursor.text[: cursor.offset],
                                cursor.text[cursor.offset :],
                            )
                            details.append({"path": path, "placement": placement,
                                            "file": str(hole.path.relative_to(root)),
                                            "line": hole.line, "expected": hole.expected,
                                            "tandem": filled.text, "alone": text,
                                            "alone_asked": asked,
                                            "raw": filled.raw, "alone_raw": raw,
                                            "first_raw": filled.first,
                                            "multiline": filled.prepared.multiline,
                                            "prefix_tail": before[-300:],
                                            "suffix_head": after[:300],
                                            "sim_tandem": filled.score.similarity,
                                            "sim_alone": theirs[-1].similarity,
                                            "sim_tandem_cut": cut[-1].similarity,
                                            "usable": usable(text, hole),
                                            "cause": why})  # fmt: skip
                            print(f"\r{path} {placement} {i + 1}/{len(chosen)}", end="",
                                  file=sys.stderr, flush=True)  # fmt: skip
                            if args.answers and not args.replay:
                                Path(args.answers).write_text(json.dumps(answers))
                        results[(path, placement)] = (ours, cut, theirs, plain, tally, causes)
                finally:
                    await ws.aclose()
        finally:
            if proc is not None:
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(timeout=30)
    print(file=sys.stderr)
    if skipped:
        print(f"--replay: {skipped} holes skipped (answers not in {args.answers})", file=sys.stderr)
    if args.details:
        Path(args.details).write_text(json.dumps(details, indent=1, ensure_ascii=False))
    rows = []
    for (path, placement), (ours, cut, theirs, plain, tally, causes) in results.items():
        t, a, b, c = summarise(ours), summarise(theirs), summarise(plain), summarise(cut)
        d, e = paired(ours, theirs), paired(cut, theirs)
        worse = ", ".join(f"{n} {why}" for why, n in sorted(causes.items())) or "0"
        rows.append([path, placement, str(t.holes),
                     f"{a.exact:.0%}", f"{t.exact:.0%}", f"{a.similarity:.3f}",
                     f"{b.similarity:.3f}", f"{t.similarity:.3f}",
                     f"{d.difference:+.3f} [{d.low:+.3f}, {d.high:+.3f}]",
                     f"{d.wins}/{d.ties}/{d.losses}", f"{c.similarity:.3f}",
                     f"{e.difference:+.3f} [{e.low:+.3f}, {e.high:+.3f}]", f"{a.empty:.0%}",
                     f"{t.empty:.0%}", f"{tally['alone']} / {tally['Tandem']}",
                     str(tally["lost"]),
                     str(worse)])  # fmt: skip
    headers = ["path", "placement", "holes", "exact alone", "exact Tandem", "edit sim alone",
               "edit sim alone, as asked", "edit sim Tandem", "Tandem - alone [95%]",
               "won/tied/lost", "edit sim Tandem, cut", "Tandem, cut - alone [95%]",
               "empty alone", "empty Tandem",
               "first line usable: alone / Tandem", "empty, alone usable",
               "Tandem worse (cause)"]  # fmt: skip
    print(table(headers, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--model-path", type=Path, help="a GGUF file: the bench starts llama.cpp")
    where.add_argument("--url", help="a running llama.cpp server (http://host:port)")
    parser.add_argument("--holes", type=int, default=60, help="holes per placement")
    parser.add_argument("--placements", nargs="+", default=list(PLACEMENTS))
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--budget", type=int, default=512, help="prompt tokens (context_tokens)")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--answers", help="JSON file remembering raw answers by request")
    parser.add_argument("--details", help="write every hole's expected and filled text here")
    parser.add_argument(
        "--no-context",
        action="store_true",
        help="Tandem's prompt without cross-file context (context_share 0), to measure it",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="no model: score only the holes whose answers --answers remembers",
    )
    parser.add_argument(
        "--without",
        nargs="+",
        default=[],
        choices=sorted(LEVERS),
        help="switch post-processing levers off, to measure what each is worth",
    )
    args = parser.parse_args()
    if not args.replay and not (args.model_path or args.url):
        parser.error("one of --model-path, --url (or --replay with --answers) is required")
    if args.replay and not args.answers:
        parser.error("--replay needs --answers FILE")
    for name in args.without:
        LEVERS[name] = False
    os.environ.pop("TANDEM_MODEL_PATH", None)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
