"""Prometheus metrics of the daemon, made by a factory on a registry you pass in (no globals).

Names follow ``barbus_<noun>_<unit>`` with ``_total`` on counters; labels are low-cardinality
(strategy, symbol, source). Children are bound once at start-up so the per-bar cost is an
increment, not a label lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from daemon import __version__

__all__ = ["DaemonMetrics"]

_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class DaemonMetrics:
    registry: CollectorRegistry
    bars: Counter
    decision_lag: Histogram
    state_write: Histogram
    state_write_errors: Counter
    feed_connected: Gauge
    feed_reconnects: Counter
    feed_messages_malformed: Counter
    feed_messages_duplicated: Counter
    feed_messages_out_of_order: Counter
    bars_backfilled: Counter
    fills: Counter
    orders: Counter
    bars_received: Counter
    bus_publish: Histogram
    subscriber_errors: Counter
    on_bar: Histogram
    position: Gauge
    cash: Gauge
    equity: Gauge
    pnl: Gauge
    strategy_halted: Gauge
    last_bar_time: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> DaemonMetrics:
        reg = registry or CollectorRegistry()
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        Info("barbus_build", "barbus version", registry=reg).info({"version": __version__})
        return cls(
            registry=reg,
            bars=Counter(
                "barbus_bars_processed", "Bars processed", ["symbol", "source"], registry=reg
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
            feed_connected=Gauge(
                "barbus_feed_connected", "1 when the WebSocket is connected", registry=reg
            ),
            feed_reconnects=Counter("barbus_feed_reconnects", "Feed reconnects", registry=reg),
            feed_messages_malformed=Counter(
                "barbus_feed_messages_malformed", "Malformed messages skipped", registry=reg
            ),
            feed_messages_duplicated=Counter(
                "barbus_feed_messages_duplicated", "Duplicate closed candles dropped", registry=reg
            ),
            feed_messages_out_of_order=Counter(
                "barbus_feed_messages_out_of_order", "Stale closed candles dropped", registry=reg
            ),
            bars_backfilled=Counter(
                "barbus_feed_bars_backfilled", "Bars fetched over REST", registry=reg
            ),
            fills=Counter("barbus_fills", "Fills", ["strategy", "side"], registry=reg),
            orders=Counter(
                "barbus_orders",
                "Market orders placed (signals and SL/TP exits)",
                ["strategy", "side"],
                registry=reg,
            ),
            bars_received=Counter(
                "barbus_bars_received",
                "Closed bars received from the feed",
                ["symbol", "source"],
                registry=reg,
            ),
            bus_publish=Histogram(
                "barbus_bus_publish_seconds",
                "Synchronous bus dispatch of one bar to every subscriber",
                buckets=_LAG_BUCKETS,
                registry=reg,
            ),
            subscriber_errors=Counter(
                "barbus_bus_subscriber_errors",
                "Subscribers that raised (and were halted)",
                ["strategy"],
                registry=reg,
            ),
            on_bar=Histogram(
                "barbus_strategy_on_bar_seconds",
                "One engine + strategy update for one 1-minute bar",
                ["strategy"],
                buckets=_LAG_BUCKETS,
                registry=reg,
            ),
            position=Gauge("barbus_position_units", "Position size", ["strategy"], registry=reg),
            cash=Gauge("barbus_cash_quote", "Cash", ["strategy"], registry=reg),
            equity=Gauge(
                "barbus_equity_quote", "Equity marked to the last close", ["strategy"], registry=reg
            ),
            pnl=Gauge(
                "barbus_pnl_quote", "Equity minus starting capital", ["strategy"], registry=reg
            ),
            strategy_halted=Gauge(
                "barbus_strategy_halted",
                "1 when the strategy was halted",
                ["strategy"],
                registry=reg,
            ),
            last_bar_time=Gauge(
                "barbus_last_bar_open_time_seconds",
                "Open time of the last processed bar",
                ["symbol"],
                registry=reg,
            ),
        )
