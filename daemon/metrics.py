"""Prometheus metrics of the daemon, made by a factory on a registry you pass in (no globals).

Names follow ``barbus_<noun>_<unit>`` with ``_total`` on counters; labels are low-cardinality
(strategy, symbol, source, reason). Children are bound once at start-up so the per-bar cost is
an increment, not a label lookup.

The feed's state, the daemon's readiness and the books (positions, cash, equity, profit,
working orders, halts, and the fills, orders and subscriber errors counted from the committed
events) are not pushed into metrics after each bar: collectors read them when Prometheus
scrapes, so an outage (no bars at all) is visible as it happens, every series exists from the
start, at 0, and the per-bar path does no metric bookkeeping beyond its own timings and counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from barbus import __version__, kernel_build

if TYPE_CHECKING:
    from barbus.daemon.books import Books
    from barbus.daemon.feeds.binance_config import FeedCounters

__all__ = ["REJECT_REASONS", "BooksCollector", "DaemonMetrics", "LiveStateCollector"]

# Reasons for refusing a bar at the edge that always have a series (at 0 until one happens), so
# alerts and dashboards see data; any other reason the feed counts is exported as it appears.
REJECT_REASONS = ("future", "misaligned", "implausible")

_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class DaemonMetrics:
    registry: CollectorRegistry
    bars: Counter
    bars_dropped: Counter
    decision_lag: Histogram
    state_write: Histogram
    state_write_errors: Counter
    bus_publish: Histogram
    on_bar: Histogram
    last_bar_time: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> DaemonMetrics:
        reg = registry or CollectorRegistry()
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        Info("barbus_build", "barbus version and kernel build", registry=reg).info(
            {"version": __version__, "kernel": kernel_build.build_name()}
        )
        return cls(
            registry=reg,
            bars=Counter(
                "barbus_bars_processed", "Bars processed", ["symbol", "source"], registry=reg
            ),
            bars_dropped=Counter(
                "barbus_bars_dropped",
                "Bars that reached the daemon but failed its guard (older than the last, or "
                "insane values): never recorded",
                ["symbol", "source"],
                registry=reg,
            ),
            decision_lag=Histogram(
                "barbus_decision_lag_seconds",
                "From receiving a closed candle to the strategies' decision being durable",
                ["symbol"],
                buckets=_LAG_BUCKETS,
                registry=reg,
            ),
            state_write=Histogram(
                "barbus_state_write_seconds",
                "SQLite commit per bar",
                buckets=_LAG_BUCKETS,
                registry=reg,
            ),
            state_write_errors=Counter(
                "barbus_state_write_errors",
                "Failed state commits (the daemon stops on one)",
                registry=reg,
            ),
            bus_publish=Histogram(
                "barbus_bus_publish_seconds",
                "Synchronous bus dispatch of one bar to every subscriber",
                buckets=_LAG_BUCKETS,
                registry=reg,
            ),
            on_bar=Histogram(
                "barbus_strategy_on_bar_seconds",
                "One engine + strategy update for one 1-minute bar",
                ["strategy"],
                buckets=_LAG_BUCKETS,
                registry=reg,
            ),
            last_bar_time=Gauge(
                "barbus_last_bar_open_time_seconds",
                "Open time of the last processed bar",
                ["symbol"],
                registry=reg,
            ),
        )


class LiveStateCollector(Collector):
    """Feed counters and readiness, read at scrape time (never stale, even with no bars).

    ``counters`` returns the running feed's counters, or None before the feed exists (then
    every series is 0); ``ready`` is the daemon's readiness verdict.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        counters: Callable[[], FeedCounters | None],
        ready: Callable[[], bool],
    ) -> None:
        self.symbols = tuple(symbols)
        self.counters = counters
        self.ready = ready

    def collect(self) -> Iterator[Metric]:
        c = self.counters()
        yield GaugeMetricFamily(
            "barbus_ready", "1 when /readyz answers 200", value=1 if self.ready() else 0
        )
        yield GaugeMetricFamily(
            "barbus_feed_connected",
            "1 when the WebSocket is connected",
            value=1 if c is not None and c.connected else 0,
        )
        for name, doc, value in (
            ("barbus_feed_reconnects", "Feed reconnects", c.reconnects if c else 0),
            (
                "barbus_feed_messages_malformed",
                "Malformed messages skipped",
                c.malformed if c else 0,
            ),
            (
                "barbus_feed_messages_duplicated",
                "Duplicate closed candles dropped",
                c.duplicates if c else 0,
            ),
            (
                "barbus_feed_messages_out_of_order",
                "Stale closed candles dropped",
                c.out_of_order if c else 0,
            ),
            (
                "barbus_feed_messages_unexpected",
                "Messages of streams the daemon did not subscribe to, skipped",
                c.unexpected if c else 0,
            ),
            ("barbus_feed_bars_backfilled", "Bars fetched over REST", c.backfilled if c else 0),
            (
                "barbus_feed_gaps",
                "Holes the exchange could not fill after retries, recorded as gaps",
                c.gaps_recorded if c else 0,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        received = CounterMetricFamily(
            "barbus_bars_received",
            "Closed bars received from the feed",
            labels=["symbol", "source"],
        )
        counts = dict(c.received) if c is not None else {}
        for symbol in self.symbols:
            for source in ("live", "backfill"):
                counts.setdefault((symbol, source), 0)
        for (symbol, source), value in sorted(counts.items()):
            received.add_metric([symbol, source], value)
        yield received
        rejected = CounterMetricFamily(
            "barbus_feed_bars_rejected",
            "Bars or REST rows refused at the edge, by reason",
            labels=["reason"],
        )
        reasons = dict.fromkeys(REJECT_REASONS, 0)
        if c is not None:
            reasons.update(c.rejected)
        for reason, value in sorted(reasons.items()):
            rejected.add_metric([reason], value)
        yield rejected


class BooksCollector(Collector):
    """The books of every strategy and account, read at scrape time.

    The gauges are the engines' and accounts' state as of the last committed bar (a scrape
    runs between bars); the counters are the books' own counts since the daemon started, so
    they only grow.
    """

    def __init__(self, books: Books) -> None:
        self.books = books

    def collect(self) -> Iterator[Metric]:
        books = self.books
        by_name = books.by_name
        halted = books.bus.halted
        errors = books.bus.errors
        per_strategy = (
            ("barbus_position_units", "Signed position size (a short is negative)"),
            ("barbus_cash_quote", "Cash of the strategy's account"),
            (
                "barbus_equity_quote",
                "Equity of the strategy's account, every position marked to its last close",
            ),
            (
                "barbus_pnl_quote",
                "Equity minus starting capital (own account); on a shared account the "
                "strategy's realised plus unrealised profit",
            ),
            ("barbus_open_orders", "Working orders the simulated broker holds for the strategy"),
            ("barbus_strategy_halted", "1 when the strategy was halted"),
        )
        gauges = [GaugeMetricFamily(n, doc, labels=["strategy"]) for n, doc in per_strategy]
        fills = CounterMetricFamily("barbus_fills", "Fills", labels=["strategy", "side"])
        orders = CounterMetricFamily(
            "barbus_orders",
            "Orders placed (order requests when placed; signals and bracket exits, which "
            "are market orders filled at once, at their fill)",
            labels=["strategy", "side"],
        )
        subscriber_errors = CounterMetricFamily(
            "barbus_bus_subscriber_errors",
            "Subscribers that raised (and were halted)",
            labels=["strategy"],
        )
        for name, book in by_name.items():
            engine = book.engine
            account = engine.account
            values = (
                engine.position.size,
                account.cash,
                account.equity(),
                book.pnl(),
                len(engine.open_orders),
                1 if name in halted else 0,
            )
            for family, value in zip(gauges, values, strict=True):
                family.add_metric([name], value)
            for side, count in book.fills.items():
                fills.add_metric([name, side], count, created=book.created)
            for side, count in book.orders.items():
                orders.add_metric([name, side], count, created=book.created)
            subscriber_errors.add_metric([name], errors.get(name, 0), created=book.created)
        yield from gauges
        yield fills
        yield orders
        yield subscriber_errors
        cash = GaugeMetricFamily(
            "barbus_account_cash_quote", "Cash of the account", labels=["account"]
        )
        equity = GaugeMetricFamily(
            "barbus_account_equity_quote",
            "Cash plus every signed position of the account marked to its last close",
            labels=["account"],
        )
        if by_name:  # the accounts are exported once the engines are restored
            for account in books.session.accounts.values():
                cash.add_metric([account.name], account.cash)
                equity.add_metric([account.name], account.equity())
        yield cash
        yield equity
