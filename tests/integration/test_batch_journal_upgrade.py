"""A ``results.jsonl`` written by the previous release resumes under this one.

The journal and its spec in ``tests/data/batch_journal_0_1`` were made by the release before
the execution gained maker/taker fees and shorts (see the README there). Job ids hash
``ExecutionConfig.identity()``, which leaves out options at their defaults, so those jobs keep
their ids; a journal whose rows name the same jobs under other ids is not resumed, and says so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.test_batch import assert_succeeded, barbus

OLD = Path(__file__).resolve().parents[1] / "data" / "batch_journal_0_1"
FIXED_DATA = Path("/tmp/barbus-i12-journal/BTCUSDT_1m_2023-03-16_2023-05-05.csv.gz")


@pytest.fixture
def old_out(btc_2023_path: Path, tmp_path: Path) -> Path:
    """An output folder holding the old release's journal, its data at the path it names."""
    FIXED_DATA.parent.mkdir(parents=True, exist_ok=True)
    if not FIXED_DATA.is_file() or FIXED_DATA.read_bytes() != btc_2023_path.read_bytes():
        shutil.copyfile(btc_2023_path, FIXED_DATA)
    out = tmp_path / "out"
    out.mkdir()
    shutil.copyfile(OLD / "results.jsonl", out / "results.jsonl")
    return out


def journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_previous_releases_journal_resumes_with_no_job_run_again(old_out: Path) -> None:
    before = (old_out / "results.jsonl").read_bytes()

    run = barbus("batch", OLD / "spec.toml", "--out", old_out, "--no-parallel", "--plots", "0")

    assert_succeeded(run)
    assert "4 done (0 failed, 4 from an earlier run)" in run.stdout
    assert (old_out / "results.jsonl").read_bytes() == before  # nothing appended
    old_returns = {
        row["job_id"]: row["total_return_pct"] for row in journal(old_out / "results.jsonl")
    }
    shown = {line.split()[0] for line in run.stdout.splitlines()[1:5]}
    assert shown == set(old_returns)


def test_rows_of_the_same_jobs_under_other_ids_run_again_with_one_line(
    old_out: Path, tmp_path: Path
) -> None:
    """Another fee than the journal's: the rows name these jobs but the ids differ, so the
    jobs run again (a row does not record its execution settings) and one line says why."""
    spec = (OLD / "spec.toml").read_text(encoding="utf-8")
    other = tmp_path / "spec.toml"
    other.write_text("fee_bps = 20\n" + spec, encoding="utf-8")

    run = barbus("batch", other, "--out", old_out, "--no-parallel", "--plots", "0")

    assert_succeeded(run)
    assert "4 done (0 failed, 0 from an earlier run)" in run.stdout
    lines = [line for line in run.stderr.splitlines() if "under other job ids" in line]
    assert len(lines) == 1, run.stderr
    assert "4 earlier rows name jobs of this batch" in lines[0]
    assert "their jobs run again" in lines[0]
    assert len(journal(old_out / "results.jsonl")) == 8
