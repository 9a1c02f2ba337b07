"""What a person sees of a batch: a progress bar while it runs, plots and a page when it is done.

Progress uses tqdm on a terminal and plain log lines otherwise (journald, CI logs). The plots
re-run the best few jobs in-process (a few seconds) rather than shipping equity curves back
from every worker.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from barbus.replay.batch import BatchOutcome, BatchPlan, Job
from barbus.replay.cache import BarCache
from barbus.replay.reports import plot_heatmap, plot_run, write_batch_html
from barbus.replay.runner import run_replay
from barbus.replay.stats import lower_is_better

__all__ = ["BatchProgress", "write_batch_report"]

log = logging.getLogger("barbus.batch")


class BatchProgress:
    """``progress`` callback for :func:`replay.batch.run_batch`: jobs done/total, bars/s, ETA."""

    def __init__(self, total: int, *, interactive: bool | None = None) -> None:
        self.total = total
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._bar: tqdm[Any] | None = (
            tqdm(total=total, unit="job", dynamic_ncols=True) if self.interactive else None
        )
        self._last_log = 0.0

    def __call__(self, done: int, total: int, bars: int, elapsed: float) -> None:
        rate = bars / elapsed if elapsed > 0 else 0.0
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix_str(f"{rate:,.0f} bars/s", refresh=True)
            return
        now = time.monotonic()
        if done == total or now - self._last_log >= 5.0:
            self._last_log = now
            eta = (total - done) * elapsed / done if done else float("nan")
            log.info("batch: %d/%d jobs, %s bars/s, ETA %.0f s", done, total, f"{rate:,.0f}", eta)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def write_batch_report(
    outcome: BatchOutcome, plan: BatchPlan, out_dir: Path, cache: BarCache, *, plots: int
) -> Path:
    """Plot the ``plots`` best runs, a heatmap of a 2-parameter grid, and ``index.html``.

    "Best" is by the sort metric's meaning (lowest first for a drawdown), whatever direction
    the table is sorted in.
    """
    results = pd.DataFrame(outcome.rows)
    by_id: dict[str, Job] = {job.job_id: job for job in plan.jobs}
    run_plots: dict[str, Path] = {}
    ok = [row for row in outcome.rows if row["status"] == "ok" and row[plan.sort] is not None]
    sign = 1.0 if lower_is_better(plan.sort) else -1.0
    ok.sort(key=lambda row: (sign * float(row[plan.sort]), row["job_id"]))
    best = [row["job_id"] for row in ok[:plots]]
    for job_id in best:
        job = by_id.get(job_id)
        if job is None:
            continue
        result = run_replay(job.replay_config(), cache=cache)
        run_plots[job_id] = plot_run(result, out_dir / "plots" / f"{job_id}.png")
    heatmaps = []
    names = plan.grid_names
    if len(names) == 2 and (results["status"] == "ok").any():
        x, y = (f"param_{name}" for name in names)
        heatmaps.append(
            plot_heatmap(results, x, y, plan.sort, out_dir / f"heatmap_{plan.sort}.png")
        )
    return write_batch_html(
        results,
        out_dir,
        title=f"barbus batch: {len(outcome.rows)} jobs",
        metric=plan.sort,
        ascending=plan.ascending,
        run_plots=run_plots,
        heatmaps=heatmaps,
    )
