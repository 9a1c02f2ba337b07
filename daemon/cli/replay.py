"""``barbus replay``: one strategy (``--strategy``) or a whole daemon config (``--config``).

Its own module because the two modes share the command's options and its output (the report,
then trades.csv, summary.json and a plot in ``--out``) but build different runs: one
:class:`~barbus.replay.runner.ReplayConfig` on one file, or a portfolio of every configured
strategy and account on one file per symbol.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from barbus.daemon.cli.options import (
    STRATEGY_HELP,
    Commands,
    add_cache_dir,
    add_data,
    add_run_options,
    data_paths,
    execution_of,
    given,
    period_ms,
)
from barbus.daemon.core.errors import ConfigError
from barbus.daemon.core.params import params_dict

if TYPE_CHECKING:
    from barbus.daemon.config import DaemonConfig
    from barbus.daemon.core.series import BarSeries
    from barbus.replay.cache import BarCache
    from barbus.replay.portfolio import PortfolioConfig, PortfolioResult
    from barbus.replay.runner import ReplayConfig, ReplayResult

__all__ = ["add_replay"]

# --data: the bars a replay runs on, one file with --strategy, one per symbol with --config.
BARS_TO_REPLAY = (
    "kline CSV/CSV.gz file (default: the bundled BTCUSDT 2025-05-20..08-18 sample); "
    "with --config one per symbol, repeatable, the symbol from the file name or the SYMBOL"
)

# Options that belong to one strategy; with --config the config file says them.
_ONE_STRATEGY_OPTIONS = (
    ("symbol", "--symbol"),
    ("param", "--param"),
    ("name", "--name"),
    ("cash", "--cash"),
    ("allow_short", "--allow-short"),
)


def add_replay(commands: Commands) -> None:
    replay = commands.add_parser(
        "replay",
        help="backtest one strategy, or a whole daemon config, on historical bars",
        description="Backtest one strategy (--strategy) on historical bars (CSV, CSV.gz or "
        "Parquet of one interval, 1m to 1d, or a symbol of the data folder), or every "
        "strategy of a daemon config (--config) with its shared accounts "
        "through the same session the daemon runs, on one --data file per symbol. A strategy "
        "that halts (e.g. a short on an account without shorts) is exit 2 with one line.",
    )
    what = replay.add_mutually_exclusive_group(required=True)
    what.add_argument("--strategy", help=STRATEGY_HELP)
    what.add_argument(
        "--config",
        type=Path,
        help="instead of --strategy: a daemon config (TOML); its [[strategy]] tables in order, "
        "their [[account]]s and [execution] (flags override it); trades.csv holds every "
        "strategy, summary.json each strategy and account",
    )
    add_data(replay, BARS_TO_REPLAY)
    add_run_options(replay)
    replay.add_argument(
        "--out",
        type=Path,
        help="folder for trades.csv, summary.json and replay.png (a writable folder, or one "
        "that can be created: checked before any data is loaded)",
    )
    replay.add_argument("--no-plot", action="store_true", help="skip replay.png")
    replay.add_argument(
        "--trade-from",
        help="warm up before this time (same forms as --start): no orders earlier",
    )
    replay.add_argument(
        "--keep-open",
        action="store_true",
        help="leave a position open at the end (as a running daemon does) instead of closing it",
    )
    replay.add_argument("--name", help="strategy column of the trade log (default: the strategy)")
    replay.add_argument(
        "--no-cache", action="store_true", help="parse the data file instead of using the cache"
    )
    add_cache_dir(replay)
    replay.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    from barbus.replay.outputs import check_out_dir, format_report, write_outputs
    from barbus.replay.runner import run_replay

    _one_of_strategy_and_config(args)
    if args.config is not None:
        return _replay_config(args)
    if len(args.data) > 1:
        raise ConfigError("--data is given once with --strategy (several files: --config)")
    if args.out is not None:
        check_out_dir(args.out)  # before any data is loaded: a bad folder fails at once
    config = _one_strategy(args)
    cache = _cache(args)
    result = run_replay(config, cache=cache)
    if cache is not None:
        cache.flush_stats()
    _report(args, format_report(result), partial(write_outputs, result), _plot(result))
    return 0


def _one_of_strategy_and_config(args: argparse.Namespace) -> None:
    if (args.strategy is None) == (args.config is None):
        raise ConfigError(
            "give --strategy (one strategy) or --config (every strategy of a daemon config), "
            "not both"
            if args.strategy
            else "replay needs --strategy or --config"
        )


def _one_strategy(args: argparse.Namespace) -> ReplayConfig:
    from barbus.replay.runner import ReplayConfig

    start_ms, end_ms = period_ms(args)
    return ReplayConfig(
        strategy=args.strategy,
        params=params_dict(args.param),
        data=data_paths(args)[0] if args.data else None,
        symbol=args.symbol,
        start_ms=start_ms,
        end_ms=end_ms,
        execution=execution_of(args),
        trade_from_ms=_trade_from_ms(args),
        close_at_end=not args.keep_open,
        name=args.name,
    )


def _plot(result: ReplayResult) -> Callable[[Path], Path]:
    def plot(out: Path) -> Path:
        from barbus.replay.reports.run_chart import plot_run

        return plot_run(result, out / "replay.png")

    return plot


def _replay_config(args: argparse.Namespace) -> int:
    """``replay --config``: every strategy of a daemon config, its accounts, on the files."""
    from barbus.daemon.config import load_config
    from barbus.replay import portfolio
    from barbus.replay.outputs import (
        check_out_dir,
        format_portfolio_report,
        write_portfolio_outputs,
    )

    _refuse_one_strategy_options(args)
    if not args.data:
        raise ConfigError("--config needs --data FILE, once per symbol its strategies trade")
    if args.out is not None:
        check_out_dir(args.out)
    daemon = load_config(args.config)
    start_ms, end_ms = period_ms(args)
    trade_from_ms = _trade_from_ms(args)
    series = _series_by_symbol(data_paths(args), _cache(args), start_ms, end_ms)
    config = _portfolio(args, daemon, start_ms, end_ms, trade_from_ms)
    result = portfolio.run_portfolio(config, series)
    portfolio.raise_on_halt(result)
    write = partial(write_portfolio_outputs, result)
    _report(args, format_portfolio_report(result), write, _plot_accounts(args, result))
    return 0


def _refuse_one_strategy_options(args: argparse.Namespace) -> None:
    for attribute, option in _ONE_STRATEGY_OPTIONS:
        if given(getattr(args, attribute)) and getattr(args, attribute) != []:
            raise ConfigError(
                f"{option} does not go with --config: the config's [[strategy]] and [[account]] "
                "tables say it"
            )


def _series_by_symbol(
    paths: list[Path], cache: BarCache | None, start_ms: int | None, end_ms: int | None
) -> dict[str, BarSeries]:
    """One series per symbol, from the cache (or parsed); a second file of a symbol is refused."""
    from barbus.replay.folder_series import load_data

    series: dict[str, BarSeries] = {}
    for path in paths:
        loaded = load_data(path, None, cache, start_ms, end_ms)
        if loaded.symbol in series:
            raise ConfigError(
                f"--data {path}: a second file of {loaded.symbol} "
                f"(the first is {series[loaded.symbol].source}); give one file per symbol"
            )
        series[loaded.symbol] = loaded
    if cache is not None:
        cache.flush_stats()
    return series


def _portfolio(
    args: argparse.Namespace,
    daemon: DaemonConfig,
    start_ms: int | None,
    end_ms: int | None,
    trade_from_ms: int,
) -> PortfolioConfig:
    """The daemon config's strategies and accounts as a portfolio run; flags over [execution]."""
    from barbus.replay import portfolio

    return portfolio.PortfolioConfig(
        engines=tuple(
            portfolio.EngineSpec(
                name=s.name,
                strategy=s.source,
                symbol=s.symbol,
                params=s.params,
                account=s.account,
                capital=s.capital,
                allow_short=s.allow_short,
                trade_from_ms=trade_from_ms,
            )
            for s in daemon.strategies
        ),
        accounts=tuple(
            portfolio.AccountSpec(a.name, a.cash, a.allow_short) for a in daemon.accounts
        ),
        execution=execution_of(args, daemon.execution),
        start_ms=start_ms,
        end_ms=end_ms,
        close_at_end=not args.keep_open,
    )


def _plot_accounts(args: argparse.Namespace, result: PortfolioResult) -> Callable[[Path], Path]:
    def plot(out: Path) -> Path:
        from barbus.replay.portfolio import account_equity
        from barbus.replay.reports.accounts_chart import plot_accounts

        marks, curves = account_equity(result)
        title = f"{args.config.name}: equity of each account"
        return plot_accounts(marks, curves, title, out / "equity.png")

    return plot


# -- shared by both modes ------------------------------------------------------------------


def _trade_from_ms(args: argparse.Namespace) -> int:
    from barbus.replay.periods import parse_time

    return parse_time(args.trade_from, "--trade-from") if args.trade_from else 0


def _cache(args: argparse.Namespace) -> BarCache | None:
    from barbus.replay.cache import BarCache

    return None if args.no_cache else BarCache(args.cache_dir)


def _report(
    args: argparse.Namespace,
    report: str,
    write: Callable[[Path], dict[str, Path]],
    plot: Callable[[Path], Path],
) -> None:
    """Print the report; with ``--out`` write the files there and, unless ``--no-plot``, plot."""
    print(report)
    if args.out is not None:
        written = write(args.out)
        print(f"wrote         {written['trades']} and {written['summary']}")
        if not args.no_plot:
            print(f"plot          {plot(args.out)}")
