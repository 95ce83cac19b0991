"""The ``tandem`` command: complete, context, chat, serve, doctor, review.

Every failure a user can cause or fix prints one line on stderr saying what
failed and what to do, and exits with its own code (see ``EXIT_CODES``); the
traceback appears only with ``--debug``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from tandem import __version__
from tandem import chat_prompts as prompts
from tandem.cache import CompletionCache
from tandem.completion import PositionError, Prepared, finish, offset_at, prepare
from tandem.config import ConfigError, Settings, describe, find_root, load_settings
from tandem.context.engine import ContextEngine, Cursor
from tandem.context.index import WorkspaceIndex
from tandem.context.languages import language_for_path
from tandem.context.prompt import PromptBudget
from tandem.context.workspace import excluded as exclusion_reason
from tandem.models import ChatMessage, ChatOptions, FimRequest, Models, build_models, collect
from tandem.models.errors import ModelError
from tandem.models.redact import install_log_redaction, redact_body, redact_log
from tandem.review.limits import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_FINDINGS,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_MAX_TOKENS,
)

EXIT_CODES = {
    0: "success",
    1: "internal error (a bug: please report it with --debug output)",
    2: "bad usage, invalid setting, or unreadable input file",
    3: "model endpoint unreachable",
    4: "model refused the credentials (401/403)",
    5: "model or deployment not found (404)",
    6: "model timed out",
    7: "rate limited (429) after retries",
    8: "model server error (other HTTP status)",
    9: "malformed answer from the model server",
    10: "other model error",
    11: "embedded model not installed",
    12: "review: an answer was still cut off after a retry (see --allow-incomplete)",
    13: "review: a cost cap was reached (--max-files, --max-requests, --max-total-tokens)",
}


class UsageError(Exception):
    exit_code = 2


def _common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("settings (override config files and environment)")
    g.add_argument("--root", type=Path, help="workspace root (default: the git repository, or cwd)")
    g.add_argument("--provider", help="completion provider: local, openai, azure, ollama, llamacpp")
    g.add_argument("--endpoint", help="completion endpoint URL")
    g.add_argument("--model", help="completion model (the deployment name for azure)")
    g.add_argument("--fim", help="FIM template: starcoder, codellama, deepseek, qwen, ...")
    g.add_argument("--timeout", type=float, help="seconds an answer may take, retries included")
    g.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tandem",
        description="AI code completion, chat and review, from one language server.",
        epilog="exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"tandem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("complete", help="print a completion at PATH:LINE:COL")
    p.add_argument("location", metavar="PATH:LINE:COL", help="1-based line and column")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.add_argument("--no-cache", action="store_true", help="always ask the model")
    p.add_argument("--budget", type=int, default=None, help="prompt budget in tokens")
    p.add_argument("--max-tokens", type=int, default=None)
    _common(p)

    p = sub.add_parser("context", help="print exactly what a completion at PATH:LINE:COL sends")
    p.add_argument("location", metavar="PATH:LINE:COL", help="1-based line and column")
    p.add_argument("--json", action="store_true", help="print a JSON object with the parts")
    p.add_argument("--budget", type=int, default=None, help="prompt budget in tokens")
    p.add_argument("--max-tokens", type=int, default=None)
    _common(p)

    p = sub.add_parser("chat", help="ask the chat model a question, answer streamed")
    p.add_argument("question", nargs="+")
    p.add_argument("--file", type=Path, help="a file the question is about")
    p.add_argument("--lines", help="A-B: only these lines of --file (1-based, inclusive)")
    p.add_argument("--max-tokens", type=int, default=None)
    _common(p)

    p = sub.add_parser("serve", help="run the language server (stdio, or --tcp HOST:PORT)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    p.add_argument("--log-level", default="WARNING", help="stderr log level (DEBUG, INFO, ...)")
    _common(p)

    p = sub.add_parser("doctor", help="show settings and where they came from; test each model")
    _common(p)
    _review_parser(sub)
    return parser


REVIEW_FORMATS = ("text", "markdown", "json", "sarif", "github", "gitlab", "rdjson")
REVIEW_EXIT_CODES = (
    "0 no findings at or above --fail-on; 1 findings at or above --fail-on; "
    "2 bad usage, invalid setting, git or diff error; "
    "3 the model could not be reached, or failed after retries (the reviewer is broken, "
    "not the code); 12 a model answer was still cut off after a retry with more room (those "
    "files are listed as incompletely reviewed; --allow-incomplete makes this 0); 13 a cost "
    "cap was reached (--max-files, --max-requests, --max-total-tokens): nothing was sent"
)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return number


def _review_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review",
        help="review a git diff with the chat model: findings for CI (SARIF, GitHub, GitLab, ...)",
        description="Review the changes between the merge base of --base and --head (or a "
        "unified diff) with the chat model, and report findings. Progress goes to stderr.",
        epilog=f"exit codes: {REVIEW_EXIT_CODES}",
    )
    p.add_argument(
        "--base", metavar="REF", help="compare with this (default: the upstream, else origin/HEAD)"
    )
    p.add_argument("--head", metavar="REF", help="the revision to review (default: HEAD)")
    p.add_argument("--diff", metavar="FILE|-", help="review this unified diff (- reads stdin)")
    p.add_argument("--format", choices=REVIEW_FORMATS, default="text", help="default: text")
    p.add_argument("--output", type=Path, metavar="FILE", help="write the report here")
    p.add_argument(
        "--fail-on",
        choices=("none", "info", "warning", "error"),
        default="none",
        help="exit 1 when a finding is at or above this severity (default: none)",
    )
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="review only matching files (gitignore syntax; repeatable)")  # fmt: skip
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="do not review matching files (gitignore syntax; repeatable)")  # fmt: skip
    caps = (
        ("--max-findings", DEFAULT_MAX_FINDINGS, "report the N most severe findings"),
        ("--max-files", DEFAULT_MAX_FILES, "stop (exit 13) above N files to review"),
        ("--max-requests", DEFAULT_MAX_REQUESTS, "stop (exit 13) above N model requests"),
        ("--max-total-tokens", DEFAULT_MAX_TOKENS, "stop (exit 13) above N tokens (prompt "
         "budget plus answer allowance of every request, retries included)"),
    )  # fmt: skip
    for flag, default, text in caps:
        p.add_argument(
            flag, type=_positive, metavar="N", default=default, help=f"{text} (default: {default})"
        )
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="exit 0, not 12, when an answer was cut off (its files are still listed)",
    )
    p.add_argument("--concurrency", type=_positive, metavar="N",
                   help="model requests at once (default: max_concurrent, 2)")  # fmt: skip
    p.add_argument(
        "--trust-checkout-config",
        action="store_true",
        help="read .tandem.toml and .tandemignore from the working tree, not the base revision: "
        "only for repositories whose every writer you trust (never for fork pull requests)",
    )
    # The default since the trust boundary: still accepted so existing CI keeps working.
    p.add_argument("--trust-base-config", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or summary on stderr")
    _common(p)


def parse_location(value: str) -> tuple[Path, int, int]:
    try:
        path, line, column = value.rsplit(":", 2)
        return Path(path), int(line), int(column)
    except ValueError:
        raise UsageError(f"expected PATH:LINE:COL (1-based), got {value!r}") from None


def read_source(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    if b"\0" in data[:8192]:
        raise UsageError(f"{path} looks like a binary file")
    return data.decode("utf-8", errors="replace")


def settings_for(args: argparse.Namespace, path: Path | None = None) -> Settings:
    root = find_root(path, args.root)
    overrides = {
        "completion.provider": args.provider,
        "completion.endpoint": args.endpoint,
        "completion.model": args.model,
        "completion.fim": args.fim,
        "timeout": args.timeout,
    }
    return load_settings(root, overrides=overrides)


def refuse_excluded(path: Path, root: Path, settings: Settings) -> None:
    """Nothing of an excluded file is sent, whatever the command: one line, exit 2."""
    reason = exclusion_reason(root, path.resolve(), max_bytes=2**62, exclude=settings.exclude)
    if reason is not None and not reason.startswith(("binary", "unreadable")):
        raise UsageError(f"{path} is excluded from Tandem ({reason}); nothing of it is sent")


def cursor_for(args: argparse.Namespace) -> tuple[Cursor, Settings, Path, int, int]:
    path, line, column = parse_location(args.location)
    settings = settings_for(args, path)
    root = find_root(path, args.root)
    refuse_excluded(path, root, settings)
    text = read_source(path)
    try:
        offset = offset_at(text, line, column)
    except PositionError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return Cursor(text, offset, path.resolve()), settings, root, line, column


def engine_for(root: Path, settings: Settings) -> ContextEngine:
    """The workspace's symbol index (cached on disk) behind a context engine."""
    index = WorkspaceIndex(root, settings.cache_dir, exclude=settings.exclude)
    index.build()
    return ContextEngine(root, index)


def recent_files(engine: ContextEngine, cursor: Cursor, limit: int = 8) -> list[tuple[Path, str]]:
    """Stand-ins for an editor's open tabs: the most recently modified files of the language."""
    if engine.index is None:
        return []
    spec = language_for_path(cursor.path)
    dated: list[tuple[float, Path]] = []
    for path in engine.index.files():
        full = path if path.is_absolute() else engine.root / path
        if full.resolve() == cursor.path or language_for_path(full) != spec:
            continue
        try:
            dated.append((full.stat().st_mtime, full))
        except OSError:
            continue
    out: list[tuple[Path, str]] = []
    for _, full in sorted(dated, reverse=True)[:limit]:
        try:
            out.append((full, full.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return out


def budget_for(args: argparse.Namespace, settings: Settings) -> PromptBudget:
    total = args.budget or settings.completion.context_tokens
    if total < 64:
        raise UsageError(f"--budget {total} is too small (at least 64 tokens)")
    return PromptBudget(total=total)


async def prepare_at(
    args: argparse.Namespace, models: Models, settings: Settings, root: Path, cursor: Cursor
) -> Prepared:
    """The first half of a completion, shared by ``complete`` and ``context``."""
    engine = await asyncio.to_thread(engine_for, root, settings)
    return await prepare(
        engine,
        models.completion,
        cursor,
        budget=budget_for(args, settings),
        max_tokens=args.max_tokens or settings.completion.max_tokens,
        temperature=settings.completion.temperature,
        neighbours=recent_files(engine, cursor),
    )


async def run_complete(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    cursor, settings, root, line, column = cursor_for(args)
    models = build_models(settings)
    cache = None if args.no_cache else CompletionCache(settings.cache_dir / "completions")
    try:
        prepared = await prepare_at(args, models, settings, root, cursor)
        result = await finish(models.completion, prepared, cache, started)
    finally:
        await models.aclose()
        if cache is not None:
            cache.close()
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
    cursor, settings, root, _, _ = cursor_for(args)
    models = build_models(settings)
    try:
        prepared = await prepare_at(args, models, settings, root, cursor)
        tokenizer = await models.completion.tokenizer()
    finally:
        await models.aclose()
    prompt = prepared.prompt
    wire = prompt.wire
    # What is sent is the redacted body (HttpEndpoint redacts with the same function).
    body = redact_body(wire.body)
    shown = body.get("prompt", body)
    if args.json:
        payload = {
            "prompt": shown,
            "request": {"path": wire.path, "body": body},
            "model": models.completion.describe(),
            "template": models.completion.template.name,
            "tokens": prompt.tokens,
            "budget": prompt.budget,
            "tokenizer": tokenizer.name,
            "exact": tokenizer.exact,
            "multiline": prepared.multiline,
            "parts": redact_body([p.as_dict() for p in prompt.parts]),
            "dropped": redact_body([p.as_dict() for p in prompt.dropped]),
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return 0
    sys.stdout.write(shown if isinstance(shown, str) else json.dumps(shown, indent=2) + "\n")
    sys.stdout.flush()
    print(
        f"-- {prompt.tokens}/{prompt.budget} tokens ({tokenizer.name}), "
        f"{'block' if prepared.multiline else 'single line'}, "
        f"{models.completion.describe()} template {models.completion.template.name}",
        file=sys.stderr,
    )
    for part in prompt.parts:
        print(f"--   {part.kind:<10} {part.tokens:>5}  {part.path}", file=sys.stderr)
    return 0


def chat_messages(question: str, path: Path | None, lines: str | None) -> list[ChatMessage]:
    if path is not None:
        text = read_source(path)
        all_lines = text.splitlines()
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
    if lines:
        raise UsageError("--lines needs --file")
    return prompts.chat_messages(question)


async def run_chat(args: argparse.Namespace) -> int:
    settings = settings_for(args, args.file)
    if args.file is not None:
        refuse_excluded(args.file, find_root(args.file, args.root), settings)
    messages = chat_messages(" ".join(args.question), args.file, args.lines)
    models = build_models(settings)
    options = ChatOptions(
        max_tokens=args.max_tokens or settings.chat.max_tokens,
        temperature=settings.chat.temperature,
    )
    wrote_newline = True
    try:
        async for piece in models.chat.chat(messages, options):
            sys.stdout.write(piece)
            sys.stdout.flush()
            wrote_newline = piece.endswith("\n")
    finally:
        if not wrote_newline:
            sys.stdout.write("\n")
        await models.aclose()
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
    settings = settings_for(args)
    print(f"tandem {__version__}")
    print(f"workspace root: {find_root(None, args.root)}")
    rows = describe(settings)
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
    flags = {
        "TANDEM_PROVIDER": args.provider,
        "TANDEM_ENDPOINT": args.endpoint,
        "TANDEM_MODEL": args.model,
        "TANDEM_FIM": args.fim,
        "TANDEM_TIMEOUT": args.timeout,
    }
    os.environ.update({k: str(v) for k, v in flags.items() if v is not None})
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
    from tandem.review.diff import DiffError
    from tandem.review.formats import render  # written alongside; imported when used
    from tandem.review.git import GitError
    from tandem.review.inputs import gather
    from tandem.review.limits import CapReached, Limits
    from tandem.review.progress import Progress
    from tandem.review.run import ReviewConfigError, Reviewer, ReviewOptions
    from tandem.review.trust import UnsafeCacheDir, check_cache_dir

    overrides = {
        "completion.provider": args.provider,
        "completion.endpoint": args.endpoint,
        "completion.model": args.model,
        "completion.fim": args.fim,
        "timeout": args.timeout,
    }
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
            overrides=overrides,
        )
        check_cache_dir(inputs.settings.cache_dir, inputs.root)
    except (GitError, DiffError, UnsafeCacheDir) as exc:
        raise UsageError(str(exc)) from None
    settings = inputs.settings
    options = ReviewOptions(
        budget=settings.chat.context_tokens,
        max_tokens=settings.chat.max_tokens,
        temperature=settings.chat.temperature,
        concurrency=args.concurrency or settings.max_concurrent,
        max_findings=args.max_findings,
        filters=inputs.filters,
        limits=Limits(args.max_files, args.max_requests, args.max_total_tokens),
    )
    progress = Progress(quiet=args.quiet)
    progress.note(inputs.settings_note())
    models = build_models(settings)
    cache = CompletionCache(settings.cache_dir / "review")
    index = (
        WorkspaceIndex(inputs.root, settings.cache_dir, exclude=settings.exclude)
        if inputs.in_git
        else None
    )
    try:
        if index is not None:
            await asyncio.to_thread(index.build)
        reviewer = Reviewer(
            models.chat,
            inputs.root,
            options,
            cache=cache,
            engine=ContextEngine(inputs.root, index),
            progress=progress,
        )
        try:
            run = await reviewer.review(inputs.files, inputs.source)
        except (ReviewConfigError, CapReached) as exc:
            error = UsageError(str(exc))
            error.exit_code = exc.exit_code
            raise error from None
    finally:
        await models.aclose()
        cache.close()
        if index is not None:
            index.close()
    report = render(run.result, args.format)
    if report and not report.endswith("\n"):
        report += "\n"
    if args.output is not None:
        try:
            args.output.write_text(report, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write --output {args.output}: {exc.strerror}") from None
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(report.encode("utf-8", "replace"))
        sys.stdout.buffer.flush()
    if run.cut_findings and not args.quiet:
        print(
            f"tandem: {run.cut_findings} less severe findings left out (--max-findings "
            f"{args.max_findings})",
            file=sys.stderr,
        )
    if run.failed_requests:
        print(
            f"tandem: {run.failed_requests} of {run.requests} review requests failed: the "
            "model's answer was not valid JSON, twice (those files are listed as not reviewed)",
            file=sys.stderr,
        )
        return 3
    if run.result.fails(args.fail_on):
        return 1
    if run.incomplete_requests:
        print(
            f"tandem: {run.incomplete_requests} of {run.requests} review requests were cut off "
            "twice: their files are listed as incompletely reviewed"
            + (" (--allow-incomplete)" if args.allow_incomplete else ""),
            file=sys.stderr,
        )
        return 0 if args.allow_incomplete else 12
    return 0


COMMANDS = {
    "complete": run_complete,
    "context": run_context,
    "chat": run_chat,
    "doctor": run_doctor,
    "review": run_review,
}


def main(argv: Sequence[str] | None = None) -> int:
    install_log_redaction()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return run_serve(args)
        return asyncio.run(COMMANDS[args.command](args))
    except KeyboardInterrupt:
        print("tandem: interrupted", file=sys.stderr)
        return 130
    except (ModelError, ConfigError, UsageError) as exc:
        if args.debug:
            traceback.print_exc()
        message = exc.one_line() if isinstance(exc, ModelError) else str(exc)
        print(f"tandem: {redact_log(message)}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        print(f"tandem: internal error: {exc!r} (run with --debug for details)", file=sys.stderr)
        # For review, 1 means "findings": a broken reviewer must not look like bad code.
        return 3 if args.command == "review" else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
