"""The daemon's TOML configuration, validated up front with errors a person can act on.

Unknown keys (with a "did you mean"), wrong types, unknown strategy names or parameters and
strategies on symbols the feed does not carry are all rejected before anything starts.
See ``ops/barbus.example.toml`` for every key with its default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.broker import ExecutionConfig
from daemon.configfile import check_keys, read_toml
from daemon.errors import BarbusError, ConfigError
from daemon.feeds.binance import FeedConfig

__all__ = ["DaemonConfig", "HttpConfig", "StrategyConfig", "load_config"]

_SECTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "feed": {
        "rest_url": str,
        "ws_url": str,
        "symbols": list,
        "interval": str,
        "warmup_bars": int,
        "reconnect_initial_seconds": (int, float),
        "reconnect_max_seconds": (int, float),
        "heartbeat_seconds": (int, float),
        "receive_timeout_seconds": (int, float),
        "request_timeout_seconds": (int, float),
        "max_bar_age_seconds": (int, float),
        # The feed's edge and backfill bounds (daemon.feeds.binance.FeedConfig checks them).
        "max_clock_skew_seconds": (int, float),
        "max_price": (int, float),
        "max_volume": (int, float),
        "plausible_factor": (int, float),
        "implausible_accept_after": int,
        "rest_page_limit": int,
        "max_backfill_pages": int,
        "gap_retries": int,
        "gap_retry_seconds": (int, float),
    },
    "execution": {"fee_bps": (int, float), "slippage_bps": (int, float), "fill_at": str},
    "state": {"path": str},
    "http": {"host": str, "port": int},
    "log": {"level": str},
}
_STRATEGY_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "strategy": str,
    "symbol": str,
    "capital": (int, float),
    "params": dict,
}


@dataclass(frozen=True)
class StrategyConfig:
    """One trading engine: a named strategy instance on one symbol with its own capital."""

    name: str
    strategy: str
    symbol: str
    capital: float
    params: dict[str, Any]


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class DaemonConfig:
    feed: FeedConfig
    strategies: tuple[StrategyConfig, ...]
    execution: ExecutionConfig
    state_path: Path
    http: HttpConfig = field(default_factory=HttpConfig)
    log_level: str = "INFO"
    warmup_bars: int = 500
    max_bar_age_seconds: float = 150.0  # /readyz fails when no bar came for this long
    source: Path | None = None

    def execution_for(self, strategy: StrategyConfig) -> ExecutionConfig:
        return ExecutionConfig(
            fee_bps=self.execution.fee_bps,
            slippage_bps=self.execution.slippage_bps,
            fill_at=self.execution.fill_at,
            starting_cash=strategy.capital,
        )


def _check_table(table: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> None:
    check_keys(table, schema, where)
    for key, value in table.items():
        expected = schema[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            names = (
                expected.__name__
                if isinstance(expected, type)
                else " or ".join(t.__name__ for t in expected)
            )
            raise ConfigError(f"{where}.{key}: expected {names}, got {value!r}")


def load_config(path: Path) -> DaemonConfig:
    """Read and validate a daemon config file; relative paths are relative to the file."""
    raw = read_toml(path, "config")
    return parse_config(raw, Path(path).parent, source=Path(path))


def parse_config(raw: Mapping[str, Any], base: Path, source: Path | None = None) -> DaemonConfig:
    """Validate an already-parsed config mapping."""
    where = str(source or "config")
    _check_table(raw, {**{k: dict for k in _SECTIONS}, "strategy": list}, where)
    for section, schema in _SECTIONS.items():
        _check_table(raw.get(section, {}), schema, f"{where}: [{section}]")
    feed_raw = dict(raw.get("feed", {}))
    if "rest_url" not in feed_raw or "ws_url" not in feed_raw:
        raise ConfigError(f"{where}: [feed] needs rest_url and ws_url")
    symbols = feed_raw.get("symbols", [])
    if not symbols or not all(isinstance(s, str) and s for s in symbols):
        raise ConfigError(f"{where}: [feed] symbols must be a non-empty list of symbols")
    if feed_raw.get("interval", "1m") != "1m":
        raise ConfigError(f"{where}: [feed] interval must be '1m' (strategies aggregate)")
    warmup = int(feed_raw.pop("warmup_bars", 500))
    if not 0 <= warmup <= 1000:
        raise ConfigError(f"{where}: [feed] warmup_bars must be in [0, 1000], got {warmup}")
    max_age = float(feed_raw.pop("max_bar_age_seconds", 150.0))
    feed = FeedConfig(
        **{k: v for k, v in feed_raw.items() if k != "symbols"},
        symbols=tuple(s.upper() for s in symbols),
    )
    execution_raw = raw.get("execution", {})
    execution = ExecutionConfig(
        fee_bps=float(execution_raw.get("fee_bps", 10.0)),
        slippage_bps=float(execution_raw.get("slippage_bps", 5.0)),
        fill_at=execution_raw.get("fill_at", "next_open"),
    )
    strategies = _strategies(raw.get("strategy", []), feed.symbols, where)
    state_path = Path(raw.get("state", {}).get("path", "barbus-state.sqlite"))
    http_raw = raw.get("http", {})
    http = HttpConfig(http_raw.get("host", "127.0.0.1"), int(http_raw.get("port", 8080)))
    if not 0 <= http.port <= 65535:
        raise ConfigError(f"{where}: [http] port must be in [0, 65535]")
    level = str(raw.get("log", {}).get("level", "INFO")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"{where}: [log] level {level!r} is not a logging level")
    return DaemonConfig(
        feed=feed,
        strategies=strategies,
        execution=execution,
        state_path=state_path if state_path.is_absolute() else base / state_path,
        http=http,
        log_level=level,
        warmup_bars=warmup,
        max_bar_age_seconds=max_age,
        source=source,
    )


def _strategies(
    tables: list[Any], symbols: tuple[str, ...], where: str
) -> tuple[StrategyConfig, ...]:
    from strategies import create_strategy

    if not tables:
        raise ConfigError(f"{where}: needs at least one [[strategy]]")
    out: list[StrategyConfig] = []
    for number, table in enumerate(tables, start=1):
        here = f"{where}: [[strategy]] #{number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{here}: must be a table")
        _check_table(table, _STRATEGY_KEYS, here)
        for key in ("strategy", "symbol"):
            if key not in table:
                raise ConfigError(f"{here}: missing {key!r}")
        symbol = table["symbol"].upper()
        if symbol not in symbols:
            raise ConfigError(f"{here}: symbol {symbol} is not in [feed] symbols {list(symbols)}")
        try:
            create_strategy(table["strategy"], table.get("params", {}))
        except BarbusError as exc:
            raise ConfigError(f"{here}: {exc}") from None
        name = table.get("name", f"{table['strategy']}-{symbol.lower()}")
        if any(s.name == name for s in out):
            raise ConfigError(f"{here}: a strategy named {name!r} already exists")
        capital = float(table.get("capital", 10_000.0))
        if not (math.isfinite(capital) and capital > 0):
            raise ConfigError(f"{here}: capital must be > 0 and finite, got {capital}")
        out.append(
            StrategyConfig(name, table["strategy"], symbol, capital, table.get("params", {}))
        )
    return tuple(out)
