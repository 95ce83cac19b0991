"""The ``tandem`` command: complete, context, chat, serve, doctor, review, eval.

Every failure a user can cause or fix prints one line on stderr saying what
failed and what to do, and exits with its own code (see ``EXIT_CODES``); the
traceback appears only with ``--debug``.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Sequence

from tandem.cli.args import EXIT_CODES, UsageError, build_parser
from tandem.cli.commands import (
    run_chat,
    run_complete,
    run_context,
    run_doctor,
    run_review,
    run_serve,
)
from tandem.cli.evaluate import run_eval
from tandem.config import ConfigError
from tandem.models.errors import ModelError
from tandem.models.redact import install_log_redaction, redact_log
from tandem.review import exits

__all__ = ["EXIT_CODES", "UsageError", "build_parser", "main"]

COMMANDS = {
    "complete": run_complete,
    "context": run_context,
    "chat": run_chat,
    "doctor": run_doctor,
    "review": run_review,
    "eval": run_eval,
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
        return exits.BROKEN if args.command == "review" else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
