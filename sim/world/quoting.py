"""Quoting values from untrusted files (uploaded archives, hyperparameter files) inside error messages."""

from __future__ import annotations

from typing import Any


def brief_repr(value: Any, limit: int = 80) -> str:
    """``repr`` for a message, cut short: the value may come from a file of any size."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's int-to-string digit limit
        return "a number too long to print"
    return text if len(text) <= limit else f"{text[:limit]}…"
