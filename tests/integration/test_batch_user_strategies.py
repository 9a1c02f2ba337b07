"""``barbus batch`` with a user's strategy file or module, on local worker processes.

The strategy lives in a folder outside the project (pytest's tmp folder). Figures are checked
against real ``barbus replay`` runs of the same jobs; the code's fingerprint against a SHA-256
taken here. Jobs are two days of the bundled 2023 file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from barbus.replay.batch import Job, expand_jobs, run_batch, strategy_of
from barbus.replay.batch import jobs as job_module
from barbus.replay.cache import BarCache
from barbus.replay.runner import ReplayConfig, run_replay
from barbus.strategies import StrategySource, load_shipped
from tests.integration.test_batch import (
    TWO_DAYS,
    TWO_DAYS_BARS,
    assert_succeeded,
    csv_rows,
    finish,
    journal_lines,
    sma_jobs,
)
from tests.integration.user_strategy import (
    TURNS_V1,
    TURNS_V2,
    assert_row_is_the_replay,
    fingerprint,
    replay_summary,
    write_turns,
)
from tests.kit.in_process import Run

START, END = "2023-03-20", "2023-03-22"
HOLDS = (20, 45)


def assert_row_is_its_replay(
    row: dict[str, str], spec: str, data: Path, folder: Path, cwd: Path
) -> dict[str, Any]:
    """``row`` equals a real ``barbus replay`` of its job (``spec``, the row's hold, START..END),
    run from ``cwd`` with its output in ``folder``; that replay's summary."""
    hold = row["param_hold"]
    summary = replay_summary(spec, int(hold), data, START, END, folder / f"replay-{hold}", cwd=cwd)
    assert_row_is_the_replay(row, summary)
    return summary


def barbus_in(cwd: Path, *args: str | Path) -> Run:
    """A real ``barbus`` process started in ``cwd`` (the environment of the batch tests)."""
    import subprocess

    from tests.kit.processes import checkout_env

    process = subprocess.Popen(
        [sys.executable, "-m", "barbus.daemon.cli", *map(str, args)],
        cwd=cwd,
        env=checkout_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return finish(process)


@pytest.fixture
def user_paths() -> Iterator[None]:
    """sys.path as it was, and the user strategies this test loaded dropped from sys.modules."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith(("_barbus_strategy_", "user_turns_mod")):
            del sys.modules[name]


# --------------------------------------------------------------------------------------------
# 1. a file strategy by flags and by a spec file, equal to barbus replay


@dataclass(frozen=True)
class Sweeps:
    root: Path
    data: Path
    strategy_file: Path
    flags: Run
    spec: Run
    flags_out: Path
    spec_out: Path


@pytest.fixture(scope="module")
def sweeps(btc_2023_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Sweeps:
    """The same 2-job sweep of ``mine/turns.py``: flags from ``elsewhere/`` (path relative to
    the current folder) and a spec file in ``spec/`` (path relative to the spec's folder) run
    from the root (where that relative path leads nowhere)."""
    root = tmp_path_factory.mktemp("user-sweeps")
    strategy_file = write_turns(root / "mine")
    (root / "elsewhere").mkdir()
    (root / "spec").mkdir()
    spec = root / "spec" / "sweep.toml"
    spec.write_text(
        "workers = 2\n[[run]]\n"
        'strategy = "../mine/turns.py:Turns"\n'
        f'data = ["{btc_2023_path}"]\n'
        f'start = "{START}"\nend = "{END}"\n'
        f"grid = {{ hold = {list(HOLDS)} }}\n",
        encoding="utf-8",
    )
    flags_out, spec_out = root / "flags-out", root / "spec-out"
    grid = "hold=" + ",".join(map(str, HOLDS))
    flags = barbus_in(
        root / "elsewhere",
        *("batch", "--strategy", "../mine/turns.py:Turns", "--data", btc_2023_path),
        *("--grid", grid, "--start", START, "--end", END, "--workers", "2", "--plots", "0"),
        *("--out", flags_out, "--cache-dir", root / "cache"),
    )
    from_spec = barbus_in(
        root, "batch", spec, "--out", spec_out, "--plots", "0", "--cache-dir", root / "cache"
    )
    return Sweeps(root, btc_2023_path, strategy_file, flags, from_spec, flags_out, spec_out)


def test_a_file_strategy_by_flags_runs_on_two_workers_as_barbus_replay_runs_it(
    sweeps: Sweeps,
) -> None:
    assert_succeeded(sweeps.flags)
    rows = csv_rows(sweeps.flags_out / "results.csv")
    assert sorted(int(row["param_hold"]) for row in rows) == sorted(HOLDS)
    for row in rows:
        summary = assert_row_is_its_replay(
            row, "../mine/turns.py:Turns", sweeps.data, sweeps.root, cwd=sweeps.root / "elsewhere"
        )
        assert row["strategy"] == "turns"  # the class's name, as for a built-in
        assert row["strategy_spec"] == f"{sweeps.strategy_file}:Turns" == summary["strategy_spec"]
        assert row["strategy_fingerprint"] == fingerprint(TURNS_V1)


def test_a_spec_file_takes_the_strategy_path_from_its_own_folder(sweeps: Sweeps) -> None:
    assert_succeeded(sweeps.spec)

    spec_csv = (sweeps.spec_out / "results.csv").read_bytes()
    assert spec_csv == (sweeps.flags_out / "results.csv").read_bytes()
    assert len(csv_rows(sweeps.spec_out / "results.csv")) == len(HOLDS)


def test_a_strategy_that_does_not_load_stops_the_batch_before_any_worker(
    sweeps: Sweeps, tmp_path: Path
) -> None:
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        f'[[run]]\nstrategy = "turns.py:Turns"\ndata = ["{sweeps.data}"]\n', encoding="utf-8"
    )
    missing = barbus_in(sweeps.root, "batch", spec, "--out", tmp_path / "out")
    broken = write_turns(tmp_path / "broken", "import math\ndef f(:\n")
    syntax = barbus_in(
        tmp_path,
        *("batch", "--strategy", f"{broken}:Turns", "--data", sweeps.data),
        *("--grid", "hold=5,6", "--out", tmp_path / "out"),
    )

    for run, fragment in (
        (missing, f"[[run]] #1: strategy file not found: {tmp_path / 'turns.py'}"),
        (syntax, f"syntax error in {broken} line 2"),
    ):
        assert run.returncode == 2, run.stderr
        assert run.stderr.strip().splitlines() == [run.stderr.strip()], run.stderr
        assert run.stderr.startswith("barbus: error: ")
        assert fragment in run.stderr
    assert not (tmp_path / "out").exists()  # no worker started, nothing written


# --------------------------------------------------------------------------------------------
# 2. the job carries the text: workers run what was planned, whatever happens to the file


def turns_jobs(strategy: str, data: Path, base_dir: Path | None = None) -> list[Job]:
    jobs, invalid = expand_jobs(
        strategy, [data], grid={"hold": list(HOLDS)}, periods=[TWO_DAYS], base_dir=base_dir
    )
    assert not invalid
    return jobs


def reference_rows(
    text: str, folder: Path, data: Path, cache: BarCache
) -> dict[int, dict[str, Any]]:
    """Summaries, by hold, of replays of ``text`` from its own pristine file in ``folder``."""
    path = write_turns(folder, text)
    return {
        hold: run_replay(
            ReplayConfig(
                strategy=f"{path}:Turns",
                params={"hold": hold},
                data=data,
                start_ms=TWO_DAYS[0],
                end_ms=TWO_DAYS[1],
            ),
            cache=cache,
        ).summary()
        for hold in HOLDS
    }


def assert_the_planned_text_runs_after_the_file_changes(
    change: str, btc_2023_path: Path, tmp_path: Path, **backend: Any
) -> None:
    """Plan jobs of a file strategy, edit or delete the file, run them on ``backend``
    (``run_batch`` keywords): the rows are the planned version's."""
    cache = BarCache(tmp_path / "cache")
    strategy_file = write_turns(tmp_path / "mine")
    jobs = turns_jobs("mine/turns.py:Turns", btc_2023_path, base_dir=tmp_path)
    v1 = reference_rows(TURNS_V1, tmp_path / "v1", btc_2023_path, cache)
    v2 = reference_rows(TURNS_V2, tmp_path / "v2", btc_2023_path, cache)
    assert v1[HOLDS[0]]["trades"] != v2[HOLDS[0]]["trades"]  # the versions differ

    if change == "edited":
        strategy_file.write_text(TURNS_V2, encoding="utf-8")
    else:
        shutil.rmtree(strategy_file.parent)
    outcome = run_batch(jobs, tmp_path / "out", cache=cache, **backend)

    assert outcome.failed == 0, [row["error"] for row in outcome.rows]
    for row in outcome.rows:
        assert_row_is_the_replay(row, v1[row["param_hold"]])
        assert row["strategy_fingerprint"] == fingerprint(TURNS_V1)


@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_local_workers_run_the_planned_text_after_the_file_changes(
    change: str, btc_2023_path: Path, tmp_path: Path, user_paths: None
) -> None:
    assert_the_planned_text_runs_after_the_file_changes(change, btc_2023_path, tmp_path, workers=2)


# --------------------------------------------------------------------------------------------
# 3. resume after the user edited the file


def test_resuming_after_an_edit_runs_the_new_version_and_sets_the_old_rows_aside(
    btc_2023_path: Path, tmp_path: Path
) -> None:
    strategy_file = write_turns(tmp_path / "mine")
    out = tmp_path / "out"
    args = (
        *("batch", "--strategy", "mine/turns.py:Turns", "--data", btc_2023_path),
        *("--grid", "hold=" + ",".join(map(str, HOLDS)), "--start", START, "--end", END),
        *("--workers", "2", "--plots", "0", "--out", out, "--cache-dir", tmp_path / "cache"),
    )
    first = barbus_in(tmp_path, *args)
    assert_succeeded(first)

    strategy_file.write_text(TURNS_V2, encoding="utf-8")
    second = barbus_in(tmp_path, *args)

    assert_succeeded(second)
    assert "jobs          2 done (0 failed, 0 from an earlier run)" in second.stdout
    said = [line for line in second.stderr.splitlines() if "set aside" in line]
    assert len(said) == 1, second.stderr
    assert (
        f"2 earlier rows set aside because the strategy code changed ({strategy_file}:Turns "
        f"was {fingerprint(TURNS_V1)}, is {fingerprint(TURNS_V2)})"
    ) in said[0]
    rows = csv_rows(out / "results.csv")
    assert len(rows) == len(HOLDS)
    assert {row["strategy_fingerprint"] for row in rows} == {fingerprint(TURNS_V2)}
    for row in rows:
        assert_row_is_its_replay(row, "mine/turns.py:Turns", btc_2023_path, tmp_path, cwd=tmp_path)

    third = barbus_in(tmp_path, *args)  # the same version again: everything resumes

    assert_succeeded(third)
    assert "jobs          2 done (0 failed, 2 from an earlier run)" in third.stdout
    assert "set aside" in third.stderr  # the first version's rows are still in the journal
    assert (out / "results.csv").read_text(encoding="utf-8").count("\n") == 1 + len(HOLDS)


# --------------------------------------------------------------------------------------------
# 4. a module of another version on a worker


def test_a_worker_with_another_version_of_the_module_fails_the_job_with_both_fingerprints(
    btc_2023_path: Path, tmp_path: Path, user_paths: None
) -> None:
    package = tmp_path / "lib" / "user_turns_mod"  # a package: a module, not shipped as a file
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    module = package / "turns.py"
    module.write_text(TURNS_V1, encoding="utf-8")
    jobs = turns_jobs("user_turns_mod.turns:Turns", btc_2023_path, base_dir=package.parent)
    assert {job.strategy for job in jobs} == {"user_turns_mod.turns:Turns"}

    module.write_text(TURNS_V2, encoding="utf-8")  # the workers import this version
    outcome = run_batch(jobs, tmp_path / "out", workers=2, cache=BarCache(tmp_path / "cache"))

    assert outcome.failed == len(HOLDS)
    for row in outcome.rows:
        assert row["error"] == (
            "StrategyError: strategy user_turns_mod.turns:Turns: the code on this worker has "
            f"fingerprint {fingerprint(TURNS_V2)}, the batch was planned with "
            f"{fingerprint(TURNS_V1)} (another version of the module here: install the same "
            "version on every node, or run the batch again to plan this one)"
        )


def test_a_process_builds_a_jobs_strategy_once_for_all_its_jobs(
    btc_2023_path: Path, tmp_path: Path, user_paths: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_turns(tmp_path / "mine")
    jobs = turns_jobs("mine/turns.py:Turns", btc_2023_path, base_dir=tmp_path)
    shipped: list[str] = []

    def counting_load_shipped(spec: str, source: str, fingerprint: str) -> StrategySource:
        shipped.append(spec)
        return load_shipped(spec, source, fingerprint)

    monkeypatch.setattr(job_module, "_RESOLVED", {})  # as in a fresh worker process
    monkeypatch.setattr(job_module, "load_shipped", counting_load_shipped)

    built = [strategy_of(job) for job in jobs * 50]

    assert shipped == [f"{tmp_path / 'mine' / 'turns.py'}:Turns"]
    assert {id(source.cls) for source in built} == {id(built[0].cls)}
    assert built[0].fingerprint == fingerprint(TURNS_V1)


def test_a_worker_executes_a_file_strategy_once_for_all_its_jobs(
    btc_2023_path: Path, tmp_path: Path, user_paths: None, batch_log: list[logging.LogRecord]
) -> None:
    counter = tmp_path / "executions"
    counted = TURNS_V1 + (f"\nwith open({str(counter)!r}, 'a') as _mark:\n    _mark.write('x')\n")
    write_turns(tmp_path / "mine", counted)
    jobs, _ = expand_jobs(
        "mine/turns.py:Turns",
        [btc_2023_path],
        grid={"hold": list(range(20, 28))},
        periods=[TWO_DAYS],
        base_dir=tmp_path,
    )
    executed_by_planning = counter.read_text(encoding="utf-8").count("x")

    outcome = run_batch(jobs, tmp_path / "out", workers=1, cache=BarCache(tmp_path / "cache"))

    assert outcome.failed == 0
    assert executed_by_planning == 1
    # One worker, eight jobs: the file's text ran once in the parent and once in the worker.
    assert counter.read_text(encoding="utf-8").count("x") == 2


def test_rows_written_before_jobs_recorded_their_code_are_set_aside_in_one_line(
    btc_2023_path: Path,
    tmp_path: Path,
    batch_log: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: a journal as barbus wrote it before fingerprints: the job id without the code's
    # fingerprint, the spec in the strategy column, no strategy_spec/strategy_fingerprint.
    jobs = sma_jobs(btc_2023_path)
    cache = BarCache(tmp_path / "cache")
    out = tmp_path / "out"
    fresh = run_batch(jobs, out, parallel=False, cache=cache)
    by_id = {job.job_id: job for job in jobs}
    lines = []
    for line in journal_lines(out):
        row = json.loads(line)
        job = by_id[row.pop("job_id")]
        del row["strategy_spec"], row["strategy_fingerprint"]
        row["job_id"] = dataclasses.replace(job, fingerprint="").job_id
        lines.append(json.dumps(row, sort_keys=True))
    (out / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(logging.getLogger("barbus.batch"), "level", logging.INFO)
    batch_log.clear()

    again = run_batch(jobs, out, parallel=False, cache=cache)

    assert again.resumed == 0
    assert again.bars_replayed == len(jobs) * TWO_DAYS_BARS
    assert csv_rows(again.paths["csv"]) == csv_rows(fresh.paths["csv"])
    said = [r.getMessage() for r in batch_log if "set aside" in r.getMessage()]
    assert said == [
        f"{out / 'results.jsonl'}: 4 earlier rows set aside because the strategy code changed "
        f"(sma_cross was not recorded, is {jobs[0].fingerprint}): not results of this batch, "
        "its jobs run for the code as it is now"
    ]
    assert [r for r in batch_log if r.levelno >= logging.WARNING] == []  # not damage
