"""The journal of a batch (``results.jsonl``): one row per finished job, and the resume from it.

Each finished job is appended at once, so a crash, Ctrl-C or SIGTERM loses nothing finished,
and a rerun with the same output folder skips the jobs that succeeded. Reading it back is most
of this module: a journal outlives the code that wrote it (older barbus rows, rows of edited
strategies, of other execution settings, damaged lines), and each kind is told apart and said
in one log line. SIGTERM becomes the same orderly stop as Ctrl-C while a batch writes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from barbus.replay.batch.job import METRICS, result_row
from barbus.replay.batch.jobs import Job

__all__ = ["journal_writer", "read_journal", "stop_on_sigterm"]

log = logging.getLogger("barbus.batch")


@contextlib.contextmanager
def journal_writer(path: Path) -> Iterator[Callable[[Mapping[str, Any]], None]]:
    """A function that appends a row to the journal at ``path`` and flushes it."""
    _end_with_newline(path)
    with path.open("a", encoding="utf-8") as journal:

        def write(row: Mapping[str, Any]) -> None:
            journal.write(json.dumps(row, sort_keys=True) + "\n")
            journal.flush()

        yield write


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while a batch runs (main thread only)."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _end_with_newline(path: Path) -> None:
    """Terminate a last line cut short by a crash, so the next row starts on its own line."""
    if path.exists() and path.stat().st_size:
        with path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")


_INT_METRICS = frozenset({"trades", "days", "bars", "gaps"})
_OLDER_ROW: Final = "written by an older barbus"  # a journal row to run again, not damage
_NOT_WANTED: Final = "not a job of this batch"  # another batch's, or another code version's
# Row keys that barbus 0.x rows before the daily statistics and readable periods lack.
_ADDED_KEYS: Final = frozenset(
    {"file", "period", "sortino", "cagr_pct", "calmar", "max_drawdown_days", "profit_factor"}
    | {"expectancy", "avg_trade_pct", "days", "strategy_spec", "strategy_fingerprint"}
)
_SHOWN_DAMAGE = 5  # damaged lines described in the summary; the rest are counted


def read_journal(path: Path, wanted: Mapping[str, Job]) -> dict[str, dict[str, Any]]:
    """Successful rows of earlier runs for the jobs of this batch (failed ones run again).

    A damaged line (cut short, garbage, JSON of the wrong shape or types, a row that does not
    match its job) is skipped and its job runs again; one warning per file says which lines.
    A row of an older barbus (lacking only keys added since) runs again, with one INFO line.
    """
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    damaged: list[str] = []
    older = 0
    versions = _OtherVersions(wanted)
    other_ids = _OtherIds(wanted)
    lines = path.read_bytes().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last row
    for number, line in enumerate(lines, start=1):
        row, problem = _journal_row(line, wanted)
        if problem is _NOT_WANTED:
            if row is not None and not versions.check(row):
                other_ids.check(row)
        elif problem is _OLDER_ROW:
            older += 1
        elif problem is not None:
            damaged.append(f"line {number} {problem}")
        elif row is not None:
            rows[row["job_id"]] = row
    versions.report(path)
    other_ids.report(path)
    if older:
        log.info(
            "%s: %d row%s written by an older barbus (fewer figures): %s again",
            *(
                path,
                older,
                "s" if older > 1 else "",
                "their jobs run" if older > 1 else "its job runs",
            ),
        )
    if damaged:
        shown = "; ".join(damaged[:_SHOWN_DAMAGE])
        more = f"; and {len(damaged) - _SHOWN_DAMAGE} more" if len(damaged) > _SHOWN_DAMAGE else ""
        count = f"{len(damaged)} damaged line{'s' if len(damaged) > 1 else ''}"
        runs = "their jobs run" if len(damaged) > 1 else "its job runs"
        log.warning("%s: %s%s: skipped %s, %s again", path, shown, more, count, runs)
    return rows


def _journal_row(
    line: bytes, wanted: Mapping[str, Job]
) -> tuple[dict[str, Any] | None, str | None]:
    """(the ok row of a wanted job, None), (the row or None, :data:`_NOT_WANTED`) to pass over,
    or (None, what is wrong)."""
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "is not UTF-8 text (garbage?)"
    except json.JSONDecodeError:
        return None, "is not JSON (a write cut short?)"
    if not isinstance(row, dict):
        return None, f"is a JSON {type(row).__name__}, not a result row"
    job_id, status = row.get("job_id"), row.get("status")
    if not isinstance(job_id, str):
        return None, "has no job_id string"
    if status not in ("ok", "failed"):
        return None, "has a status that is neither 'ok' nor 'failed'"
    job = wanted.get(job_id)
    if job is None:
        return row, _NOT_WANTED  # another batch's job, or another version of the code
    if status != "ok":
        return None, _NOT_WANTED  # a failure that runs again
    expected = result_row(job, None, "")
    if set(row) < set(expected) and set(expected) - set(row) <= _ADDED_KEYS:
        return None, _OLDER_ROW  # lacks only keys added since: a row of an older barbus
    problem = _row_problem(row, expected)
    return (None, f"(job {job_id}) {problem}") if problem else (row, None)


class _OtherVersions:
    """Finds the journal's ok rows of this batch's jobs run with other code (another
    fingerprint, or none recorded) and says in one line how many were set aside."""

    def __init__(self, wanted: Mapping[str, Job]) -> None:
        self._by_spec: dict[str, list[Job]] = {}
        for job in wanted.values():
            if job.fingerprint:
                self._by_spec.setdefault(job.strategy, []).append(job)
        self._ids: dict[tuple[str, str], frozenset[str]] = {}
        self.set_aside: dict[str, set[str]] = {}  # spec -> earlier fingerprints
        self._rows: set[str] = set()

    def _twins(self, spec: str, fingerprint: str) -> frozenset[str]:
        """Ids the jobs of ``spec`` had with code ``fingerprint`` (``""``: not recorded)."""
        key = (spec, fingerprint)
        if key not in self._ids:
            jobs = self._by_spec.get(spec, [])
            self._ids[key] = frozenset(
                dataclasses.replace(job, fingerprint=fingerprint).job_id for job in jobs
            )
        return self._ids[key]

    def check(self, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` is one of this batch's jobs run with other code (then set aside)."""
        if row.get("status") != "ok" or not self._by_spec:
            return False
        spec, fingerprint = row.get("strategy_spec"), row.get("strategy_fingerprint")
        if "strategy_fingerprint" not in row:  # written before jobs recorded their code
            candidates = list(self._by_spec) if spec is None else [spec]
            fingerprint = ""
        elif isinstance(spec, str) and isinstance(fingerprint, str) and fingerprint:
            candidates = [spec]
        else:
            return False
        for candidate in candidates:
            if isinstance(candidate, str) and row["job_id"] in self._twins(candidate, fingerprint):
                self._rows.add(row["job_id"])
                self.set_aside.setdefault(candidate, set()).add(fingerprint or "not recorded")
                return True
        return False

    def report(self, path: Path) -> None:
        if not self._rows:
            return
        count = len(self._rows)
        changes = "; ".join(
            f"{spec} was {', '.join(sorted(before))}, is {self._by_spec[spec][0].fingerprint}"
            for spec, before in sorted(self.set_aside.items())
        )
        log.info(
            "%s: %d earlier row%s set aside because the strategy code changed (%s): not "
            "results of this batch, its jobs run for the code as it is now",
            *(path, count, "s" if count > 1 else "", changes),
        )


# What a row says about its job; the execution settings are not in it, only in the job id.
_ROW_IDENTITY: Final = (
    "strategy_spec",
    "strategy_fingerprint",
    "data",
    "symbol",
    "start_ms",
    "end_ms",
    "params",
)


class _OtherIds:
    """Finds the journal's ok rows that name a job of this batch (strategy, code, data, period,
    parameters) under another id, and says in one line that their jobs run again.

    Such a row was run with other execution settings (fees, slippage, fills, cash, shorts),
    which a row does not record, or by a barbus whose job ids this one does not compute: it
    cannot be told apart, so it is never taken as this batch's result.
    """

    def __init__(self, wanted: Mapping[str, Job]) -> None:
        self._keys = {self._key(result_row(job, None, "")) for job in wanted.values()}
        self._rows: set[str] = set()

    @staticmethod
    def _key(row: Mapping[str, Any]) -> str:
        return json.dumps([row.get(key) for key in _ROW_IDENTITY], sort_keys=True)

    def check(self, row: Mapping[str, Any]) -> None:
        if row.get("status") == "ok" and self._key(row) in self._keys:
            self._rows.add(row["job_id"])

    def report(self, path: Path) -> None:
        if not self._rows:
            return
        count = len(self._rows)
        log.warning(
            "%s: %d earlier row%s name%s jobs of this batch (strategy, code, data, period, "
            "parameters) under other job ids: run with other execution settings, or written by "
            "a barbus whose job ids this one does not compute; not taken as results, %s again",
            *(path, count, "s" if count > 1 else "", "" if count > 1 else "s"),
            "their jobs run" if count > 1 else "its job runs",
        )


def _row_problem(row: Mapping[str, Any], expected: Mapping[str, Any]) -> str | None:
    """What makes ``row`` unlike the row its job writes, or None."""
    if set(row) != set(expected):
        odd = sorted(set(row) ^ set(expected))
        return f"has missing or unexpected keys {', '.join(odd)[:120]}"
    for key, value in expected.items():
        if key in METRICS:
            continue
        if json.dumps(row[key], sort_keys=True) != json.dumps(value, sort_keys=True):
            return f"has a {key} that is not the job's"
    for metric in METRICS:
        value = row[metric]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if metric in _INT_METRICS and not (number and isinstance(value, int)):
            return f"has a {metric} that is not an integer"
        if value is not None and not number:
            return f"has a {metric} that is not a number"
    return None
