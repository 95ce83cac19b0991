"""The ``tandem`` command line's arguments: the parser, the model flags, the exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

from tandem import __version__
from tandem.evaluation.holes import PLACEMENTS
from tandem.review import exits
from tandem.review.formats import FORMATS as REVIEW_FORMATS
from tandem.review.limits import (
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_FINDINGS,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MAX_VERIFY,
    DEFAULT_THRESHOLD,
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
    11: "the embedded model cannot run (not installed, unloadable, or died mid-answer)",
    exits.INCOMPLETE: "review: an answer was still cut off after a retry (see --allow-incomplete)",
    exits.CAPPED: "review: a cost cap was reached (--max-files, --max-requests, "
    "--max-total-tokens)",
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

    p = sub.add_parser("eval", help="measure completion quality on holes cut from your code")
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="files or folders to cut holes from (default: the current folder)",
    )
    p.add_argument("--holes", type=_positive, default=20, help="holes per placement")
    p.add_argument("--placements", nargs="+", choices=PLACEMENTS, default=list(PLACEMENTS))
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="CONFIG",
        help="more configurations, each KEY=VALUE[,KEY=VALUE...] on top of the "
        "settings (model=..., fim=..., context_tokens=..., provider=...)",
    )
    p.add_argument("--seed", type=int, default=0, help="which holes (the same seed: the same)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    _common(p)

    p = sub.add_parser("doctor", help="show settings and where they came from; test each model")
    _common(p)
    _review_parser(sub)
    return parser


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return number


def _score(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 <= number <= 10:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 10")
    return number


def _review_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review",
        help="review a git diff with the chat model: findings for CI (SARIF, GitHub, GitLab, ...)",
        description="Review the changes between the merge base of --base and --head (or a "
        "unified diff) with the chat model, and report findings. Progress goes to stderr.",
        epilog=f"exit codes: {exits.DESCRIPTION}",
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
        help="exit 1 when a verified finding (all findings with --no-verify) is at or above "
        "this severity (default: none)",
    )
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="review only matching files (gitignore syntax; repeatable)")  # fmt: skip
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="do not review matching files (gitignore syntax; repeatable)")  # fmt: skip
    caps = (
        ("--max-findings", DEFAULT_MAX_FINDINGS, "report the N most severe findings"),
        ("--max-files", DEFAULT_MAX_FILES, f"stop (exit {exits.CAPPED}) above N files to review"),
        ("--max-requests", DEFAULT_MAX_REQUESTS,
         f"stop (exit {exits.CAPPED}) above N model requests"),
        ("--max-total-tokens", DEFAULT_MAX_TOKENS, f"stop (exit {exits.CAPPED}) above N tokens "
         "(prompt budget plus answer allowance of every request, retries included)"),
    )  # fmt: skip
    for flag, default, text in caps:
        p.add_argument(
            flag, type=_positive, metavar="N", default=default, help=f"{text} (default: {default})"
        )
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help=f"exit 0, not {exits.INCOMPLETE}, when an answer was cut off (its files are still "
        "listed)",
    )
    p.add_argument("--per-hunk", action=argparse.BooleanOptionalAction, default=None,
                   help="one model request per hunk (its enclosing function shown): more "
                   "requests, and less for a small model to read at once (default: per hunk "
                   "unless the change has so many hunks that the requests could pass "
                   "--max-requests or --max-total-tokens)")  # fmt: skip
    p.add_argument("--no-verify", action="store_true",
                   help="skip the second pass: faster, and every finding counts for --fail-on "
                   "as the first pass gave it")  # fmt: skip
    p.add_argument("--verify-threshold", type=_score, metavar="0-10", default=DEFAULT_THRESHOLD,
                   help="second-pass score a finding needs to stay an error or warning and "
                   f"count for --fail-on; below it is demoted to info (default: "
                   f"{DEFAULT_THRESHOLD})")  # fmt: skip
    p.add_argument("--max-verify", type=_positive, metavar="N", default=DEFAULT_MAX_VERIFY,
                   help="second-pass questions at most, the most severe findings first; the "
                   f"rest stay unverified (default: {DEFAULT_MAX_VERIFY})")  # fmt: skip
    p.add_argument("--no-evidence", action="store_true",
                   help="keep findings without a matching quote and skip the drop rules and the "
                   "severity caps (the behaviour before them: for measuring only)")  # fmt: skip
    p.add_argument("--trace", metavar="FILE",
                   help="write what happened to every finding (the model's raw answers, then "
                   "each check's outcome) to FILE as JSON lines")  # fmt: skip
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


# flag -> (settings key, environment variable): the same flags for every command.
MODEL_FLAGS = {
    "provider": ("completion.provider", "TANDEM_PROVIDER"),
    "endpoint": ("completion.endpoint", "TANDEM_ENDPOINT"),
    "model": ("completion.model", "TANDEM_MODEL"),
    "fim": ("completion.fim", "TANDEM_FIM"),
    "timeout": ("timeout", "TANDEM_TIMEOUT"),
}


def overrides(args: argparse.Namespace) -> dict[str, object]:
    """The model flags as settings overrides (None: not given)."""
    return {key: getattr(args, flag) for flag, (key, _) in MODEL_FLAGS.items()}
