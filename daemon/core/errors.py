"""Exception classes, each named for what the caller must do about it.

The CLI turns any :class:`BarbusError` into one line on stderr and a non-zero exit code;
nothing derived from it should ever surface as a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["BarbusError", "ConfigError", "DataError", "StrategyError", "did_you_mean"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""`` if none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class BarbusError(Exception):
    """Base class: an error a user can act on, reported as one line."""

    exit_code = 2


class ConfigError(BarbusError):
    """The configuration or the command line is wrong: fix it and run again."""


class DataError(BarbusError):
    """Input data is unusable: the message names the file, row or bar."""


class StrategyError(BarbusError):
    """A strategy failed or was given invalid parameters: that strategy is halted."""
