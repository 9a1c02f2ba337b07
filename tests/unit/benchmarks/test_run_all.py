"""``make bench`` runs every benchmark, whatever the earlier ones did, and says which missed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run_all import BENCHMARKS

REPO_ROOT = Path(__file__).resolve().parents[3]
FAKE = "tests.unit.benchmarks.fake_"


def make_bench(*names: str) -> subprocess.CompletedProcess[str]:
    """``make bench`` (the real Makefile target) over the stand-in benchmarks ``names``."""
    return subprocess.run(
        [
            "make", "-s", "-o", ".venv/.installed", "bench",
            f"BIN={Path(sys.executable).parent}",
            f"BENCH=--only {' '.join(FAKE + n for n in names)}",
        ],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def summary_lines(stdout: str) -> dict[str, str]:
    tail = stdout.split("benchmark summary\n", 1)[1]
    return {
        m.group(1).removeprefix(FAKE): m.group(2)
        for m in re.finditer(r"^  (\S+)\s+(met|MISSED|FAILED|skipped)\b", tail, re.M)
    }


@pytest.mark.process
def test_a_missed_target_does_not_stop_the_later_benchmarks_and_fails_make() -> None:
    done = make_bench("missed", "met", "failed", "met")

    assert done.returncode != 0
    assert done.stdout.count("fake_met ran") == 2  # both ran after the miss
    assert "fake_missed ran" in done.stdout
    assert "fake_failed ran" in done.stdout
    assert summary_lines(done.stdout) == {"missed": "MISSED", "met": "met", "failed": "FAILED"}
    assert f"2 of 4 missed or failed: {FAKE}missed, {FAKE}failed" in done.stdout


@pytest.mark.process
def test_all_targets_met_is_exit_0() -> None:
    done = make_bench("met", "met")

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("fake_met ran") == 2
    assert "all 2 benchmarks that ran met their targets" in done.stdout


def test_the_runner_knows_every_benchmark_file_and_the_readme_names_them() -> None:
    files = {p.stem for p in (REPO_ROOT / "benchmarks").glob("bench_*.py")}
    readme = (REPO_ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")

    assert {b.name for b in BENCHMARKS} == files
    for name in files:
        assert f"`{name}.py`" in readme
    assert "three benchmarks" not in readme
