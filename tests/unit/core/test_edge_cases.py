"""Edge cases a review of the kernel found: sizing at the limits of the free cash, rounding at a
full exit, targets that are already met, the barrier's scope and account names."""

from __future__ import annotations

import random

import pytest

from barbus.daemon.core.account import Account
from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import Side
from barbus.daemon.core.orders import Order
from barbus.daemon.core.session import Session
from tests.unit.core.kit import engine, fills, flat, order_events, run

SLIPPY_SHORT = ExecutionConfig(fee_bps=10.0, slippage_bps=5.0, allow_short=True)
SLIPPY = ExecutionConfig(fee_bps=10.0, slippage_bps=5.0)


def test_a_short_of_all_equity_never_spends_more_than_the_free_cash() -> None:
    # Free cash after a short of q at fill price p (ref r): cash + q*p*(1-f) - 2*q*r. The
    # order asks for all equity (10,000 / 100 = 100 units); the free cash pays 100 / (2*100 -
    # 99.95*0.999) = 99.95 units... of 10,000 / 100.14995 each: solved by hand below.
    e, events = run([flat(0, 100.0), flat(1, 100.0)], {0: Order.sell(1.0)}, SLIPPY_SHORT)

    [short] = fills(events)
    unit_cost = 2 * 100.0 - 99.95 * (1 - 0.001)
    assert short.size == pytest.approx(10_000.0 / unit_cost, rel=1e-12)
    assert e.account.free(e, 100.0) >= 0.0
    assert e.account.free(e, 100.0) == pytest.approx(0.0, abs=1e-9)
    assert [ev.event for ev in order_events(events)] == ["placed", "reduced"]


@pytest.mark.parametrize("seed", range(5))
def test_selling_all_equity_after_an_all_in_buy_closes_the_long_without_a_halt(seed: int) -> None:
    # fraction=1.0 of equity at the sell's price is the long plus rounding: it must close the
    # long exactly, never sell a few 1e-17 units short (which would halt a long-only account).
    rng = random.Random(seed)
    for _ in range(40):
        buy_at, sell_at = rng.uniform(1.0, 1e5), rng.uniform(1.0, 1e5)
        session = Session()
        e = session.add(engine({0: Order.buy(), 1: Order.sell(1.0)}, SLIPPY))
        for b in (flat(0, buy_at), flat(1, buy_at), flat(2, sell_at), flat(3, sell_at)):
            session.push(b)
        assert e.name not in session.bus.halted, (buy_at, sell_at)
        assert e.position.size == 0.0
        assert len(e.trades) == 1


def test_a_target_sent_every_bar_settles_and_says_it_is_met() -> None:
    minutes = [flat(m, 100.0) for m in range(12)]
    script = {m: Order.target_position(-0.5) for m in range(11)}
    e, events = run(minutes, script, SLIPPY_SHORT)

    assert len(fills(events)) == 1
    met = [ev for ev in order_events(events, "rejected") if ev.detail == "already at the target"]
    assert len(met) == 10  # the orders of minutes 1..10 meet the target at minutes 2..11
    assert e.orders[Side.SELL] == 1  # counted by the side it filled on
    assert e.orders[Side.BUY] == 0


def test_a_target_counts_the_side_it_fills_on() -> None:
    minutes = [flat(m, 100.0) for m in range(4)]
    e, events = run(minutes, {0: Order.buy(0.8), 1: Order.target_position(0.2)})

    buy, sell = fills(events)
    assert (buy.side, sell.side) == (Side.BUY, Side.SELL)
    assert e.orders == {Side.BUY: 1, Side.SELL: 1}


def test_an_entry_with_its_take_profit_sell_in_one_decision_is_no_short() -> None:
    minutes = [flat(0, 100.0), flat(1, 100.0), flat(2, 100.0), flat(3, 104.0)]
    session = Session()
    e = session.add(engine({0: [Order.buy(units=1.0), Order.sell(units=1.0, limit=103.0)]}, SLIPPY))
    for b in minutes:
        session.push(b)

    assert e.name not in session.bus.halted
    assert [t.exit_price for t in e.trades] == [104.0]  # max(open, limit): the open gapped up


def test_a_sell_of_more_units_than_held_and_bought_is_a_short() -> None:
    session = Session()
    e = session.add(engine({0: [Order.buy(units=1.0), Order.sell(units=2.0, limit=103.0)]}))
    session.push(flat(0, 100.0))

    assert "sold short" in session.bus.halted[e.name]


def test_only_the_symbols_of_a_cross_symbol_account_wait_for_each_other() -> None:
    session = Session()
    pool = session.open_account("pool", 10_000.0)
    session.add(engine({}, symbol="BTCUSDT", name="a", account=pool))
    session.add(engine({}, symbol="ETHUSDT", name="b", account=pool))
    alone = session.add(engine({}, symbol="SOLUSDT", name="sol"))

    assert session.push(flat(0, 1.0, "BTCUSDT")) == []  # held for ETHUSDT's minute 0
    assert session.push(flat(0, 5.0, "SOLUSDT")) == [flat(0, 5.0, "SOLUSDT")]
    assert alone.bars == 1
    released = session.push(flat(0, 2.0, "ETHUSDT"))
    assert [b.symbol for b in released] == ["BTCUSDT", "ETHUSDT"]


def test_an_own_account_named_like_a_shared_one_is_refused() -> None:
    session = Session()
    session.open_account("pool", 10_000.0)
    clash = StrategyEngine(engine({}).strategy, "BTCUSDT", SLIPPY, name="pool")

    with pytest.raises(ValueError, match="share the name 'pool'"):
        session.add(clash)


def test_a_shared_account_is_not_taken_for_a_clash() -> None:
    session = Session()
    pool = session.open_account("pool", 10_000.0)
    session.add(engine({}, name="pool-user", account=pool))
    assert isinstance(session.accounts["pool"], Account)
