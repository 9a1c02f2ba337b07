"""The ``barbus`` command line: parse arguments, call one library function, report.

Each ``cmd_*`` turns arguments into a config and calls the library; heavy modules are imported
inside them so ``barbus --help`` stays fast. Any :class:`~daemon.errors.BarbusError` becomes one
line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from barbus import __version__
from barbus.daemon.core.errors import BarbusError, ConfigError
from barbus.daemon.log import configure_logging

if TYPE_CHECKING:
    from barbus.daemon.core.broker import ExecutionConfig
    from barbus.daemon.feeds.sim import FaultConfig
    from barbus.strategies import StrategySource

__all__ = ["build_parser", "main"]

log = logging.getLogger("barbus.cli")

STRATEGY_HELP = (
    "a strategy: a name from `barbus strategies` (built-in or plugin), path/to/file.py:ClassName "
    "(relative to the current folder), or package.module:ClassName"
)


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name.strip(), value.strip()


def _params_dict(pairs: Sequence[tuple[str, str]]) -> dict[str, str | int | float | bool]:
    params: dict[str, str | int | float | bool] = {}
    for name, value in pairs:
        if name in params:
            raise ConfigError(f"parameter {name!r} given twice")
        params[name] = value
    return params


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0-65535, got {text!r}")
    return value


def cmd_replay(args: argparse.Namespace) -> int:
    from barbus.replay.cache import BarCache
    from barbus.replay.periods import parse_period, parse_time
    from barbus.replay.runner import (
        ReplayConfig,
        check_out_dir,
        format_report,
        run_replay,
        write_outputs,
    )

    if (args.strategy is None) == (args.config is None):
        raise ConfigError(
            "give --strategy (one strategy) or --config (every strategy of a daemon config), "
            "not both"
            if args.strategy
            else "replay needs --strategy or --config"
        )
    if args.config is not None:
        return _replay_config(args)
    if len(args.data) > 1:
        raise ConfigError("--data is given once with --strategy (several files: --config)")
    if args.out is not None:
        check_out_dir(args.out)  # before any data is loaded: a bad folder fails at once
    start_ms, end_ms = parse_period(
        args.start, args.end, what="--start/--end", names=("--start", "--end")
    )
    config = ReplayConfig(
        strategy=args.strategy,
        params=_params_dict(args.param),
        data=args.data[0] if args.data else None,
        symbol=args.symbol,
        start_ms=start_ms,
        end_ms=end_ms,
        execution=_execution(args),
        trade_from_ms=parse_time(args.trade_from, "--trade-from") if args.trade_from else 0,
        close_at_end=not args.keep_open,
        name=args.name,
    )
    cache = None if args.no_cache else BarCache(args.cache_dir)
    result = run_replay(config, cache=cache)
    if cache is not None:
        cache.flush_stats()
    print(format_report(result))
    if args.out is not None:
        written = write_outputs(result, args.out)
        print(f"wrote         {written['trades']} and {written['summary']}")
        if not args.no_plot:
            from barbus.replay.reports.run_chart import plot_run

            print(f"plot          {plot_run(result, args.out / 'replay.png')}")
    return 0


# Options that belong to one strategy; with --config the config file says them.
_ONE_STRATEGY_OPTIONS = (
    ("symbol", "--symbol"),
    ("param", "--param"),
    ("name", "--name"),
    ("cash", "--cash"),
    ("allow_short", "--allow-short"),
)


def _replay_config(args: argparse.Namespace) -> int:
    """``replay --config``: every strategy of a daemon config, its accounts, on the files."""
    from barbus.daemon.config import load_config
    from barbus.daemon.core.series import BarSeries
    from barbus.replay import portfolio
    from barbus.replay.cache import BarCache
    from barbus.replay.loader import load_bars
    from barbus.replay.periods import parse_period, parse_time
    from barbus.replay.runner import check_out_dir

    for attribute, option in _ONE_STRATEGY_OPTIONS:
        if _given(getattr(args, attribute)) and getattr(args, attribute) != []:
            raise ConfigError(
                f"{option} does not go with --config: the config's [[strategy]] and [[account]] "
                "tables say it"
            )
    if not args.data:
        raise ConfigError("--config needs --data FILE, once per symbol its strategies trade")
    if args.out is not None:
        check_out_dir(args.out)
    daemon = load_config(args.config)
    start_ms, end_ms = parse_period(
        args.start, args.end, what="--start/--end", names=("--start", "--end")
    )
    trade_from_ms = parse_time(args.trade_from, "--trade-from") if args.trade_from else 0
    cache = None if args.no_cache else BarCache(args.cache_dir)
    series: dict[str, BarSeries] = {}
    for path in args.data:
        loaded = cache.load(path) if cache is not None else load_bars(path)
        if loaded.symbol in series:
            raise ConfigError(
                f"--data {path}: a second file of {loaded.symbol} "
                f"(the first is {series[loaded.symbol].source}); give one file per symbol"
            )
        series[loaded.symbol] = loaded
    if cache is not None:
        cache.flush_stats()
    config = portfolio.PortfolioConfig(
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
        execution=_execution(args, daemon.execution),
        start_ms=start_ms,
        end_ms=end_ms,
        close_at_end=not args.keep_open,
    )
    result = portfolio.run_portfolio(config, series)
    portfolio.raise_on_halt(result)
    print(portfolio.format_report(result))
    if args.out is not None:
        written = portfolio.write_outputs(result, args.out)
        print(f"wrote         {written['trades']} and {written['summary']}")
        if not args.no_plot:
            from barbus.replay.reports.accounts_chart import plot_accounts

            marks, curves = portfolio.account_equity(result)
            title = f"{args.config.name}: equity of each account"
            print(f"plot          {plot_accounts(marks, curves, title, args.out / 'equity.png')}")
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    from barbus.strategies import StrategySource, available_strategies, resolve_strategy

    listed: list[StrategySource] = []
    if args.specs:
        listed = [resolve_strategy(spec) for spec in args.specs]
    else:
        for found in available_strategies():
            if isinstance(found, StrategySource):
                listed.append(found)
            else:
                log.warning("%s", found)
    for source in listed:
        print(_describe_strategy(source))
    return 0


def cmd_new_strategy(args: argparse.Namespace) -> int:
    from barbus.strategies.skeleton import class_name, write_skeleton

    strategy, test = write_skeleton(args.name, args.dir)
    print(f"wrote {strategy} and {test}")
    print(f"next: pytest {test}; barbus replay --strategy {strategy}:{class_name(args.name)}")
    return 0


def _describe_strategy(source: StrategySource) -> str:
    """``name: first docstring line``, where it comes from, then each parameter's default."""
    import dataclasses

    cls = source.cls
    module_doc = sys.modules[cls.__module__].__doc__
    # A built-in's module docstring starts with its name; a user file may hold several classes.
    first_choice = module_doc if source.origin == "built-in" else cls.__doc__
    doc = (first_choice or module_doc or cls.__doc__ or "").strip()
    first = doc.splitlines()[0].removeprefix(f"``{source.name}``: ") if doc else ""
    lines = [f"{source.name}: {first}".rstrip(), f"    from: {source.origin}"]
    if source.origin != "built-in":
        lines.append(f"    spec: {source.spec}   fingerprint: {source.fingerprint}")
    lines += [f"    {f.name} = {f.default!r}" for f in dataclasses.fields(cls.params_type)]
    return "\n".join(lines)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options every backtest command shares: symbol, period, execution, parameters."""
    parser.add_argument("--symbol", help="symbol (default: from the file name, e.g. BTCUSDT_...)")
    parser.add_argument(
        "--start",
        help="first bar, inclusive: ISO date/time (UTC unless an offset is given), or epoch "
        "seconds (numbers below 1e11) or milliseconds",
    )
    parser.add_argument("--end", help="end, exclusive: same forms as --start")
    parser.add_argument(
        "--fee-bps",
        type=float,
        help="fee in basis points (10): sets both the maker and the taker fee",
    )
    parser.add_argument(
        "--maker-fee-bps",
        type=float,
        metavar="BPS",
        help="fee of limit order fills (default: --fee-bps)",
    )
    parser.add_argument(
        "--taker-fee-bps",
        type=float,
        metavar="BPS",
        help="fee of market and stop order fills, signals and bracket exits (default: --fee-bps)",
    )
    parser.add_argument("--slippage-bps", type=float, help="slippage in basis points (5)")
    parser.add_argument(
        "--fill-at",
        choices=("next_open", "close"),
        help="fill market orders at the next 1-minute bar's open (default) or this bar's close",
    )
    parser.add_argument("--cash", type=float, help="starting cash (10000)")
    parser.add_argument(
        "--allow-short",
        action="store_true",
        help="let the account hold short positions (without it a short order halts the "
        "strategy: exit 2 naming the strategy and the bar); no leverage, margin or funding",
    )
    parser.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="strategy parameter, repeatable (e.g. --param fast=5)",
    )


def _given(value: object) -> bool:
    """Whether an option without a default was given (0 counts; a store_true flag's False not)."""
    return value is not None and value is not False


_EXECUTION_OPTIONS = (
    ("fee_bps", "--fee-bps"),
    ("maker_fee_bps", "--maker-fee-bps"),
    ("taker_fee_bps", "--taker-fee-bps"),
    ("slippage_bps", "--slippage-bps"),
    ("fill_at", "--fill-at"),
    ("cash", "--cash"),
    ("allow_short", "--allow-short"),
)


def _execution(args: argparse.Namespace, base: ExecutionConfig | None = None) -> ExecutionConfig:
    """The execution options given on the command line, over ``base`` (default: defaults)."""
    from dataclasses import replace as with_options

    from barbus.daemon.core.broker import ExecutionConfig

    given = {
        "fee_bps": args.fee_bps,
        "slippage_bps": args.slippage_bps,
        "fill_at": args.fill_at,
        "starting_cash": args.cash,
        "maker_fee_bps": args.maker_fee_bps,
        "taker_fee_bps": args.taker_fee_bps,
        "allow_short": args.allow_short or None,
    }
    options = {name: value for name, value in given.items() if value is not None}
    if args.fee_bps is not None:  # --fee-bps sets both, over a config's maker and taker fees
        options.setdefault("maker_fee_bps", None)
        options.setdefault("taker_fee_bps", None)
    return with_options(base or ExecutionConfig(), **options)


def _add_cache_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder (default: $BARBUS_CACHE_DIR, else $XDG_CACHE_HOME/barbus); one "
        "that cannot be written is only read: data it lacks is parsed, with one warning",
    )


def cmd_cache(args: argparse.Namespace) -> int:
    import time

    from barbus.replay.cache import BarCache
    from barbus.replay.cache_listing import format_entries, format_stats

    cache = BarCache(args.cache_dir)
    if args.cache_command == "ingest":
        for path in args.files:
            started = time.perf_counter()
            entry = cache.ingest(path, args.symbol, force=args.force)
            elapsed = time.perf_counter() - started
            print(f"{format_entries([entry])}    ({elapsed:.2f} s)")
        cache.flush_stats()
    elif args.cache_command == "ls":
        print(f"cache {cache.root}")
        print(format_entries(cache.entries()) or "(empty)")
    elif args.cache_command == "stats":
        print(format_stats(cache))
    else:
        print(f"removed {cache.clear()} entries from {cache.root}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from barbus.replay.batch import format_top, run_batch
    from barbus.replay.batch_spec import BatchPlan, load_spec, parse_grid, plan_jobs
    from barbus.replay.cache import BarCache
    from barbus.replay.loader import bundled_data_path
    from barbus.replay.periods import parse_period, split_period
    from barbus.replay.progress import BatchProgress
    from barbus.replay.reports.batch_report import write_batch_report
    from barbus.replay.runner import check_out_dir

    check_out_dir(args.out)  # before the spec, the data or any job: a bad folder fails at once
    if args.spec is not None:
        if args.strategy or args.data or args.grid or args.param or args.period:
            raise ConfigError(
                "give either a SPEC file or --strategy/--data/--grid/--param/--period, not both"
            )
        given = [option for name, option in _EXECUTION_OPTIONS if _given(getattr(args, name))]
        if given:
            raise ConfigError(
                f"{given[0]} does not go with a SPEC file: set it in the spec (its top-level "
                "execution keys)"
            )
        plan = load_spec(args.spec)
    else:
        if not args.strategy:
            raise ConfigError("without a SPEC file, --strategy is required")
        periods = (
            [parse_period(*split_period(p), what="--period") for p in args.period]
            if args.period
            else [parse_period(args.start, args.end, "--start/--end", ("--start", "--end"))]
        )
        jobs, invalid = plan_jobs(
            args.strategy,
            args.data or [bundled_data_path()],
            grid=parse_grid(args.grid),
            params=_params_dict(args.param),
            periods=periods,
            symbol=args.symbol,
            execution=_execution(args),
        )
        plan = BatchPlan(jobs, invalid)
    sort = args.sort or plan.sort
    ascending = plan.ascending if args.ascending is None else args.ascending
    workers = args.workers or plan.workers
    for reason in plan.invalid:
        log.info("skipped invalid combination: %s", reason)
    cache = BarCache(args.cache_dir)
    metrics = None
    if args.metrics_port is not None:
        from barbus.replay.metrics import BatchMetrics

        metrics = BatchMetrics.create()
        try:
            metrics.serve(args.metrics_port)
        except OSError as exc:
            from barbus.daemon.listen import bind_problem

            raise ConfigError(
                f"--metrics-port {args.metrics_port} cannot listen on 127.0.0.1:"
                f"{args.metrics_port}: {bind_problem('127.0.0.1', args.metrics_port, exc)}"
            ) from None
    progress = BatchProgress(len(plan.jobs))
    try:
        outcome = run_batch(
            plan.jobs,
            args.out,
            workers=workers,
            parallel=not args.no_parallel,
            cache=cache,
            sort=sort,
            ascending=ascending,
            resume=not args.no_resume,
            skipped_invalid=plan.invalid,
            progress=progress,
            backend=args.backend,
            ray_address=args.ray_address,
            metrics=metrics,
        )
    finally:
        progress.close()
    print(format_top(outcome.rows, sort, args.top))
    print(
        f"jobs          {len(outcome.rows)} done ({outcome.failed} failed, "
        f"{outcome.resumed} from an earlier run), {len(plan.invalid)} invalid combinations "
        f"skipped"
    )
    rate = outcome.bars_replayed / outcome.elapsed_seconds if outcome.elapsed_seconds else 0.0
    print(f"speed         {rate:,.0f} bars/s over {outcome.elapsed_seconds:.1f} s")
    if outcome.interrupted:
        print(f"interrupted   results so far are in {outcome.paths['csv']}", file=sys.stderr)
        return 130
    if args.plots:
        page = write_batch_report(
            outcome,
            replace(plan, sort=sort, ascending=ascending),
            args.out,
            cache,
            plots=args.plots,
        )
        print(f"report        {page}")
    print(f"results       {outcome.paths['csv']} and {outcome.paths['parquet']}")
    return 0


def cmd_sim_exchange(args: argparse.Namespace) -> int:

    import uvloop

    from barbus.daemon.feeds.sim import serve
    from barbus.replay.cache import BarCache
    from barbus.replay.loader import bundled_data_path

    try:
        faults = _fault_config(args)  # before the data is loaded: a typo fails at once
    except ValueError as exc:
        raise ConfigError(f"sim-exchange: {exc}") from None
    cache = BarCache(args.cache_dir)
    files = args.data or [bundled_data_path()]
    series = [cache.load(path) for path in files]
    cache.flush_stats()  # now: the exchange serves until it is stopped
    uvloop.run(
        serve(
            series,
            host=args.host,
            port=args.port,
            speed=args.speed,
            history_bars=args.history_bars,
            faults=faults,
            exit_at_end=args.exit_at_end,
            start_on_connect=args.start_on_connect,
        )
    )
    return 0


def _fault_config(args: argparse.Namespace) -> FaultConfig:
    from barbus.daemon.feeds.sim import FaultConfig

    return FaultConfig(
        drop_every=args.drop_every,
        malformed_every=args.malformed_every,
        duplicate_probability=args.duplicate_probability,
        reorder_probability=args.reorder_probability,
        pause_every=args.pause_every,
        pause_seconds=args.pause_seconds,
        seed=args.seed,
        skip_every=args.skip_every,
        inject=args.inject,
        inject_every=args.inject_every,
        inject_price=args.inject_price,
        silent=args.silent,
        rest_fault=args.rest_fault,
        rest_fault_every=args.rest_fault_every,
        rest_fault_times=args.rest_fault_times,
        oversize_rows=args.oversize_rows,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from barbus.daemon.config import load_config
    from barbus.daemon.service import run_daemon

    config = load_config(args.config)
    configure_logging(args.log_level if args.log_level_given else config.log_level)
    return run_daemon(config, new_state=args.new_state)


def cmd_parity(args: argparse.Namespace) -> int:
    from barbus.daemon.parity import check_parity, export_recorded

    if args.export is not None:
        for path, commands in export_recorded(args.state, args.export):
            print(f"wrote {path}; replay it with:")
            for command in commands:
                print(f"    {command}")

    reports = check_parity(args.state)
    for r in reports:
        verdict = "identical" if r.identical else f"DIFFERENT: {r.first_difference}"
        print(
            f"{r.name}: {r.daemon_trades} daemon trades, {r.replay_trades} replay trades, "
            f"equity {r.daemon_equity:.2f} vs {r.replay_equity:.2f}: {verdict}"
        )
    return 0 if all(r.identical for r in reports) else 1


def cmd_trades(args: argparse.Namespace) -> int:
    """The closed trades a daemon recorded, read-only (also while it runs, or from a copy)."""
    import json

    from barbus.daemon.core.errors import did_you_mean
    from barbus.daemon.core.tradelog import format_trades_table, trade_dict, write_trades
    from barbus.daemon.state import StateStore
    from barbus.replay.periods import parse_time

    since_ms = parse_time(args.since, "--since") if args.since is not None else None
    if since_ms is not None and not -(2**62) < since_ms < 2**62:
        raise ConfigError(f"--since {args.since[:50]!r} is out of range")
    store = StateStore(args.state, read_only=True)
    try:
        if args.strategy is not None:
            names = sorted(store.engines())
            if args.strategy not in names:
                known = ", ".join(names) or "none yet"
                raise ConfigError(
                    f"{args.state}: no strategy named {args.strategy!r} (strategies: {known})"
                    + did_you_mean(args.strategy, names)
                )
        trades = store.trades(args.strategy, since_ms=since_ms)
    finally:
        store.close()
    if args.format == "csv":
        write_trades(sys.stdout, trades)
    elif args.format == "json":
        print(json.dumps([trade_dict(t) for t in trades], indent=1))
    elif trades:
        print("\n".join(format_trades_table(trades)))
    else:
        print("no trades", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="barbus",
        description="Event-driven trading: the same strategies in replay and live paper trading.",
    )
    parser.add_argument("--version", action="version", version=f"barbus {__version__}")
    parser.add_argument(
        "--log-level", default=None, help="logging level (default INFO, or the daemon config's)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser(
        "replay",
        help="backtest one strategy, or a whole daemon config, on historical 1-minute bars",
        description="Backtest one strategy (--strategy) on historical 1-minute bars (CSV or "
        "CSV.gz), or every strategy of a daemon config (--config) with its shared accounts "
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
    replay.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        help="kline CSV/CSV.gz file (default: the bundled BTCUSDT 2025-05-20..08-18 sample); "
        "with --config one per symbol, repeatable, the symbol from the file name",
    )
    _add_run_options(replay)
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
    _add_cache_dir(replay)
    replay.set_defaults(func=cmd_replay)

    cache = commands.add_parser(
        "cache",
        help="the on-disk bar cache (ingest, ls, stats, clear)",
        description="Parse bar files once into memory-mappable columns; later loads map them.",
    )
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    ingest = cache_commands.add_parser("ingest", help="cache one or more data files")
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest.add_argument("--symbol", help="symbol for every file (default: from each file name)")
    ingest.add_argument("--force", action="store_true", help="rebuild even if up to date")
    for action, help_text in (
        ("ls", "list cached series"),
        ("stats", "memory hits, disk hits, builds, evictions, peak mapped (all processes)"),
        ("clear", "delete every cache entry and the counters"),
    ):
        cache_commands.add_parser(action, help=help_text)
    for sub in cache_commands.choices.values():
        _add_cache_dir(sub)
    cache.set_defaults(func=cmd_cache)

    batch = commands.add_parser(
        "batch",
        help="run a grid of backtests over worker processes",
        description="Expand a grid of (strategy, parameters, data, period) into jobs and run "
        "them over worker processes; results go to OUT/results.{csv,parquet}. The strategy is "
        "loaded once and each job records its code's fingerprint (a file strategy's text is "
        "shipped to the workers): rerunning after an edit runs the new code's jobs and sets "
        "the old rows aside.",
    )
    batch.add_argument(
        "spec",
        nargs="?",
        type=Path,
        help="batch spec file (TOML); its strategy and data paths are relative to its folder",
    )
    batch.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder (a writable folder, or one that can be created: checked before "
        "any job runs)",
    )
    batch.add_argument("--strategy", help=f"without a SPEC file: {STRATEGY_HELP}")
    batch.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        help="data file, repeatable (default: the bundled BTCUSDT 2025-05-20..08-18 sample)",
    )
    _add_run_options(batch)
    batch.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="a swept parameter, repeatable (e.g. --grid fast=5,10,20)",
    )
    batch.add_argument(
        "--period",
        action="append",
        default=[],
        metavar="START:END",
        help="a period, repeatable (instead of --start/--end); each side has the forms of "
        "--start or is empty, e.g. 2025-07-01T12:00:2025-07-02",
    )
    batch.add_argument(
        "--workers", type=_positive_int, help="worker processes, at least 1 (default: CPU count)"
    )
    batch.add_argument("--no-parallel", action="store_true", help="run every job in-process")
    batch.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="where jobs run: local worker processes (default) or a Ray cluster "
        "(pip install 'barbus[ray]'; --workers then caps the jobs in flight; a strategy file "
        "is shipped with the jobs, a module or plugin must be installed on every node)",
    )
    batch.add_argument(
        "--metrics-port",
        type=_port,
        metavar="P",
        help="serve Prometheus metrics of the running batch on 127.0.0.1:P",
    )
    batch.add_argument(
        "--ray-address",
        metavar="auto|local|HOST:PORT",
        help="Ray cluster to use with --backend ray: auto = a running cluster, local = start "
        "one here, HOST:PORT = that head node (default: $RAY_ADDRESS or the last cluster "
        "started on this machine, else a local one)",
    )
    batch.add_argument(
        "--sort",
        metavar="METRIC",
        help="metric to rank by, best first: highest first, lowest first for max_drawdown_pct "
        "and max_drawdown_days (default sharpe)",
    )
    batch.add_argument(
        "--ascending",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rank lowest first (--no-ascending: highest first) whatever the metric means",
    )
    batch.add_argument("--top", type=int, default=10, help="rows to print (10)")
    batch.add_argument(
        "--plots",
        type=int,
        default=5,
        help="plot the N best runs + heatmap + index.html (5; 0 = none)",
    )
    batch.add_argument(
        "--no-resume", action="store_true", help="ignore results already in OUT and run all jobs"
    )
    _add_cache_dir(batch)
    batch.set_defaults(func=cmd_batch)

    sim = commands.add_parser(
        "sim-exchange",
        help="serve cached bars over the Binance kline protocol, locally",
        description="A Binance-compatible exchange on localhost (REST /api/v3/klines and kline "
        "WebSocket streams) replaying historical bars, with switches to inject faults.",
    )
    sim.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        help="bar file, one per symbol, repeatable (default: the bundled BTCUSDT sample)",
    )
    sim.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    sim.add_argument("--port", type=_port, default=8765, help="port (8765; 0 = any free port)")
    sim.add_argument(
        "--speed", type=float, default=10.0, help="bars per second (10); 0 = real time"
    )
    sim.add_argument(
        "--history-bars",
        type=int,
        default=500,
        help="bars already closed when the clock starts, for warm-up (500)",
    )
    sim.add_argument(
        "--drop-every",
        type=int,
        default=0,
        metavar="K",
        help="close each connection after K messages",
    )
    sim.add_argument(
        "--malformed-every",
        type=int,
        default=0,
        metavar="M",
        help="insert a malformed message every M messages",
    )
    sim.add_argument(
        "--duplicate-probability",
        type=float,
        default=0.0,
        metavar="P",
        help="send a closed candle twice with probability P",
    )
    sim.add_argument(
        "--reorder-probability",
        type=float,
        default=0.0,
        metavar="P",
        help="send a closed candle after the next one with probability P",
    )
    sim.add_argument(
        "--pause-every",
        type=int,
        default=0,
        metavar="N",
        help="pause sending after every N-th message of the run (all connections together)",
    )
    sim.add_argument("--pause-seconds", type=float, default=0.0, help="length of each pause")
    sim.add_argument("--seed", type=int, default=1, help="seed of the fault dice (1)")
    sim.add_argument(
        "--skip-every",
        type=int,
        default=0,
        metavar="N",
        help="never send every N-th closed candle over WebSocket (a hole to backfill)",
    )
    sim.add_argument(
        "--inject",
        default="",
        metavar="KIND",
        help="hostile: send a fake closed candle before every N-th real one; KIND is future "
        "(10 years ahead), misaligned (+1234 ms), time_1e30 or price (--inject-price)",
    )
    sim.add_argument(
        "--inject-every", type=int, default=0, metavar="N", help="how often --inject fires"
    )
    sim.add_argument(
        "--inject-price",
        type=float,
        default=1e300,
        metavar="P",
        help="price of an --inject price candle (1e300)",
    )
    sim.add_argument(
        "--silent",
        action="store_true",
        help="hostile: WebSockets answer pings but never send data",
    )
    sim.add_argument(
        "--rest-fault",
        default="",
        metavar="KIND",
        help="hostile: damage backfill answers: duplicate, unsorted, past_end, oversize, "
        "endless, empty, stale (these two: hole requests only), future, not_list",
    )
    sim.add_argument(
        "--rest-fault-every",
        type=int,
        default=1,
        metavar="N",
        help="damage every N-th backfill answer (1)",
    )
    sim.add_argument(
        "--rest-fault-times",
        type=int,
        default=0,
        metavar="N",
        help="damage at most N answers (0 = no limit)",
    )
    sim.add_argument(
        "--oversize-rows",
        type=int,
        default=400_000,
        metavar="N",
        help="rows of an --rest-fault oversize answer (400000)",
    )
    sim.add_argument("--exit-at-end", action="store_true", help="stop when the data ends")
    sim.add_argument(
        "--start-on-connect",
        action="store_true",
        help="hold the clock until the first WebSocket client connects (repeatable warm-ups)",
    )
    _add_cache_dir(sim)
    sim.set_defaults(func=cmd_sim_exchange)

    run = commands.add_parser(
        "run",
        help="run the paper-trading daemon",
        description="Paper-trade the configured strategies on a live (or simulated) feed. A "
        "[[strategy]] strategy = takes any --strategy spec (file paths from the config's folder); "
        "a restart refuses a strategy whose spec, code (fingerprint) or parameters changed.",
    )
    run.add_argument("--config", type=Path, required=True, help="daemon config file (TOML)")
    run.add_argument(
        "--new-state",
        action="store_true",
        help="accept the state file as it is now although its marker (<state>.id) says it was "
        "emptied or replaced: a missing or empty file starts a new state; nothing is deleted",
    )
    run.set_defaults(func=cmd_run)

    parity = commands.add_parser(
        "parity",
        help="replay what the daemon recorded and compare trade logs",
        description="Exit 0 when replaying the recorded bars gives the daemon's trades exactly. "
        "Each strategy runs from its recorded spec; a strategy whose code changed since (its "
        "fingerprint differs from the recorded one) is refused with one line, exit 2.",
    )
    parity.add_argument("--state", type=Path, required=True, help="daemon state file (SQLite)")
    parity.add_argument(
        "--export",
        type=Path,
        metavar="DIR",
        help="also write the recorded bars as CSV (one file per symbol) to DIR and print the "
        "barbus replay commands that reproduce each strategy's trades",
    )
    parity.set_defaults(func=cmd_parity)

    trades = commands.add_parser(
        "trades",
        help="list the trades a daemon recorded in its state file",
        description="List the closed trades recorded in a daemon state file, oldest exit first. "
        "Opens the file read-only without the daemon's lock: works while the daemon runs, and "
        "on a read-only copy.",
    )
    trades.add_argument("--state", type=Path, required=True, help="daemon state file (SQLite)")
    trades.add_argument("--strategy", metavar="NAME", help="only this strategy ([[strategy]] name)")
    trades.add_argument(
        "--since",
        metavar="TIME",
        help="only trades closed at or after TIME (same forms as replay --start: ISO "
        "date/time UTC, epoch seconds below 1e11 or milliseconds)",
    )
    trades.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table: aligned columns, ISO UTC times, rounded numbers (default); csv: the "
        "columns of replay's trades.csv, exact; json: a list of objects with those keys",
    )
    trades.set_defaults(func=cmd_trades)

    listing = commands.add_parser(
        "strategies",
        help="list strategies, where each comes from, and their parameters",
        description="List the built-in strategies and installed plugins (entry-point group "
        "barbus.strategies), or describe the strategies the SPECs name.",
    )
    listing.add_argument("specs", nargs="*", metavar="SPEC", help=STRATEGY_HELP)
    listing.set_defaults(func=cmd_strategies)

    new_strategy = commands.add_parser(
        "new-strategy",
        help="write a skeleton strategy and its test, both passing as written",
        description="Write DIR/NAME.py (class NAME in CamelCase: one parameter, one indicator, "
        "on_bar) and DIR/test_NAME.py (check_strategy plus one behaviour). Existing files are "
        "never overwritten (exit 2).",
    )
    new_strategy.add_argument("name", metavar="NAME", help="a Python identifier, e.g. my_breakout")
    new_strategy.add_argument(
        "--dir", type=Path, default=Path(), help="folder to write into (default: the current one)"
    )
    new_strategy.set_defaults(func=cmd_new_strategy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``barbus`` console script; returns the process exit code.

    Output piped into a reader that stops early (``barbus strategies | head -1``) ends quietly
    with exit 0: stdout is flushed here, where a closed pipe can still be caught, and then
    pointed at /dev/null so the interpreter's own final flush has nowhere to fail.
    """
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.log_level_given = args.log_level is not None
    args.log_level = args.log_level or "INFO"
    try:
        configure_logging(args.log_level)
    except ValueError:
        parser.error(f"unknown log level {args.log_level!r}")
    try:
        code: int = args.func(args)
    except BarbusError as exc:
        print(f"barbus: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("barbus: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
