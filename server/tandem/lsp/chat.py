"""Chat on a selection and code actions (Explain, Fix, Add docstring, Write tests)."""

from __future__ import annotations

from typing import Any


def register(server: Any) -> None:
    """Add the chat command and code-action handlers to ``server`` (filled in next)."""
