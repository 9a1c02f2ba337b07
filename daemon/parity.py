"""Parity: replay what the daemon recorded and compare trade logs, byte for byte.

The daemon stores every bar it processed (warm-up included), each engine's configuration and
the open time from which it traded. Replaying those bars through ``replay.runner`` with the
same settings must give the very same trade rows and final equity; the first difference, if
any, is reported with both rows, so a user can see where live and backtest parted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daemon.broker import ExecutionConfig
from daemon.errors import DataError
from daemon.state import StateStore
from daemon.tradelog import trade_row
from replay.runner import ReplayConfig, run_replay
from replay.series import BarSeries

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
    """Replay every engine of the state file over its recorded bars and compare."""
    if not Path(state_path).exists():
        raise DataError(f"{state_path}: no such state file")
    store = StateStore(state_path)
    try:
        engines = store.engines()
        if not engines:
            raise DataError(f"{state_path}: no strategy has processed a bar yet")
        reports = []
        for name, record in sorted(engines.items()):
            cfg = record.config
            bars = [bar for bar, _ in store.bars(record.symbol)]
            series = BarSeries.from_bars(bars, f"{state_path}:{record.symbol}")
            result = run_replay(
                ReplayConfig(
                    strategy=cfg["strategy"],
                    params=cfg["params"],
                    symbol=record.symbol,
                    execution=ExecutionConfig(
                        fee_bps=cfg["fee_bps"],
                        slippage_bps=cfg["slippage_bps"],
                        fill_at=cfg["fill_at"],
                        starting_cash=cfg["capital"],
                    ),
                    trade_from_ms=int(record.snapshot["trade_from_ms"]),
                    close_at_end=False,
                    name=name,
                ),
                series=series,
            )
            daemon_rows = [trade_row(t) for t in store.trades(name)]
            replay_rows = [trade_row(t) for t in result.trades]
            portfolio = record.snapshot["portfolio"]
            daemon_equity = portfolio["cash"] + portfolio["size"] * bars[-1].close
            reports.append(
                EngineParity(
                    name,
                    len(daemon_rows),
                    len(replay_rows),
                    daemon_equity,
                    result.stats.final_equity,
                    _first_difference(
                        daemon_rows, replay_rows, daemon_equity, result.stats.final_equity
                    ),
                )
            )
        return reports
    finally:
        store.close()


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
    """Write each symbol's recorded bars as ``<SYMBOL>_1m_recorded.csv`` in ``out_dir``.

    Returns, per file, the ``barbus replay`` command lines that reproduce each engine's trades
    from it (same parameters, fees, warm-up boundary, position left open).
    """
    if not Path(state_path).exists():
        raise DataError(f"{state_path}: no such state file")
    store = StateStore(state_path)
    try:
        engines = store.engines()
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for symbol in sorted({record.symbol for record in engines.values()}):
            path = out_dir / f"{symbol}_1m_recorded.csv"
            with path.open("w", encoding="utf-8", newline="\n") as handle:
                handle.write("open_time_ms,open,high,low,close,volume\n")
                for bar, _ in store.bars(symbol):
                    handle.write(
                        f"{bar.open_time_ms},{bar.open!r},{bar.high!r},{bar.low!r},"
                        f"{bar.close!r},{bar.volume!r}\n"
                    )
            commands = [
                _replay_command(path, name, record.config, int(record.snapshot["trade_from_ms"]))
                for name, record in sorted(engines.items())
                if record.symbol == symbol
            ]
            written.append((path, commands))
        return written
    finally:
        store.close()


def _replay_command(path: Path, name: str, cfg: dict[str, object], trade_from_ms: int) -> str:
    params = cfg["params"]
    assert isinstance(params, dict)
    words = [
        "barbus replay",
        f"--strategy {cfg['strategy']}",
        f"--data {path}",
        f"--name {name}",
        f"--fee-bps {cfg['fee_bps']}",
        f"--slippage-bps {cfg['slippage_bps']}",
        f"--fill-at {cfg['fill_at']}",
        f"--cash {cfg['capital']}",
        f"--trade-from {trade_from_ms}",
        "--keep-open",
        *(f"--param {key}={value}" for key, value in sorted(params.items())),
    ]
    return " ".join(words)
