"""Hand-made minutes and a scripted strategy that returns any decision, for the kernel's rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from barbus.daemon.core.account import Account
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import (
    MINUTE_MS,
    Bar,
    EngineEvent,
    Fill,
    OrderEvent,
    Trade,
)
from barbus.daemon.core.orders import Decision
from barbus.daemon.core.params import BaseParams
from barbus.daemon.core.strategy import Strategy
from tests.factories import T0_MS, make_bar

__all__ = [
    "FREE",
    "T0_MS",
    "Script",
    "at",
    "bar",
    "engine",
    "fills",
    "flat",
    "order_events",
    "run",
    "trades",
]

FREE = ExecutionConfig(fee_bps=0.0, slippage_bps=0.0)
"""No fees, no slippage: prices in the tests are the rule's reference prices."""


def at(minute: int) -> int:
    return T0_MS + minute * MINUTE_MS


def bar(
    minute: int,
    open: float,
    high: float,
    low: float,
    close: float,
    symbol: str = "BTCUSDT",
) -> Bar:
    """One hand-made minute (open, high, low, close)."""
    return make_bar(close, minute=minute, open=open, high=high, low=low, symbol=symbol)


def flat(minute: int, price: float, symbol: str = "BTCUSDT") -> Bar:
    """A minute that trades at one price only."""
    return bar(minute, price, price, price, price, symbol)


@dataclasses.dataclass(frozen=True)
class ScriptParams(BaseParams):
    pass


class Script(Strategy[ScriptParams]):
    """Return the decision scripted for the decision bar's minute (its open time, in minutes
    after T0); record what it saw."""

    name: ClassVar[str] = "script"
    params_type: ClassVar[type[BaseParams]] = ScriptParams

    def __init__(self, params: ScriptParams, script: Mapping[int, Decision]) -> None:
        super().__init__(params)
        self.script = script
        self.seen: list[tuple[Bar, float]] = []

    @property
    def warmup_bars(self) -> int:
        return 1

    def on_bar(self, bar: Bar, position: float) -> Decision:
        self.seen.append((bar, position))
        return self.script.get((bar.open_time_ms - T0_MS) // MINUTE_MS)

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass


def engine(
    script: Mapping[int, Decision],
    execution: ExecutionConfig = FREE,
    *,
    symbol: str = "BTCUSDT",
    name: str = "script",
    account: Account | None = None,
    **params: Any,
) -> StrategyEngine:
    return StrategyEngine(
        Script(ScriptParams(**params), script),
        symbol,
        execution,
        name=name,
        account=account,
        record_equity=True,
    )


def run(
    bars: list[Bar],
    script: Mapping[int, Decision],
    execution: ExecutionConfig = FREE,
    **params: Any,
) -> tuple[StrategyEngine, list[EngineEvent]]:
    """Feed ``bars`` to one engine directly (no finish); return it and its events."""
    e = engine(script, execution, **params)
    for b in bars:
        e.on_bar(b)
    return e, e.drain()


def fills(events: list[EngineEvent]) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def trades(events: list[EngineEvent]) -> list[Trade]:
    return [e for e in events if isinstance(e, Trade)]


def order_events(events: list[EngineEvent], kind: str | None = None) -> list[OrderEvent]:
    return [e for e in events if isinstance(e, OrderEvent) and kind in (None, e.event)]
