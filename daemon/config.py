"""The daemon's TOML configuration, validated up front with errors a person can act on.

Unknown keys (with a "did you mean"), wrong types, strategy specs that do not load (a
relative file path is taken from the config file's folder), unknown parameters and strategies
on symbols the feed does not carry are all rejected before anything starts.
See ``ops/barbus.example.toml`` for every key with its default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.configfile import check_keys, read_toml
from barbus.daemon.core.errors import BarbusError, ConfigError, StrategyError, did_you_mean
from barbus.daemon.core.events import INTERVAL_MS
from barbus.daemon.feeds.binance_config import FeedConfig

if TYPE_CHECKING:
    from barbus.daemon.core.strategy import AnyStrategy
    from barbus.strategies.loader import StrategySource

__all__ = ["AccountConfig", "DaemonConfig", "HttpConfig", "StrategyConfig", "load_config"]

_SECTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "feed": {
        "rest_url": str,
        "ws_url": str,
        "symbols": list,
        "interval": str,
        "warmup_bars": int,
        "data_dir": str,
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
    "execution": {
        "fee_bps": (int, float),
        "slippage_bps": (int, float),
        "fill_at": str,
        "maker_fee_bps": (int, float),
        "taker_fee_bps": (int, float),
    },
    "state": {"path": str},
    "http": {
        "host": str,
        "port": int,
        "expose": bool,
        "max_connections": int,
        "idle_timeout_seconds": (int, float),
    },
    "log": {"level": str},
}
_STRATEGY_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "strategy": str,
    "symbol": str,
    "capital": (int, float),
    "params": dict,
    "account": str,
    "allow_short": bool,
}
_ACCOUNT_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "cash": (int, float),
    "allow_short": bool,
}


@dataclass(frozen=True)
class AccountConfig:
    """A shared account (an ``[[account]]`` table): cash that several strategies trade with."""

    name: str
    cash: float
    allow_short: bool = False


@dataclass(frozen=True)
class StrategyConfig:
    """One trading engine: a named strategy instance on one symbol, trading through the shared
    ``account`` it names, or (``account=None``) an account of its own holding ``capital``.

    ``strategy`` is the spec as written; ``source`` what it resolved to when the config was
    loaded (the class that runs, its canonical spec and its source fingerprint).
    """

    name: str
    strategy: str
    symbol: str
    capital: float
    params: dict[str, Any]
    source: StrategySource = field(compare=False, repr=False)
    account: str | None = None
    allow_short: bool = False  # for an account of its own; a shared one says it itself

    @property
    def spec(self) -> str:
        """The canonical spec (file paths absolute): what the daemon records and parity runs."""
        return self.source.spec

    @property
    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the strategy's source file."""
        return self.source.fingerprint


@dataclass(frozen=True)
class HttpConfig:
    """Where the health/metrics server listens and how long it lets a connection sit idle."""

    host: str = "127.0.0.1"
    port: int = 8080
    expose: bool = False  # required for a host beyond loopback: metrics and status go public
    max_connections: int = 100  # beyond this the longest-idle connection is closed
    idle_timeout_seconds: float = 15.0  # a connection without a complete request is closed

    @property
    def exposed(self) -> bool:
        """Whether the port is reachable from other machines (the host is not loopback)."""
        return not is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine: ``localhost`` or a loopback IP.

    Any other name may resolve to a public address, and "" binds every interface.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class DaemonConfig:
    feed: FeedConfig
    strategies: tuple[StrategyConfig, ...]
    execution: ExecutionConfig
    state_path: Path
    accounts: tuple[AccountConfig, ...] = ()
    http: HttpConfig = field(default_factory=HttpConfig)
    log_level: str = "INFO"
    warmup_bars: int = 500
    # The data folder the warm-up reads first (None: $BARBUS_DATA_DIR, else the XDG default).
    data_dir: Path | None = None
    max_bar_age_seconds: float = 150.0  # /readyz fails when no bar came for this long
    source: Path | None = None

    def execution_for(self, strategy: StrategyConfig) -> ExecutionConfig:
        """The execution of ``strategy``: the config's, with its own account's cash and shorts
        (for a strategy on a shared account those two are the account's)."""
        account = self.account(strategy.account) if strategy.account else None
        return dataclasses.replace(
            self.execution,
            starting_cash=account.cash if account else strategy.capital,
            allow_short=account.allow_short if account else strategy.allow_short,
        )

    def account(self, name: str) -> AccountConfig:
        return next(a for a in self.accounts if a.name == name)


def _check_table(table: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> None:
    check_keys(table, schema, where)
    for key, value in table.items():
        expected = schema[key]
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
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
    _check_table(raw, {**{k: dict for k in _SECTIONS}, "strategy": list, "account": list}, where)
    for section, schema in _SECTIONS.items():
        _check_table(raw.get(section, {}), schema, f"{where}: [{section}]")
    feed_raw = dict(raw.get("feed", {}))
    if "rest_url" not in feed_raw or "ws_url" not in feed_raw:
        raise ConfigError(f"{where}: [feed] needs rest_url and ws_url")
    symbols = feed_raw.get("symbols", [])
    if not symbols or not all(isinstance(s, str) and s for s in symbols):
        raise ConfigError(f"{where}: [feed] symbols must be a non-empty list of symbols")
    interval = feed_raw.get("interval", "1m")
    if interval not in INTERVAL_MS:
        raise ConfigError(
            f"{where}: [feed] interval must be one of {', '.join(INTERVAL_MS)}, got {interval!r}"
        )
    warmup = int(feed_raw.pop("warmup_bars", 500))
    if not 0 <= warmup <= 1000:
        raise ConfigError(f"{where}: [feed] warmup_bars must be in [0, 1000], got {warmup}")
    data_dir = Path(feed_raw.pop("data_dir")).expanduser() if "data_dir" in feed_raw else None
    # Two and a half bars: 150 s on 1-minute bars, and a day's bar may take up to 3 days.
    bar_seconds = INTERVAL_MS[interval] / 1000
    raw_age = feed_raw.pop("max_bar_age_seconds", 2.5 * bar_seconds)
    age_bound = max(86400.0, 3 * bar_seconds)
    max_age = _seconds(raw_age, age_bound)
    if max_age is None:
        raise ConfigError(
            f"{where}: [feed] max_bar_age_seconds must be > 0 and <= {age_bound:g} seconds, "
            f"got {raw_age}"
        )
    _check_url(feed_raw["rest_url"], ("http", "https"), f"{where}: [feed] rest_url")
    _check_url(feed_raw["ws_url"], ("ws", "wss"), f"{where}: [feed] ws_url")
    try:
        feed = FeedConfig(
            **{k: v for k, v in feed_raw.items() if k != "symbols"},
            symbols=tuple(s.upper() for s in symbols),
        )
    except ConfigError as exc:
        raise ConfigError(f"{where}: [feed] {str(exc).removeprefix('feed: ')}") from None
    try:  # the types are checked above: what can fail here is a range
        execution = ExecutionConfig.from_mapping(raw.get("execution", {}))
    except ConfigError as exc:
        raise ConfigError(f"{where}: [execution] {exc}") from None
    accounts = _accounts(raw.get("account", []), where)
    strategies = _strategies(raw.get("strategy", []), feed.symbols, where, base, accounts)
    state_path = Path(raw.get("state", {}).get("path", "barbus-state.sqlite"))
    http = _http(raw.get("http", {}), where)
    level = str(raw.get("log", {}).get("level", "INFO")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"{where}: [log] level {level!r} is not a logging level")
    return DaemonConfig(
        feed=feed,
        strategies=strategies,
        execution=execution,
        state_path=state_path if state_path.is_absolute() else base / state_path,
        accounts=accounts,
        http=http,
        log_level=level,
        warmup_bars=warmup,
        data_dir=data_dir if data_dir is None or data_dir.is_absolute() else base / data_dir,
        max_bar_age_seconds=max_age,
        source=source,
    )


def _tables(
    tables: list[Any],
    kind: str,
    schema: Mapping[str, Any],
    required: tuple[str, ...],
    where: str,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each ``[[kind]]`` table with where it is (``config: [[kind]] #N``), checked to be a
    table of known, well-typed keys holding the ``required`` ones."""
    for number, table in enumerate(tables, start=1):
        here = f"{where}: [[{kind}]] #{number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{here}: must be a table")
        _check_table(table, schema, here)
        for key in required:
            if key not in table:
                raise ConfigError(f"{here}: missing {key!r}")
        yield here, table


def _accounts(tables: list[Any], where: str) -> tuple[AccountConfig, ...]:
    """The ``[[account]]`` tables: unique names, finite positive cash."""
    out: list[AccountConfig] = []
    for here, table in _tables(tables, "account", _ACCOUNT_KEYS, ("name", "cash"), where):
        name = table["name"]
        if not name or any(a.name == name for a in out):
            raise ConfigError(f"{here}: account name {name!r} is empty or already used")
        cash = float(table["cash"])
        if not (math.isfinite(cash) and cash > 0):
            raise ConfigError(f"{here}: cash must be > 0 and finite, got {cash}")
        out.append(AccountConfig(name, cash, bool(table.get("allow_short", False))))
    return tuple(out)


def _seconds(value: float, most: float) -> float | None:
    """``value`` as a float if it is finite, > 0 and <= ``most`` (NaN fails every test)."""
    seconds = float(value)
    return seconds if 0.0 < seconds <= most else None


def _check_url(url: str, schemes: tuple[str, ...], where: str) -> None:
    """A URL the feed can connect to: one of ``schemes``, a host, a valid port, no spaces."""
    accepted = " or ".join(schemes)
    shown = url if len(url) <= 200 else url[:200] + "..."
    if any(c.isspace() for c in url):
        raise ConfigError(f"{where} {shown!r} contains a space; expected {accepted}://host[:port]")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises on a port that is not a number in [0, 65535]
    except ValueError as exc:
        raise ConfigError(f"{where} {shown!r} has an invalid port or host: {exc}") from None
    if parts.scheme.lower() not in schemes:
        raise ConfigError(f"{where} {shown!r} must start with {accepted}://")
    if not parts.hostname:
        raise ConfigError(f"{where} {shown!r} has no host; expected {accepted}://host[:port]")
    if port == 0:
        raise ConfigError(f"{where} {shown!r}: port 0 is not a port to connect to")


def _http(table: Mapping[str, Any], where: str) -> HttpConfig:
    """The [http] table; a host beyond loopback needs ``expose = true``."""
    here = f"{where}: [http]"
    port = int(table.get("port", 8080))
    if not 0 <= port <= 65535:
        raise ConfigError(f"{here} port must be in [0, 65535], got {port}")
    connections = int(table.get("max_connections", 100))
    if not 1 <= connections <= 10_000:
        raise ConfigError(f"{here} max_connections must be in [1, 10000], got {connections}")
    idle = _seconds(table.get("idle_timeout_seconds", 15.0), 3600.0)
    if idle is None:
        raise ConfigError(
            f"{here} idle_timeout_seconds must be > 0 and <= 3600 seconds, "
            f"got {table.get('idle_timeout_seconds')}"
        )
    http = HttpConfig(
        host=table.get("host", "127.0.0.1"),
        port=port,
        expose=bool(table.get("expose", False)),
        max_connections=connections,
        idle_timeout_seconds=idle,
    )
    if http.exposed and not http.expose:
        raise ConfigError(
            f"{here} host {http.host!r} is not a loopback address: it would expose the port "
            "(metrics, status) to the network; set [http] expose = true to allow it, "
            'or use host = "127.0.0.1"'
        )
    return http


def _check_warmup(strategy: AnyStrategy, spec: str) -> None:
    """The daemon sizes the warm-up by ``warmup_bars`` and shows ``ready``: a user's override
    that raises or is no whole number fails the config, not the running daemon."""
    from barbus.strategies import describe_exception

    try:
        bars, _ = strategy.warmup_bars, strategy.ready
    except Exception as exc:
        raise StrategyError(
            f"{spec}: warmup_bars or ready raised {describe_exception(exc)}"
        ) from None
    if type(bars) is not int or bars < 1:
        raise StrategyError(f"{spec}: warmup_bars must be a whole number >= 1, got {bars!r}")


def _strategies(
    tables: list[Any],
    symbols: tuple[str, ...],
    where: str,
    base: Path,
    accounts: tuple[AccountConfig, ...] = (),
) -> tuple[StrategyConfig, ...]:
    from barbus.strategies import create_strategy, resolve_strategy

    if not tables:
        raise ConfigError(f"{where}: needs at least one [[strategy]]")
    out: list[StrategyConfig] = []
    for here, table in _tables(tables, "strategy", _STRATEGY_KEYS, ("strategy", "symbol"), where):
        symbol = table["symbol"].upper()
        if symbol not in symbols:
            raise ConfigError(f"{here}: symbol {symbol} is not in [feed] symbols {list(symbols)}")
        try:
            source = resolve_strategy(table["strategy"], base)
            _check_warmup(create_strategy(source, table.get("params", {})), source.spec)
        except BarbusError as exc:
            raise ConfigError(f"{here}: {exc}") from None
        name = table.get("name", f"{source.name}-{symbol.lower()}")
        if any(s.name == name for s in out):
            raise ConfigError(f"{here}: a strategy named {name!r} already exists")
        if any(a.name == name for a in accounts):
            raise ConfigError(
                f"{here}: {name!r} names an [[account]] too: a strategy's own account takes its "
                "name, so rename one of them"
            )
        capital = float(table.get("capital", ExecutionConfig().starting_cash))
        if not (math.isfinite(capital) and capital > 0):
            raise ConfigError(f"{here}: capital must be > 0 and finite, got {capital}")
        account = table.get("account")
        if account is not None:
            names = [a.name for a in accounts]
            if account not in names:
                raise ConfigError(
                    f"{here}: account {account!r} is no [[account]]{did_you_mean(account, names)}"
                    f" (accounts: {', '.join(names) or 'none'})"
                )
            for own in ("capital", "allow_short"):
                if own in table:
                    raise ConfigError(
                        f"{here}: {own} belongs to the [[account]] {account!r}, not a strategy "
                        "trading through it"
                    )
        out.append(
            StrategyConfig(
                name,
                table["strategy"],
                symbol,
                capital,
                table.get("params", {}),
                source,
                account=account,
                allow_short=bool(table.get("allow_short", False)),
            )
        )
    return tuple(out)
