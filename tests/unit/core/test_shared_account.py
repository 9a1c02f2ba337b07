"""Several engines on one account: the free-cash rule, reduce/reject, the acting order within a
minute, and the minute barrier across symbols (numbers by hand)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

import pytest

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import Bar, EngineEvent
from barbus.daemon.core.orders import Decision, Order
from barbus.daemon.core.session import Session
from tests.unit.core.kit import FREE, engine, fills, flat, order_events


def shared(
    scripts: Sequence[tuple[str, str, Mapping[int, Decision]]],
    *,
    cash: float = 10_000.0,
    allow_short: bool = False,
    execution: ExecutionConfig = FREE,
) -> tuple[Session, list[StrategyEngine]]:
    session = Session()
    account = session.open_account("pool", cash, allow_short=allow_short)
    engines = [
        session.add(engine(script, execution, symbol=symbol, name=name, account=account))
        for name, symbol, script in scripts
    ]
    return session, engines


def test_free_cash_is_equity_minus_the_gross_position_value() -> None:
    # A short of 50 at 100 adds 5000 to the cash (15000), but the free cash is
    # equity 10000 minus gross value 5000: a long next to it may cost 5000, not 15000.
    session, (short, long) = shared(
        [("short", "BTCUSDT", {0: Order.sell(units=50.0)}), ("long", "BTCUSDT", {1: Order.buy()})],
        allow_short=True,
    )
    for minute in range(4):
        session.push(flat(minute, 100.0))

    account = short.account
    assert account.free(short, 100.0) == pytest.approx(0.0, abs=1e-9)
    assert long.position.size == pytest.approx(50.0, rel=1e-12)
    assert account.cash == pytest.approx(10_000.0, rel=1e-12)  # 15000 - 5000
    assert account.equity(short, 100.0) == pytest.approx(10_000.0, rel=1e-12)


def test_an_order_that_needs_more_than_is_free_is_reduced_then_the_next_is_rejected() -> None:
    session, (a, b, c) = shared(
        [
            ("a", "BTCUSDT", {0: Order.buy(units=60.0)}),  # 6000 of 10000
            ("b", "BTCUSDT", {0: Order.buy(units=50.0)}),  # 5000 asked, 4000 free
            ("c", "BTCUSDT", {0: Order.buy(units=10.0)}),  # nothing left
        ]
    )
    for minute in range(3):
        session.push(flat(minute, 100.0))
    events = session.drain()

    assert (a.position.size, c.position.size) == (60.0, 0.0)
    assert b.position.size == pytest.approx(40.0, rel=1e-12)
    [reduced] = order_events(events, "reduced")
    [rejected] = order_events(events, "rejected")
    assert (reduced.strategy, rejected.strategy) == ("b", "c")
    assert a.account.cash == pytest.approx(0.0, abs=1e-9)


def test_a_reduced_order_pays_its_fee_out_of_the_free_cash() -> None:
    execution = ExecutionConfig(fee_bps=10.0, slippage_bps=0.0)
    session, (a, b) = shared(
        [
            ("a", "BTCUSDT", {0: Order.buy(units=60.0)}),
            ("b", "BTCUSDT", {0: Order.buy(units=50.0)}),
        ],
        execution=execution,
    )
    for minute in range(3):
        session.push(flat(minute, 100.0))

    free = 10_000.0 - 6_000.0 * 1.001
    assert b.position.size == pytest.approx(free / 1.001 / 100.0, rel=1e-12)
    assert a.account.cash == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("first", ["a", "b"])
def test_engines_act_in_the_order_they_were_added_within_a_minute(first: str) -> None:
    scripts = {"a": {0: Order.buy(units=70.0)}, "b": {0: Order.buy(units=70.0)}}
    order = [first, "b" if first == "a" else "a"]
    session, engines = shared([(name, "BTCUSDT", scripts[name]) for name in order])
    for minute in range(3):
        session.push(flat(minute, 100.0))

    by_name = {e.name: e.position.size for e in engines}
    assert by_name[first] == 70.0
    assert by_name[order[1]] == pytest.approx(30.0, rel=1e-12)


def two_symbols(eth_first_arrival: bool) -> tuple[list[str], list[EngineEvent]]:
    # ETH's engine is added first, so it acts first in every minute whatever arrives first.
    session, engines = shared(
        [
            ("eth", "ETHUSDT", {0: Order.buy(units=150.0), 3: Order.sell()}),  # 7500 at 50
            ("btc", "BTCUSDT", {0: Order.buy(units=30.0)}),  # 3000 asked, 2500 free
        ]
    )
    assert session.holds_minutes
    processed: list[Bar] = []
    for minute in range(6):
        pair = [flat(minute, 50.0 + minute, "ETHUSDT"), flat(minute, 100.0, "BTCUSDT")]
        for bar in pair if eth_first_arrival else pair[::-1]:
            processed += session.push(bar)
    session.finish()
    assert engines[1].position.size == 0.0
    return [f"{b.symbol}@{b.open_time_ms}" for b in processed], session.drain()


def test_the_minute_barrier_gives_identical_results_in_either_arrival_order() -> None:
    order_a, events_a = two_symbols(eth_first_arrival=True)
    order_b, events_b = two_symbols(eth_first_arrival=False)

    def dump(events: list[EngineEvent]) -> str:
        return json.dumps([[type(e).__name__, dataclasses.asdict(e)] for e in events])

    assert dump(events_a) == dump(events_b)
    assert order_a == order_b
    assert [name.split("@")[0] for name in order_a[:2]] == ["ETHUSDT", "BTCUSDT"]
    [eth_buy] = [f for f in fills(events_a) if f.symbol == "ETHUSDT" and f.side.value == "buy"]
    [btc_buy] = [f for f in fills(events_a) if f.symbol == "BTCUSDT" and f.side.value == "buy"]
    assert (eth_buy.size, eth_buy.price, eth_buy.time_ms) == (150.0, 51.0, btc_buy.time_ms)
    # 10000 - 150 x 51 = 2350 free for BTC at 100: its order for 30 is reduced to 23.5.
    assert btc_buy.size == pytest.approx(23.5, rel=1e-12)


def test_a_shared_signal_buy_spends_only_the_free_cash() -> None:
    from barbus.daemon.core.events import Signal

    session, (a, b) = shared(
        [("a", "BTCUSDT", {0: Order.buy(units=60.0)}), ("b", "BTCUSDT", {0: Signal.BUY})]
    )
    for minute in range(3):
        session.push(flat(minute, 100.0))

    assert b.position.size == pytest.approx(40.0, rel=1e-12)
    assert a.account.cash == pytest.approx(0.0, abs=1e-9)


def test_an_order_that_closed_a_position_but_cannot_open_the_rest_is_reduced_not_rejected() -> None:
    # b buys 10 at 100, a shorts 80 at 100; at 130 the short is underwater and nothing is free.
    # b's sell of 20 closes its 10 long, and the short half finds no free cash: the order was
    # filled in part, so its event is "reduced", not "rejected".
    session, (b, a) = shared(
        [
            ("b", "BTCUSDT", {0: Order.buy(units=10.0), 3: Order.sell(units=20.0)}),
            ("a", "BTCUSDT", {1: Order.sell(units=80.0)}),
        ],
        allow_short=True,
    )
    for minute, price in enumerate([100.0, 100.0, 100.0, 130.0, 130.0]):
        session.push(flat(minute, price))
    events = session.drain()

    assert b.position.size == 0.0
    assert a.position.size == -80.0
    assert a.account.free(a, 130.0) < 0.0
    [trade] = b.trades
    assert trade.size == 10.0
    assert [e.event for e in order_events(events) if e.strategy == "b"][-1] == "reduced"
    assert order_events(events, "rejected") == []
