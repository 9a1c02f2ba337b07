"""What a finished batch writes next to its tables: the best runs' charts, the heatmap, the page.

The charts re-run the best few jobs in-process (a few seconds) rather than shipping equity
curves back from every worker.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from barbus.replay.batch import BatchOutcome, BatchPlan, Job
from barbus.replay.cache import BarCache
from barbus.replay.reports.batch_page import write_batch_html
from barbus.replay.reports.heatmap import plot_heatmap
from barbus.replay.reports.run_chart import plot_run
from barbus.replay.runner import run_replay
from barbus.replay.stats import lower_is_better

__all__ = ["write_batch_report"]


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
