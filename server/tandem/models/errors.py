"""Model errors: one class per thing a user can fix, each saying what to do.

The CLI turns each class into its own exit code, the language server into a
status message; neither needs to look inside an httpx exception.
"""

from __future__ import annotations


class ModelError(Exception):
    """A model call failed; ``hint`` says what the user can do about it."""

    exit_code = 10
    hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def one_line(self) -> str:
        text = str(self)
        return f"{text}: {self.hint}" if self.hint else text


class ModelUnreachable(ModelError):
    exit_code = 3
    hint = "check that the server is running and the endpoint setting is right"


class ModelAuthError(ModelError):
    exit_code = 4


class ModelNotFound(ModelError):
    exit_code = 5


class ModelTimeout(ModelError):
    exit_code = 6
    hint = "raise TANDEM_TIMEOUT or use a smaller model"


class ModelRateLimited(ModelError):
    exit_code = 7
    hint = "the provider is rate limiting this key; wait and try again"


class ModelHTTPError(ModelError):
    """Any other HTTP failure status (4xx other than auth/404, or 5xx after retries)."""

    exit_code = 8

    def __init__(self, message: str, status: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ModelResponseError(ModelError):
    """The server answered, but not in the shape its provider promises."""

    exit_code = 9
    hint = "check that the provider setting matches the server (openai, ollama, llamacpp, ...)"


class ModelUnavailable(ModelError):
    """The embedded model cannot run (missing package or model file)."""

    exit_code = 11
