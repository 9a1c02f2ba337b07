"""The live feed's settings and its counters: the two plain records around ``BinanceFeed``.

Apart from the feed's code (``binance.py``) because other parts read them without running a
feed: the daemon's config builds and checks a :class:`FeedConfig` from its ``[feed]`` table, and
metrics and ``/status`` read :class:`FeedCounters`. Every bound is checked when the config is
made, so a feed never starts with a setting it cannot honour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from barbus.daemon.core.errors import ConfigError
from barbus.daemon.core.events import INTERVAL_MS
from barbus.daemon.feeds.binance_codec import stream_name

__all__ = ["REST_PAGE_LIMIT", "FeedConfig", "FeedCounters"]

REST_PAGE_LIMIT = 1000  # the most rows Binance sends in one klines page


@dataclass(frozen=True)
class FeedConfig:
    """Where the exchange is and how patient to be with it."""

    rest_url: str
    ws_url: str
    symbols: tuple[str, ...]
    interval: str = "1m"
    reconnect_initial_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    heartbeat_seconds: float = 20.0
    receive_timeout_seconds: float = 120.0
    request_timeout_seconds: float = 10.0
    # The edge (see the module docstring): what a bar may look like before it is believed.
    max_clock_skew_seconds: float = 5.0
    max_price: float = 1e12
    max_volume: float = 1e15
    plausible_factor: float = 10.0
    implausible_accept_after: int = 3
    # REST backfill: rows per page, pages per backfill (200 x 1000 1m bars = 138 days),
    # and how often an empty or stale answer for a hole is retried before it is a gap.
    rest_page_limit: int = REST_PAGE_LIMIT
    max_backfill_pages: int = 200
    gap_retries: int = 2
    gap_retry_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not self.symbols:
            raise ConfigError("feed: at least one symbol is needed")
        if self.interval not in INTERVAL_MS:
            raise ConfigError(f"feed: unknown interval {self.interval!r}")
        # NaN compares false with everything, so each bound is written to fail on it.
        for name, most in (
            ("reconnect_initial_seconds", 3600.0),
            ("reconnect_max_seconds", 3600.0),
            ("heartbeat_seconds", 3600.0),
            ("receive_timeout_seconds", 86400.0),
            ("request_timeout_seconds", 3600.0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and 0 < value <= most
            ):
                raise ConfigError(f"feed: {name} must be > 0 and <= {most:g} seconds, got {value}")
        if self.reconnect_max_seconds < self.reconnect_initial_seconds:
            raise ConfigError(
                f"feed: reconnect_max_seconds ({self.reconnect_max_seconds}) must be >= "
                f"reconnect_initial_seconds ({self.reconnect_initial_seconds})"
            )
        self._check_edge_settings()

    def _check_edge_settings(self) -> None:
        """The edge and backfill settings: finite numbers in range (NaN fails every test)."""
        ranges: dict[str, tuple[float, float]] = {
            "max_clock_skew_seconds": (0.0, 3600.0),
            "max_price": (1.0, 1e300),
            "max_volume": (1.0, 1e300),
            "plausible_factor": (1.0, 1e300),
            "implausible_accept_after": (1, 1_000_000),
            "rest_page_limit": (1, REST_PAGE_LIMIT),
            "max_backfill_pages": (1, 1_000_000),
            "gap_retries": (0, 100),
            "gap_retry_seconds": (0.0, 3600.0),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"feed: {name} must be in [{low:g}, {high:g}], got {value!r}")
        for name in (
            "implausible_accept_after",
            "rest_page_limit",
            "max_backfill_pages",
            "gap_retries",
        ):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"feed: {name} must be an integer")

    @property
    def stream_url(self) -> str:
        streams = "/".join(stream_name(s, self.interval) for s in self.symbols)
        return f"{self.ws_url.rstrip('/')}/stream?streams={streams}"


@dataclass
class FeedCounters:
    """What the feed saw; exported as metrics and shown in ``/status``."""

    messages: int = 0
    malformed: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    reconnects: int = 0
    connected: bool = False
    last_message_monotonic: float = 0.0
    errors: list[str] = field(default_factory=list)
    received: dict[tuple[str, str], int] = field(default_factory=dict)  # (symbol, live|backfill)
    # Bars or REST rows refused at the edge, by reason (future, misaligned, implausible, ...).
    rejected: dict[str, int] = field(default_factory=dict)
    # Holes the exchange could not fill after retries: recorded, never invented.
    gaps_recorded: int = 0
    recent_gaps: list[tuple[str, int, int]] = field(default_factory=list)  # (symbol, from, to) ms

    def count(self, symbol: str, source: str, bars: int) -> None:
        key = (symbol, source)
        self.received[key] = self.received.get(key, 0) + bars

    @property
    def live_bars(self) -> int:
        """Closed candles delivered from the WebSocket, all symbols."""
        return sum(n for (_, source), n in self.received.items() if source == "live")

    @property
    def backfilled(self) -> int:
        """Bars fetched over REST to fill holes, all symbols."""
        return sum(n for (_, source), n in self.received.items() if source == "backfill")
