"""``barbus batch``: a grid of backtests over worker processes (or Ray), from a spec or flags.

Its own module because the batch has options no other command has (the grid, periods,
workers, backends, ranking, plots, a metrics port) and its own output: the top rows, the job
counts and speed, the HTML report and the results tables.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from barbus.daemon.cli.options import (
    STRATEGY_HELP,
    Commands,
    add_cache_dir,
    add_data,
    add_run_options,
    execution_of,
    given_execution_flags,
    port,
    positive_int,
)
from barbus.daemon.core.errors import ConfigError

if TYPE_CHECKING:
    from barbus.replay.batch import BatchOutcome
    from barbus.replay.batch.metrics import BatchMetrics
    from barbus.replay.batch.spec import BatchPlan
    from barbus.replay.cache import BarCache

__all__ = ["add_batch"]

log = logging.getLogger("barbus.cli")

# --data: the files the grid runs on, each one more value of its data axis.
DATA_OF_THE_JOBS = "data file, repeatable (default: the bundled BTCUSDT 2025-05-20..08-18 sample)"


def add_batch(commands: Commands) -> None:
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
    add_data(batch, DATA_OF_THE_JOBS)
    add_run_options(batch)
    _add_grid_options(batch)
    _add_run_where_options(batch)
    _add_result_options(batch)
    add_cache_dir(batch)
    batch.set_defaults(func=cmd_batch)


def _add_grid_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="a swept parameter, repeatable (e.g. --grid fast=5,10,20)",
    )
    parser.add_argument(
        "--period",
        action="append",
        default=[],
        metavar="START:END",
        help="a period, repeatable (instead of --start/--end); each side has the forms of "
        "--start or is empty, e.g. 2025-07-01T12:00:2025-07-02",
    )


def _add_run_where_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=positive_int, help="worker processes, at least 1 (default: CPU count)"
    )
    parser.add_argument("--no-parallel", action="store_true", help="run every job in-process")
    parser.add_argument(
        "--no-shared-pass",
        action="store_true",
        help="replay each job in a pass of its own (default: jobs of the same data and period "
        "run as engines of one pass over the bars, up to 32 per pass; identical results)",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="where jobs run: local worker processes (default) or a Ray cluster "
        "(pip install 'barbus[ray]'; --workers then caps the jobs in flight; a strategy file "
        "is shipped with the jobs, a module or plugin must be installed on every node)",
    )
    parser.add_argument(
        "--metrics-port",
        type=port,
        metavar="P",
        help="serve Prometheus metrics of the running batch on 127.0.0.1:P",
    )
    parser.add_argument(
        "--ray-address",
        metavar="auto|local|HOST:PORT",
        help="Ray cluster to use with --backend ray: auto = a running cluster, local = start "
        "one here, HOST:PORT = that head node (default: $RAY_ADDRESS or the last cluster "
        "started on this machine, else a local one)",
    )


def _add_result_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sort",
        metavar="METRIC",
        help="metric to rank by, best first: highest first, lowest first for max_drawdown_pct "
        "and max_drawdown_days (default sharpe)",
    )
    parser.add_argument(
        "--ascending",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rank lowest first (--no-ascending: highest first) whatever the metric means",
    )
    parser.add_argument("--top", type=int, default=10, help="rows to print (10)")
    parser.add_argument(
        "--plots",
        type=int,
        default=5,
        help="plot the N best runs + heatmap + index.html (5; 0 = none)",
    )
    parser.add_argument(
        "--no-resume", action="store_true", help="ignore results already in OUT and run all jobs"
    )


def cmd_batch(args: argparse.Namespace) -> int:
    from barbus.replay.cache import BarCache
    from barbus.replay.outputs import check_out_dir

    check_out_dir(args.out)  # before the spec, the data or any job: a bad folder fails at once
    plan = _plan(args)
    plan = replace(
        plan,
        sort=args.sort or plan.sort,
        ascending=plan.ascending if args.ascending is None else args.ascending,
    )
    for reason in plan.invalid:
        log.info("skipped invalid combination: %s", reason)
    cache = BarCache(args.cache_dir)
    outcome = _run(args, plan, cache, _serve_metrics(args.metrics_port))
    return _report(args, plan, outcome, cache)


def _run(
    args: argparse.Namespace, plan: BatchPlan, cache: BarCache, metrics: BatchMetrics | None
) -> BatchOutcome:
    """The plan's jobs where the flags say, with a progress bar on the terminal."""
    from barbus.replay.batch import run_batch
    from barbus.replay.progress import BatchProgress

    progress = BatchProgress(len(plan.jobs))
    try:
        return run_batch(
            plan.jobs,
            args.out,
            workers=args.workers or plan.workers,
            parallel=not args.no_parallel,
            cache=cache,
            sort=plan.sort,
            ascending=plan.ascending,
            resume=not args.no_resume,
            skipped_invalid=plan.invalid,
            progress=progress,
            backend=args.backend,
            ray_address=args.ray_address,
            metrics=metrics,
            shared_pass=not args.no_shared_pass,
        )
    finally:
        progress.close()


def _plan(args: argparse.Namespace) -> BatchPlan:
    """The jobs: from the SPEC file, or from the flags (never both)."""
    from barbus.replay.batch.spec import plan_from_request

    return plan_from_request(
        args.spec,
        strategy=args.strategy,
        data=args.data or (),
        data_dir=args.data_dir,
        grid=args.grid or (),
        params=args.param or (),
        periods=args.period or (),
        start=args.start,
        end=args.end,
        symbol=args.symbol,
        execution=lambda: execution_of(args),
        execution_flags_given=given_execution_flags(args),
    )


def _serve_metrics(metrics_port: int | None) -> BatchMetrics | None:
    """``--metrics-port``: the batch's Prometheus metrics, served before any job runs."""
    if metrics_port is None:
        return None
    from barbus.daemon.listen import bind_problem
    from barbus.replay.batch.metrics import BatchMetrics

    metrics = BatchMetrics.create()
    try:
        metrics.serve(metrics_port)
    except OSError as exc:
        raise ConfigError(
            f"--metrics-port {metrics_port} cannot listen on 127.0.0.1:"
            f"{metrics_port}: {bind_problem('127.0.0.1', metrics_port, exc)}"
        ) from None
    return metrics


def _report(
    args: argparse.Namespace, plan: BatchPlan, outcome: BatchOutcome, cache: BarCache
) -> int:
    """The top rows, the counts and speed, then the HTML report and the tables' paths."""
    from barbus.replay.batch import format_top
    from barbus.replay.reports.batch_report import write_batch_report

    print(format_top(outcome.rows, plan.sort, args.top))
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
        page = write_batch_report(outcome, plan, args.out, cache, plots=args.plots)
        print(f"report        {page}")
    print(f"results       {outcome.paths['csv']} and {outcome.paths['parquet']}")
    return 0
