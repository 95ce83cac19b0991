"""Completion quality measured on real code: holes cut from files, filled, scored.

``tandem eval`` runs it on the user's repository and ``bench/quality.py`` on a fixed
corpus; both send every hole through the same pipeline as ``tandem complete``.
"""
