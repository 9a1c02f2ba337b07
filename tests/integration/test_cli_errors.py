"""Every way the CLI can be misused ends with one line on stderr and an exit code, no traceback.

The cases: busy ports and foreign or unresolvable bind addresses (a real socket holds the port),
``--out`` that cannot be written (checked before any data is loaded), times in epoch seconds,
periods with a time of day or without bars, bad ``--workers``, and stdout piped into a reader
that stops early. Most run ``main([...])`` in this process (a traceback there is an exception
that fails the test); where the process boundary is the point, a real process runs: the
console script's exit code and stderr on a usage error, and stdout into a closed pipe.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BTC_2023_WITH_GAP
from tests.kit.in_process import Run, run_main
from tests.kit.processes import REPO_ROOT, barbus, checkout_env
from tests.kit.scenario import ENGINES, write_config

DATA = BTC_2023_WITH_GAP
ONE_DAY = "2023-03-20:2023-03-21"
CONSOLE_SCRIPT = Path(sys.executable).with_name("barbus")

Cli = Callable[..., Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``barbus ARGS`` through :func:`main` in this process, run as the kit's ``barbus`` runs
    it in a subprocess (from the repository, not under journald)."""
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    return functools.partial(run_main, capsys)


def console_script(*args: object) -> Run:
    """``barbus ARGS`` through the installed console script, this checkout's code first."""
    assert CONSOLE_SCRIPT.exists(), f"no console script {CONSOLE_SCRIPT}: make venv installs it"
    command = [str(CONSOLE_SCRIPT), *map(str, args)]
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def iso(ms: int) -> str:
    """Epoch ms as ISO UTC, by datetime (not the code under test)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms_of(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module")
def data_first_last() -> tuple[str, str]:
    """The bundled 2023 file's first and last bar, read with pandas."""
    times = pd.read_csv(DATA)["open_time_ms"]
    return iso(int(times.iloc[0])), iso(int(times.iloc[-1]))


def error_line(run: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The run's last stderr line, checked to be the only error and no traceback."""
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    lines = run.stderr.splitlines()
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, run.stderr
    assert lines[-1] == errors[0], run.stderr
    return lines[-1]


# -- ports and bind addresses ----------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 held by a real listening socket for the test's duration."""
    with socket.create_server(("127.0.0.1", 0)) as held:
        yield held.getsockname()[1]


def daemon_config(tmp_path: Path, http_port: int, host: str | None = None) -> Path:
    config = write_config(
        tmp_path / "barbus.toml",
        sim_port=9,  # never reached: the HTTP port is bound before the feed connects
        http_port=http_port,
        state=tmp_path / "state.sqlite",
        engines=ENGINES[:1],
    )
    if host is not None:
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace("[http]\n", f'[http]\nhost = "{host}"\nexpose = true\n'), "utf-8"
        )
    return config


def bind_command(command: str, tmp_path: Path, host: str, port: int) -> list[object]:
    if command == "run":
        local = host == "127.0.0.1"
        return ["run", "--config", daemon_config(tmp_path, port, None if local else host)]
    return ["sim-exchange", "--host", host, "--port", port, "--data", DATA]


@pytest.mark.parametrize("command", ["run", "sim-exchange", "batch"])
def test_busy_port_is_one_line(command: str, busy_port: int, tmp_path: Path, cli: Cli) -> None:
    if command == "batch":
        args: list[object] = [
            *("batch", "--strategy", "sma_cross", "--data", DATA, "--period", ONE_DAY),
            *("--out", tmp_path / "out", "--no-parallel", "--metrics-port", busy_port),
        ]
        what = f"--metrics-port {busy_port} cannot listen"
    else:
        args = bind_command(command, tmp_path, "127.0.0.1", busy_port)
        what = "[http] cannot listen" if command == "run" else "sim-exchange --host/--port cannot"

    line = error_line(cli(*args))

    assert what in line
    assert f"127.0.0.1:{busy_port}: port {busy_port} is already in use" in line


@pytest.mark.parametrize("command", ["run", "sim-exchange"])
@pytest.mark.parametrize(
    ("host", "reason"),
    [
        pytest.param("192.0.2.1", "192.0.2.1 is not an address of this machine", id="test-net"),
        # A space makes the resolver refuse the name without sending a DNS query.
        pytest.param(
            "no such host", "cannot resolve the host name 'no such host'", id="unresolvable"
        ),
        pytest.param("ü..name", "'ü..name' is not a valid host name", id="unencodable"),
    ],
)
def test_foreign_or_unresolvable_bind_address_is_one_line(
    command: str, host: str, reason: str, tmp_path: Path, cli: Cli
) -> None:
    line = error_line(cli(*bind_command(command, tmp_path, host, 0)))

    assert f"cannot listen on {host}:0: {reason}" in line


@pytest.mark.parametrize("option", ["--port", "--metrics-port"])
def test_port_out_of_range_is_a_usage_error(option: str, tmp_path: Path) -> None:
    if option == "--port":
        run = console_script("sim-exchange", "--port", "70000")
    else:
        run = console_script("batch", "--strategy", "x", "--out", tmp_path, option, "70000")

    line = error_line(run)

    assert f"argument {option}: must be a port number 0-65535, got '70000'" in line


# -- --out -----------------------------------------------------------------------------------


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write into, even as root (immutable), removed afterwards."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: no folder is unwritable")
        done = subprocess.run(["chattr", "+i", folder], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not supported here: {done.stderr!r}")
    else:
        folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError):
            (folder / "probe").write_text("x")
        yield folder
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", folder], check=True)
        folder.chmod(0o755)


def out_command(command: str, out: Path, cache: Path, data: Path = DATA) -> list[object]:
    """A replay or batch that would load ``data`` into ``cache`` and write into ``out``."""
    common = ["--strategy", "sma_cross", "--data", data, "--out", out, "--cache-dir", cache]
    if command == "replay":
        return ["replay", *common, "--start", "2023-03-20", "--end", "2023-03-21"]
    return ["batch", *common, "--period", ONE_DAY, "--no-parallel", "--plots", "0"]


@pytest.mark.parametrize("command", ["replay", "batch"])
def test_out_that_is_a_file_fails_before_any_work(command: str, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "results.txt"
    out.write_text("keep me\n", encoding="utf-8")
    cache = tmp_path / "cache"
    started = time.monotonic()

    line = error_line(cli(*out_command(command, out, cache)))

    assert (
        line == f"barbus: error: --out {out} is a file, not a folder: give a folder to write into"
    )
    assert time.monotonic() - started < 30  # a process start, not a replay
    assert out.read_text(encoding="utf-8") == "keep me\n"
    assert not cache.exists()  # no data was loaded (the cache would hold an entry)


@pytest.mark.parametrize("command", ["replay", "batch"])
def test_out_is_checked_before_the_data(command: str, tmp_path: Path, cli: Cli) -> None:
    """With a missing data file too, the --out error comes first: nothing was read."""
    out = tmp_path / "file"
    out.write_text("", encoding="utf-8")

    line = error_line(cli(*out_command(command, out, tmp_path / "c", tmp_path / "no.csv")))

    assert f"--out {out} is a file" in line


@pytest.mark.parametrize("command", ["replay", "batch"])
@pytest.mark.parametrize("inside", [False, True], ids=["the-folder", "a-new-folder-inside"])
def test_out_in_an_unwritable_folder_fails_before_any_work(
    command: str, inside: bool, unwritable: Path, tmp_path: Path, cli: Cli
) -> None:
    out = unwritable / "new" / "run" if inside else unwritable
    cache = tmp_path / "cache"

    line = error_line(cli(*out_command(command, out, cache)))

    if inside:
        assert line.endswith(f"--out {out}: cannot create it, {unwritable} is not writable")
    else:
        assert line.endswith(f"--out {out}: the folder is not writable")
    assert list(unwritable.iterdir()) == []
    assert not cache.exists()


# -- times and periods -----------------------------------------------------------------------


def test_epoch_seconds_are_read_as_seconds_and_say_so(tmp_path: Path, cli: Cli) -> None:
    start_s, trade_from_s = 1679500000, 1679520000  # 2023-03-22T15:46:40Z, 21:20:00Z
    end_ms = ms_of("2023-03-23T19:33:20")
    run = cli(
        *("replay", "--strategy", "sma_cross", "--data", DATA, "--out", tmp_path, "--no-plot"),
        *("--start", start_s, "--end", end_ms, "--trade-from", trade_from_s),
    )

    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["first_bar"] == "2023-03-22T15:47:00Z"  # the first whole minute after start
    assert summary["last_bar"] == "2023-03-23T19:33:00Z"
    assert f"--start {start_s} read as epoch seconds: 2023-03-22T15:46:40Z" in run.stderr
    assert f"--end {end_ms} read as epoch milliseconds: 2023-03-23T19:33:20Z" in run.stderr
    assert f"--trade-from {trade_from_s} read as epoch seconds: 2023-03-22T21:20:00Z" in run.stderr
    trades = pd.read_csv(tmp_path / "trades.csv")
    assert len(trades) > 0
    assert (trades["entry_time_ms"] >= trade_from_s * 1000).all()


def batch_rows(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_spec_file_times_take_epoch_seconds_and_toml_dates(tmp_path: Path, cli: Cli) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[[run]]\nstrategy = "sma_cross"\ndata = ["{DATA}"]\n'
        "periods = [[1679270400, 2023-03-21T00:00:00Z]]\n"  # 2023-03-20 in seconds, a datetime
        "start = 2023-03-22\nend = 1679616000000\n",  # a TOML date, 2023-03-24 in ms
        encoding="utf-8",
    )
    out = tmp_path / "out"

    run = cli("batch", spec, "--out", out, "--no-parallel", "--plots", "0")

    assert run.returncode == 0, run.stderr
    periods = sorted((row["start_ms"], row["end_ms"]) for row in batch_rows(out))
    assert periods == [
        (ms_of("2023-03-20"), ms_of("2023-03-21")),
        (ms_of("2023-03-22"), ms_of("2023-03-24")),
    ]
    assert "periods #1 start 1679270400 read as epoch seconds: 2023-03-20T00:00:00Z" in run.stderr


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2023-03-20T12:00:2023-03-21", "2023-03-20T12:00", "2023-03-21"),
        ("2023-03-20T12:00:30:2023-03-21T06:15", "2023-03-20T12:00:30", "2023-03-21T06:15"),
        ("2023-03-20T12:00+02:00:2023-03-21", "2023-03-20T10:00", "2023-03-21"),
        ("1679313600:1679356800", "2023-03-20T12:00", "2023-03-21T00:00"),
        ("2023-05-05T07:00:", "2023-05-05T07:00", None),
    ],
)
def test_period_with_a_time_of_day_parses(
    period: str, start: str, end: str | None, tmp_path: Path, cli: Cli
) -> None:
    run = cli(
        *("batch", "--strategy", "sma_cross", "--data", DATA, "--period", period),
        *("--out", tmp_path, "--no-parallel", "--plots", "0"),
    )

    assert run.returncode == 0, run.stderr
    (row,) = batch_rows(tmp_path)
    assert (row["start_ms"], row["end_ms"]) == (ms_of(start), ms_of(end) if end else None)


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("banana", "--period 'banana' is not a period: expected START:END"),
        ("2023-03-20", "--period '2023-03-20' is not a period: expected START:END"),
        ("yesterday:today", "--period 'yesterday:today' is not a period"),
        ("\u00b2:", "--period '\u00b2:' is not a period"),  # "²".isdigit() is True, int("²") fails
        (
            "2023-03-21:2023-03-20T12:00",
            "--period 2023-03-21 .. 2023-03-20T12:00 is empty: its end (2023-03-20T12:00:00Z) "
            "is before its start (2023-03-21T00:00:00Z)",
        ),
        (
            "2023-03-21:1679356800",
            "is empty: its end (2023-03-21T00:00:00Z) is the same as its start",
        ),
    ],
)
def test_bad_period_is_one_line(period: str, message: str, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out"
    run = cli(
        *("batch", "--strategy", "sma_cross", "--data", DATA, "--period", period),
        *("--out", out, "--no-parallel"),
    )

    assert message in error_line(run)
    assert not out.exists()


@pytest.mark.parametrize("option", ["--start", "--end", "--trade-from"])
def test_a_time_of_non_ascii_digits_is_one_line(option: str, tmp_path: Path, cli: Cli) -> None:
    run = cli("replay", "--strategy", "sma_cross", "--data", DATA, option, "\u00b2")

    assert f"{option}: cannot read time '\u00b2'" in error_line(run)


@pytest.mark.parametrize(
    ("start", "end", "why"),
    [
        ("2020-01-01", "2020-01-02", "it ends before the data starts"),
        ("2024-01-01", None, "it starts after the data ends"),
        ("2023-03-24T13:00", "2023-03-24T13:30", "it falls in a gap of the data"),
    ],
)
def test_empty_period_names_the_datas_first_and_last_bar(
    start: str, end: str | None, why: str, data_first_last: tuple[str, str], cli: Cli
) -> None:
    first, last = data_first_last
    period = ["--start", start] + (["--end", end] if end else [])

    line = error_line(cli("replay", "--strategy", "sma_cross", "--data", DATA, *period))

    shown_end = iso(ms_of(end)) if end else "the last bar"
    assert f"no bars in the requested period {iso(ms_of(start))} .. {shown_end} ({why})" in line
    assert f"the data runs from {first} to {last} (first and last bar)" in line


def test_replay_start_after_end_says_so(cli: Cli) -> None:
    run = cli(
        *("replay", "--strategy", "sma_cross", "--data", DATA),
        *("--start", "1680307200", "--end", "2023-03-20"),  # 2023-04-01 in seconds
    )

    line = error_line(run)

    assert line == (
        "barbus: error: --start/--end 1680307200 .. 2023-03-20 is empty: its end "
        "(2023-03-20T00:00:00Z) is before its start (2023-04-01T00:00:00Z)"
    )


def test_batch_job_on_an_empty_period_names_the_data(
    tmp_path: Path, data_first_last: tuple[str, str], cli: Cli
) -> None:
    first, last = data_first_last
    run = cli(
        *("batch", "--strategy", "sma_cross", "--data", DATA, "--period", "2020-01-01:2020-01-02"),
        *("--out", tmp_path, "--no-parallel", "--plots", "0"),
    )

    assert run.returncode == 0, run.stderr
    (row,) = batch_rows(tmp_path)
    assert row["status"] == "failed"
    assert f"the data runs from {first} to {last} (first and last bar)" in str(row["error"])


# -- --workers -------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["-1", "0", "two"])
def test_workers_must_be_positive(workers: str, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "out"
    run = cli(
        *("batch", "--strategy", "sma_cross", "--data", DATA, "--period", ONE_DAY),
        *("--out", out, "--workers", workers),
    )

    line = error_line(run)

    assert line.endswith(f"argument --workers: must be a positive integer, got '{workers}'")
    assert not out.exists()


def test_spec_workers_must_be_positive(tmp_path: Path, cli: Cli) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'workers = -1\n[[run]]\nstrategy = "sma_cross"\ndata = ["{DATA}"]\n', encoding="utf-8"
    )

    line = error_line(cli("batch", spec, "--out", tmp_path / "out"))

    assert line == f"barbus: error: {spec}: workers must be a positive integer, got -1"


# -- stdout into a reader that stops early ----------------------------------------------------


def piped_commands(tmp_path: Path) -> dict[str, list[object]]:
    return {
        "strategies": ["strategies"],
        "cache-ls": ["cache", "ls"],
        "batch": [
            *("batch", "--strategy", "sma_cross", "--data", DATA, "--period", ONE_DAY),
            *("--grid", "fast=5,10", "--out", tmp_path / "out", "--no-parallel", "--plots", "0"),
        ],
        "help": ["--help"],
    }


def assert_quiet_exit(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "BrokenPipe" not in run.stderr
    assert "Exception ignored" not in run.stderr


@pytest.mark.parametrize("command", ["strategies", "cache-ls", "batch", "help"])
def test_output_into_a_closed_pipe_exits_quietly(command: str, tmp_path: Path) -> None:
    """The reader is gone before the first write: every write fails (deterministically)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = barbus(*piped_commands(tmp_path)[command], stdout=write_end)
    finally:
        os.close(write_end)

    assert_quiet_exit(run)


@pytest.mark.parametrize("command", ["strategies", "cache-ls", "batch"])
def test_output_piped_into_head_exits_quietly(command: str, tmp_path: Path) -> None:
    """``barbus ... | head -1``: a reader that takes the first line and closes the pipe."""
    read_end, write_end = os.pipe()
    first: list[str] = []

    def head() -> None:
        with os.fdopen(read_end, encoding="utf-8") as reader:
            first.append(reader.readline())

    reader = threading.Thread(target=head)
    reader.start()
    try:
        run = barbus(*piped_commands(tmp_path)[command], stdout=write_end)
    finally:
        os.close(write_end)
        reader.join(timeout=30)

    assert_quiet_exit(run)
    expected = {"strategies": "sma_cross: ", "cache-ls": "cache ", "batch": "job "}[command]
    assert first[0].startswith(expected), first
