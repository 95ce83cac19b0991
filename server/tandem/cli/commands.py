"""What each ``tandem`` command does: read its input, use a workspace, print the output.

Each command gets its models, index, context engine, cache and exclusion rules from
``open_workspace``; nothing here builds them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tandem import __version__
from tandem import chat_prompts as prompts
from tandem.cli.args import MODEL_FLAGS, UsageError, overrides, parse_location
from tandem.completion import PositionError, Prepared, finish, offset_at, prepare
from tandem.config import find_root, load_settings, setting_rows
from tandem.context.engine import Cursor
from tandem.context.languages import language_for_path
from tandem.context.prompt import PromptBudget
from tandem.models import (
    ChatMessage,
    ChatOptions,
    FimRequest,
    ModelClient,
    Models,
    build_models,
    collect,
)
from tandem.models.base import bounded
from tandem.models.errors import ModelError
from tandem.models.redact import redact_body
from tandem.models.tokens import Tokenizer
from tandem.review.exits import exit_code as review_exit_code
from tandem.review.formats import render as render_review
from tandem.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from tandem.review.trace import Trace


def read_source(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if b"\0" in data[:8192]:
        raise UsageError(f"{path} looks like a binary file")
    return data.decode("utf-8", errors="replace")


def workspace_for(
    args: argparse.Namespace, path: Path | None, *, index: bool = True, cache: str | None = None
) -> Workspace:
    """The workspace holding ``path`` (``--root``, its git repository, or cwd)."""
    root = find_root(path, args.root)
    settings = load_settings(root, overrides=overrides(args))
    return open_workspace(settings, root, index=index, cache=cache)


def refuse_excluded(path: Path, workspace: Workspace) -> None:
    """Nothing of an excluded file is sent, whatever the command: one line, exit 2."""
    reason = workspace.excluded(path.resolve(), max_bytes=2**62)
    if reason is not None and not reason.about_content:  # binary: read_source says so
        raise UsageError(f"{path} is excluded from Tandem ({reason}); nothing of it is sent")


def cursor_for(args: argparse.Namespace, workspace: Workspace) -> tuple[Cursor, int, int]:
    path, line, column = parse_location(args.location)
    refuse_excluded(path, workspace)
    text = read_source(path)
    try:
        offset = offset_at(text, line, column)
    except PositionError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return Cursor(text, offset, path.resolve()), line, column


def budget_for(args: argparse.Namespace, workspace: Workspace) -> PromptBudget:
    budget = workspace.completion_budget(args.budget)
    if budget.total < 64:
        raise UsageError(f"--budget {budget.total} is too small (at least 64 tokens)")
    return budget


async def prepare_at(args: argparse.Namespace, workspace: Workspace, cursor: Cursor) -> Prepared:
    """The first half of a completion, shared by ``complete`` and ``context``."""
    budget = budget_for(args, workspace)
    engine, completion = workspace.engine, workspace.settings.completion
    if workspace.index is not None:
        await asyncio.to_thread(workspace.index.build)
    cursor = await asyncio.to_thread(engine.parse, cursor)  # the one parse of this request
    neighbours = await asyncio.to_thread(workspace.neighbours, cursor, workspace.recent_files())
    return await prepare(
        engine,
        workspace.models.completion,
        cursor,
        budget=budget,
        max_tokens=args.max_tokens or completion.max_tokens,
        temperature=completion.temperature,
        neighbours=neighbours,
    )


async def run_complete(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    path = parse_location(args.location)[0]
    workspace = workspace_for(args, path, cache=None if args.no_cache else "completions")
    try:
        cursor, line, column = cursor_for(args, workspace)
        prepared = await prepare_at(args, workspace, cursor)
        result = await finish(workspace.models.completion, prepared, workspace.cache, started)
    finally:
        await workspace.aclose()
    if args.json:
        payload = {
            "text": result.text,
            "path": str(cursor.path),
            "line": line,
            "column": column,
            "model": result.model,
            "template": result.template,
            "multiline": result.multiline,
            "prompt_tokens": result.prompt_tokens,
            "cached": result.cached,
            "elapsed_ms": round(result.elapsed_ms, 1),
        }
        print(json.dumps(payload, ensure_ascii=False))
    else:
        sys.stdout.write(result.text + ("\n" if result.text else ""))
    return 0


async def run_context(args: argparse.Namespace) -> int:
    workspace = workspace_for(args, parse_location(args.location)[0])
    try:
        cursor, _, _ = cursor_for(args, workspace)
        prepared = await prepare_at(args, workspace, cursor)
        tokenizer = await workspace.models.completion.tokenizer()
    finally:
        await workspace.aclose()
    client = workspace.models.completion
    # The object sent, as sent: HttpEndpoint redacts a body with this same function.
    body = redact_body(prepared.wire.body)
    shown = body.get("prompt", body)
    if args.json:
        print(json.dumps(context_json(prepared, body, client, tokenizer), ensure_ascii=False,
                         indent=2))  # fmt: skip
        return 0
    sys.stdout.write(shown if isinstance(shown, str) else json.dumps(shown, indent=2) + "\n")
    sys.stdout.flush()
    prompt = prepared.prompt
    print(
        f"-- {prompt.tokens}/{prompt.budget} tokens ({tokenizer.name}), "
        f"{'block' if prepared.multiline else 'single line'}, "
        f"{client.describe()} template {client.template.name}",
        file=sys.stderr,
    )
    for part in prompt.parts:
        print(f"--   {part.kind:<10} {part.tokens:>5}  {part.path}", file=sys.stderr)
    return 0


def context_json(
    prepared: Prepared, body: dict[str, Any], client: ModelClient, tokenizer: Tokenizer
) -> dict[str, Any]:
    """``tandem context --json``: the request as sent, and the parts it was built from."""
    prompt = prepared.prompt
    return {
        "prompt": body.get("prompt", body),
        "request": {"path": prepared.wire.path, "body": body},
        "model": client.describe(),
        "template": client.template.name,
        "tokens": prompt.tokens,
        "budget": prompt.budget,
        "tokenizer": tokenizer.name,
        "exact": tokenizer.exact,
        "multiline": prepared.multiline,
        "parts": redact_body([p.as_dict() for p in prompt.parts]),
        "dropped": redact_body([p.as_dict() for p in prompt.dropped]),
    }


def chat_messages(question: str, path: Path | None, lines: str | None) -> list[ChatMessage]:
    if path is None:
        if lines:
            raise UsageError("--lines needs --file")
        return prompts.chat_messages(question)
    all_lines = read_source(path).splitlines()
    first, last = 1, len(all_lines)
    if lines:
        try:
            a, _, b = lines.partition("-")
            first, last = int(a), int(b or a)
        except ValueError:
            raise UsageError(f"--lines takes A-B, got {lines!r}") from None
        if not 1 <= first <= last <= len(all_lines):
            raise UsageError(f"--lines {lines} is outside {path} (1-{len(all_lines)})")
    spec = language_for_path(path)
    selection = prompts.Selection(
        path=str(path),
        code="\n".join(all_lines[first - 1 : last]),
        language=spec.name if spec else None,
        lines=(first, last) if lines else None,
    )
    return prompts.chat_messages(question, selection)


async def run_chat(args: argparse.Namespace) -> int:
    workspace = workspace_for(args, args.file, index=False)
    wrote_newline = True
    try:
        if args.file is not None:
            refuse_excluded(args.file, workspace)
        messages = chat_messages(" ".join(args.question), args.file, args.lines)
        client, chat = workspace.models.chat, workspace.settings.chat
        options = ChatOptions(max_tokens=args.max_tokens or chat.max_tokens,
                              temperature=chat.temperature)  # fmt: skip
        async for piece in bounded(client.chat(messages, options), options.max_tokens,
                                   client.describe()):  # fmt: skip
            sys.stdout.write(piece)
            sys.stdout.flush()
            wrote_newline = piece.endswith("\n")
    finally:
        if not wrote_newline:
            sys.stdout.write("\n")
        await workspace.aclose()
    return 0


async def _probe(models: Models, role: str) -> tuple[float, str]:
    started = time.perf_counter()
    if role == "completion":
        request = FimRequest(prefix="def add(a, b):\n    return", suffix="\n", max_tokens=8)
        answer = await collect(models.completion.complete(request))
    else:
        messages = [ChatMessage("user", "Reply with the single word: ok")]
        answer = await collect(models.chat.chat(messages, ChatOptions(max_tokens=8)))
    return (time.perf_counter() - started) * 1000, answer


async def run_doctor(args: argparse.Namespace) -> int:
    root = find_root(None, args.root)
    settings = load_settings(root, overrides=overrides(args))
    print(f"tandem {__version__}")
    print(f"workspace root: {root}")
    rows = setting_rows(settings)
    width = max(len(k) for k, _, _ in rows)
    vwidth = min(60, max(len(v) for _, v, _ in rows))
    for key, value, source in rows:
        print(f"  {key:<{width}}  {value:<{vwidth}}  [{source}]")
    models = build_models(settings)
    status = 0
    try:
        for role in ("completion", "chat"):
            client = getattr(models, role)
            try:
                latency, answer = await _probe(models, role)
            except ModelError as exc:
                print(f"{role:<10} {client.describe()}: FAILED: {exc.one_line()}")
                status = status or exc.exit_code
            else:
                shown = " ".join(answer.split())[:40]
                print(f"{role:<10} {client.describe()}: ok, {latency:.0f} ms, answered {shown!r}")
    finally:
        await models.aclose()
    return status


def run_serve(args: argparse.Namespace) -> int:
    """Not async: pygls runs its own event loop. Logs go to stderr, never stdout."""
    import logging

    from tandem.lsp.server import serve_stdio, serve_tcp

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    # Flags become environment settings: the editor's own options still win over them.
    for flag, (_, variable) in MODEL_FLAGS.items():
        if getattr(args, flag) is not None:
            os.environ[variable] = str(getattr(args, flag))
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        try:
            serve_tcp(host or "127.0.0.1", int(port))
        except ValueError:
            raise UsageError(f"--tcp takes HOST:PORT, got {args.tcp!r}") from None
    else:
        serve_stdio()
    return 0


def read_diff(name: str) -> str:
    """The text of ``--diff``: a file, or stdin for ``-``."""
    if name == "-":
        return sys.stdin.buffer.read().decode("utf-8", "replace")
    try:
        return Path(name).read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise UsageError(f"cannot read --diff {name}: {exc.strerror}") from None


async def run_review(args: argparse.Namespace) -> int:
    from tandem.review.command import Checks, review
    from tandem.review.diff import DiffError
    from tandem.review.git import GitError
    from tandem.review.inputs import gather
    from tandem.review.limits import CapReached, Limits
    from tandem.review.run import ReviewConfigError
    from tandem.review.trust import UnsafeCacheDir, check_cache_dir

    diff = read_diff(args.diff) if args.diff else None
    try:
        inputs = await asyncio.to_thread(
            gather,
            Path.cwd(),
            explicit_root=args.root,
            base=args.base,
            head=args.head,
            diff=diff,
            trust_checkout_config=args.trust_checkout_config,
            include=tuple(args.include),
            exclude=tuple(args.exclude),
            overrides=overrides(args),
        )
        check_cache_dir(inputs.settings.cache_dir, inputs.root)
        limits = Limits(args.max_files, args.max_requests, args.max_total_tokens)
        checks = Checks(not args.no_evidence, not args.no_verify, args.verify_threshold,
                        args.max_verify)  # fmt: skip
        with open_trace(args.trace) as trace:
            run = await review(inputs, concurrency=args.concurrency,
                               max_findings=args.max_findings, limits=limits, quiet=args.quiet,
                               checks=checks, trace=trace,
                               per_hunk=args.per_hunk)  # fmt: skip
    except (GitError, DiffError, UnsafeCacheDir, ReviewConfigError, CapReached) as exc:
        error = UsageError(str(exc))
        error.exit_code = getattr(exc, "exit_code", UsageError.exit_code)
        raise error from None
    write_report(args, render_review(run.result, args.format))
    if run.cut_findings and not args.quiet:
        print(f"tandem: {run.cut_findings} less severe findings left out (--max-findings "
              f"{args.max_findings})", file=sys.stderr)  # fmt: skip
    if run.failed_requests:
        print(
            f"tandem: {run.failed_requests} of {run.requests} review requests failed: the "
            "model's answer was not valid JSON, twice (those files are listed as not reviewed)",
            file=sys.stderr,
        )
    elif run.incomplete_requests:
        print(
            f"tandem: {run.incomplete_requests} of {run.requests} review requests were cut off "
            "twice: their files are listed as incompletely reviewed"
            + (" (--allow-incomplete)" if args.allow_incomplete else ""),
            file=sys.stderr,
        )
    if run.result.truncated_requests and not args.quiet:
        print(f"tandem: {run.result.truncated_requests} of {run.requests} review requests were "
              "cut off while the model repeated itself: the findings they closed are reported",
              file=sys.stderr)  # fmt: skip
    return review_exit_code(
        run.failed_requests,
        run.result.fails(args.fail_on),
        run.incomplete_requests,
        args.allow_incomplete,
    )


@contextlib.contextmanager
def open_trace(name: str | None) -> Iterator[Trace]:
    """``--trace FILE`` opened for writing (UTF-8), or the trace that writes nothing."""
    from tandem.review.trace import Trace

    if not name:
        yield Trace()
        return
    try:
        handle = open(name, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"cannot write --trace {name}: {exc.strerror}") from None
    with handle:
        yield Trace(handle)


def write_report(args: argparse.Namespace, report: str) -> None:
    """The review's report to ``--output`` or stdout, as UTF-8, ending in a newline."""
    if report and not report.endswith("\n"):
        report += "\n"
    if args.output is not None:
        try:
            args.output.write_text(report, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write --output {args.output}: {exc.strerror}") from None
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(report.encode("utf-8", "replace"))
    sys.stdout.buffer.flush()
