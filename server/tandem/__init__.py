"""Tandem: one language server for AI completions, chat on a selection and CI review."""

__version__ = "0.1.0"
