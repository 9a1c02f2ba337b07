"""Backtest several strategies at once, shared accounts included: a daemon config's session.

``run_portfolio`` builds one :class:`~barbus.daemon.core.session.Session` with every engine (in
the given order, which is the order they act in within a minute) and every shared account, then
runs the symbols' bars through it merged in time order. It is ``barbus replay --config`` and the
replay side of ``barbus parity``; a single strategy on its own account gives exactly what
:func:`~barbus.replay.runner.run_replay` gives.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.errors import ConfigError, DataError
from barbus.daemon.core.events import Bar, Trade
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.session import Session
from barbus.replay.feed import DEFAULT_CHUNK_BARS, ReplayFeed
from barbus.strategies import StrategyLike, StrategySource, create_strategy, strategy_source

__all__ = [
    "AccountSpec",
    "EngineOutcome",
    "EngineSpec",
    "PortfolioConfig",
    "PortfolioResult",
    "run_portfolio",
]


@dataclass(frozen=True)
class AccountSpec:
    """A shared account: its name, starting cash and whether its strategies may go short."""

    name: str
    cash: float
    allow_short: bool = False


@dataclass(frozen=True)
class EngineSpec:
    """One strategy instance: on ``symbol``, through the shared ``account`` it names or (None)
    an account of its own with ``capital`` and ``allow_short``. Bars before ``trade_from_ms``
    only warm it up."""

    name: str
    strategy: StrategyLike
    symbol: str
    params: Mapping[str, Any] = field(default_factory=dict)
    account: str | None = None
    capital: float = 10_000.0
    allow_short: bool = False
    trade_from_ms: int = 0


@dataclass(frozen=True)
class PortfolioConfig:
    """Engines (in acting order), shared accounts, execution rules and the period."""

    engines: tuple[EngineSpec, ...]
    accounts: tuple[AccountSpec, ...] = ()
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    start_ms: int | None = None
    end_ms: int | None = None
    close_at_end: bool = True


@dataclass(frozen=True)
class EngineOutcome:
    """What one engine did: its trades and where it ended."""

    name: str
    symbol: str
    account: str
    source: StrategySource
    params: dict[str, Any]
    trades: list[Trade]
    position: float
    bars: int
    halted: str | None

    @property
    def realised_pnl(self) -> float:
        return sum(trade.profit for trade in self.trades)


@dataclass(frozen=True)
class PortfolioResult:
    config: PortfolioConfig
    engines: list[EngineOutcome]
    account_cash: dict[str, tuple[float, float]]  # name -> (starting, final) cash
    account_equity: dict[str, float]  # name -> final equity, marked at each symbol's last close
    bars: int
    replay_seconds: float

    @property
    def trades(self) -> list[Trade]:
        """Every engine's trades, by exit time (engine order within one time)."""
        return sorted((t for e in self.engines for t in e.trades), key=lambda t: t.exit_time_ms)


def run_portfolio(config: PortfolioConfig, series: Mapping[str, BarSeries]) -> PortfolioResult:
    """Run every engine of ``config`` over ``series`` (symbol -> 1-minute bars)."""
    if not config.engines:
        raise ConfigError("a portfolio backtest needs at least one strategy")
    session = Session()
    for account in config.accounts:
        session.open_account(account.name, account.cash, allow_short=account.allow_short)
    sources: dict[str, StrategySource] = {}
    for spec in config.engines:
        if spec.symbol not in series:
            known = ", ".join(sorted(series)) or "none"
            raise DataError(f"strategy {spec.name} trades {spec.symbol}: no data for it ({known})")
        if spec.account is not None and spec.account not in session.accounts:
            raise ConfigError(f"strategy {spec.name}: no account named {spec.account!r}")
        source = strategy_source(spec.strategy)
        sources[spec.name] = source
        execution = dataclasses.replace(
            config.execution, starting_cash=spec.capital, allow_short=spec.allow_short
        )
        session.add(
            StrategyEngine(
                create_strategy(source, dict(spec.params)),
                spec.symbol,
                execution,
                name=spec.name,
                trade_from_ms=spec.trade_from_ms,
                account=session.accounts[spec.account] if spec.account else None,
            )
        )
    symbols = list(dict.fromkeys(spec.symbol for spec in config.engines))
    periods = [series[s].between(config.start_ms, config.end_ms) for s in symbols]
    started = time.perf_counter()
    bars = session.run(_merged(periods))
    if config.close_at_end:
        session.finish()
    seconds = time.perf_counter() - started
    halted = session.bus.halted
    outcomes = [
        EngineOutcome(
            name=engine.name,
            symbol=engine.symbol,
            account=engine.account.name,
            source=sources[engine.name],
            params=engine.strategy.params.as_dict(),
            trades=list(engine.trades),
            position=engine.position.size,
            bars=engine.bars,
            halted=halted.get(engine.name),
        )
        for engine in session.engines
    ]
    return PortfolioResult(
        config=config,
        engines=outcomes,
        account_cash={a.name: (a.starting_cash, a.cash) for a in session.accounts.values()},
        account_equity={n: a.equity() for n, a in session.accounts.items()},
        bars=bars,
        replay_seconds=seconds,
    )


def _merged(periods: list[BarSeries]) -> Iterator[list[Bar]]:
    """The bars of every series in time order (the first-listed symbol first within a minute),
    in chunks: one series' chunks as they are, several merged."""
    feeds = [ReplayFeed(s).chunks() for s in periods if len(s)]
    if len(feeds) == 1:
        yield from feeds[0]
        return
    streams = [
        ((bar.open_time_ms, rank, bar) for chunk in feed for bar in chunk)
        for rank, feed in enumerate(feeds)
    ]
    merged = (bar for _, _, bar in heapq.merge(*streams))
    while chunk := list(islice(merged, DEFAULT_CHUNK_BARS)):
        yield chunk
