"""The notebook and script entry points: :func:`backtest` one strategy, :func:`sweep` a grid.

Both are thin shells over what the command line runs (``barbus replay`` is
:func:`~replay.runner.run_replay`, ``barbus batch`` is :func:`~replay.batch.run_batch` over
:func:`~replay.batch.spec.plan_jobs`), so a result here is identical to the command's on the same
input; they add Python inputs (classes, instances, DataFrames, datetimes) and pandas outputs.
Execution defaults are :class:`~daemon.core.broker.ExecutionConfig`'s, as for the command line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from barbus.daemon.core.broker import ExecutionConfig, FillTiming
from barbus.daemon.core.errors import BarbusError, ConfigError, StrategyError
from barbus.daemon.core.params import ParamValue
from barbus.daemon.core.series import BarSeries
from barbus.daemon.core.strategy import AnyStrategy, Strategy
from barbus.daemon.core.tradelog import TRADE_COLUMNS, trade_dict
from barbus.replay.bars_out import write_bars
from barbus.replay.folder_series import resolve_data
from barbus.replay.frames import series_from_frame
from barbus.replay.outputs import format_report, write_outputs
from barbus.replay.periods import parse_period, parse_time
from barbus.replay.runner import ReplayConfig, ReplayResult, close_marks, run_replay
from barbus.replay.stats import PerformanceStats
from barbus.strategies import StrategyLike, StrategySource, strategy_source

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BacktestResult", "backtest", "sweep"]

log = logging.getLogger("barbus.api")

_DEFAULT = ExecutionConfig()

StrategyArg = StrategyLike | AnyStrategy
"""A spec string, a resolved source, a strategy class, or an instance (its parameters count)."""
DataArg = pd.DataFrame | BarSeries | str | os.PathLike[str] | None
"""A DataFrame, a loaded series, a data file's path, or None (the bundled BTCUSDT sample)."""
TimeArg = str | int | dt.date | dt.datetime | pd.Timestamp | np.datetime64 | None
"""An ISO text, epoch seconds/ms, a date, a datetime or Timestamp (naive = UTC)."""


class BacktestResult:
    """One backtest: trades, equity, statistics, the JSON summary, the report and a chart.

    ``replay`` is the underlying :class:`~replay.runner.ReplayResult`.
    """

    def __init__(self, replay: ReplayResult) -> None:
        self.replay = replay

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row per round trip, the ``trades.csv`` columns; times as UTC Timestamps."""
        frame = pd.DataFrame(
            [trade_dict(t) for t in self.replay.trades], columns=list(TRADE_COLUMNS)
        )
        for side in ("entry", "exit"):
            ms = frame[f"{side}_time_ms"].to_numpy(dtype=np.int64)
            frame[f"{side}_time"] = pd.to_datetime(ms, unit="ms", utc=True)
        return frame

    @cached_property
    def equity(self) -> pd.Series:
        """Equity at the start, then at each bar's close (marked to market), by UTC time."""
        series = self.replay.series
        marks = close_marks(series)
        index = pd.DatetimeIndex(pd.to_datetime(marks, unit="ms", utc=True), name="time")
        return pd.Series(np.asarray(self.replay.equity, dtype=np.float64), index, name="equity")

    @property
    def stats(self) -> PerformanceStats:
        return self.replay.stats

    @cached_property
    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` object (inputs, data facts, every figure)."""
        return self.replay.summary()

    @cached_property
    def report(self) -> str:
        """The text report ``barbus replay`` prints."""
        return format_report(self.replay)

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """The run's chart (price with trades, equity, drawdown); also a PNG at ``path``."""
        from barbus.replay.reports.plotting import save_figure
        from barbus.replay.reports.run_chart import run_figure

        figure = run_figure(self.replay)
        if path is not None:
            save_figure(figure, Path(path))
        return figure

    def save(self, out: str | os.PathLike[str], *, plot: bool = True) -> dict[str, Path]:
        """Write ``trades.csv``, ``summary.json`` (and ``replay.png``) as ``replay --out`` does."""
        written = write_outputs(self.replay, Path(out))
        if plot:
            from barbus.replay.reports.run_chart import plot_run

            written["plot"] = plot_run(self.replay, Path(out) / "replay.png")
        return written

    def __repr__(self) -> str:
        return self.report

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.report)}</pre>"


def backtest(
    strategy: StrategyArg,
    data: DataArg = None,
    *,
    symbol: str | None = None,
    start: TimeArg = None,
    end: TimeArg = None,
    params: Mapping[str, ParamValue] | None = None,
    fee_bps: float = _DEFAULT.fee_bps,
    slippage_bps: float = _DEFAULT.slippage_bps,
    fill_at: FillTiming = _DEFAULT.fill_at,
    starting_cash: float = _DEFAULT.starting_cash,
    maker_fee_bps: float | None = None,
    taker_fee_bps: float | None = None,
    allow_short: bool = False,
    trade_from: TimeArg = None,
    keep_open: bool = False,
    name: str | None = None,
    time_unit: str | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` on ``data`` as ``barbus replay`` does, with the same result.

    ``params`` override the strategy's (``stop_loss_pct``, ``take_profit_pct`` included);
    ``maker_fee_bps`` / ``taker_fee_bps`` (default ``fee_bps``) price limit / other fills;
    ``allow_short`` lets the account go short (else a short order is a StrategyError);
    ``start`` is inclusive, ``end`` exclusive; ``trade_from`` warms up before it without
    trading; ``keep_open`` leaves the last position open; ``time_unit`` declares the epoch
    unit of a DataFrame's integer times (default: by magnitude).
    """
    source, overrides = _strategy(strategy, params)
    start_ms, end_ms = parse_period(_time(start), _time(end), "start/end", ("start", "end"))
    series, path = _data(data, symbol, time_unit)
    warm_until = _time(trade_from)
    config = ReplayConfig(
        strategy=source,
        params=overrides,
        data=path,
        symbol=symbol,
        start_ms=start_ms,
        end_ms=end_ms,
        execution=_execution(
            fee_bps, slippage_bps, fill_at, starting_cash, maker_fee_bps, taker_fee_bps, allow_short
        ),
        trade_from_ms=parse_time(warm_until, "trade_from") if warm_until is not None else 0,
        close_at_end=not keep_open,
        name=name,
    )
    return BacktestResult(run_replay(config, series=series))


def sweep(
    strategy: StrategyArg,
    data: DataArg | Sequence[str | os.PathLike[str]] = None,
    grid: Mapping[str, Sequence[ParamValue]] | None = None,
    *,
    params: Mapping[str, ParamValue] | None = None,
    periods: Sequence[tuple[TimeArg, TimeArg]] | None = None,
    start: TimeArg = None,
    end: TimeArg = None,
    symbol: str | None = None,
    fee_bps: float = _DEFAULT.fee_bps,
    slippage_bps: float = _DEFAULT.slippage_bps,
    fill_at: FillTiming = _DEFAULT.fill_at,
    starting_cash: float = _DEFAULT.starting_cash,
    maker_fee_bps: float | None = None,
    taker_fee_bps: float | None = None,
    allow_short: bool = False,
    workers: int | None = None,
    parallel: bool = True,
    out: str | os.PathLike[str] | None = None,
    plots: int | None = None,
    sort: str = "sharpe",
    ascending: bool | None = None,
    resume: bool = True,
    backend: str = "local",
    ray_address: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    time_unit: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Run the ``grid`` (``{"fast": [5, 10], "slow": [30, 50]}``) as ``barbus batch`` does.

    Returns the ``results.csv`` table (best first by ``sort``). Jobs run on the batch's worker
    pool (``workers`` processes, default the CPU count; ``parallel=False`` in this process;
    ``backend="ray"`` on Ray). ``out`` keeps the batch folder (results, journal for resuming,
    ``index.html`` with the ``plots`` best runs, default 5); without it a temporary folder is
    used and removed. A DataFrame or series is written once into the folder for the workers.
    Every job failing is an error (the first one's message); some failing shows in ``status``.
    ``progress`` shows a progress bar (jobs, bars/s) on stderr. The execution options are
    :func:`backtest`'s.
    """
    from barbus.replay.batch import BatchPlan, plan_jobs, run_batch
    from barbus.replay.cache import BarCache
    from barbus.replay.progress import BatchProgress
    from barbus.replay.reports.batch_report import write_batch_report

    source, fixed = _strategy(strategy, params, exclude=set(grid or {}))
    spec = _job_spec(source, in_process=not parallel and backend == "local")
    if periods and (start is not None or end is not None):
        raise ConfigError("give either periods or start/end, not both")
    spans = [
        parse_period(_time(a), _time(b), f"periods #{number}")
        for number, (a, b) in enumerate(periods or [], start=1)
    ] or [parse_period(_time(start), _time(end), "start/end", ("start", "end"))]
    execution = _execution(
        fee_bps, slippage_bps, fill_at, starting_cash, maker_fee_bps, taker_fee_bps, allow_short
    )
    with _folder(out) as folder:
        paths, symbol, cache_root = _data_files(data, symbol, time_unit, folder)
        jobs, invalid = plan_jobs(
            spec,
            paths,
            grid={name: list(values) for name, values in (grid or {}).items()},
            params=fixed,
            periods=spans,
            symbol=symbol,
            execution=execution,
        )
        for reason in invalid:
            log.info("skipped invalid combination: %s", reason)
        cache = BarCache(
            cache_root if cache_root is not None else Path(cache_dir) if cache_dir else None
        )
        bar = BatchProgress(len(jobs), interactive=True) if progress else None
        try:
            outcome = run_batch(
                jobs,
                folder,
                workers=workers,
                parallel=parallel,
                cache=cache,
                sort=sort,
                ascending=ascending,
                resume=resume,
                skipped_invalid=invalid,
                backend=backend,
                ray_address=ray_address,
                progress=bar,
            )
        finally:
            if bar is not None:
                bar.close()
        if outcome.rows and outcome.failed == len(outcome.rows):
            error = str(outcome.rows[0]["error"])
            if cache_root is not None:  # name the frame, not the file written for the workers
                error = error.replace(str(paths[0]), "DataFrame")
            raise BarbusError(f"all {len(outcome.rows)} jobs failed; the first: {error}")
        shown = (5 if out is not None else 0) if plots is None else plots
        if shown:
            plan = BatchPlan(jobs, invalid, workers, sort, ascending)
            write_batch_report(outcome, plan, folder, cache, plots=shown)
        return pd.read_parquet(outcome.paths["parquet"])


# -- inputs -------------------------------------------------------------------------------------


def _strategy(
    strategy: StrategyArg,
    params: Mapping[str, ParamValue] | None,
    exclude: set[str] | None = None,
) -> tuple[StrategySource, dict[str, ParamValue]]:
    """The strategy's source and its parameter overrides: an instance's own non-default
    parameters (except ``exclude``, the swept ones), then ``params``."""
    overrides: dict[str, ParamValue] = {}
    if isinstance(strategy, Strategy):
        cls = type(strategy)
        try:
            defaults = cls.params_type().as_dict()
        except TypeError:  # a parameter without a default: every value counts
            defaults = {}
        overrides = {
            name: value
            for name, value in strategy.params.as_dict().items()
            if value != defaults.get(name) and name not in (exclude or set())
        }
        source = strategy_source(cls)
    elif isinstance(strategy, str | StrategySource | type):
        source = strategy_source(strategy)
    else:
        raise StrategyError(
            f"strategy must be a spec string, a strategy class or instance, got "
            f"{type(strategy).__name__}"
        )
    overrides.update(params or {})
    return source, overrides


def _job_spec(source: StrategySource, *, in_process: bool) -> str:
    """The spec batch jobs name the strategy by, refused when worker processes cannot load it."""
    cls = source.cls
    where = f"strategy class {cls.__qualname__}"
    if (
        source.source is not None
        or source.origin == "built-in"
        or source.origin.startswith("plugin")
    ):
        return source.spec
    if "." in cls.__qualname__:
        raise StrategyError(
            f"{where} is defined inside a function or class; batch jobs find a strategy by "
            f"module and name: define it at the top level of a module or file"
        )
    if cls.__module__ == "__main__" and not in_process:
        raise StrategyError(
            f"{where} is defined in __main__ (this script or notebook), which batch worker "
            f"processes cannot import: put it in a file and pass the class imported from there "
            f"(or the spec 'my_file.py:{cls.__name__}'), or run the jobs in this process with "
            f"parallel=False"
        )
    return source.spec


def _time(value: TimeArg) -> str | int | dt.date | None:
    """A time argument in a form :func:`~replay.periods.parse_time` reads."""
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ConfigError("a time is NaT")
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime(warn=False)
    return value


def _execution(
    fee_bps: float,
    slippage_bps: float,
    fill_at: FillTiming,
    starting_cash: float,
    maker_fee_bps: float | None,
    taker_fee_bps: float | None,
    allow_short: bool,
) -> ExecutionConfig:
    if not isinstance(allow_short, bool):  # checked first, in Python's words
        raise ConfigError(f"allow_short must be True or False, got {allow_short!r}")
    settings = {
        "fee_bps": fee_bps,
        "slippage_bps": slippage_bps,
        "fill_at": fill_at,
        "starting_cash": starting_cash,
        "maker_fee_bps": maker_fee_bps,
        "taker_fee_bps": taker_fee_bps,
        "allow_short": allow_short,
    }
    return ExecutionConfig.from_mapping(settings, cash_key="starting_cash")


def _data(
    data: DataArg, symbol: str | None, time_unit: str | None
) -> tuple[BarSeries | None, Path | None]:
    """(a loaded series, or None and the file for the runner to load: None = bundled)."""
    if isinstance(data, pd.DataFrame):
        return series_from_frame(data, symbol, time_unit=time_unit), None
    if time_unit is not None:
        raise ConfigError("time_unit is for DataFrame data; files are read by magnitude")
    if isinstance(data, BarSeries):
        if symbol is not None and symbol != data.symbol:
            data = dataclasses.replace(data, symbol=symbol)
        return data, None
    if data is None or isinstance(data, str | os.PathLike):
        return None, resolve_data(data) if data is not None else None
    raise ConfigError(
        f"data must be a DataFrame, a BarSeries, a file path or None, got {type(data).__name__}"
    )


def _data_files(
    data: DataArg | Sequence[str | os.PathLike[str]],
    symbol: str | None,
    time_unit: str | None,
    folder: Path,
) -> tuple[list[Path], str | None, Path | None]:
    """Data files for the jobs, their symbol, and the cache folder (None: the default cache).

    A DataFrame or series becomes one Parquet file in ``folder/data`` named by its content (so
    a rerun with the same ``out`` resumes), cached in ``folder/cache``.
    """
    if isinstance(data, Sequence) and not isinstance(data, str | pd.DataFrame):
        return [resolve_data(item) for item in data], symbol, None
    series, path = _data(data, symbol, time_unit)
    if series is None:
        from barbus.replay.files import bundled_data_path

        return [path if path is not None else bundled_data_path()], symbol, None
    return [_write_series(series, folder / "data")], series.symbol, folder / "cache"


def _write_series(series: BarSeries, folder: Path) -> Path:
    """``series`` as a Parquet file of the loader's columns, named by symbol and content."""
    digest = hashlib.sha256(series.symbol.encode())
    for column in series.columns():
        digest.update(np.ascontiguousarray(column).tobytes())
    safe = re.sub(r"[^A-Za-z0-9]", "", series.symbol) or "DATA"
    path = folder / f"{safe}_{series.interval}_frame-{digest.hexdigest()[:12]}.parquet"
    return path if path.is_file() else write_bars(path, series)


@contextmanager
def _folder(out: str | os.PathLike[str] | None) -> Iterator[Path]:
    """``out``, or a temporary folder removed afterwards."""
    if out is not None:
        yield Path(out)
        return
    with tempfile.TemporaryDirectory(prefix="barbus-sweep-") as temporary:
        yield Path(temporary)
