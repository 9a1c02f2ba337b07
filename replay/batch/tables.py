"""The result tables of a batch: the ranking, ``results.csv`` / ``results.parquet``, the top rows.

Rewritten from the journal's rows when a batch ends (pandas, a cold path), in a fixed order
(the metric, then job id), so the tables do not depend on the backend, the number of workers or
the order jobs finished in. Apart from the journal: the journal is what was done, these are how
it reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from barbus.replay.batch.job import METRICS, ROW_HEAD, ROW_TAIL
from barbus.replay.stats import lower_is_better

__all__ = ["format_top", "sort_ascending", "sorted_rows", "write_tables"]


def sort_ascending(sort: str, ascending: bool | None = None) -> bool:
    """The direction to rank ``sort`` in: as given, else best first by the metric's meaning."""
    return lower_is_better(sort) if ascending is None else ascending


def sorted_rows(rows: list[dict[str, Any]], sort: str, ascending: bool) -> list[dict[str, Any]]:
    """Ok rows by ``sort`` (ties by job id), then rows without a value, then failed rows."""

    def key(row: dict[str, Any]) -> tuple[int, float, str]:
        value = row.get(sort)
        if row["status"] != "ok" or value is None:
            return (1, 0.0, row["job_id"])
        return (0, float(value) if ascending else -float(value), row["job_id"])

    return sorted(rows, key=key)


def _exact_float(value: Any) -> str:
    return repr(float(value))


def write_tables(rows: list[dict[str, Any]], out_dir: Path) -> dict[str, Path]:
    import pandas as pd  # cold path: only when the batch is over

    params = sorted({key for row in rows for key in row if key.startswith("param_")})
    columns = [*ROW_HEAD, *params, *METRICS, "status", "error", *ROW_TAIL]
    frame = pd.DataFrame(rows, columns=columns)
    csv_path = out_dir / "results.csv"
    parquet_path = out_dir / "results.parquet"
    # repr of a Python float: the shortest text that reads back to the same bits.
    frame.to_csv(csv_path, index=False, lineterminator="\n", float_format=_exact_float)
    frame.to_parquet(parquet_path, index=False)
    return {"csv": csv_path, "parquet": parquet_path}


def format_top(rows: Sequence[dict[str, Any]], sort: str, top: int) -> str:
    """The first ``top`` rows as a fixed-width table: which data and period, figures, params."""
    shown = rows[:top]
    figures = [sort, *(m for m in _TOP_FIGURES if m != sort)]
    head = {"job": "job_id", "symbol": "symbol", "file": "file", "period": "period"}
    width = {
        label: max([len(label), *(len(str(row[key])) for row in shown)])
        for label, key in head.items()
    }
    labels = {m: _TOP_LABELS.get(m, m) for m in figures}
    number_width = {m: max(9, len(labels[m])) for m in figures}

    def left(row: dict[str, Any]) -> str:
        return " ".join(f"{row[key]!s:<{width[label]}}" for label, key in head.items())

    lines = [
        " ".join(f"{label:<{width[label]}}" for label in head)
        + " "
        + " ".join(f"{labels[m]:>{number_width[m]}}" for m in figures)
        + "  params"
    ]
    for row in shown:
        if row["status"] != "ok":
            lines.append(f"{left(row)} failed: {row['error']}")
            continue
        cells = " ".join(f"{_top_number(row[m]):>{number_width[m]}}" for m in figures)
        params = " ".join(f"{k}={v}" for k, v in json.loads(row["params"]).items())
        lines.append(f"{left(row)} {cells}  {params}")
    return "\n".join(lines)


_TOP_FIGURES = ("total_return_pct", "sharpe", "max_drawdown_pct", "trades")
_TOP_LABELS = {"total_return_pct": "return %", "max_drawdown_pct": "max dd %"}


def _top_number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4g}" if abs(float(value)) >= 1e5 else f"{float(value):.2f}"
