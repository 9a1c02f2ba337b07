"""Batch specifications: a TOML file, or command-line options, turned into jobs.

:func:`plan_from_request` is the one reading of a ``barbus batch`` request (a spec file or the
flags, never both), with plain values, so the CLI only parses arguments.

A spec file (paths, a strategy file's included, are relative to the file's folder)::

    workers = 2                 # optional; default: CPU count
    sort = "sharpe"             # metric to rank by, best first (ascending = true/false overrides)
    fee_bps = 10                # execution settings shared by every run (optional): also
                                # maker_fee_bps, taker_fee_bps (default fee_bps), slippage_bps,
                                # fill_at, cash, allow_short = true (shorts allowed)

    [[run]]
    strategy = "sma_cross"     # or "my_ema.py:EmaCross", "package.module:Class", a plugin
    data = ["data/BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"]   # or a symbol of the data folder
    periods = [["2025-05-20", "2025-06-20"], ["2025-06-20", "2025-07-20"]]   # optional
    params = { stop_loss_pct = 3.0 }                                         # fixed
    grid = { fast = [5, 10, 20], slow = [30, 50, 100] }                      # swept

Unknown keys are errors (with a "did you mean"), so a typo never silently runs a default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.configfile import check_keys, read_toml
from barbus.daemon.core.errors import ConfigError, StrategyError
from barbus.daemon.core.params import ParamValue, params_dict
from barbus.replay.batch.job import METRICS
from barbus.replay.batch.jobs import Job, expand_jobs
from barbus.replay.files import bundled_data_path, regular_file_problem
from barbus.replay.folder_series import resolve_data
from barbus.replay.periods import parse_period, split_period

__all__ = [
    "BatchPlan",
    "load_spec",
    "parse_grid",
    "plan_from_request",
    "plan_jobs",
]

_TOP_KEYS = {
    "workers",
    "sort",
    "ascending",
    "fee_bps",
    "maker_fee_bps",
    "taker_fee_bps",
    "slippage_bps",
    "fill_at",
    "cash",
    "allow_short",
    "run",
}
_RUN_KEYS = {"strategy", "data", "symbol", "grid", "params", "periods", "start", "end"}


@dataclass(frozen=True)
class BatchPlan:
    """Jobs to run plus the settings that came with them."""

    jobs: list[Job]
    invalid: list[str]
    workers: int | None = None
    sort: str = "sharpe"
    ascending: bool | None = None  # None: best first by the metric's meaning

    @property
    def grid_names(self) -> list[str]:
        """Parameters that take more than one value across the jobs (heatmap axes)."""
        values: dict[str, set[str]] = {}
        for job in self.jobs:
            for name, value in job.params:
                values.setdefault(name, set()).add(repr(value))
        return sorted(name for name, seen in values.items() if len(seen) > 1)


def parse_grid(texts: Sequence[str]) -> dict[str, list[str]]:
    """``["fast=5,10", "slow=30,50"]`` -> ``{"fast": ["5", "10"], "slow": ["30", "50"]}``."""
    grid: dict[str, list[str]] = {}
    for text in texts:
        name, sep, values = text.partition("=")
        name = name.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not items:
            raise ConfigError(f"--grid expects name=v1,v2,...; got {text!r}")
        if name in grid:
            raise ConfigError(f"--grid {name} given twice")
        grid[name] = items
    return grid


def plan_jobs(
    strategy: str,
    data: Sequence[Path | str],
    *,
    grid: Mapping[str, Sequence[ParamValue]],
    params: Mapping[str, ParamValue],
    periods: Sequence[tuple[int | None, int | None]],
    symbol: str | None,
    execution: ExecutionConfig,
    base_dir: Path | None = None,
    data_dir: Path | None = None,
) -> tuple[list[Job], list[str]]:
    """Jobs for one strategy spec (a relative file path from ``base_dir``, else the current
    folder); a thin, validating wrapper over :func:`expand_jobs`. A data value is a file
    (relative to ``base_dir`` too) or a symbol in the data folder ``data_dir``."""
    if not data:
        raise ConfigError(f"run of {strategy}: no data files given")
    paths = [resolve_data(value, data_dir, base_dir) for value in data]
    for path in paths:
        if path.is_dir():
            continue  # a series folder of the data folder: its month files are checked on load
        special = regular_file_problem(path)  # a FIFO exists, but is no data file
        if special is not None:
            raise ConfigError(special)
        if not path.is_file():
            raise ConfigError(f"data file {path} does not exist")
    return expand_jobs(
        strategy,
        paths,
        grid=grid,
        params=params,
        periods=periods or [(None, None)],
        symbol=symbol,
        execution=execution,
        base_dir=base_dir,
    )


def _spec_periods(run: Mapping[str, Any], where: str) -> list[tuple[int | None, int | None]]:
    """A run's ``periods`` (pairs of times) plus its ``start``/``end``, each checked."""
    listed = run.get("periods", [])
    if not isinstance(listed, list):
        raise ConfigError(f"{where}: periods must be a list of [start, end] pairs")
    periods = []
    for number, pair in enumerate(listed, start=1):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(
                f"{where}: periods #{number} must be a [start, end] pair, got {pair!r}"
            )
        periods.append(parse_period(pair[0], pair[1], what=f"{where}: periods #{number}"))
    if "start" in run or "end" in run:
        periods.append(parse_period(run.get("start"), run.get("end"), what=where))
    return periods


def load_spec(path: Path, data_dir: Path | None = None) -> BatchPlan:
    """Read a batch spec file (TOML) into a :class:`BatchPlan`; a data value that names no
    file but reads as a symbol is that symbol's series in the data folder ``data_dir``."""
    spec = read_toml(path, "batch spec")
    check_keys(spec, _TOP_KEYS, str(path))
    runs = spec.get("run")
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{path}: needs at least one [[run]] table")
    execution = ExecutionConfig.from_mapping(spec, where=f"{path}: ", cash_key="cash")
    base = path.parent
    jobs: list[Job] = []
    invalid: list[str] = []
    for number, run in enumerate(runs, start=1):
        where = f"{path}: [[run]] #{number}"
        if not isinstance(run, dict):
            raise ConfigError(f"{where}: must be a table")
        check_keys(run, _RUN_KEYS, where)
        if "strategy" not in run:
            raise ConfigError(f"{where}: missing 'strategy'")
        if not isinstance(run["strategy"], str):
            raise ConfigError(f"{where}: strategy must be a string, got {run['strategy']!r}")
        data = run.get("data", [])
        data_list = [data] if isinstance(data, str) else list(data)
        periods = _spec_periods(run, where)
        grid = run.get("grid", {})
        if not all(isinstance(v, list) and v for v in grid.values()):
            raise ConfigError(f"{where}: every grid entry must be a non-empty list")
        try:
            run_jobs, run_invalid = plan_jobs(
                run["strategy"],
                data_list,
                grid=grid,
                params=run.get("params", {}),
                periods=periods,
                symbol=run.get("symbol"),
                execution=execution,
                base_dir=base,
                data_dir=data_dir,
            )
        except StrategyError as exc:
            raise StrategyError(f"{where}: {exc}") from None
        jobs += run_jobs
        invalid += run_invalid
    sort = str(spec.get("sort", "sharpe"))
    if sort not in METRICS:
        raise ConfigError(
            f"{path}: sort {sort!r} is not a metric; choose from {', '.join(METRICS)}"
        )
    workers = spec.get("workers")
    if workers is not None and (
        not isinstance(workers, int) or isinstance(workers, bool) or workers < 1
    ):
        raise ConfigError(f"{path}: workers must be a positive integer, got {workers!r}")
    ascending = spec.get("ascending")
    if ascending is not None and not isinstance(ascending, bool):
        raise ConfigError(f"{path}: ascending must be true or false, got {ascending!r}")
    return BatchPlan(jobs, invalid, workers, sort, ascending)


def plan_from_request(
    spec_path: Path | None,
    *,
    strategy: str | None = None,
    data: Sequence[Path | str] = (),
    grid: Sequence[str] = (),
    params: Sequence[tuple[str, str]] = (),
    periods: Sequence[str] = (),
    start: str | None = None,
    end: str | None = None,
    symbol: str | None = None,
    execution: Callable[[], ExecutionConfig] = ExecutionConfig,
    execution_flags_given: Sequence[str] = (),
    data_dir: Path | None = None,
) -> BatchPlan:
    """The plan of a ``barbus batch`` request: the spec file at ``spec_path``, or the flags.

    The values are the flags' as typed: ``grid`` ``name=v1,v2`` texts, ``params`` (name, value)
    pairs, ``periods`` ``START:END`` texts (else one period from ``start``/``end``), ``data``
    (default: the bundled file). ``execution`` builds the flags' execution settings; it is called
    only without a spec, after the other flags are read, so errors come in the order they always
    did. ``execution_flags_given`` names the execution flags given (``--fee-bps``): with a spec,
    they are refused (the spec sets them), as are the other flags.
    """
    if spec_path is not None:
        if strategy or data or grid or params or periods:
            raise ConfigError(
                "give either a SPEC file or --strategy/--data/--grid/--param/--period, not both"
            )
        if execution_flags_given:
            raise ConfigError(
                f"{execution_flags_given[0]} does not go with a SPEC file: set it in the spec "
                "(its top-level execution keys)"
            )
        return load_spec(spec_path, data_dir)
    if not strategy:
        raise ConfigError("without a SPEC file, --strategy is required")
    spans = (
        [parse_period(*split_period(p), what="--period") for p in periods]
        if periods
        else [parse_period(start, end, "--start/--end", ("--start", "--end"))]
    )
    jobs, invalid = plan_jobs(
        strategy,
        list(data) or [bundled_data_path()],
        grid=parse_grid(grid),
        params=params_dict(params),
        periods=spans,
        symbol=symbol,
        execution=execution(),
        data_dir=data_dir,
    )
    return BatchPlan(jobs, invalid)
