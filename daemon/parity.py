"""Parity: replay what the daemon recorded and compare trade logs, byte for byte.

The daemon stores every bar it processed (warm-up included), each engine's configuration, its
account and the open time from which it traded. Replaying the whole recorded session through
``replay.portfolio.run_portfolio`` (every engine with its account and acting order, every
symbol's recorded bars, positions left open) must give the very same trade rows (direction
included), positions and account equity; the first difference, if any, is reported with both
rows, so a user can see where live and backtest parted.

Each engine is replayed with the strategy the daemon recorded: its canonical spec (a file
strategy by its absolute path), never a registry name that may since point elsewhere. When the
code's fingerprint differs from the recorded one the check is refused with one line: comparing
against other code would say nothing.

The state file is opened read-only and without the daemon's lock, so parity works while the
daemon runs; what it reads is validated (by the store, and each engine's saved configuration
and account here), so a damaged file gives one line naming it, never a traceback.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.errors import BarbusError, ConfigError, DataError
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.tradelog import trade_row
from barbus.daemon.state import AccountRecord, EngineRecord, StateStore
from barbus.replay.bars_out import write_bars
from barbus.replay.portfolio import AccountSpec, EngineSpec, PortfolioConfig, run_portfolio
from barbus.strategies import StrategySource, resolve_strategy

__all__ = ["EngineParity", "check_parity", "export_recorded"]


@dataclass(frozen=True)
class EngineParity:
    name: str
    daemon_trades: int
    replay_trades: int
    daemon_equity: float
    replay_equity: float
    first_difference: str | None

    @property
    def identical(self) -> bool:
        return self.first_difference is None


def check_parity(state_path: Path) -> list[EngineParity]:
    """Replay the recorded session (every engine with its account, over the recorded bars of
    every symbol) and compare each engine's trade log, position and account cash."""
    store = StateStore(state_path, read_only=True)
    try:
        engines = store.engines()
        if not engines:
            raise DataError(f"{state_path}: no strategy has processed a bar yet")
        recorded_accounts = store.accounts()
        order = _acting_order(engines, recorded_accounts)
        inputs = {name: _EngineInputs.read(state_path, engines[name]) for name in order}
        series: dict[str, BarSeries] = {}
        closes: dict[str, float] = {}
        for symbol in dict.fromkeys(engines[name].symbol for name in order):
            bars = [bar for bar, _ in store.bars(symbol)]
            if not bars:
                raise DataError(f"{state_path}: damaged: no bars of {symbol} recorded")
            series[symbol] = BarSeries.from_bars(bars, f"{state_path}:{symbol}")
            closes[symbol] = bars[-1].close
        accounts = []
        for name in dict.fromkeys(i.account for i in inputs.values() if i.account is not None):
            shared = recorded_accounts.get(name)
            if shared is None:
                raise DataError(f"{state_path}: damaged: account {name[:100]!r} is not recorded")
            accounts.append(AccountSpec(name, shared.starting_cash, shared.allow_short))
        first = inputs[order[0]].execution
        specs = []
        for name in order:
            record, given = engines[name], inputs[name]
            if given.execution != replace(
                first,
                starting_cash=given.execution.starting_cash,
                allow_short=given.execution.allow_short,
            ):
                raise DataError(
                    f"{state_path}: strategies {order[0]!r} and {name!r} were recorded with "
                    "different execution settings (fees, slippage, fill_at): not one session"
                )
            specs.append(
                EngineSpec(
                    name=name,
                    strategy=_recorded_strategy(state_path, name, record.config),
                    symbol=record.symbol,
                    params=record.config["params"],
                    account=given.account,
                    capital=given.execution.starting_cash,
                    allow_short=given.execution.allow_short,
                    trade_from_ms=given.trade_from_ms,
                )
            )
        result = run_portfolio(
            PortfolioConfig(
                engines=tuple(specs), accounts=tuple(accounts), execution=first, close_at_end=False
            ),
            series,
        )
        outcomes = {o.name: o for o in result.engines}
        # Equity per account on both sides: cash plus every position marked at its symbol's
        # last recorded close (a halted engine's too, whichever bar it stopped on).
        positions: dict[str, float] = {}
        replayed: dict[str, float] = {}
        cash: dict[str, float] = {}
        for name in order:
            given = inputs[name]
            where = given.account or name
            close = closes[engines[name].symbol]
            positions[where] = positions.get(where, 0.0) + given.size * close
            replayed[where] = replayed.get(where, 0.0) + outcomes[name].position * close
            if given.account is None:
                cash[where] = given.cash
        for acc in accounts:
            cash[acc.name] = _finite(
                recorded_accounts[acc.name].snapshot.get("cash"),
                f"{state_path}: damaged: account {acc.name[:100]!r}: cash",
            )
        reports = []
        for name in sorted(order):
            outcome = outcomes[name]
            where = inputs[name].account or name
            daemon_rows = [trade_row(t) for t in store.trades(name)]
            replay_rows = [trade_row(t) for t in outcome.trades]
            daemon_equity = cash[where] + positions[where]
            replay_equity = result.account_cash[where][1] + replayed[where]
            difference = _first_difference(daemon_rows, replay_rows, daemon_equity, replay_equity)
            if difference is None and inputs[name].size != outcome.position:
                difference = (
                    f"position: daemon {inputs[name].size!r} != replay {outcome.position!r}"
                )
            reports.append(
                EngineParity(
                    name,
                    len(daemon_rows),
                    len(replay_rows),
                    daemon_equity,
                    replay_equity,
                    difference,
                )
            )
        return reports
    finally:
        store.close()


def _acting_order(
    engines: dict[str, EngineRecord], accounts: dict[str, AccountRecord]
) -> list[str]:
    """The engines in the order the daemon ran them: a shared account's in its recorded order
    (who gets the cash within a minute), at the place of the first of them; the rest as
    recorded (engines on different accounts never meet)."""
    names = list(engines)
    for account in accounts.values():
        holders = account.snapshot.get("holders")
        if not isinstance(holders, list):
            continue
        mine = [n for n in holders if n in engines]
        slots = [i for i, n in enumerate(names) if n in mine]
        for slot, name in zip(slots, [n for n in mine if n in names], strict=False):
            names[slot] = name
    return names


@dataclass(frozen=True)
class _EngineInputs:
    """What parity needs of one engine's saved record, checked: one line if it is damaged."""

    execution: ExecutionConfig
    account: str | None
    trade_from_ms: int
    cash: float
    size: float

    @classmethod
    def read(cls, state_path: Path, record: EngineRecord) -> _EngineInputs:
        where = f"{state_path}: damaged: strategy {record.name[:100]!r}"
        cfg, snapshot = record.config, record.snapshot
        if not isinstance(cfg.get("strategy"), str) or not isinstance(cfg.get("params"), dict):
            raise DataError(f"{where}: its config lacks a strategy name or parameters")
        # Version 1 is the long-only engine of the first releases: cash and size in "portfolio".
        old = snapshot.get("version", 1) == 1
        position: Any = snapshot.get("portfolio" if old else "position")
        if not isinstance(position, dict):
            raise DataError(f"{where}: its snapshot has no {'portfolio' if old else 'position'}")
        cash_at: dict[str, Any] = position if old else snapshot
        account = cfg.get("account")
        if account is not None and not isinstance(account, str):
            raise DataError(f"{where}: account is {str(account)[:50]!r}, not a name")
        numbers: dict[str, float] = {}
        for source, key in (
            (cfg, "fee_bps"),
            (cfg, "slippage_bps"),
            (position, "size"),
        ):
            numbers[key] = _finite(source.get(key), f"{where}: {key}")
        if account is None:
            numbers["capital"] = _finite(cfg.get("capital"), f"{where}: capital")
            numbers["cash"] = _finite(cash_at.get("cash"), f"{where}: cash")
        fees: dict[str, float] = {}
        for key in ("maker_fee_bps", "taker_fee_bps"):
            if key in cfg:
                fees[key] = _finite(cfg[key], f"{where}: {key}")
        trade_from = snapshot.get("trade_from_ms")
        if type(trade_from) is not int:
            raise DataError(f"{where}: trade_from_ms is {str(trade_from)[:50]!r}, not an integer")
        settings: dict[str, Any] = {
            **{k: numbers[k] for k in ("fee_bps", "slippage_bps", "capital") if k in numbers},
            **fees,
            "fill_at": cfg.get("fill_at"),  # no default: a record without one is damaged
            "allow_short": cfg.get("allow_short") is True,
        }
        try:
            execution = ExecutionConfig.from_mapping(settings, cash_key="capital")
        except ConfigError as exc:
            raise DataError(f"{where}: {exc}") from None
        return cls(execution, account, trade_from, numbers.get("cash", 0.0), numbers["size"])


def _recorded_strategy(state_path: Path, name: str, cfg: dict[str, Any]) -> StrategySource:
    """The strategy the daemon ran, from its recorded spec; one line when it no longer loads or
    its code is not the code that was recorded (a state from before fingerprints: not checked)."""
    spec = cfg["strategy"]
    try:
        source = resolve_strategy(spec)
    except BarbusError as exc:
        raise ConfigError(
            f"{state_path}: strategy {name[:100]!r} was recorded as {spec}, which does not load "
            f"now: {exc}"
        ) from None
    recorded = cfg.get("fingerprint")
    if recorded is not None and recorded != source.fingerprint:
        raise ConfigError(
            f"{state_path}: strategy {name[:100]!r} ran code with fingerprint {recorded}, but "
            f"the code of {spec} ({source.origin}) now has fingerprint {source.fingerprint}: a "
            "parity check against other code is meaningless; restore the code the daemon ran"
        )
    return source


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(f"{what} is {str(value)[:50]!r}, not a finite number")
    return float(value)


def _first_difference(
    daemon: list[list[str]], replay: list[list[str]], daemon_equity: float, replay_equity: float
) -> str | None:
    for index, (ours, theirs) in enumerate(zip(daemon, replay, strict=False)):
        if ours != theirs:
            return f"trade {index + 1}: daemon {','.join(ours)} != replay {','.join(theirs)}"
    if len(daemon) != len(replay):
        extra = daemon[len(replay)] if len(daemon) > len(replay) else replay[len(daemon)]
        who = "daemon" if len(daemon) > len(replay) else "replay"
        return (
            f"{len(daemon)} daemon trades vs {len(replay)} replay trades; first extra "
            f"({who}): {','.join(extra)}"
        )
    if daemon_equity != replay_equity:
        return f"final equity: daemon {daemon_equity!r} != replay {replay_equity!r}"
    return None


def export_recorded(state_path: Path, out_dir: Path) -> list[tuple[Path, list[str]]]:
    """Write each symbol's recorded bars as ``<SYMBOL>_<interval>_recorded.csv`` in ``out_dir``.

    Returns, per file, the ``barbus replay`` command lines that reproduce each engine's trades
    from it (same parameters, fees, warm-up boundary, position left open).
    """
    store = StateStore(state_path, read_only=True)
    try:
        engines = store.engines()
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for symbol in sorted({record.symbol for record in engines.values()}):
            bars = [bar for bar, _ in store.bars(symbol)]
            interval = bars[0].interval if bars else "1m"
            path = write_bars(out_dir / f"{symbol}_{interval}_recorded.csv", bars)
            commands = [
                _replay_command(
                    path, name, record.config, _EngineInputs.read(state_path, record).trade_from_ms
                )
                for name, record in sorted(engines.items())
                if record.symbol == symbol
            ]
            written.append((path, commands))
        return written
    finally:
        store.close()


def _replay_command(path: Path, name: str, cfg: dict[str, object], trade_from_ms: int) -> str:
    """The ``barbus replay`` line that redoes one engine's trades from ``path``; an engine on a
    shared account shares its cash with others, so only the whole config replays it."""
    account = cfg.get("account")
    if account is not None:
        return (
            f"# {name} trades through the shared account {account}: replay the whole config "
            "with barbus replay --config FILE and every symbol's recorded file"
        )
    params = cfg["params"]
    assert isinstance(params, dict)
    words = [
        *("barbus", "replay", "--strategy", str(cfg["strategy"]), "--data", str(path)),
        *("--name", name, "--fee-bps", str(cfg["fee_bps"])),
        *("--slippage-bps", str(cfg["slippage_bps"]), "--fill-at", str(cfg["fill_at"])),
        *("--cash", str(cfg["capital"]), "--trade-from", str(trade_from_ms), "--keep-open"),
        *(["--allow-short"] if cfg.get("allow_short") is True else []),
        *(
            word
            for key in ("maker_fee_bps", "taker_fee_bps")
            if key in cfg
            for word in (f"--{key.replace('_', '-')}", str(cfg[key]))
        ),
        *(word for key, value in sorted(params.items()) for word in ("--param", f"{key}={value}")),
    ]
    return shlex.join(words)
