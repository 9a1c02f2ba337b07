"""`barbus run` and `barbus parity` on state files damaged for real, as processes.

One clean daemon run against the sim exchange makes a real state file; each test copies it,
damages the copy (bytes over a page, SQL, truncation, replacement, a second daemon, a read-only
bind mount, a tiny full tmpfs) and runs the real commands on it. The rule: one line naming the
file, a non-zero exit, never a traceback, never a run on damaged state, nothing committed lost.

The read-only and disk-full scenarios need root and ``unshare -m`` (a private mount namespace,
so nothing is left mounted on the host); elsewhere they are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from barbus.daemon.core.events import MINUTE_MS, format_time_ms
from barbus.daemon.core.series import BarSeries
from barbus.daemon.state import StateStore
from tests.conftest import BTC_2025
from tests.factories import bars_of
from tests.kit.probes import all_bars_processed, get_status, http_get
from tests.kit.processes import REPO_ROOT, Processes, barbus, checkout_env
from tests.kit.recorded import assert_parity_cli_identical, read_state
from tests.kit.scenario import HISTORY, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

ROWS = HISTORY + 200


@dataclass(frozen=True)
class Good:
    """A state file left by a clean run, and the bars it recorded."""

    state: Path
    series: BarSeries


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Good:
    folder = tmp_path_factory.mktemp("good-state")
    series = write_slice(BTC_2025, 30_000, ROWS, folder / "data")
    procs = Processes(folder / "processes")
    try:
        _, sim_port = procs.sim(Path(series.source))
        http_port = free_port()
        state = folder / "state.sqlite"
        config = write_config(
            folder / "barbus.toml", sim_port=sim_port, http_port=http_port, state=state
        )
        daemon = procs.daemon(config)
        wait_until(all_bars_processed(http_port, series), 60, "the slice processed", watch=daemon)
        daemon.stop_cleanly()
    finally:
        procs.close()
    return Good(state, series)


def copy_state(good: Good, folder: Path) -> Path:
    """The good state file and its marker in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "state.sqlite"
    shutil.copyfile(good.state, state)
    shutil.copyfile(good.state.with_name("state.sqlite.id"), folder / "state.sqlite.id")
    return state


def offline_config(folder: Path, state: Path) -> Path:
    """A config whose exchange does not exist: a refusal must come before any connection."""
    return write_config(
        folder / "barbus.toml", sim_port=free_port(), http_port=free_port(), state=state
    )


def assert_one_error_line(done: subprocess.CompletedProcess[str], state: Path, code: int) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("barbus: error: ")
    assert str(state) in lines[0]
    assert "Traceback" not in done.stderr
    assert len(lines[0]) < 600
    return lines[0]


def sql(path: Path, statement: str, *args: object) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute(statement, args)
        db.commit()


def tear_a_page(state: Path) -> None:
    with state.open("r+b") as handle:
        handle.seek(20 * 4096)
        handle.write(b"\xde\xad\xbe\xef" * 1024)


def nan_cash(state: Path) -> None:
    with closing(sqlite3.connect(state)) as db:
        [(name, text)] = db.execute("SELECT name, snapshot FROM engines LIMIT 1").fetchall()
        snapshot = json.loads(text)
        snapshot["cash"] = float("nan")
        db.execute("UPDATE engines SET snapshot = ? WHERE name = ?", (json.dumps(snapshot), name))
        db.commit()


def replace_with_another_state(state: Path) -> None:
    other = state.parent / "other" / "state.sqlite"
    StateStore(other).close()  # a real barbus state, only not this one
    shutil.copyfile(other, state)


DAMAGES = {
    "a torn page": (tear_a_page, "integrity check failed|malformed", "integrity check|malformed"),
    "bad JSON in a snapshot": (
        lambda s: sql(s, "UPDATE engines SET snapshot = '{\"strategy\": ' WHERE rowid = 1"),
        "is not JSON",
        "is not JSON",
    ),
    "a price of the wrong type": (
        lambda s: sql(s, f"UPDATE bars SET low = 'low' WHERE open_time_ms % {7 * MINUTE_MS} = 0"),
        "wrong type",
        "wrong type",
    ),
    "a dropped table": (lambda s: sql(s, "DROP TABLE trades"), "'trades' is missing", "missing"),
    "a NaN cash in a snapshot": (nan_cash, "does not restore.*cash", "cash is 'nan'"),
    "a zero-length file": (lambda s: s.write_bytes(b""), "--new-state", "empty"),
    # The replacement is a valid state, only not this daemon's: parity reads it (it has no
    # strategy yet), the daemon refuses it.
    "a replaced file": (
        replace_with_another_state, "was replaced.*--new-state", "no strategy has processed"
    ),
}  # fmt: skip


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_daemon_and_parity_refuse_a_damaged_state_file_in_one_line(
    tmp_path: Path, good: Good, damage: str
) -> None:
    break_it, daemon_says, parity_says = DAMAGES[damage]
    state = copy_state(good, tmp_path)
    break_it(state)
    before = state.read_bytes()

    ran = barbus("run", "--config", str(offline_config(tmp_path, state)))
    line = assert_one_error_line(ran, state, 2)
    assert re.search(daemon_says, line), line
    assert state.read_bytes() == before  # never written to

    checked = barbus("parity", "--state", str(state))
    parity_line = assert_one_error_line(checked, state, 2)
    assert re.search(parity_says, parity_line), parity_line


def test_new_state_starts_afresh_on_an_emptied_file_and_rewrites_the_marker(
    tmp_path: Path, good: Good, processes: Processes
) -> None:
    state = copy_state(good, tmp_path)
    old_marker = (tmp_path / "state.sqlite.id").read_text(encoding="ascii")
    state.write_bytes(b"")
    _, sim_port = processes.sim(Path(good.series.source))
    http_port = free_port()
    config = write_config(
        tmp_path / "barbus.toml", sim_port=sim_port, http_port=http_port, state=state
    )

    daemon = processes.start("daemon", ["run", "--config", str(config), "--new-state"])
    wait_until(all_bars_processed(http_port, good.series), 60, "the slice again", watch=daemon)
    daemon.signal(signal.SIGTERM)

    assert daemon.wait(timeout=15) == 0, daemon.log()[-2000:]
    assert "Traceback" not in daemon.log()
    assert len(read_state(state).bars) == ROWS
    new_marker = (tmp_path / "state.sqlite.id").read_text(encoding="ascii")
    assert new_marker != old_marker
    assert_parity_cli_identical(state)


def test_a_second_daemon_on_the_same_state_exits_2_naming_the_first_ones_pid(
    tmp_path: Path, good: Good, processes: Processes
) -> None:
    state = copy_state(good, tmp_path)
    config = offline_config(tmp_path, state)  # the first daemon keeps reconnecting in vain
    first = processes.daemon(config)
    port = int(re.findall(r"port = (\d+)", config.read_text(encoding="utf-8"))[-1])
    wait_until(lambda: http_get(port, "/healthz"), 30, "the first daemon's HTTP", watch=first)

    # Another config (its own HTTP port), the same state file.
    other = tmp_path / "other"
    other.mkdir()
    second = barbus("run", "--config", str(offline_config(other, state)))

    line = assert_one_error_line(second, state, 2)
    assert f"already in use by process {first.popen.pid}" in line
    assert first.running()
    assert_parity_cli_identical(state)  # read-only, without the lock: works meanwhile
    first.stop_cleanly()
    assert len(read_state(state).bars) == ROWS


# -- read-only and full file systems, in a private mount namespace -----------------------------


def _can_unshare_mounts() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    not _can_unshare_mounts(), reason="needs root and unshare -m to mount a private tmpfs"
)


def private_mounts_command(setup: str, args: list[str]) -> list[str]:
    """``barbus *args`` after the shell ``setup`` ran, in a private mount namespace (gone with
    the process: nothing stays mounted on the host)."""
    command = " ".join([sys.executable, "-m", "barbus.daemon.cli", *args])
    return ["unshare", "-m", "--propagation", "private", "sh", "-ec", f"{setup}\n{command}"]


def in_private_mounts(setup: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        private_mounts_command(setup, args),
        cwd=REPO_ROOT,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_mounts
@pytest.mark.parametrize("read_only", ["file", "folder"])
def test_a_read_only_state_stops_the_daemon_before_warm_up(
    tmp_path: Path, good: Good, read_only: str
) -> None:
    state = copy_state(good, tmp_path / "state")
    config = offline_config(tmp_path, state)
    before = state.read_bytes()
    target = state if read_only == "file" else state.parent
    mount = f"mount --bind {target} {target}\nmount -o remount,bind,ro {target}"

    done = in_private_mounts(mount, ["run", "--config", str(config)])

    line = assert_one_error_line(done, state, 2)
    assert re.search("readonly|read-only|Read-only", line), line
    assert "warmed up" not in done.stderr
    assert state.read_bytes() == before
    checked = in_private_mounts(mount, ["parity", "--state", str(state)])
    assert checked.returncode == 0, checked.stdout + checked.stderr  # reading needs no write


@needs_mounts
def test_a_full_disk_stops_with_the_first_error_and_keeps_every_committed_bar(
    tmp_path: Path, processes: Processes, good: Good
) -> None:
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
    state = disk / "state.sqlite"
    _, sim_port = processes.sim(Path(good.series.source), speed=40)
    http_port = free_port()
    config = write_config(
        tmp_path / "barbus.toml", sim_port=sim_port, http_port=http_port, state=state
    )
    shell = processes.spawn(
        "daemon-in-mounts",
        private_mounts_command(
            f"mount -t tmpfs -o size=32m tmpfs {disk}\n"
            f"trap 'rm -f {disk}/filler; cp -a {disk}/. {kept}/' EXIT",
            ["run", "--config", str(config)],
        ),
    )
    try:
        wait_until(
            lambda: (s := get_status(http_port)) is not None and s["bars_processed"] > HISTORY + 5,
            60,
            "live bars recorded on the tmpfs",
        )
        # The disk fills up under the running daemon (seen through its mount namespace).
        filler = Path(f"/proc/{shell.popen.pid}/root") / str(disk).lstrip("/") / "filler"
        with filler.open("wb") as handle, contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        code = shell.wait(timeout=60)
    finally:
        if shell.running():
            shell.signal(signal.SIGKILL)
            shell.wait(timeout=10)
    log = shell.log()

    assert code == 1, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("barbus: error:")]
    assert len(errors) == 1, log[-3000:]
    assert "database or disk is full" in errors[0]
    assert "cannot rollback" not in log
    assert "Traceback" not in log
    assert "warmed up; trading" in log  # it failed while trading live, not during warm-up
    failed_at = re.search(r"could not record the BTCUSDT 1m bar at (\S+)", errors[0])
    assert failed_at is not None, errors[0]
    saved = kept / "state.sqlite"
    with closing(sqlite3.connect(saved)) as db:
        assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    recorded = [bar for bar, _ in read_state(saved).bars]
    assert HISTORY < len(recorded) < ROWS
    assert recorded == bars_of(good.series)[: len(recorded)]  # every bar up to the failure
    assert format_time_ms(recorded[-1].open_time_ms + MINUTE_MS) == failed_at.group(1)
    assert_parity_cli_identical(saved)  # what was committed is whole: trades and snapshots
