"""What a replay gives back: the ``--out`` check, ``trades.csv`` + ``summary.json``, the report.

One strategy (:func:`~barbus.replay.runner.run_replay`) and a whole config
(:func:`~barbus.replay.portfolio.run_portfolio`) write the same two files and print a report in the
same style, so both live here with one folder check, one file writer and one figure format, apart
from the running: a batch runs replays and writes none of this per job. (A single strategy's
summary is :meth:`~barbus.replay.runner.ReplayResult.summary`: it is also a batch row's source.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from barbus.daemon.core.errors import ConfigError
from barbus.daemon.core.events import Trade, format_time_ms
from barbus.daemon.core.tradelog import write_trades_csv
from barbus.strategies import StrategySource

if TYPE_CHECKING:
    from barbus.replay.portfolio import PortfolioResult
    from barbus.replay.runner import ReplayResult

__all__ = [
    "check_out_dir",
    "format_figure",
    "format_portfolio_report",
    "format_report",
    "portfolio_summary",
    "write_outputs",
    "write_portfolio_outputs",
]


def check_out_dir(path: Path, option: str = "--out") -> None:
    """Refuse an output folder that cannot be written, before any data is loaded or job run.

    ``path`` may exist (a folder we can write to) or not (then its nearest existing parent must
    be a folder we can write to); nothing is created here.
    """
    try:
        _check_out_dir(path, option)
    except OSError as exc:  # e.g. a parent that may not be searched
        raise ConfigError(f"{option} {path}: {exc.strerror or exc}") from None


def _check_out_dir(path: Path, option: str) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file, not a folder: give a folder to write into")
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise ConfigError(f"{option} {path}: {probe} is a dangling symbolic link")
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{option} {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        if probe == path:
            raise ConfigError(f"{option} {path}: the folder is not writable")
        raise ConfigError(f"{option} {path}: cannot create it, {probe} is not writable")


def write_outputs(result: ReplayResult, out_dir: Path) -> dict[str, Path]:
    """Write ``trades.csv`` and ``summary.json`` into ``out_dir`` (created if missing)."""
    return _write_files(out_dir, result.trades, result.summary())


def write_portfolio_outputs(result: PortfolioResult, out_dir: Path) -> dict[str, Path]:
    """Write ``trades.csv`` (every strategy's, by exit time) and ``summary.json``."""
    return _write_files(out_dir, result.trades, portfolio_summary(result))


def _write_files(out_dir: Path, trades: Iterable[Trade], facts: dict[str, Any]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    trades_path = out_dir / "trades.csv"
    summary_path = out_dir / "summary.json"
    write_trades_csv(trades_path, trades)
    summary_path.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    return {"trades": trades_path, "summary": summary_path}


def portfolio_summary(result: PortfolioResult) -> dict[str, Any]:
    """The ``summary.json`` of a portfolio backtest: inputs, then per strategy and per account."""
    execution = result.config.execution
    held = [s for s in result.periods.values() if len(s)]
    strategies = [
        {
            "name": e.name,
            "strategy": e.source.name,
            "strategy_spec": e.source.spec,
            "strategy_fingerprint": e.source.fingerprint,
            "params": e.params,
            "symbol": e.symbol,
            "account": e.account,
            "trades": len(e.trades),
            "realised_pnl": e.realised_pnl,
            "final_position": e.position,
            "halted": e.halted,
        }
        for e in result.engines
    ]
    accounts = []
    shorts = {e.account: e.allows_short for e in result.engines}
    for name, (start, final) in result.account_cash.items():
        equity = result.account_equity[name]
        accounts.append(
            {
                "name": name,
                "strategies": [e.name for e in result.engines if e.account == name],
                "allow_short": shorts.get(name, False),
                "starting_cash": start,
                "final_cash": final,
                "final_equity": equity,
                "return_pct": 100.0 * (equity - start) / start,
            }
        )
    return {
        "symbols": {s.symbol: s.source for s in held},
        "first_bar": format_time_ms(min(int(s.open_time_ms[0]) for s in held)) if held else None,
        "last_bar": format_time_ms(max(int(s.open_time_ms[-1]) for s in held)) if held else None,
        "bars": result.bars,
        "fee_bps": execution.fee_bps,
        "maker_fee_bps": execution.maker_bps,
        "taker_fee_bps": execution.taker_bps,
        "slippage_bps": execution.slippage_bps,
        "fill_at": execution.fill_at,
        "close_at_end": result.config.close_at_end,
        "strategies": strategies,
        "accounts": accounts,
        "replay_seconds": result.replay_seconds,
    }


def format_report(result: ReplayResult) -> str:
    """A short human-readable report of a replay."""
    s, st = result.series, result.stats
    params = ", ".join(f"{k}={v}" for k, v in result.strategy_params.items())
    fig = format_figure
    lines = [
        f"strategy      {_strategy_line(result.source)} ({params})",
        f"data          {s.symbol} {format_time_ms(int(s.open_time_ms[0]))} -> "
        f"{format_time_ms(int(s.open_time_ms[-1]))}, {len(s):,} bars, {result.gaps.describe()}",
        f"total return  {st.total_return_pct:+.2f} %   "
        f"(buy and hold {st.buy_and_hold_return_pct:+.2f} %)",
        f"final equity  {st.final_equity:,.2f}  from {result.config.execution.starting_cash:,.2f}",
        f"max drawdown  {st.max_drawdown_pct:.2f} %   longest {st.max_drawdown_days:.1f} days",
        f"sharpe        {fig(st.sharpe)}   sortino {fig(st.sortino)}   "
        f"(daily returns, {st.days} UTC days, x sqrt(365))",
        f"cagr          {fig(st.cagr_pct, '+.2f', ' %')}   calmar {fig(st.calmar)}",
        f"trades        {st.trades}   win rate {st.win_rate_pct:.1f} %   "
        f"exposure {st.exposure_pct:.1f} %",
        f"per trade     average {fig(st.avg_trade_pct, '+.2f', ' %')}   expectancy "
        f"{fig(st.expectancy, '+,.2f')}   profit factor {fig(st.profit_factor)}",
        _speed_line(result.bars_per_second, result.replay_seconds),
    ]
    return "\n".join(lines)


def format_portfolio_report(result: PortfolioResult) -> str:
    """A short report: the data, one line per strategy and per account, the speed."""
    facts = portfolio_summary(result)
    symbols = ", ".join(facts["symbols"]) or "no data"
    rate = result.bars / result.replay_seconds if result.replay_seconds > 0 else 0.0
    lines = [
        f"data          {symbols}: {facts['first_bar']} -> {facts['last_bar']}, "
        f"{result.bars:,} bars",
    ]
    strategies = [
        (
            e["name"],
            f"{e['symbol']} via {e['account']}: {e['trades']} trades, "
            f"realised {e['realised_pnl']:+,.2f}, position {e['final_position']:g}",
        )
        for e in facts["strategies"]
    ]
    accounts = [
        (
            a["name"],
            f"cash {a['starting_cash']:,.2f} -> {a['final_cash']:,.2f}, "
            f"equity {a['final_equity']:,.2f} ({a['return_pct']:+.2f} %)",
        )
        for a in facts["accounts"]
    ]
    lines += _aligned("strategy", strategies) + _aligned("account", accounts)
    lines.append(_speed_line(rate, result.replay_seconds))
    return "\n".join(lines)


def format_figure(value: float | None, spec: str = ".2f", unit: str = "") -> str:
    """A report figure, or ``n/a`` where it is undefined (too few days, no losing trade)."""
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _strategy_line(source: StrategySource) -> str:
    """The name, and for a strategy that is not built in where it came from."""
    return source.name if source.origin == "built-in" else f"{source.name} from {source.spec}"


def _aligned(label: str, rows: list[tuple[str, str]]) -> list[str]:
    """One line per (name, text) under ``label``, the names padded to the longest of them."""
    width = max(len(name) for name, _ in rows)
    return [f"{label:<14}{name:<{width}}  {text}" for name, text in rows]


def _speed_line(bars_per_second: float, seconds: float) -> str:
    return f"speed         {bars_per_second:,.0f} bars/s ({seconds:.2f} s)"
