"""Run one strategy over historical bars through the same bus, engine and broker as the daemon.

``run_replay`` is the library entry point behind ``barbus replay``: load (and validate) the data,
build the strategy, add its engine to a :class:`~barbus.daemon.core.session.Session`, run the
replay feed's chunks through it synchronously (no event loop), close what is still open at the
end, and summarise. Writing ``trades.csv`` and ``summary.json`` and the report text are
:mod:`barbus.replay.outputs`, a separate step so batch runs can skip it.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.errors import DataError, StrategyError
from barbus.daemon.core.events import EngineEvent, Trade, format_time_ms, interval_ms
from barbus.daemon.core.series import BarSeries, GapReport
from barbus.daemon.core.session import Session
from barbus.replay.cache import BarCache
from barbus.replay.feed import ReplayFeed
from barbus.replay.files import bundled_data_path
from barbus.replay.folder_series import load_data
from barbus.replay.stats import PerformanceStats, compute_stats
from barbus.strategies import StrategyLike, StrategySource, create_strategy, strategy_source

__all__ = [
    "ReplayConfig",
    "ReplayResult",
    "close_marks",
    "cut_period",
    "drop_events",
    "empty_period_message",
    "period_series",
    "replay_result",
    "run_replay",
]

log = logging.getLogger("barbus.replay")


@dataclass(frozen=True)
class ReplayConfig:
    """Everything one replay needs; ``data=None`` means the bundled BTCUSDT sample.

    ``strategy`` is a spec (a registered name, ``file.py:Class``, ``package.module:Class``;
    relative paths from the current folder), a resolved source, or a strategy class.
    """

    strategy: StrategyLike
    params: dict[str, str | int | float | bool] = field(default_factory=dict)
    data: Path | None = None
    symbol: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    # Daemon parity: bars before trade_from_ms only warm the strategy up, and a run that has
    # not ended (close_at_end=False) leaves its position open, as the daemon does.
    trade_from_ms: int = 0
    close_at_end: bool = True
    name: str | None = None  # the strategy column of the trade log (default: strategy name)


@dataclass(frozen=True)
class ReplayResult:
    config: ReplayConfig
    source: StrategySource
    strategy_params: dict[str, Any]
    series: BarSeries
    gaps: GapReport
    trades: list[Trade]
    equity: np.ndarray[Any, np.dtype[np.float64]]
    stats: PerformanceStats
    unfilled_orders: int
    replay_seconds: float

    @property
    def bars_per_second(self) -> float:
        return len(self.series) / self.replay_seconds if self.replay_seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The JSON summary: inputs, data facts and every report figure."""
        s = self.series
        execution = self.config.execution
        return {
            "strategy": self.source.name,
            "strategy_spec": self.source.spec,
            "strategy_fingerprint": self.source.fingerprint,
            "params": self.strategy_params,
            "symbol": s.symbol,
            "data": s.source,
            "first_bar": format_time_ms(int(s.open_time_ms[0])),
            "last_bar": format_time_ms(int(s.open_time_ms[-1])),
            "bars": len(s),
            "gaps": self.gaps.count,
            "missing_minutes": self.gaps.missing_minutes,
            "largest_gap_minutes": self.gaps.largest_minutes,
            "zero_volume_bars": s.zero_volume_bars(),
            "fee_bps": execution.fee_bps,
            "maker_fee_bps": execution.maker_bps,
            "taker_fee_bps": execution.taker_bps,
            "slippage_bps": execution.slippage_bps,
            "fill_at": execution.fill_at,
            "starting_cash": execution.starting_cash,
            "allow_short": execution.allow_short,
            "final_equity": self.stats.final_equity,
            "total_return_pct": self.stats.total_return_pct,
            "buy_and_hold_return_pct": self.stats.buy_and_hold_return_pct,
            "max_drawdown_pct": self.stats.max_drawdown_pct,
            "max_drawdown_days": self.stats.max_drawdown_days,
            "sharpe": self.stats.sharpe,
            "sortino": self.stats.sortino,
            "cagr_pct": self.stats.cagr_pct,
            "calmar": self.stats.calmar,
            "trades": self.stats.trades,
            "win_rate_pct": self.stats.win_rate_pct,
            "profit_factor": self.stats.profit_factor,
            "expectancy": self.stats.expectancy,
            "avg_trade_pct": self.stats.avg_trade_pct,
            "exposure_pct": self.stats.exposure_pct,
            "days": self.stats.days,
            "unfilled_orders_at_end": self.unfilled_orders,
            "replay_seconds": self.replay_seconds,
            "bars_per_second": self.bars_per_second,
        }


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during the hot loop.

    A replay allocates a tuple per bar and keeps a chunk of them alive, which makes CPython's
    generational collector rescan them over and over (about a third of the run time). The hot
    loop creates no reference cycles, so reference counting frees everything; the collector is
    re-enabled (if it was on) and catches up afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _NoHaltLog(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return bool(record.exc_info) or "halted" not in record.getMessage()


@contextmanager
def halts_raised() -> Iterator[None]:
    """Keep the bus from logging a one-line halt (a :class:`BarbusError`, such as a refused
    short) while a replay runs: the replay raises it as its one error line instead. A bug's
    halt keeps its log record with the traceback; the daemon, which goes on, keeps them all."""
    bus_log = logging.getLogger("barbus.bus")
    quiet = _NoHaltLog()
    bus_log.addFilter(quiet)
    try:
        yield
    finally:
        bus_log.removeFilter(quiet)


def halt_message(name: str, reason: str) -> str:
    """One line for a halted strategy: the bus's reason, without repeating the name."""
    reason = reason.removeprefix("StrategyError: ")
    if reason.startswith(f"strategy {name} "):
        return reason
    return f"strategy {name} halted: {reason}"


def run_replay(
    config: ReplayConfig, series: BarSeries | None = None, cache: BarCache | None = None
) -> ReplayResult:
    """Replay ``config.strategy`` over a preloaded ``series``, else the configured data file
    (through ``cache`` when given, else parsed directly)."""
    source = strategy_source(config.strategy)
    strategy = create_strategy(source, config.params)
    from_file = series is None
    series = period_series(config, series, cache)
    session = Session()
    engine = session.add(
        StrategyEngine(
            strategy,
            series.symbol,
            config.execution,
            name=config.name,
            record_equity=True,
            trade_from_ms=config.trade_from_ms,
            bar_interval=series.interval,
        )
    )
    started = time.perf_counter()
    with gc_paused(), halts_raised():
        session.run(ReplayFeed(series).chunks(), drop_events)
    replay_seconds = time.perf_counter() - started
    if engine.name in session.bus.halted:
        raise StrategyError(halt_message(engine.name, session.bus.halted[engine.name]))
    gaps = series.gaps()
    if gaps.count and (cache is None or not from_file):  # the cache reports a file's gaps once
        log.warning("%s: %s (replayed as is, no bars invented)", series.source, gaps.describe())
    return replay_result(config, source, engine, series, gaps, replay_seconds)


def period_series(
    config: ReplayConfig, series: BarSeries | None = None, cache: BarCache | None = None
) -> BarSeries:
    """The bars of ``config``'s period: of ``series`` when given, else of its data file or
    series folder (through ``cache`` when given, else parsed directly); a :class:`DataError`
    when the period is empty."""
    if series is None:
        path = config.data if config.data is not None else bundled_data_path()
        series = load_data(path, config.symbol, cache, config.start_ms, config.end_ms)
    return cut_period(series, config.start_ms, config.end_ms)


def cut_period(series: BarSeries, start_ms: int | None, end_ms: int | None) -> BarSeries:
    """The bars of ``series`` in ``[start_ms, end_ms)``; a :class:`DataError` when none."""
    cut = series.between(start_ms, end_ms)
    if len(cut) == 0:
        raise DataError(empty_period_message(series, start_ms, end_ms))
    return cut


def replay_result(
    config: ReplayConfig,
    source: StrategySource,
    engine: StrategyEngine,
    series: BarSeries,
    gaps: GapReport,
    replay_seconds: float,
) -> ReplayResult:
    """The result of ``engine`` after its pass over ``series`` (closing what is still open when
    ``config`` says so): the one place a replayed engine becomes a :class:`ReplayResult`, for a
    single replay and for each engine of a shared pass (:mod:`barbus.replay.shared_pass`)."""
    if config.close_at_end:
        engine.finish()
    assert engine.equity_curve is not None
    equity = np.empty(len(engine.equity_curve) + 1)
    equity[0] = config.execution.starting_cash
    equity[1:] = np.frombuffer(engine.equity_curve, dtype=np.float64)
    engine.equity_curve = None  # copied: not both at the statistics' peak, nor for a whole pass
    mark_ms = close_marks(series)
    stats = compute_stats(
        equity,
        engine.trades,
        first_open=float(series.open[0]),
        last_close=float(series.close[-1]),
        bars_in_market=engine.bars_in_market,
        mark_ms=mark_ms,
    )
    return ReplayResult(
        config=config,
        source=source,
        strategy_params=engine.strategy.params.as_dict(),
        series=series,
        gaps=gaps,
        trades=list(engine.trades),
        equity=equity,
        stats=stats,
        unfilled_orders=engine.unfilled_orders,
        replay_seconds=replay_seconds,
    )


def close_marks(series: BarSeries) -> npt.NDArray[np.int64]:
    """The times the equity curve marks: the first bar's open, then each bar's close."""
    marks = np.empty(len(series) + 1, dtype=np.int64)
    marks[0] = series.open_time_ms[0]
    marks[1:] = np.asarray(series.open_time_ms, dtype=np.int64) + interval_ms(series.interval)
    return marks


def drop_events(events: list[EngineEvent]) -> None:
    """A replay reads its results from the engine's books: the events go nowhere."""


def empty_period_message(series: BarSeries, start_ms: int | None, end_ms: int | None) -> str:
    """Why ``[start_ms, end_ms)`` of ``series`` holds no bar, with the data's first and last bar."""
    start = format_time_ms(start_ms) if start_ms is not None else "the first bar"
    end = format_time_ms(end_ms) if end_ms is not None else "the last bar"
    if len(series) == 0:
        return f"{series.source}: no bars in the requested period {start} .. {end}: no data"
    first, last = int(series.open_time_ms[0]), int(series.open_time_ms[-1])
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        why = f"its end is {'before' if end_ms < start_ms else 'the same as'} its start"
    elif end_ms is not None and end_ms <= first:
        why = "it ends before the data starts"
    elif start_ms is not None and start_ms > last:
        why = "it starts after the data ends"
    else:
        why = "it falls in a gap of the data"
    return (
        f"{series.source}: no bars in the requested period {start} .. {end} ({why}); the data "
        f"runs from {format_time_ms(first)} to {format_time_ms(last)} (first and last bar)"
    )
