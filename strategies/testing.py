"""A contract check for strategy authors to call in their own tests: what barbus relies on.

:func:`check_strategy` runs a strategy class over bars and fails with an :class:`AssertionError`
that says what broke, when any of these does not hold:

- its default parameters are valid, and the base fields reject invalid values (a timeframe that
  is not one, a negative stop loss) with :class:`~barbus.daemon.core.errors.StrategyError`;
- two runs over the same bars return identical decisions (no hidden randomness, clock or global);
- a snapshot taken at several points mid-series goes through JSON as the daemon's state store
  does (NaN and infinities allowed), restores into a fresh instance, and that instance continues
  with identical decisions and ends in an identical state;
- no decision comes before bar ``warmup_bars``, and the strategy is ``ready`` after that many.

Bars are 1-minute bars (a data file, the sim exchange) aggregated to the strategy's timeframe as
the engine does; bars already of that timeframe are used as they are. A decision is a
``Signal``, an ``Order``, a ``Cancel`` or a list of them (anything else fails the check). The
position handed to ``on_bar`` follows the decisions roughly as the engine applies them, without
prices: long (1.0) after BUY, flat after SELL; a market order or a target moves it to the
order's sign (an unsized sell closes a long, an unsized buy covers a short); limit and stop
orders rest and are not filled here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from barbus.daemon.core.aggregate import TimeframeAggregator
from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.events import Bar, Side, Signal
from barbus.daemon.core.orders import Cancel, Order, OrderKind
from barbus.daemon.core.params import BaseParams, ParamValue, parse_params
from barbus.daemon.core.strategy import AnyStrategy

__all__ = ["DEFAULT_MINUTES", "check_strategy"]

DEFAULT_MINUTES = 30_000
"""Synthetic 1-minute bars used when no bars are given (about three weeks: 500 hourly bars)."""

Decided = Signal | Order | Cancel | tuple[Signal | Order | Cancel, ...]
Decision = tuple[int, Decided]
"""(1-based bar number of the strategy's timeframe, the decision; a list as a tuple)."""


def check_strategy(
    cls: type[AnyStrategy],
    params: Mapping[str, ParamValue] | BaseParams | None = None,
    bars: Sequence[Bar] | None = None,
) -> list[Decision]:
    """Check ``cls`` against the contract above; return the decisions of a plain run.

    ``params`` are overrides of the defaults (or a parameter object); ``bars`` default to a
    deterministic synthetic random walk (:func:`barbus.daemon.core.synthetic.synthetic_series`).
    """
    _check_parameters(cls)
    if isinstance(params, BaseParams):
        chosen = params
    else:
        chosen = parse_params(cls.params_type, params or {})
    frames = _timeframe_bars(_default_bars() if bars is None else bars, chosen.timeframe)
    if not frames:
        raise AssertionError(f"{cls.__name__}: no bars of timeframe {chosen.timeframe} to run on")

    first = cls(chosen)
    warmup = first.warmup_bars
    if not isinstance(warmup, int) or warmup < 1:
        raise AssertionError(f"{cls.__name__}.warmup_bars must be an int >= 1, got {warmup!r}")
    n = len(frames)
    if n <= warmup + 1:
        raise AssertionError(
            f"{cls.__name__}: only {n} bars of {chosen.timeframe}, but warmup_bars is {warmup}: "
            f"nothing would be checked; pass bars (1-minute) covering at least {2 * warmup + 10} "
            f"bars of {chosen.timeframe}"
        )
    cuts = _cuts(n, warmup)
    decisions, saved = _run(first, frames, cuts=frozenset([*cuts, n]))
    again, _ = _run(cls(chosen), frames)
    if again != decisions:
        raise AssertionError(
            f"{cls.__name__} is not deterministic: two runs over the same bars differ first at "
            f"{_first_difference(decisions, again)}"
        )
    early = [d for d in decisions if d[0] < warmup]
    if early:
        raise AssertionError(
            f"{cls.__name__} decided {_name(early[0][1])} at bar {early[0][0]}, before its "
            f"warmup_bars ({warmup})"
        )
    if n >= warmup:
        after = cls(chosen)
        for bar in frames[:warmup]:
            after.on_bar(bar, 0.0)
        if not after.ready:
            raise AssertionError(f"{cls.__name__} is not ready after warmup_bars ({warmup}) bars")

    final = _canonical(cls, saved[n][1], n)
    for cut in cuts:
        position, state = saved[cut]
        restored = cls(chosen)
        try:
            restored.restore(_json_round_trip(cls, state, cut))
        except Exception as exc:
            raise AssertionError(
                f"{cls.__name__}: restoring the snapshot taken after bar {cut} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        rest, _ = _run(restored, frames, start=cut, position=position)
        expected = [d for d in decisions if d[0] > cut]
        if rest != expected:
            raise AssertionError(
                f"{cls.__name__}: restored from the snapshot after bar {cut}, decisions differ "
                f"first at {_first_difference(expected, rest)}: the snapshot misses some state"
            )
        end = _canonical(cls, _snapshot(restored, n), n)
        if end != final:
            raise AssertionError(
                f"{cls.__name__}: restored from the snapshot after bar {cut}, the state after the "
                f"last bar differs from a plain run's: the snapshot misses some state"
            )
    return decisions


def _check_parameters(cls: type[AnyStrategy]) -> None:
    try:
        cls.params_type()
    except StrategyError as exc:
        raise AssertionError(f"{cls.__name__}: the default parameters are invalid: {exc}") from exc
    except TypeError as exc:  # a field without a default
        raise AssertionError(
            f"{cls.__name__}: every parameter needs a default (barbus builds the defaults, "
            f"then applies --param overrides): {exc}"
        ) from exc
    for name, bad in (("timeframe", "-1m"), ("stop_loss_pct", -1.0)):
        try:
            parse_params(cls.params_type, {name: bad})
        except StrategyError:
            continue
        raise AssertionError(
            f"{cls.__name__}: {name}={bad!r} was accepted; a params_type.__post_init__ must call "
            f"super().__post_init__() and raise StrategyError (barbus.daemon.core.strategy.require)"
        )


def _default_bars() -> list[Bar]:
    # Imported here: barbus.strategies never imports replay (test_guard_rails), only this call.
    from barbus.daemon.core.synthetic import synthetic_series

    return synthetic_series(DEFAULT_MINUTES).to_bars()


def _timeframe_bars(bars: Sequence[Bar], timeframe: str) -> list[Bar]:
    """Bars as the engine hands them to a strategy of ``timeframe``."""
    if not bars or bars[0].interval == timeframe:
        return list(bars)
    aggregator = TimeframeAggregator(bars[0].symbol, timeframe)
    out = []
    for minute in bars:
        done = aggregator.add(minute)
        if aggregator.late is not None:
            out.append(aggregator.late)
            aggregator.late = None
        if done is not None:
            out.append(done)
    return out


def _run(
    strategy: AnyStrategy,
    bars: Sequence[Bar],
    *,
    start: int = 0,
    position: float = 0.0,
    cuts: frozenset[int] = frozenset(),
) -> tuple[list[Decision], dict[int, tuple[float, dict[str, Any]]]]:
    """Decisions from bar ``start + 1`` on, and (position, snapshot) after each bar in ``cuts``."""
    decisions: list[Decision] = []
    saved: dict[int, tuple[float, dict[str, Any]]] = {}
    for number in range(start + 1, len(bars) + 1):
        returned = strategy.on_bar(bars[number - 1], position)
        if returned is not None:
            decided = _decided(strategy, returned, number)
            decisions.append((number, decided))
            for item in decided if isinstance(decided, tuple) else (decided,):
                position = _position_after(item, position)
        if number in cuts:
            saved[number] = (position, _snapshot(strategy, number))
    return decisions, saved


def _decided(strategy: AnyStrategy, returned: object, number: int) -> Decided:
    """The decision as a comparable value, or an AssertionError naming what was returned."""
    if isinstance(returned, Signal | Order | Cancel):
        return returned
    if isinstance(returned, list | tuple) and all(
        isinstance(item, Signal | Order | Cancel) for item in returned
    ):
        return tuple(returned)
    raise AssertionError(
        f"{type(strategy).__name__} returned {returned!r} from on_bar at bar {number}: return "
        "a Signal, an Order, a Cancel, a list of them, or None"
    )


def _position_after(decision: Signal | Order | Cancel, position: float) -> float:
    """The position after ``decision``, as the engine would leave it, without prices."""
    if isinstance(decision, Signal):
        if decision is Signal.BUY and position <= 0.0:
            return 1.0
        if decision is Signal.SELL and position > 0.0:
            return 0.0
        return position
    if not isinstance(decision, Order) or decision.kind is not OrderKind.MARKET:
        return position  # a Cancel, or a resting order that this check does not fill
    if decision.target is not None:
        return 0.0 if decision.target == 0.0 else math.copysign(1.0, decision.target)
    buying = decision.side is Side.BUY
    if not decision.sized:
        if buying:
            return 0.0 if position < 0.0 else 1.0
        return 0.0 if position > 0.0 else position
    if buying:
        return 0.0 if position < 0.0 else 1.0
    return 0.0 if position > 0.0 else -1.0


def _snapshot(strategy: AnyStrategy, after: int) -> dict[str, Any]:
    try:
        return strategy.snapshot()
    except Exception as exc:
        raise AssertionError(
            f"{type(strategy).__name__}.snapshot() failed after bar {after}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _json_round_trip(cls: type[AnyStrategy], state: dict[str, Any], after: int) -> Any:
    """The state as the daemon stores it (json.dumps allows NaN and infinities) and reads it."""
    try:
        return json.loads(json.dumps(state))
    except (TypeError, ValueError) as exc:
        raise AssertionError(
            f"{cls.__name__}: the snapshot after bar {after} is not JSON: {exc}"
        ) from exc


def _canonical(cls: type[AnyStrategy], state: dict[str, Any], after: int) -> str:
    return json.dumps(_json_round_trip(cls, state, after), sort_keys=True)


def _cuts(n: int, warmup: int) -> list[int]:
    """Snapshot points: early, inside and right after the warm-up, and through the series."""
    points = {1, warmup - 1, warmup, warmup + 1, n // 3, n // 2, (3 * n) // 4, n - 1}
    return sorted(p for p in points if 0 < p < n)


def _first_difference(expected: list[Decision], actual: list[Decision]) -> str:
    for want, got in zip(expected, actual, strict=False):
        if want != got:
            return f"{_show(want)} (expected) vs {_show(got)}"
    if len(expected) > len(actual):
        return f"{_show(expected[len(actual)])} (expected, missing)"
    return f"{_show(actual[len(expected)])} (unexpected)"


def _show(decision: Decision) -> str:
    return f"bar {decision[0]} {_name(decision[1])}"


def _name(decided: Decided) -> str:
    if isinstance(decided, tuple):
        return "[" + ", ".join(_name(item) for item in decided) + "]"
    return decided.name if isinstance(decided, Signal) else repr(decided)
