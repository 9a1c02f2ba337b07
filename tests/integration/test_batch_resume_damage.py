"""Issue 10, item 16: resuming a batch skips damaged ``results.jsonl`` lines and re-runs them.

A journal line can be cut short by a crash, overwritten with garbage by a disk fault, or edited
by hand into valid JSON of the wrong shape or with wrong types. Each such line is skipped (one
warning per file naming how many and which lines), its job runs again, and the results are the
same as a fresh run's. Never a traceback.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from barbus.replay.batch import run_batch
from barbus.replay.cache import BarCache
from tests.integration.test_batch import (
    REPO_ROOT,
    TWO_DAYS_BARS,
    csv_rows,
    journal_lines,
    sma_jobs,
)
from tests.kit.processes import checkout_env

Damage = Callable[[bytes], bytes]


def edited(change: Callable[[dict[str, object]], object]) -> Damage:
    """A damage that rewrites the line's row with ``change`` (which may return a new value)."""

    def damage(line: bytes) -> bytes:
        row = json.loads(line)
        result = change(row)
        return json.dumps(row if result is None else result).encode()

    return damage


def set_key(key: str, value: object) -> Damage:
    return edited(lambda row: row.__setitem__(key, value))


def drop_key(key: str) -> Damage:
    return edited(lambda row: row.pop(key))


DAMAGES: dict[str, Damage] = {
    "binary-garbage": lambda _: b"\x00\xff\xfe\x80garbage\x9f\x00",
    "half-a-line": lambda line: line[: len(line) // 2],
    "json-list": lambda _: b"[1, 2, 3]",
    "json-number": lambda _: b"42",
    "json-null": lambda _: b"null",
    "job-id-a-list": set_key("job_id", ["not", "hashable"]),
    "status-a-number": set_key("status", 1),
    "sharpe-a-string": set_key("sharpe", "very good"),
    "trades-a-bool": set_key("trades", True),
    "final-equity-an-object": set_key("final_equity", {"usd": 1}),
    "sharpe-missing": drop_key("sharpe"),
    "symbol-of-another-job": set_key("symbol", "ETHUSDT"),
    "params-of-another-job": set_key("param_fast", 99),
    "extra-key": set_key("surprise", 1),
}


@pytest.fixture
def cache(tmp_path: Path) -> BarCache:
    return BarCache(tmp_path / "cache")


def damage_lines(journal: Path, damages: dict[int, Damage]) -> None:
    """Apply ``damages`` by 1-based line number, keeping the other lines byte for byte."""
    lines = journal.read_bytes().split(b"\n")
    for number, damage in damages.items():
        lines[number - 1] = damage(lines[number - 1])
    journal.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_a_damaged_journal_line_is_skipped_reported_and_its_job_run_again(
    kind: str,
    btc_2023_path: Path,
    cache: BarCache,
    tmp_path: Path,
    batch_log: list[logging.LogRecord],
) -> None:
    jobs = sma_jobs(btc_2023_path)
    out = tmp_path / "out"
    first = run_batch(jobs, out, parallel=False, cache=cache)
    fresh_csv = csv_rows(first.paths["csv"])
    journal = out / "results.jsonl"
    damage_lines(journal, {2: DAMAGES[kind]})
    batch_log.clear()

    again = run_batch(jobs, out, parallel=False, cache=cache)

    assert again.resumed == 3
    assert again.bars_replayed == TWO_DAYS_BARS
    assert again.failed == 0
    assert csv_rows(again.paths["csv"]) == fresh_csv
    warnings = [r.getMessage() for r in batch_log if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert str(journal) in warnings[0]
    assert "skipped 1 damaged line" in warnings[0]
    assert "line 2" in warnings[0]
    assert len(warnings[0]) < 600


def test_many_damaged_lines_are_summarised_in_one_line_per_file(
    btc_2023_path: Path,
    cache: BarCache,
    tmp_path: Path,
    batch_log: list[logging.LogRecord],
) -> None:
    jobs = sma_jobs(btc_2023_path)
    out = tmp_path / "out"
    first = run_batch(jobs, out, parallel=False, cache=cache)
    journal = out / "results.jsonl"
    # Every job damaged, plus forty lines of garbage appended: all four jobs run again.
    damage_lines(
        journal,
        {
            1: DAMAGES["binary-garbage"],
            2: DAMAGES["json-list"],
            3: DAMAGES["sharpe-a-string"],
            4: DAMAGES["half-a-line"],
        },
    )
    with journal.open("ab") as handle:
        handle.write(b"\n".join([b"\xff" * 10] * 40) + b"\n")
    batch_log.clear()

    again = run_batch(jobs, out, parallel=False, cache=cache)

    assert again.resumed == 0
    assert again.bars_replayed == 4 * TWO_DAYS_BARS
    assert csv_rows(again.paths["csv"]) == csv_rows(first.paths["csv"])
    warnings = [r.getMessage() for r in batch_log if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "skipped 44 damaged lines" in warnings[0]
    assert "line 1" in warnings[0]
    assert "line 3" in warnings[0]
    assert "more" in warnings[0]  # the rest are counted, not listed
    assert len(warnings[0]) < 1000

    # The re-run appended good rows; a third run resumes everything. The damaged lines are
    # kept (evidence, never rewritten), so the same summary comes again.
    batch_log.clear()
    third = run_batch(jobs, out, parallel=False, cache=cache)
    assert third.resumed == 4
    assert third.bars_replayed == 0
    assert [r.getMessage() for r in batch_log if r.levelno >= logging.WARNING] == warnings


def test_barbus_batch_resumes_a_damaged_journal_without_a_traceback(
    btc_2023_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = [
        sys.executable,
        "-m",
        "barbus.daemon.cli",
        "batch",
        "--strategy",
        "sma_cross",
        "--data",
        str(btc_2023_path),
        "--grid",
        "fast=5,10",
        "--grid",
        "slow=20,40",
        "--start",
        "2023-03-20",
        "--end",
        "2023-03-22",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-parallel",
        "--plots",
        "0",
    ]
    env = checkout_env()

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    first = run()
    assert first.returncode == 0, first.stderr
    assert len(journal_lines(out)) == 4
    damage_lines(
        out / "results.jsonl",
        {1: DAMAGES["binary-garbage"], 2: DAMAGES["json-null"], 3: DAMAGES["trades-a-bool"]},
    )

    again = run()

    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    skipped = [line for line in again.stderr.splitlines() if "damaged line" in line]
    assert len(skipped) == 1, again.stderr
    assert "skipped 3 damaged lines" in skipped[0]
    assert "4 done (0 failed, 1 from an earlier run)" in again.stdout, again.stdout


def test_a_row_of_an_older_barbus_runs_again_without_a_damage_warning(
    btc_2023_path: Path,
    cache: BarCache,
    tmp_path: Path,
    batch_log: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: line 2 as barbus wrote it before the daily figures and the file/period columns.
    jobs = sma_jobs(btc_2023_path)
    out = tmp_path / "out"
    first = run_batch(jobs, out, parallel=False, cache=cache)
    added = ["file", "period", "sortino", "cagr_pct", "calmar", "max_drawdown_days"]
    added += ["profit_factor", "expectancy", "avg_trade_pct", "days"]

    def older(row: dict[str, object]) -> None:
        for key in added:
            del row[key]

    damage_lines(out / "results.jsonl", {2: edited(older)})
    monkeypatch.setattr(logging.getLogger("barbus.batch"), "level", logging.INFO)
    batch_log.clear()

    # Act
    again = run_batch(jobs, out, parallel=False, cache=cache)

    # Assert: its job ran again, and the log says why in one INFO line, no warning.
    assert again.resumed == 3
    assert again.bars_replayed == TWO_DAYS_BARS
    assert csv_rows(again.paths["csv"]) == csv_rows(first.paths["csv"])
    assert [r for r in batch_log if r.levelno >= logging.WARNING] == []
    said = [r.getMessage() for r in batch_log if "older barbus" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in batch_log]
    assert "1 row written by an older barbus (fewer figures): its job runs again" in said[0]
