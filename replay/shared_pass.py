"""Several replays of the same bars in one pass: one session, one bus, one engine per replay.

A batch grid runs many strategies (or parameter sets) over the same data and period. Replaying
each alone reads, converts and publishes every bar once per job; here the replays share one
:class:`~barbus.daemon.core.session.Session`, so each minute becomes one ``Bar`` that the bus
hands to every engine. Each engine keeps its own account (its own starting cash and execution
options), trades, equity and statistics, and becomes its :class:`ReplayResult` through the
runner's own :func:`~barbus.replay.runner.replay_result`, so a replay here equals the same
replay alone. Separate from the runner because it is a batch's concern: the per-replay failures
(a strategy that cannot be built, raises or halts) are returned beside the results, not raised,
so one failing replay leaves the others of its pass running.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.session import Session
from barbus.replay.cache import BarCache
from barbus.replay.feed import ReplayFeed
from barbus.replay.runner import (
    ReplayConfig,
    ReplayResult,
    drop_events,
    gc_paused,
    halt_message,
    halts_raised,
    period_series,
    replay_result,
)
from barbus.strategies import StrategySource, create_strategy, strategy_source

__all__ = ["PassOutcome", "run_shared_pass"]

PassOutcome = ReplayResult | Exception  # a replay's result, or why it failed


def run_shared_pass(
    configs: Sequence[ReplayConfig], names: Sequence[str], cache: BarCache | None = None
) -> list[PassOutcome]:
    """Replay every config of ``configs`` (the same data, symbol and period) in one pass.

    ``names`` are the engines' names in the session, one per config and unique (a batch uses
    the job ids); a halt message names the strategy as a replay alone would, not the engine.
    Returns one outcome per config, in order: its result, or the exception it failed with (the
    one :func:`~barbus.replay.runner.run_replay` would raise for it alone). An error that is
    not one replay's (the data cannot be loaded, the period is empty) is every replay's.
    """
    first = configs[0]
    key = (first.data, first.symbol, first.start_ms, first.end_ms)
    if any((c.data, c.symbol, c.start_ms, c.end_ms) != key for c in configs):
        raise ValueError("a shared pass replays one data file, symbol and period")
    if len(set(names)) != len(configs):
        raise ValueError("a shared pass needs one unique engine name per replay")
    outcomes: list[PassOutcome | None] = [None] * len(configs)
    built: list[tuple[int, StrategySource]] = []
    strategies = []
    for i, config in enumerate(configs):
        try:  # what run_replay does before it reads the data, so it fails first, as there
            source = strategy_source(config.strategy)
            strategies.append(create_strategy(source, config.params))
        except Exception as exc:
            outcomes[i] = exc
            continue
        built.append((i, source))
    if built:
        try:
            series = period_series(first, None, cache)
        except Exception as exc:
            return [exc if outcome is None else outcome for outcome in outcomes]
        session = Session()
        engines: list[tuple[int, StrategySource, StrategyEngine]] = []
        for (i, source), strategy in zip(built, strategies, strict=True):
            config = configs[i]
            try:
                engine = StrategyEngine(
                    strategy,
                    series.symbol,
                    config.execution,
                    name=names[i],
                    record_equity=True,
                    trade_from_ms=config.trade_from_ms,
                    bar_interval=series.interval,
                )
                session.add(engine)
            except Exception as exc:
                outcomes[i] = exc
                continue
            engines.append((i, source, engine))
        started = time.perf_counter()
        with gc_paused(), halts_raised():
            session.run(ReplayFeed(series).chunks(), drop_events)
        seconds = time.perf_counter() - started
        gaps = series.gaps()
        halted = session.bus.halted
        for i, source, engine in engines:
            reason = halted.get(engine.name)
            try:
                if reason is not None:
                    # The engine is named by its job; a replay alone names it by its strategy.
                    alone = configs[i].name or engine.strategy.name
                    raise StrategyError(halt_message(alone, reason.replace(engine.name, alone)))
                outcomes[i] = replay_result(configs[i], source, engine, series, gaps, seconds)
            except Exception as exc:
                outcomes[i] = exc
    return [outcome for outcome in outcomes if outcome is not None]
