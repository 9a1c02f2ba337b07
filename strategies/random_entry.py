"""``random``: seeded coin flips for entries and exits: a test and benchmark workhorse.

It draws exactly one number per bar whatever the position, so its decisions depend only on the
seed and the bar count, and a restored snapshot continues the same sequence.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, ClassVar, final

from barbus.daemon.events import Bar, Signal
from barbus.strategies.base import BaseParams, Strategy, require

__all__ = ["RandomEntry", "RandomParams"]


@dataclasses.dataclass(frozen=True)
class RandomParams(BaseParams):
    seed: int = 42
    entry_probability: float = 0.05
    exit_probability: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("entry_probability", "exit_probability"):
            value = getattr(self, name)
            require(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value}")


@final
class RandomEntry(Strategy[RandomParams]):
    """Enter with ``entry_probability`` per bar when flat; exit with ``exit_probability``."""

    name: ClassVar[str] = "random"
    params_type: ClassVar[type[BaseParams]] = RandomParams

    __slots__ = ("_draw", "_rng")

    def __init__(self, params: RandomParams) -> None:
        super().__init__(params)
        self._rng = random.Random(params.seed)
        self._draw = self._rng.random

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        u = self._draw()
        if position > 0.0:
            return Signal.SELL if u < self.params.exit_probability else None
        return Signal.BUY if u < self.params.entry_probability else None

    def snapshot(self) -> dict[str, Any]:
        version, internal, gauss_next = self._rng.getstate()
        return {"rng": [version, list(internal), gauss_next]}

    def restore(self, state: dict[str, Any]) -> None:
        version, internal, gauss_next = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss_next))
