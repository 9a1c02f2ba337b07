"""The default snapshot/restore of :class:`Strategy`: plain fields and indicators for free, the
shipped strategies' snapshot format unchanged, a clear error for anything else."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections import deque
from typing import Any, ClassVar

import pytest

from barbus.daemon.core.errors import StrategyError
from barbus.daemon.core.events import Bar, Signal
from barbus.daemon.core.orders import Decision
from barbus.daemon.core.params import BaseParams, ParamValue
from barbus.daemon.core.strategy import Strategy
from barbus.strategies import create_strategy
from barbus.strategies.indicators import EMA, SMA
from tests.factories import make_bar

CLOSES = [100.0, 101.5, 99.25, 102.0, 98.5, 97.0, 103.25, 104.0, 99.0, 95.5, 96.0, 101.0]
BARS = [
    make_bar(c, minute=i, high=c + 1.0, low=c - 1.5, volume=1.0 + i) for i, c in enumerate(CLOSES)
]

# Written by the hand-written snapshot() of each strategy before the default replaced it (main at
# bbb7918), after the first ``n`` of BARS: the state files of running daemons look like this.
OLD_SNAPSHOTS: list[tuple[str, dict[str, ParamValue], int, str]] = [
    (
        "sma_cross",
        {"fast": 2, "slow": 3},
        1,
        '{"fast": {"kind": "SMA", "period": 2, "window": [100.0], "value": NaN, "ready": false}, '
        '"slow": {"kind": "SMA", "period": 3, "window": [100.0], "value": NaN, "ready": false}, '
        '"prev_diff": NaN}',
    ),
    (
        "sma_cross",
        {"fast": 2, "slow": 3},
        4,
        '{"fast": {"kind": "SMA", "period": 2, "window": [99.25, 102.0], "value": 100.625, '
        '"ready": true}, "slow": {"kind": "SMA", "period": 3, "window": [101.5, 99.25, 102.0], '
        '"value": 100.91666666666667, "ready": true}, "prev_diff": -0.2916666666666714}',
    ),
    (
        "bbrs",
        {"bb_period": 2, "rsi_period": 2, "volume_period": 3},
        4,
        '{"bands": {"kind": "BollingerBands", "period": 2, "num_std": 2.0, "window": [99.25, '
        '102.0], "outputs": [100.625, 1.375, 103.375, 97.875, 0.75, 0.0546583850931677], '
        '"ready": true}, "rsi": {"kind": "RSI", "period": 2, "started": true, "prev": 102.0, '
        '"count": 2, "avg_gain": 1.75, "avg_loss": 0.5625, "value": 75.67567567567568, "ready": '
        'true}, "volume": {"kind": "SMA", "period": 3, "window": [2.0, 3.0, 4.0], "value": 3.0, '
        '"ready": true}}',
    ),
    (
        "metatrend",
        {"period_1": 1, "period_2": 2, "period_3": 1},
        4,
        '{"supertrends": [{"kind": "Supertrend", "period": 1, "multiplier": 3.0, "atr_smoothing": '
        '"sma", "atr": {"kind": "ATR", "period": 1, "smoothing": "sma", "tr": {"kind": '
        '"TrueRange", "has_prev": true, "prev_close": 102.0, "value": 3.75, "ready": true}, '
        '"sma": {"kind": "SMA", "period": 1, "window": [3.75], "value": 3.75, "ready": true}, '
        '"count": 0, "sum": 0.0, "value": 3.75, "ready": true}, "prev_close": 102.0, "trend": 1, '
        '"upper": 108.75, "lower": 93.75, "value": 93.75, "ready": true}, {"kind": "Supertrend", '
        '"period": 2, "multiplier": 1.0, "atr_smoothing": "sma", "atr": {"kind": "ATR", '
        '"period": 2, "smoothing": "sma", "tr": {"kind": "TrueRange", "has_prev": true, '
        '"prev_close": 102.0, "value": 3.75, "ready": true}, "sma": {"kind": "SMA", "period": 2, '
        '"window": [3.75, 3.75], "value": 3.75, "ready": true}, "count": 0, "sum": 0.0, "value": '
        '3.75, "ready": true}, "prev_close": 102.0, "trend": 1, "upper": 102.125, "lower": 98.0, '
        '"value": 98.0, "ready": true}, {"kind": "Supertrend", "period": 1, "multiplier": 2.0, '
        '"atr_smoothing": "sma", "atr": {"kind": "ATR", "period": 1, "smoothing": "sma", "tr": '
        '{"kind": "TrueRange", "has_prev": true, "prev_close": 102.0, "value": 3.75, "ready": '
        'true}, "sma": {"kind": "SMA", "period": 1, "window": [3.75], "value": 3.75, "ready": '
        'true}, "count": 0, "sum": 0.0, "value": 3.75, "ready": true}, "prev_close": 102.0, '
        '"trend": 1, "upper": 106.25, "lower": 96.25, "value": 96.25, "ready": true}], "meta": 1}',
    ),
]


def decisions(strategy: Strategy[Any], bars: list[Bar]) -> list[Decision]:
    return [strategy.on_bar(bar, 0.0) for bar in bars]


def canonical(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True)


@pytest.mark.parametrize(("name", "overrides", "n", "old"), OLD_SNAPSHOTS)
def test_a_snapshot_of_the_old_hand_written_code_restores_and_keeps_its_format(
    name: str, overrides: dict[str, ParamValue], n: int, old: str
) -> None:
    straight = create_strategy(name, overrides)
    decisions(straight, BARS[:n])
    assert canonical(straight.snapshot()) == canonical(json.loads(old))  # the same format

    restored = create_strategy(name, overrides)
    restored.restore(json.loads(old))
    assert canonical(restored.snapshot()) == canonical(json.loads(old))
    assert decisions(restored, BARS[n:]) == decisions(straight, BARS[n:])


@dataclasses.dataclass(frozen=True)
class FieldsParams(BaseParams):
    period: int = 3


class _Fields(Strategy[FieldsParams]):
    """Every kind of plain field the default saves, changed by each bar."""

    params_type: ClassVar[type[BaseParams]] = FieldsParams

    def setup(self) -> None:
        self._ema = EMA(self.params.period)
        self._smas = (SMA(2), SMA(4))
        self._by_name = {"short": SMA(2)}
        self._last = math.nan
        self._peak = -math.inf
        self._count = 0
        self._armed = False
        self._label = "start"
        self._side: int | None = None
        self._closes: list[float] = []
        self._pair = (0, 0.0)
        self._seen: dict[str, int] = {}
        self._recent: deque[float] = deque(maxlen=3)

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        self._ema.update(bar.close)
        for sma in self._smas:
            sma.update(bar.close)
        self._by_name["short"].update(bar.close)
        self._count += 1
        self._armed = not self._armed
        self._label = f"bar{self._count}"
        self._side = None if self._count % 3 == 0 else self._count % 2
        self._peak = max(self._peak, bar.close)
        self._closes.append(bar.close)
        self._pair = (self._count, bar.close / 3.0)
        self._seen[str(self._count % 4)] = self._seen.get(str(self._count % 4), 0) + 1
        self._recent.append(bar.close)
        previous = self._last
        self._last = self._ema.value
        score = sum(self._recent) / len(self._recent) + self._smas[1].value
        if self._ema.ready and previous < self._last and score > 1.9 * bar.close:
            return Signal.BUY
        if self._ema.ready and previous > self._last and self._armed:
            return Signal.SELL
        return None


class DictFields(_Fields):
    """Fields in ``__dict__``."""

    def __init__(self, params: FieldsParams) -> None:
        super().__init__(params)
        self.setup()


class SlotFields(_Fields):
    """The same fields in ``__slots__`` (the base class has none, so ``params`` is in a dict)."""

    __slots__ = (
        "_armed",
        "_by_name",
        "_closes",
        "_count",
        "_ema",
        "_label",
        "_last",
        "_pair",
        "_peak",
        "_recent",
        "_seen",
        "_side",
        "_smas",
    )

    def __init__(self, params: FieldsParams) -> None:
        super().__init__(params)
        self.setup()


@pytest.mark.parametrize("cls", [DictFields, SlotFields])
@pytest.mark.parametrize("cut", [0, 1, 3, 5, 9])
def test_default_state_round_trips_through_json_and_continues_identically(
    cls: type[_Fields], cut: int
) -> None:
    params = FieldsParams()
    straight = cls(params)
    before = decisions(straight, BARS[:cut])
    text = json.dumps(straight.snapshot())
    assert "params" not in json.loads(text)

    restored = cls(params)
    restored.restore(json.loads(text))

    assert canonical(restored.snapshot()) == canonical(json.loads(text))
    rest = decisions(restored, BARS[cut:])
    assert rest == decisions(straight, BARS[cut:])
    assert before + rest == decisions(cls(params), BARS)
    assert {Signal.BUY, Signal.SELL} <= set(before + rest)
    assert decisions(restored, BARS) == decisions(straight, BARS)  # and on after that
    assert isinstance(restored._pair, tuple)
    assert isinstance(restored._recent, deque)
    assert restored._recent.maxlen == 3
    assert isinstance(restored._last, float)


def test_default_snapshot_keys_and_values_by_hand() -> None:
    strategy = SlotFields(FieldsParams())
    decisions(strategy, BARS[:2])  # closes 100.0, 101.5
    state = json.loads(json.dumps(strategy.snapshot()))
    assert set(state) == {
        "armed", "by_name", "closes", "count", "ema", "label", "last", "pair", "peak",
        "recent", "seen", "side", "smas",
    }  # fmt: skip
    assert state["count"] == 2
    assert state["armed"] is False
    assert state["label"] == "bar2"
    assert state["side"] == 0
    assert state["peak"] == 101.5
    assert state["closes"] == [100.0, 101.5]
    assert state["pair"] == [2, 101.5 / 3.0]
    assert state["seen"] == {"1": 1, "2": 1}
    assert state["recent"] == [100.0, 101.5]
    assert math.isnan(state["last"])  # EMA(3) not ready after 2 bars
    assert canonical(state["ema"]) == canonical(EMA(3).snapshot() | {"count": 2, "sum": 201.5})
    assert state["smas"][0]["window"] == [100.0, 101.5]
    assert state["by_name"]["short"]["value"] == 100.75


def test_a_snapshot_is_a_copy_not_live_state() -> None:
    strategy = DictFields(FieldsParams())
    decisions(strategy, BARS[:3])
    state = strategy.snapshot()
    frozen = canonical(state)
    decisions(strategy, BARS[3:])
    assert canonical(state) == frozen


class Lucky(Strategy[BaseParams]):
    def __init__(self, params: BaseParams) -> None:
        super().__init__(params)
        self._count = 0
        self._rng = random.Random(1)

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        return Signal.BUY if self._rng.random() < 0.5 else None


def test_an_attribute_the_default_cannot_save_is_a_clear_error() -> None:
    strategy = Lucky(BaseParams())
    with pytest.raises(StrategyError, match=r"Lucky\._rng holds a Random.*write snapshot\(\) and "):
        strategy.snapshot()
    with pytest.raises(StrategyError, match=r"Lucky\._rng holds a Random"):
        strategy.restore({"count": 0, "rng": None})


def test_a_hand_written_snapshot_still_wins() -> None:
    strategy = create_strategy("random", {"seed": 3})
    decisions(strategy, BARS[:4])
    state = json.loads(json.dumps(strategy.snapshot()))
    assert list(state) == ["rng"]
    restored = create_strategy("random", {"seed": 3})
    restored.restore(state)
    assert decisions(restored, BARS) == decisions(strategy, BARS)


def test_restore_refuses_unknown_and_missing_keys_and_wrong_types() -> None:
    strategy = create_strategy("sma_cross", {"fast": 2, "slow": 3})
    good = strategy.snapshot()
    with pytest.raises(StrategyError, match=r"snapshot has 'extra', which is no attribute"):
        strategy.restore(good | {"extra": 1})
    with pytest.raises(StrategyError, match=r"snapshot has no 'prev_diff'"):
        strategy.restore({k: v for k, v in good.items() if k != "prev_diff"})
    with pytest.raises(StrategyError, match=r"'prev_diff' does not restore: expected a number"):
        strategy.restore(good | {"prev_diff": "0.5"})
    with pytest.raises(
        StrategyError, match=r"'count' does not restore: expected a number, got str"
    ):
        DictFields(FieldsParams()).restore(DictFields(FieldsParams()).snapshot() | {"count": "1"})


def test_a_field_that_started_as_an_int_and_now_holds_a_float_restores() -> None:
    """``self._total = 0``, then ``self._total += bar.close``: the saved float restores."""
    fields = DictFields(FieldsParams())
    restored = DictFields(FieldsParams())
    restored.restore(fields.snapshot() | {"count": 1.5})
    assert restored.snapshot()["count"] == 1.5


def test_two_attributes_with_one_key_are_refused() -> None:
    class Clash(Strategy[BaseParams]):
        def __init__(self, params: BaseParams) -> None:
            super().__init__(params)
            self.level = 1.0
            self._level = 2.0

        def on_bar(self, bar: Bar, position: float) -> Signal | None:
            return None

    with pytest.raises(StrategyError, match=r"'level' and '_level' share the snapshot key"):
        Clash(BaseParams()).snapshot()
