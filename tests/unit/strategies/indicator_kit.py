"""The real-data machinery the two indicator contract suites share.

``test_indicators`` and ``test_indicators_more`` each keep their own cases and their own way of
feeding a case; what they share is here: the bundled BTCUSDT files and tolerances, the market
columns, the per-module cache of runs and expectations, and the contract checks whose logic is
the same for every indicator (matching the reference, snapshot continuity, reset, flat state).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from tests.reference import FloatArray, assert_close

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_DIR = REPO_ROOT / "replay" / "data"
DATA_FILES = {
    "btc-2025": "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz",
    "btc-2023-flat-and-gap": "BTCUSDT_1m_2023-03-16_2023-05-05.csv.gz",
}
RTOL = 1e-9
EPS = float(np.finfo(np.float64).eps)

Inputs = Literal["c", "hlc", "cv", "hlcvt"]


class Indicator(Protocol):
    value: float
    ready: bool

    def reset(self) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Market:
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    open_time_ms: NDArray[np.int64]

    def head(self, n: int) -> Market:
        return self.slice(0, n)

    def tail(self, start: int) -> Market:
        return self.slice(start, len(self.close))

    def slice(self, start: int, stop: int) -> Market:
        return Market(
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
            self.open_time_ms[start:stop],
        )

    def columns(self, inputs: Inputs) -> list[list[Any]]:
        chosen = {
            "c": (self.close,),
            "hlc": (self.high, self.low, self.close),
            "cv": (self.close, self.volume),
            "hlcvt": (self.high, self.low, self.close, self.volume, self.open_time_ms),
        }[inputs]
        return [column.tolist() for column in chosen]


@dataclass(frozen=True)
class Expected:
    values: FloatArray
    rtol: float = RTOL
    atol: float | FloatArray = 0.0


def load_market(path: Path) -> Market:
    frame = pd.read_csv(path, compression="gzip")
    return Market(
        frame["high"].to_numpy(dtype=np.float64),
        frame["low"].to_numpy(dtype=np.float64),
        frame["close"].to_numpy(dtype=np.float64),
        frame["volume"].to_numpy(dtype=np.float64),
        frame["open_time_ms"].to_numpy(dtype=np.int64),
    )


def load_markets() -> dict[str, Market]:
    return {key: load_market(DATA_DIR / name) for key, name in DATA_FILES.items()}


class CaseLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def outputs(self) -> tuple[str, ...]: ...

    @property
    def expected(self) -> Callable[[Market], dict[str, Expected]]: ...


C = TypeVar("C", bound=CaseLike)


class Runs(Generic[C]):
    """Each case's outputs and expectations per file, computed once for the tests using them."""

    def __init__(
        self, markets: dict[str, Market], run: Callable[[C, Market], dict[str, FloatArray]]
    ) -> None:
        self.markets = markets
        self._run = run
        self._actual: dict[tuple[str, str], dict[str, FloatArray]] = {}
        self._expected: dict[tuple[str, str], dict[str, Expected]] = {}

    def actual(self, case: C, data: str) -> dict[str, FloatArray]:
        key = (case.id, data)
        if key not in self._actual:
            self._actual[key] = self._run(case, self.markets[data])
        return self._actual[key]

    def expected(self, case: C, data: str) -> dict[str, Expected]:
        key = (case.id, data)
        if key not in self._expected:
            self._expected[key] = case.expected(self.markets[data])
        return self._expected[key]


# --- the shared contract checks ------------------------------------------------------------------

Record = Callable[[Indicator, Market], dict[str, FloatArray]]


def assert_matches_expected(case: C, data: str, runs: Runs[C]) -> None:
    """Every output of ``case`` on file ``data`` equals its reference within its tolerance."""
    # Arrange
    expected = runs.expected(case, data)

    # Act
    actual = runs.actual(case, data)

    # Assert
    assert set(expected) == set(case.outputs)
    for name, want in expected.items():
        assert_close(
            actual[name], want.values, rtol=want.rtol, atol=want.atol, what=f"{case.id}.{name}"
        )


def assert_snapshot_continues(
    make: Callable[[], Indicator], record: Record, market: Market, splits: Iterable[int]
) -> None:
    """A JSON-round-tripped snapshot taken at each split continues bit-identically."""
    uninterrupted = record(make(), market)
    for split in splits:
        # Arrange
        first = make()
        record(first, market.head(split))
        state = json.loads(json.dumps(first.snapshot()))
        resumed = make()

        # Act
        resumed.restore(state)
        restored_state = json.dumps(resumed.snapshot())
        continued = record(resumed, market.tail(split))

        # Assert
        assert restored_state == json.dumps(state)
        for name, values in continued.items():
            assert values.tobytes() == uninterrupted[name][split:].tobytes(), (split, name)


def assert_reset_returns_to_warm_up(
    make: Callable[[], Indicator], record: Record, market: Market
) -> None:
    """After 300 bars and a reset, the indicator is a fresh one: state and outputs."""
    # Arrange
    fresh = make()
    used = make()
    record(used, market.head(300))

    # Act
    used.reset()

    # Assert
    assert not used.ready
    assert math.isnan(used.value)
    assert json.dumps(used.snapshot()) == json.dumps(fresh.snapshot())
    after_reset = record(used, market)
    from_fresh = record(fresh, market)
    for name, values in after_reset.items():
        assert values.tobytes() == from_fresh[name].tobytes(), name


def count_numbers(state: object) -> int:
    if isinstance(state, dict):
        return sum(count_numbers(v) for v in state.values())
    if isinstance(state, list):
        return sum(count_numbers(v) for v in state)
    return 1 if isinstance(state, int | float) else 0


def assert_state_stays_flat(
    make: Callable[[], Indicator],
    record: Record,
    market: Market,
    early_bars: int,
    chars_per_number: int,
) -> None:
    """The snapshot after ``market`` holds the same numbers as after ``early_bars``: only their
    digits may differ, by ``chars_per_number`` characters each at the most."""
    # Arrange
    early = make()
    record(early, market.head(early_bars))
    early_state = early.snapshot()
    late = make()

    # Act
    record(late, market)

    # Assert
    slack = chars_per_number * count_numbers(early_state)
    assert len(json.dumps(late.snapshot())) <= len(json.dumps(early_state)) + slack


def bad_argument_params(
    cases: Iterable[tuple[Callable[..., object], tuple[object, ...]]],
) -> list[Any]:
    """``(factory, args)`` parameters named after the call they make, for the constructor checks."""
    return [pytest.param(f, a, id=f"{getattr(f, '__name__', f)}{a}") for f, a in cases]


def assert_rejects(factory: Callable[..., object], args: tuple[object, ...]) -> None:
    """``factory(*args)`` refuses a bad argument with the indicator's ValueError; the compiled
    kernel's typed signature refuses an argument of another type first (a TypeError naming the
    type) and takes a bool as the int or float it is (mypyc unboxes it before the check sees a
    bool): then it must make the same indicator as with the number."""
    compiled = sys.modules[getattr(factory, "__module__", "")].__file__ or ""
    if compiled.endswith(".so") and any(isinstance(a, bool) for a in args):
        numbers = tuple((type(a) is bool and int(a)) or a for a in args)
        made = [repr(factory(*a).snapshot()) for a in (args, numbers)]  # type: ignore[attr-defined]
        assert made[0] == made[1]
        return
    with pytest.raises((ValueError, TypeError), match=r"must be|object expected; got"):
        factory(*args)
