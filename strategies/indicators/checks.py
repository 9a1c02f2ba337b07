"""The argument and snapshot checks every indicator shares.

Each indicator checks its constructor arguments (periods, positive multipliers) and refuses a
snapshot from another indicator type or other arguments with the same messages, so they are
written once, apart from any one indicator. All of it runs at construction and restore, never
per update.
"""

from __future__ import annotations

import math
from typing import Any


def _require_period(period: object, name: str = "period") -> int:
    """Return ``period`` if it is an integer >= 1 (bools are rejected), else raise ValueError."""
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {period!r}")
    return period


def _require_positive(value: object, name: str) -> float:
    """Return ``value`` as a float if it is a finite real number > 0, else raise ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_state(state: dict[str, Any], kind: str, **params: object) -> None:
    """Refuse a snapshot taken from another indicator type or other constructor arguments."""
    if state.get("kind") != kind:
        raise ValueError(f"snapshot of {state.get('kind')!r} cannot restore a {kind}")
    for key, expected in params.items():
        if state.get(key) != expected:
            raise ValueError(
                f"snapshot has {key}={state.get(key)!r} but this {kind} has {key}={expected!r}"
            )
