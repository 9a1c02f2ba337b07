"""What the pictures read of a batch's results table, and the errors when it is not one.

The heatmap and the batch page take the table barbus writes (``results.csv`` as a DataFrame),
which a user can also load, edit and pass back; both check it the same way here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from barbus.replay.reports.plotting import FloatArray

__all__ = ["STATUSES", "failed_rows", "is_missing", "numeric_column", "require_column"]

STATUSES = ("ok", "failed")  # what a batch job's result row says in ``status``


def require_column(results: pd.DataFrame, name: str, role: str) -> None:
    if name not in results.columns:
        raise ValueError(
            f"{role} column {name!r} is not in the results; columns are: "
            f"{', '.join(map(str, results.columns))}"
        )


def numeric_column(results: pd.DataFrame, metric: str) -> FloatArray:
    """The metric as floats (missing values as NaN); text that is not a number is an error."""
    column = results[metric]
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        example = column[bad].iloc[0]
        raise ValueError(f"metric column {metric!r} is not numeric (e.g. {example!r})")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def failed_rows(statuses: Iterable[Any]) -> npt.NDArray[np.bool_]:
    """Which rows failed; a status other than ``ok`` or ``failed`` (an edited table) is an error."""
    values = list(statuses)
    unknown = [s for s in values if s not in STATUSES]
    if unknown:
        raise ValueError(
            f"status {unknown[0]!r} is not a batch row's status (one of: {', '.join(STATUSES)})"
        )
    return np.array([s == "failed" for s in values], dtype=np.bool_)


def is_missing(value: Any) -> bool:
    """None or NaN: how a results table holds a figure a job has no value for."""
    return value is None or (isinstance(value, float) and math.isnan(value))
