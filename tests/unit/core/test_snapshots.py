"""An engine's snapshot resumes exactly: mid-position, with resting orders and a trailing stop,
on its own or a shared account; and a snapshot of the previous release restores."""

from __future__ import annotations

import dataclasses
import io
import json
import random
from pathlib import Path
from typing import Any

from barbus.daemon.core.account import Account
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import Bar, EngineEvent, Trade
from barbus.daemon.core.orders import Cancel, Decision, Order
from barbus.daemon.core.tradelog import write_trades
from barbus.replay.loader import bundled_data_path, load_bars
from barbus.strategies import create_strategy
from tests.unit.core.kit import bar, engine

EXECUTION = ExecutionConfig(
    fee_bps=10.0, slippage_bps=5.0, maker_fee_bps=2.0, taker_fee_bps=7.0, allow_short=True
)
V1_FIXTURE = Path(__file__).resolve().parents[2] / "data" / "engine_snapshot_v1.json"


def walk(n: int, seed: int = 7) -> list[Bar]:
    rng = random.Random(seed)
    price, bars = 100.0, []
    for minute in range(n):
        close = price * (1.0 + rng.uniform(-0.01, 0.01))
        high = max(price, close) * (1.0 + rng.uniform(0.0, 0.006))
        low = min(price, close) * (1.0 - rng.uniform(0.0, 0.006))
        bars.append(bar(minute, price, high, low, close))
        price = close
    return bars


def busy_script(bars: list[Bar], seed: int = 3) -> dict[int, Decision]:
    """Decisions on 3m buckets: dips with trailing stops, stops with brackets, shorts, cancels."""
    rng = random.Random(seed)
    script: dict[int, Decision] = {}
    for start in range(0, len(bars) - 3, 3):
        close = bars[start + 2].close
        pick = rng.random()
        if pick < 0.25:
            script[start] = Order.buy(
                0.3, limit=close * 0.997, good_for_bars=4, tag="dip", trailing_stop_pct=1.0
            )
        elif pick < 0.35:
            script[start] = Order.buy(
                quote=1_500.0,
                stop=close * 1.003,
                stop_loss_pct=1.5,
                take_profit_pct=2.0,
                tag="breakout",
            )
        elif pick < 0.45:
            script[start] = Order.target_position(-0.4, trailing_stop_pct=1.2)
        elif pick < 0.5:
            script[start] = [Cancel("dip"), Order.sell(units=2.0, limit=close * 1.004)]
        elif pick < 0.55:
            script[start] = Order.target_position(0.0)
    return script


def dump(events: list[EngineEvent]) -> str:
    return json.dumps([[type(e).__name__, dataclasses.asdict(e)] for e in events])


def csv_text(trades: list[Trade]) -> str:
    """The trades as trades.csv holds them."""
    handle = io.StringIO()
    write_trades(handle, trades)
    return handle.getvalue()


def state_of(e: StrategyEngine) -> str:
    return json.dumps(
        [e.account.cash, e.position.snapshot(), e.open_orders, e.bars, e.bars_in_market]
    )


def test_snapshot_restore_mid_position_with_resting_orders_and_a_trailing_stop_is_exact() -> None:
    bars = walk(600)
    script = busy_script(bars)
    whole = engine(script, EXECUTION, timeframe="3m")
    cuts = []
    for i, b in enumerate(bars):
        whole.on_bar(b)
        state = whole.snapshot()
        if state["position"]["size"] != 0.0 and state["orders"] and state["trail_rate"] > 0.0:
            cuts.append(i + 1)
    assert len(cuts) >= 5, "the script must leave positions, orders and trails at some cuts"
    plain = engine(script, EXECUTION, timeframe="3m")
    for b in bars:
        plain.on_bar(b)
    plain.finish()
    expected = dump(plain.drain())
    assert {t.direction.value for t in plain.trades} == {"long", "short"}
    assert {"limit", "trailing_stop"} <= {t.exit_reason.value for t in plain.trades}

    for cut in cuts[:: max(1, len(cuts) // 6)]:
        first = engine(script, EXECUTION, timeframe="3m")
        for b in bars[:cut]:
            first.on_bar(b)
        before = first.drain()
        saved = json.loads(json.dumps(first.snapshot()))
        second = engine(script, EXECUTION, timeframe="3m")
        second.restore(saved)
        assert json.dumps(second.snapshot()) == json.dumps(saved)
        for b in bars[cut:]:
            second.on_bar(b)
        second.finish()

        assert dump(before + second.drain()) == expected, f"cut after {cut}"
        assert first.trades + second.trades == plain.trades
        assert csv_text(first.trades + second.trades) == csv_text(plain.trades)
        assert state_of(second) == state_of(plain)


def test_engines_on_a_shared_account_resume_from_their_snapshots_and_the_accounts() -> None:
    bars = walk(300, seed=11)
    scripts = [busy_script(bars, seed=5), busy_script(bars, seed=6)]

    def build() -> tuple[Account, list[StrategyEngine]]:
        account = Account("pool", 20_000.0, allow_short=True)
        return account, [
            engine(s, EXECUTION, name=f"e{i}", account=account, timeframe="3m")
            for i, s in enumerate(scripts)
        ]

    account, plain = build()
    for b in bars:
        for e in plain:
            e.on_bar(b)
    account_a, first = build()
    for b in bars[:150]:
        for e in first:
            e.on_bar(b)
    saved = json.loads(json.dumps([account_a.snapshot(), [e.snapshot() for e in first]]))
    assert all(s["cash"] is None for s in saved[1])  # the account keeps the cash
    account_b, second = build()
    account_b.restore(saved[0])
    for e, state in zip(second, saved[1], strict=True):
        e.restore(state)
    for b in bars[150:]:
        for e in second:
            e.on_bar(b)

    assert account_b.cash == account.cash
    for a, f, s in zip(plain, first, second, strict=True):
        assert f.trades + s.trades == a.trades
        assert dump(f.drain() + s.drain()) == dump(a.drain())


def trade_fields(trade: Any) -> dict[str, Any]:
    fields = dataclasses.asdict(trade)
    fields.pop("direction")  # the previous release had no direction: every trade was long
    return {k: (v.value if hasattr(v, "value") else v) for k, v in fields.items()}


def test_a_snapshot_of_the_previous_release_restores_and_continues_as_it_would_have() -> None:
    fixture = json.loads(V1_FIXTURE.read_text())
    assert "version" not in fixture["snapshot"]
    assert "portfolio" in fixture["snapshot"]
    bars = load_bars(bundled_data_path(fixture["data"])).to_bars()
    cut = fixture["cut_after_bars"]
    restored = StrategyEngine(
        create_strategy(fixture["strategy"], fixture["params"]), "BTCUSDT", ExecutionConfig()
    )
    restored.restore(fixture["snapshot"])
    assert restored.position.size == fixture["snapshot"]["portfolio"]["size"] > 0.0
    for b in bars[cut:]:
        restored.on_bar(b)
    restored.finish()

    assert len(restored.trades) == fixture["trades_after_cut_count"]
    expected = fixture["trades_after_cut"]
    assert [trade_fields(t) for t in restored.trades[: len(expected)]] == expected
    assert restored.account.cash == fixture["cash_at_end"]
    assert restored.snapshot()["version"] == 2
