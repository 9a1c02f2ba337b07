"""A user's own strategy file in the daemon: configured by a path relative to the config file,
recorded by its canonical spec and source fingerprint, refused after an edit, upgraded from an
older state, and checked by ``barbus parity`` from the recorded spec.

The strategy file lives in a temporary folder outside the project (a copy of ``sma_cross`` with
another name and defaults); the processes run from the repository root, so a path taken from the
current folder instead of the config's folder would not load. Fingerprints are computed here
with hashlib from the file's bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from barbus.daemon.core.series import BarSeries
from tests.conftest import BTC_2025
from tests.kit.probes import all_bars_processed, get_status, readyz_answers
from tests.kit.processes import REPO_ROOT, Processes, barbus
from tests.kit.recorded import read_state, replayed_rows
from tests.kit.scenario import HISTORY, Engine, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

ROWS = 1_500
WRITTEN = "../strategies/my_cross.py:MyCross"  # as the config says it, from its folder


def user_strategy_text() -> str:
    """``sma_cross`` renamed ``my_cross`` (class MyCross), SMA(5) over SMA(13)."""
    text = (REPO_ROOT / "strategies" / "sma_cross.py").read_text(encoding="utf-8")
    text = text.replace("SmaCross", "MyCross").replace('"sma_cross"', '"my_cross"')
    for old, new in (("fast: int = 10", "fast: int = 5"), ("slow: int = 30", "slow: int = 13")):
        assert old in text
        text = text.replace(old, new)
    return text


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass
class UserRun:
    folder: Path
    series: BarSeries
    strategy_file: Path
    config: Path
    state: Path
    engines: tuple[Engine, ...]
    streaming_status: dict[str, Any]
    log: str


@pytest.fixture(scope="module")
def user_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UserRun]:
    folder = tmp_path_factory.mktemp("user-strategy")
    assert not folder.resolve().is_relative_to(REPO_ROOT)
    strategy_file = folder / "strategies" / "my_cross.py"
    strategy_file.parent.mkdir()
    strategy_file.write_text(user_strategy_text(), encoding="utf-8")
    series = write_slice(BTC_2025, 30_000, ROWS, folder / "data")
    engines = (Engine("mine", WRITTEN), Engine("sma-1m", "sma_cross"))
    procs = Processes(folder / "processes")
    try:
        _, sim_port = procs.sim(Path(series.source))
        http_port = free_port()
        (folder / "conf").mkdir()
        state = folder / "state.sqlite"
        config = write_config(
            folder / "conf" / "barbus.toml",
            sim_port=sim_port,
            http_port=http_port,
            state=state,
            engines=engines,
        )
        daemon = procs.daemon(config)
        streaming = wait_until(
            lambda: (s := get_status(http_port)) is not None and s["warm"] and s,
            60,
            "the daemon warmed up",
            watch=daemon,
        )
        wait_until(all_bars_processed(http_port, series), 60, "every bar", watch=daemon)
        log = daemon.stop_cleanly()
        yield UserRun(folder, series, strategy_file, config, state, engines, streaming, log)
    finally:
        procs.close()


def engine_configs(state: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    with closing(sqlite3.connect(state)) as db:
        rows = db.execute("SELECT name, strategy, config FROM engines").fetchall()
    return {name: (strategy, json.loads(config)) for name, strategy, config in rows}


def copy_run(run: UserRun, folder: Path) -> Path:
    """A copy of the run's state in ``folder``."""
    state = folder / "state.sqlite"
    shutil.copyfile(run.state, state)
    return state


def config_for(
    run: UserRun, folder: Path, state: Path, engines: tuple[Engine, ...], http_port: int = 0
) -> Path:
    """A config for ``state`` in a folder beside the run's, so that the relative spec names the
    same file; its exchange (port 1) does not answer."""
    conf = run.folder / f"conf-{folder.name}"
    conf.mkdir()
    return write_config(
        conf / "barbus.toml",
        sim_port=1,
        http_port=http_port or free_port(),
        state=state,
        engines=engines,
    )


def restart(
    processes: Processes, run: UserRun, folder: Path, state: Path, engines: tuple[Engine, ...]
) -> tuple[str, dict[str, Any]]:
    """The daemon on ``state``: what it restored shows in /status before any bar; stopped with
    SIGTERM, exit 0. (log, status)"""
    http_port = free_port()
    config = config_for(run, folder, state, engines, http_port)
    daemon = processes.daemon(config)
    wait_until(readyz_answers(http_port, 503), 30, "/readyz", watch=daemon)
    status = get_status(http_port)
    assert status is not None
    return daemon.stop_cleanly(), status


def refused(config: Path) -> str:
    done = barbus("run", "--config", str(config))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("barbus: error: ")
    return lines[0]


# -- the run -----------------------------------------------------------------------------------


def test_a_file_strategy_relative_to_the_config_folder_trades_as_a_replay_of_it(
    user_run: UserRun,
) -> None:
    recorded = read_state(user_run.state)
    first_live = int(user_run.series.open_time_ms[HISTORY])
    spec = f"{user_run.strategy_file}:MyCross"
    expected = replayed_rows(user_run.series, Engine("mine", spec), first_live)

    assert recorded.trade_from_ms["mine"] == first_live
    assert len(expected) >= 5
    assert recorded.trades["mine"] == expected
    assert recorded.trades["mine"] != recorded.trades["sma-1m"]  # not the built-in by its name


def test_the_state_records_each_strategys_canonical_spec_and_fingerprint(
    user_run: UserRun,
) -> None:
    configs = engine_configs(user_run.state)
    spec = f"{user_run.strategy_file}:MyCross"
    builtin = REPO_ROOT / "strategies" / "sma_cross.py"

    assert configs["mine"][0] == spec
    assert (configs["mine"][1]["strategy"], configs["mine"][1]["fingerprint"]) == (
        spec,
        fingerprint(user_run.strategy_file),
    )
    assert configs["sma-1m"][1]["strategy"] == "sma_cross"
    assert configs["sma-1m"][1]["fingerprint"] == fingerprint(builtin)


def test_status_shows_spec_fingerprint_warmup_bars_and_indicators_ready(user_run: UserRun) -> None:
    by_name = {s["name"]: s for s in user_run.streaming_status["strategies"]}

    mine = by_name["mine"]
    assert mine["strategy"] == WRITTEN
    assert mine["spec"] == f"{user_run.strategy_file}:MyCross"
    assert mine["fingerprint"] == fingerprint(user_run.strategy_file)
    assert (mine["warmup_bars"], by_name["sma-1m"]["warmup_bars"]) == (13 + 1, 30 + 1)
    assert mine["indicators_ready"] is True
    assert by_name["sma-1m"]["indicators_ready"] is True


def test_parity_replays_the_recorded_spec_and_says_identical(user_run: UserRun) -> None:
    done = barbus("parity", "--state", str(user_run.state))  # from the repository root

    assert done.returncode == 0, done.stdout + done.stderr
    lines = sorted(done.stdout.splitlines())
    assert [line.split(":")[0] for line in lines] == ["mine", "sma-1m"]
    assert all(line.endswith(": identical") for line in lines), done.stdout


# -- changed code, changed spec, older state ---------------------------------------------------


@pytest.fixture
def edited(user_run: UserRun) -> Iterator[tuple[str, str]]:
    """The user's file edited in place (restored after the test): (old, new) fingerprints."""
    path = user_run.strategy_file
    original = path.read_bytes()
    before = fingerprint(path)
    path.write_bytes(original + b"\n# tuned by hand\n")
    try:
        yield before, fingerprint(path)
    finally:
        path.write_bytes(original)


def test_a_restart_after_the_file_was_edited_is_refused_with_one_line(
    user_run: UserRun, tmp_path: Path, edited: tuple[str, str]
) -> None:
    state = copy_run(user_run, tmp_path)
    config = config_for(user_run, tmp_path, state, user_run.engines)
    before, after = edited

    line = refused(config)

    assert "strategy 'mine': its code changed since it was saved: " in line
    assert f"fingerprint {before} -> {after} of {user_run.strategy_file};" in line
    assert "give it a new [[strategy]] name (or use a new state file)" in line
    assert f"or restore {user_run.strategy_file} as it was" in line
    assert read_state(state) == read_state(user_run.state)  # nothing written


def test_a_new_strategy_name_starts_the_edited_strategy_over(
    user_run: UserRun, tmp_path: Path, processes: Processes, edited: tuple[str, str]
) -> None:
    state = copy_run(user_run, tmp_path)
    engines = (Engine("mine-v2", WRITTEN), user_run.engines[1])

    log, status = restart(processes, user_run, tmp_path, state, engines)

    by_name = {s["name"]: s for s in status["strategies"]}
    assert by_name["mine-v2"]["fingerprint"] == edited[1]
    assert by_name["mine-v2"]["trades"] == 0
    assert by_name["mine-v2"]["indicators_ready"] is True  # learnt from the recorded bars
    assert f"mine-v2: warmed up on {ROWS} recorded bars" in log
    assert "not_configured=mine" in log
    configs = engine_configs(state)
    assert configs["mine"][1]["fingerprint"] == edited[0]  # the old one stays as it was


def test_restoring_the_file_as_it_was_resumes_the_strategy(
    user_run: UserRun, tmp_path: Path, processes: Processes
) -> None:
    state = copy_run(user_run, tmp_path)

    log, status = restart(processes, user_run, tmp_path, state, user_run.engines)

    assert "restored strategy=mine " in log
    assert {s["name"] for s in status["strategies"]} == {"mine", "sma-1m"}


def test_pointing_a_name_at_another_file_is_refused_with_one_line(
    user_run: UserRun, tmp_path: Path
) -> None:
    state = copy_run(user_run, tmp_path)
    other = tmp_path / "strategies" / "my_cross.py"
    other.parent.mkdir()
    text = user_run.strategy_file.read_text(encoding="utf-8")
    other.write_text(text.replace("fast: int = 5", "fast: int = 6"), encoding="utf-8")
    engines = (Engine("mine", f"{other}:MyCross"), user_run.engines[1])

    line = refused(config_for(user_run, tmp_path, state, engines))

    old, new = f"{user_run.strategy_file}:MyCross", f"{other}:MyCross"
    assert f"strategy 'mine' was saved running another strategy: spec {old} -> {new};" in line
    assert "give it a new [[strategy]] name (or use a new state file)" in line
    assert f"or point it back at {old}" in line


def test_the_same_file_moved_elsewhere_resumes_and_records_its_new_spec(
    user_run: UserRun, tmp_path: Path, processes: Processes
) -> None:
    """A moved research folder: the same class with the same code, so nothing to refuse."""
    state = copy_run(user_run, tmp_path)
    moved = tmp_path / "strategies" / "my_cross.py"
    moved.parent.mkdir()
    shutil.copyfile(user_run.strategy_file, moved)
    engines = (Engine("mine", f"{moved}:MyCross"), user_run.engines[1])

    log, status = restart(processes, user_run, tmp_path, state, engines)

    assert "restored strategy=mine " in log
    recorded = f"recorded its new spec strategy=mine spec={moved}:MyCross"
    assert f"the strategy's file moved, its code is the same: {recorded}" in log
    assert engine_configs(state)["mine"][0] == f"{moved}:MyCross"
    assert {s["name"] for s in status["strategies"]} == {"mine", "sma-1m"}


def test_parity_refuses_in_one_line_when_the_code_changed_since_the_run(
    user_run: UserRun, edited: tuple[str, str]
) -> None:
    done = barbus("parity", "--state", str(user_run.state))

    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert f"strategy 'mine' ran code with fingerprint {edited[0]}" in lines[0]
    assert f"now has fingerprint {edited[1]}" in lines[0]
    assert "a parity check against other code is meaningless" in lines[0]


def make_older(state: Path) -> None:
    """Rewrite the engine records as barbus wrote them before specs and fingerprints: the
    ``strategy`` as the config said it, no fingerprint."""
    with closing(sqlite3.connect(state)) as db, db:
        for name, config in db.execute("SELECT name, config FROM engines").fetchall():
            old = json.loads(config)
            del old["fingerprint"]
            old["strategy"] = WRITTEN if name == "mine" else "sma_cross"
            db.execute(
                "UPDATE engines SET strategy = ?, config = ? WHERE name = ?",
                (old["strategy"], json.dumps(old, sort_keys=True), name),
            )


def test_an_older_state_without_spec_or_fingerprint_is_accepted_and_upgraded(
    user_run: UserRun, tmp_path: Path, processes: Processes
) -> None:
    state = copy_run(user_run, tmp_path)
    make_older(state)
    spec = f"{user_run.strategy_file}:MyCross"

    log, _ = restart(processes, user_run, tmp_path, state, user_run.engines)

    upgraded = [line for line in log.splitlines() if "of an older state" in line]
    assert len(upgraded) == 2, log
    assert all(" INFO " in line for line in upgraded), upgraded
    assert f"strategy=mine spec={spec} fingerprint={fingerprint(user_run.strategy_file)}" in (
        "\n".join(upgraded)
    )
    configs = engine_configs(state)
    assert configs["mine"][0] == spec
    assert configs["mine"][1]["strategy"] == spec
    assert configs["mine"][1]["fingerprint"] == fingerprint(user_run.strategy_file)
    assert configs["sma-1m"][1]["strategy"] == "sma_cross"
    assert read_state(state).trades == read_state(user_run.state).trades
    done = barbus("parity", "--state", str(state))
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_strategy_file_that_does_not_load_fails_the_config_in_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "broken.py").write_text("def oops(:\n", encoding="utf-8")
    cold = tmp_path / "strategies" / "cold.py"
    cold.write_text(
        "from barbus.strategies.sma_cross import SmaCross\n\n\n"
        "class Cold(SmaCross.__mro__[1]):  # Strategy, without SmaCross's @final\n"
        "    params_type = SmaCross.params_type\n\n"
        "    def on_bar(self, bar, position):\n        return None\n\n"
        "    @property\n    def warmup_bars(self):\n        return self.params.nope\n\n\n"
        "class Zero(Cold):\n    @property\n    def warmup_bars(self):\n        return 0\n",
        encoding="utf-8",
    )
    engines = (
        Engine("gone", "../strategies/missing.py:X"),
        Engine("bad", "../strategies/broken.py"),
        Engine("raises", "../strategies/cold.py:Cold"),
        Engine("zero", "../strategies/cold.py:Zero"),
    )
    for engine, expected in (
        (engines[0], f"strategy file not found: {tmp_path / 'strategies' / 'missing.py'}"),
        (engines[1], f"syntax error in {tmp_path / 'strategies' / 'broken.py'} line 1"),
        (engines[2], f"warmup_bars or ready raised {cold} line 12: AttributeError"),
        (engines[3], "warmup_bars must be a whole number >= 1, got 0"),
    ):
        config = write_config(
            conf / "barbus.toml", sim_port=1, http_port=1, state=tmp_path / "s", engines=(engine,)
        )

        line = refused(config)

        assert "[[strategy]] #1" in line
        assert expected in line
