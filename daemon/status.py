"""What the daemon says about itself: ``/status``, ``/trades``, readiness and the stall warning.

Everything here reads the live books and the feed's counters when asked (a request, a scrape,
the stall monitor's tick), so it tells the truth also when no bars arrive, and the per-bar path
prepares nothing for it. Apart from the books because it only reads them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from barbus.daemon.books import Books, unrealised
from barbus.daemon.core.engine import StrategyEngine
from barbus.daemon.core.events import format_time_ms
from barbus.daemon.core.tradelog import trade_dict
from barbus.daemon.feed import dropped

__all__ = ["UNREALISED_BASIS", "Status"]

log = logging.getLogger("barbus.daemon")

UNREALISED_BASIS = (
    "size x (close of the last processed 1m bar - entry price) - entry fee; no exit fee or slippage"
)


class Status:
    """Readiness, ``/status`` and ``/trades`` of the daemon whose books these are."""

    def __init__(self, books: Books) -> None:
        self.books = books
        self.max_bar_age = books.config.max_bar_age_seconds
        self.warm = False  # set once warmed up
        self._stall_reported_at: float | None = None  # when the current stall was last logged
        self._stall_since = 0.0  # and since when it lasts
        self.streaming_since: float | None = None

    def readiness(self) -> tuple[bool, str]:
        """Ready = warmed up, feed connected, and a bar processed live in this run no longer
        than ``max_bar_age_seconds`` ago. Bars that arrive but are dropped (stale, duplicate,
        rejected) do not count: a daemon that only drops bars is not trading."""
        if not self.warm:
            return False, "warming up"
        feed = self.books.feed
        if feed is None or not feed.counters.connected:
            return False, "feed disconnected"
        last = self.books.last_live_bar_monotonic
        if last is None:
            return False, "waiting for the first bar"
        age = time.monotonic() - last
        if age > self.max_bar_age:
            return False, f"no bar processed for {age:.0f} s"
        return True, "ready"

    def check_stall(self, now: float) -> None:
        """Say so when no bar was processed for ``max_bar_age_seconds`` (and when bars flow
        again), with what the feed dropped meanwhile: a stalled daemon never stays silent."""
        books = self.books
        since = books.last_live_bar_monotonic or self.streaming_since
        if since is None:
            return
        idle = now - since
        reported = self._stall_reported_at
        if idle <= self.max_bar_age:
            if reported is not None:
                self._stall_reported_at = None
                log.info(
                    "processing bars again after %.0f s without one", since - self._stall_since
                )
            return
        # Once per stall, then at most once a minute while it lasts.
        if reported is not None and now - reported < max(60.0, self.max_bar_age):
            return
        self._stall_reported_at = now
        self._stall_since = since
        c = books.feed.counters if books.feed is not None else None
        if c is None:
            return
        what = "in this run" if books.last_live_bar_monotonic is None else "since the last one"
        log.warning(
            "no bar processed for %.0f s (feed %s, %d reconnects); %d bars arrived and were "
            "dropped %s (totals: out of order %d, duplicates %d, rejected %d, refused by the "
            "daemon %d)",
            idle,
            "connected" if c.connected else "disconnected",
            c.reconnects,
            dropped(c) + books.bars_dropped - books.dropped_at_last_bar,
            what,
            c.out_of_order,
            c.duplicates,
            sum(c.rejected.values()),
            books.bars_dropped,
        )

    def status(self) -> dict[str, Any]:
        """``/status``: the strategies, the accounts, the feed and the lag, as of now."""
        books = self.books
        strategies = []
        for name, book in books.by_name.items():
            engine = book.engine
            last = engine.last_bar
            account = engine.account
            orders = engine.open_orders
            strategies.append(
                {
                    "name": name,
                    "strategy": book.config.strategy,
                    "spec": book.config.spec,
                    "fingerprint": book.config.fingerprint,
                    "symbol": book.config.symbol,
                    "indicators_ready": engine.strategy.ready,
                    "warmup_bars": engine.strategy.warmup_bars,
                    "account": account.name,
                    "shared_account": not engine.own_account,
                    "position": engine.position.size,
                    "cash": account.cash,
                    "equity": account.equity(),
                    "pnl": book.pnl(),
                    "realised_pnl": book.realised,
                    "trades": book.trades,
                    "open_orders_count": len(orders),
                    "open_orders": [_order_status(o) for o in orders],
                    "last_bar": format_time_ms(last.open_time_ms) if last is not None else None,
                    "trading_from": format_time_ms(engine.trade_from_ms),
                    "halted": books.bus.halted.get(name),
                    "open_position": _open_position(engine),
                }
            )
        shared = {a.name for a in books.config.accounts}
        accounts = [
            {
                "name": account.name,
                "shared": account.name in shared,
                "allow_short": account.allow_short,
                "starting_cash": account.starting_cash,
                "cash": account.cash,
                "equity": account.equity(),
                "strategies": [h.name for h in account.holders if isinstance(h, StrategyEngine)],
            }
            for account in books.session.accounts.values()
        ]
        counters = books.feed.counters if books.feed is not None else None
        lags = sorted(books.lags)
        ready, why = self.readiness()
        return {
            "ready": ready,
            "readiness": why,
            "warm": self.warm,
            "bars_processed": books.bars_processed,
            "bars_dropped": books.bars_dropped,
            "feed": None
            if counters is None
            else {
                "connected": counters.connected,
                "messages": counters.messages,
                "live_bars": counters.live_bars,
                "backfilled": counters.backfilled,
                "malformed": counters.malformed,
                "duplicates": counters.duplicates,
                "out_of_order": counters.out_of_order,
                "reconnects": counters.reconnects,
                "rejected": dict(sorted(counters.rejected.items())),
                "gaps_recorded": counters.gaps_recorded,
                "recent_gaps": [
                    {"symbol": s, "from": format_time_ms(a), "to": format_time_ms(b)}
                    for s, a, b in counters.recent_gaps
                ],
            },
            "lag_ms": {
                "samples": len(lags),
                "p50": 1000 * lags[len(lags) // 2] if lags else None,
                "p99": 1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
            },
            "strategies": strategies,
            "accounts": accounts,
        }

    def recorded_trades(
        self, strategy: str | None, since_ms: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """``/trades``: from the state file, newest first; KeyError for an unknown strategy."""
        state = self.books.state
        assert state is not None
        found = state.trades(strategy, since_ms=since_ms, limit=limit, newest_first=True)
        known = found or strategy in self.books.by_name or strategy in state.engines()
        if strategy is not None and not known:  # unknown to the state, as `barbus trades` says
            raise KeyError(f"no strategy named {strategy[:100]!r}")
        return [trade_dict(t) for t in found]


def _open_position(engine: StrategyEngine) -> dict[str, Any] | None:
    """The open position of ``engine`` (a short has a negative size) marked at the last
    processed bar's close, or None if flat."""
    position, last = engine.position, engine.last_bar
    if position.size == 0.0 or last is None:
        return None
    return {
        "direction": "long" if position.size > 0.0 else "short",
        "entry_time": format_time_ms(position.entry_time_ms),
        "entry_time_ms": position.entry_time_ms,
        "entry_price": position.entry_price,
        "size": position.size,
        "entry_fee": position.entry_fee,
        "mark_price": last.close,
        "mark_bar": format_time_ms(last.open_time_ms),
        "unrealised_pnl": unrealised(engine),
        "unrealised_pnl_basis": UNREALISED_BASIS,
    }


def _order_status(order: dict[str, Any]) -> dict[str, Any]:
    """A working order for /status: what was asked, when it works and expires (None: GTC)."""
    expires = order["expires_ms"]
    return {
        "order_id": order["order_id"],
        "side": order["side"],
        "type": order["kind"],
        "price": order["price"],
        "fraction": order["fraction"],
        "quote": order["quote"],
        "units": order["units"],
        "target": order["target"],
        "tag": order["tag"],
        "active_from": format_time_ms(order["active_from_ms"]),
        "expires": format_time_ms(expires) if expires else None,
        "stop_loss_pct": order["stop_loss_pct"],
        "take_profit_pct": order["take_profit_pct"],
        "trailing_stop_pct": order["trailing_stop_pct"],
    }
