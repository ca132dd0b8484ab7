"""Value types of the command line's options, shared by ``aioudata`` and its ``resources``
commands: each refuses a bad value in one line naming what was expected."""

from __future__ import annotations

import argparse

__all__ = ["non_negative", "positive"]


def positive(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative(text: str, *, zero: str = "") -> float:
    """A number of at least 0; ``zero`` says what 0 means (shown when a value is refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        meaning = f" ({zero})" if zero else ""
        raise argparse.ArgumentTypeError(f"must be positive{meaning}, not {value}")
    return value
