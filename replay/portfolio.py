"""Backtest several strategies at once, shared accounts included: a daemon config's session.

``run_portfolio`` builds one :class:`~barbus.daemon.core.session.Session` with every engine (in
the given order, which is the order they act in within a minute) and every shared account, then
runs the symbols' bars through it merged in time order. It is ``barbus replay --config`` and the
replay side of ``barbus parity``; a single strategy on its own account gives exactly what
:func:`~barbus.replay.runner.run_replay` gives. ``--config``'s ``trades.csv`` + ``summary.json`` and
terminal report are :mod:`barbus.replay.outputs`' ``write_portfolio_outputs`` and
``format_portfolio_report``.
"""

from __future__ import annotations

import dataclasses
import heapq
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import numpy.typing as npt

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.errors import ConfigError, DataError, StrategyError
from barbus.daemon.core.events import (
    Bar,
    EngineEvent,
    ExitReason,
    Fill,
    Side,
    Trade,
    interval_ms,
)
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.session import Session
from barbus.replay.feed import DEFAULT_CHUNK_BARS, ReplayFeed
from barbus.replay.runner import gc_paused, halt_message, halts_raised
from barbus.strategies import StrategyLike, StrategySource, create_strategy, strategy_source

__all__ = [
    "AccountSpec",
    "EngineOutcome",
    "EngineSpec",
    "PortfolioConfig",
    "PortfolioResult",
    "account_equity",
    "raise_on_halt",
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
    capital: float = ExecutionConfig().starting_cash
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
    allows_short: bool = False  # whether its account may hold short positions
    fills: tuple[Fill, ...] = ()  # every fill, in order (the account curves are built from them)

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
    periods: dict[str, BarSeries] = field(default_factory=dict)  # symbol -> the bars replayed

    @property
    def trades(self) -> list[Trade]:
        """Every engine's trades, by exit time (engine order within one time)."""
        return sorted((t for e in self.engines for t in e.trades), key=lambda t: t.exit_time_ms)


def run_portfolio(config: PortfolioConfig, series: Mapping[str, BarSeries]) -> PortfolioResult:
    """Run every engine of ``config`` over ``series`` (symbol -> bars, of one interval)."""
    if not config.engines:
        raise ConfigError("a portfolio backtest needs at least one strategy")
    intervals = {s.interval: s.source for s in series.values()}
    if len(intervals) > 1:
        held = ", ".join(f"{source} ({interval})" for interval, source in intervals.items())
        raise DataError(f"a portfolio's data must be of one bar interval: {held}")
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
                bar_interval=series[spec.symbol].interval,
            )
        )
    symbols = list(dict.fromkeys(spec.symbol for spec in config.engines))
    periods = [series[s].between(config.start_ms, config.end_ms) for s in symbols]
    started = time.perf_counter()
    fills: dict[str, list[Fill]] = {engine.name: [] for engine in session.engines}

    def keep_fills(events: list[EngineEvent]) -> None:
        for event in events:
            if isinstance(event, Fill):
                fills[event.strategy].append(event)

    with gc_paused(), halts_raised():
        bars = session.run(_merged(periods), keep_fills)
        if config.close_at_end:
            session.finish()
    for engine in session.engines:
        keep_fills(engine.drain())
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
            allows_short=engine.account.allow_short,
            fills=tuple(fills[engine.name]),
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
        periods=dict(zip(symbols, periods, strict=True)),
    )


def account_equity(
    result: PortfolioResult,
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float64]]]:
    """Each account's equity at the start and at every minute's close, rebuilt from the fills
    after the run (nothing per bar in the replay): cash moved by each fill, plus every signed
    position of the account times its symbol's last close. Returns (mark times in ms, equity
    by account name); cash is rebuilt by summing the fills, so it may differ from the books'
    in the last few ulps. With ``fill_at="close"``, an order decided on a timeframe bar that
    was released late (its last minute missing) counts from that bar's close, a minute or more
    before the engine's own mark of it."""
    held = [s for s in result.periods.values() if len(s)]
    if not held:
        return np.empty(0, dtype=np.int64), {}
    grid = np.unique(np.concatenate([np.asarray(s.open_time_ms, dtype=np.int64) for s in held]))
    bar_ms = interval_ms(held[0].interval)  # one interval for every symbol (run_portfolio)
    marks = np.concatenate(([grid[0]], grid + bar_ms))
    closes: dict[str, npt.NDArray[np.float64]] = {}
    for s in held:
        times = np.asarray(s.open_time_ms, dtype=np.int64)
        at = np.searchsorted(times, marks - bar_ms, side="right") - 1
        close = np.asarray(s.close, dtype=np.float64)
        closes[s.symbol] = np.where(at >= 0, close[np.maximum(at, 0)], 0.0)
        closes[s.symbol][0] = 0.0  # the start: nothing held yet
    curves = {
        name: np.full(len(marks), start, dtype=np.float64)
        for name, (start, _) in result.account_cash.items()
    }
    for engine in result.engines:
        if not engine.fills:
            continue
        # A fill at a minute's open counts from that minute's close on, one at a close (a
        # signal with fill_at="close", the end of the data) from that close: 1 ms after an
        # open keeps an open fill out of the mark of the minute before.
        at_close = result.config.execution.fill_at == "close"
        times = np.fromiter(
            (
                f.time_ms
                + (
                    0
                    if f.reason is ExitReason.END_OF_DATA
                    or (at_close and f.reason is ExitReason.SIGNAL)
                    else 1
                )
                for f in engine.fills
            ),
            np.int64,
            len(engine.fills),
        )
        buy = np.fromiter((f.side is Side.BUY for f in engine.fills), bool, len(engine.fills))
        size = np.fromiter((f.size for f in engine.fills), np.float64, len(engine.fills))
        value = size * np.fromiter((f.price for f in engine.fills), np.float64, len(size))
        fee = np.fromiter((f.fee for f in engine.fills), np.float64, len(engine.fills))
        units = np.concatenate(([0.0], np.cumsum(np.where(buy, size, -size))))
        cash = np.concatenate(([0.0], np.cumsum(np.where(buy, -value, value) - fee)))
        done = np.searchsorted(times, marks, side="right")  # fills up to each mark
        curves[engine.account] += cash[done] + units[done] * closes[engine.symbol]
    return marks, curves


def raise_on_halt(result: PortfolioResult) -> None:
    """A halted strategy (a refused short, a strategy that raised) as one StrategyError line;
    the first in config order when several halted."""
    for engine in result.engines:
        if engine.halted is not None:
            raise StrategyError(halt_message(engine.name, engine.halted))


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
