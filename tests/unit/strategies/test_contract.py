"""``check_strategy``: passes for the shipped strategies, fails with the right message for each
documented way a strategy can break the contract."""

from __future__ import annotations

import dataclasses
import itertools
import math
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.events import Bar, Signal
from barbus.daemon.core.params import BaseParams, require
from barbus.daemon.core.strategy import Strategy
from barbus.daemon.core.synthetic import synthetic_series
from barbus.replay.loader import load_bars
from barbus.strategies import STRATEGIES
from barbus.strategies.indicators import EMA
from barbus.strategies.sma_cross import SmaCross, SmaCrossParams
from barbus.strategies.testing import check_strategy
from tests import reference
from tests.factories import bars_of


@pytest.fixture(scope="module")
def minutes() -> list[Bar]:
    return synthetic_series(6000, seed=3).to_bars()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_the_shipped_strategies_pass_on_the_default_bars(name: str) -> None:
    decisions = check_strategy(STRATEGIES[name])
    assert decisions  # the default bars make every shipped strategy decide


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sma_cross", {"fast": 3, "slow": 8}),
        ("bbrs", {"timeframe": "15m"}),
        ("metatrend", {"timeframe": "5m", "period_2": 4}),
        ("random", {"seed": 5, "entry_probability": 0.5}),
    ],
)
def test_the_shipped_strategies_pass_on_real_data(
    btc_2025_path: Path, name: str, params: dict[str, Any]
) -> None:
    bars = bars_of(load_bars(btc_2025_path))[:20_000]
    assert check_strategy(STRATEGIES[name], params, bars)


def test_the_decisions_returned_are_the_strategy_s_own(btc_2025_path: Path) -> None:
    # sma_cross 10/30 over real minutes against the vectorised crossovers of tests/reference.
    bars = bars_of(load_bars(btc_2025_path))[:20_000]
    closes = np.array([bar.close for bar in bars])
    diff = reference.sma(closes, 10) - reference.sma(closes, 30)
    prev = np.concatenate(([np.nan], diff[:-1]))
    up = np.flatnonzero((diff > 0) & (prev <= 0)) + 1
    down = np.flatnonzero((diff < 0) & (prev >= 0)) + 1
    expected = sorted([(int(i), Signal.BUY) for i in up] + [(int(i), Signal.SELL) for i in down])

    assert check_strategy(SmaCross, {"fast": 10, "slow": 30}, bars) == expected


# --- broken strategies ------------------------------------------------------------------------


class Rising(Strategy[BaseParams]):
    """BUY on a close above the previous one while flat, SELL on one below while long."""

    def __init__(self, params: BaseParams) -> None:
        super().__init__(params)
        self._ema = EMA(5)
        self._prev = math.nan

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        self._ema.update(bar.close)
        prev, self._prev = self._prev, bar.close
        if not self._ema.ready:
            return None
        if position <= 0.0 and bar.close > prev:
            return Signal.BUY
        if position > 0.0 and bar.close < prev:
            return Signal.SELL
        return None


class ForgetfulSnapshot(Rising):
    def snapshot(self) -> dict[str, Any]:
        return {"ema": self._ema.snapshot()}  # forgets _prev

    def restore(self, state: dict[str, Any]) -> None:
        self._ema.restore(state["ema"])


_calls = itertools.count()


class Nondeterministic(Rising):
    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        signal = super().on_bar(bar, position)
        return None if next(_calls) % 7 == 0 else signal  # a global that outlives the instance


class TooEager(Rising):
    @property
    def warmup_bars(self) -> int:
        return 100  # decides from bar 5 (EMA(5) ready) on a rise: bar 10 on these bars


class NeverReady(Rising):
    @property
    def ready(self) -> bool:
        return False


class NotJson(Rising):
    def snapshot(self) -> dict[str, Any]:
        return {"ema": self._ema.snapshot(), "prev": self._prev, "seen": {1, 2}}


class RestoreFails(Rising):
    def restore(self, state: dict[str, Any]) -> None:
        raise KeyError("prev")


@dataclasses.dataclass(frozen=True)
class NoSuperParams(BaseParams):
    window: int = 5

    def __post_init__(self) -> None:  # forgets super().__post_init__(): no timeframe check
        require(self.window >= 1, "window must be >= 1")


class SkipsBaseChecks(Rising):
    params_type: ClassVar[type[BaseParams]] = NoSuperParams


@dataclasses.dataclass(frozen=True)
class BadDefaultParams(BaseParams):
    window: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.window >= 1, f"window must be >= 1, got {self.window}")


class BadDefaults(Rising):
    params_type: ClassVar[type[BaseParams]] = BadDefaultParams


@dataclasses.dataclass(frozen=True)
class UncheckedParams(BaseParams):
    window: int = 5  # no validation of its own: fine, not part of the contract


class Unchecked(Rising):
    params_type: ClassVar[type[BaseParams]] = UncheckedParams


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (
            ForgetfulSnapshot,
            r"ForgetfulSnapshot: restored from the snapshot after bar \d+, decisions differ first "
            r"at bar \d+ (BUY|SELL) \(expected.*the snapshot misses some state",
        ),
        (Nondeterministic, r"Nondeterministic is not deterministic: two runs over the same bars"),
        (TooEager, r"TooEager decided BUY at bar 10, before its warmup_bars \(100\)"),
        (NeverReady, r"NeverReady is not ready after warmup_bars \(5\) bars"),
        (NotJson, r"NotJson: the snapshot after bar \d+ is not JSON: .*set"),
        (RestoreFails, r"RestoreFails: restoring the snapshot taken after bar 1 failed: KeyError"),
        (SkipsBaseChecks, r"SkipsBaseChecks: timeframe='-1m' was accepted"),
        (BadDefaults, r"BadDefaults: the default parameters are invalid: window must be >= 1"),
    ],
)
def test_a_broken_strategy_fails_with_a_message_that_says_what_broke(
    minutes: list[Bar], cls: type[Rising], message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        check_strategy(cls, bars=minutes)


def test_the_unbroken_base_and_an_unvalidated_parameter_pass(minutes: list[Bar]) -> None:
    assert check_strategy(Rising, bars=minutes)
    assert check_strategy(Unchecked, {"window": -3}, bars=minutes)


def test_a_parameter_object_is_the_same_as_its_overrides(minutes: list[Bar]) -> None:
    by_object = check_strategy(SmaCross, SmaCrossParams(fast=3, slow=8), minutes)
    assert by_object == check_strategy(SmaCross, {"fast": "3", "slow": "8"}, minutes)
    assert by_object != check_strategy(SmaCross, bars=minutes)


def test_invalid_overrides_are_the_strategy_error_the_cli_shows(minutes: list[Bar]) -> None:
    with pytest.raises(StrategyError, match="slow"):
        check_strategy(SmaCross, {"fast": 5, "slow": 2}, bars=minutes)


@pytest.mark.process
def test_the_contract_module_keeps_replay_out_of_the_strategies_import() -> None:
    code = (
        "import sys, barbus.strategies.testing\n"
        "print(sorted(m for m in sys.modules if m.startswith('barbus.replay')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_too_few_bars_to_get_past_the_warm_up_is_a_failure_not_a_pass() -> None:
    """A daily SMA(50) strategy on the default three weeks of minutes would check nothing."""
    with pytest.raises(AssertionError, match=r"only 20 bars of 1d, but warmup_bars is 51"):
        check_strategy(SmaCross, {"timeframe": "1d", "fast": 10, "slow": 50})
