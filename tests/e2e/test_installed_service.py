"""The service as the README installs it: a built wheel in a venv under /opt, run by real systemd.

The wheel is built from this checkout and installed with its dependencies into a fresh venv made
from the system Python (outside /root and /home, which ``ProtectHome`` hides). The sim exchange and
the daemon then run from that venv alone, first as plain processes, then with the shipped unit
under Debian's systemd as PID 1 of a private PID and mount namespace: /etc, /opt and /var are
overlays whose upper layers live in the test's temporary folder, so ``useradd``, the config in
/etc/barbus and the state in /var/lib/barbus leave nothing on the host
(``../shared/notes/ops-recipes.md``, section 3).

Needs root, ``unshare``/``nsenter``, overlayfs, ``/lib/systemd/systemd`` and ``/usr/bin/python3``
with venv; skipped where one is missing, except under CI (``BARBUS_REQUIRE_SERVICE_TEST=1``,
set by ``.ci/run``), where a missing piece is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import clean_env, run_checked
from tests.kit.probes import get_status, http_get
from tests.kit.processes import Processes
from tests.kit.scenario import Engine, write_config
from tests.kit.waiting import wait_until
from tests.net import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
UNIT = REPO_ROOT / "ops" / "barbus.service"
SYSTEM_PYTHON = Path("/usr/bin/python3")
SYSTEMD = Path("/lib/systemd/systemd")
SYSTEMD_UNITS = Path("/usr/lib/systemd/system")
REQUIRED = os.environ.get("BARBUS_REQUIRE_SERVICE_TEST") == "1"
WATCHDOG_SECONDS = 4  # the drop-in's WatchdogSec; the shipped 30 s would only slow the test


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (namespaces, overlay mounts, /opt)"
    for tool in ("unshare", "nsenter", "useradd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not SYSTEMD.exists():
        return f"{SYSTEMD} is missing"
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} is missing"
    return None


def _require_environment() -> None:
    why = _missing()
    if why is not None:
        if REQUIRED:
            pytest.fail(f"the installed-service test is required here but {why}")
        pytest.skip(why)


def test_wheel_holds_every_package_of_the_source_tree(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packages = sorted(
        f"barbus/{init.parent.relative_to(REPO_ROOT)}"
        for top in ("daemon", "strategies", "replay")
        for init in (REPO_ROOT / top).rglob("__init__.py")
    )
    assert "barbus/daemon/feeds" in packages
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert missing == [], f"packages left out of the wheel: {missing}"
    assert any(n.startswith("barbus/replay/data/") and n.endswith(".csv.gz") for n in names)
    top_level = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert top_level == {"barbus"}, f"the wheel claims import names besides barbus: {top_level}"


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Iterator[Path]:
    """A fresh venv under /opt from the system Python, with the wheel and its dependencies."""
    _require_environment()
    root = Path(tempfile.mkdtemp(prefix="barbus-test-", dir="/opt"))
    root.chmod(0o755)  # as `sudo python3 -m venv /opt/barbus/.venv` leaves it: barbus may enter
    try:
        venv = root / ".venv"
        run_checked([str(SYSTEM_PYTHON), "-m", "venv", str(venv)])
        run_checked(
            [
                str(venv / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                str(wheel),
            ],
            timeout=900,
        )
        yield venv
    finally:
        shutil.rmtree(root, ignore_errors=True)


SERVICE_ENGINES = (Engine("sma-btc", "sma_cross"),)


def _installed(venv: Path, folder: Path) -> Processes:
    """The process kit running the installed venv's ``barbus`` (nothing from this checkout)."""
    env = {**clean_env(), "BARBUS_CACHE_DIR": str(folder / "cache")}
    return Processes(
        folder / "processes", command=(str(venv / "bin" / "barbus"),), env=env, cwd=folder
    )


def _start_sim(procs: Processes, port: int) -> None:
    """``barbus sim-exchange`` from the installed venv on its bundled data."""
    procs.sim(None, port=port, speed=20, history=600, exit_at_end=False, start_on_connect=False)
    wait_until(lambda: http_get(port, "/status"), 60, "the sim exchange to answer")


def _trading(port: int, more_than: int = 0) -> object:
    status = get_status(port)
    if status and status["ready"] and status["bars_processed"] > more_than:
        return status
    return None


def test_installed_wheel_runs_the_sim_and_the_daemon(venv: Path, tmp_path: Path) -> None:
    sim_port, http_port = free_ports(2)
    where = run_checked(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import barbus.daemon.feeds.sim as m; print(m.__file__)",
        ],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert where.startswith(str(venv)), where
    procs = _installed(venv, tmp_path)
    try:
        _start_sim(procs, sim_port)
        config = tmp_path / "barbus.toml"
        write_config(
            config,
            sim_port=sim_port,
            http_port=http_port,
            state=tmp_path / "s.sqlite",
            engines=SERVICE_ENGINES,
        )
        daemon = procs.daemon(config)
        try:
            wait_until(lambda: _trading(http_port, 600), 60, "the installed daemon to trade")
        finally:
            daemon.signal(signal.SIGTERM)
            code = daemon.wait(timeout=20)
        assert code == 0, daemon.log()
    finally:
        procs.close()


# -- under systemd -------------------------------------------------------------------------------


_INIT = """\
#!/bin/sh
# PID 1 of a private PID + mount namespace: overlays, then the README's install steps, then systemd.
set -e
mount --make-rprivate /
for d in etc opt var; do
  mkdir -p "$T/ov/$d-up" "$T/ov/$d-work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/ov/$d-up,workdir=$T/ov/$d-work" "/$d"
done
mount -t tmpfs tmpfs /run
mount --bind "$T/units" /usr/lib/systemd/system
mkdir -p /opt/barbus/.venv && mount --bind "$VENV" /opt/barbus/.venv
useradd --system --home /var/lib/barbus --shell /usr/sbin/nologin barbus
install -D -m 0644 "$T/barbus.toml" /etc/barbus/barbus.toml
install -m 0644 "$UNIT" /etc/systemd/system/barbus.service
install -D -m 0644 "$T/test.conf" /etc/systemd/system/barbus.service.d/test.conf
install -m 0644 "$T/test.target" /etc/systemd/system/test.target
export container=unshare
exec /lib/systemd/systemd --system --unit=test.target --log-target=journal-or-kmsg --show-status=no
"""


@dataclass
class _Systemd:
    """systemd as PID 1 of a namespace; commands run inside it with nsenter."""

    folder: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int | None:
        children = subprocess.run(
            ["pgrep", "-P", str(self.popen.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        return int(children[0]) if children else None

    def run(self, *args: str, check: bool = True) -> str:
        assert self.pid is not None, (self.folder / "init.log").read_text()
        done = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done.stdout

    def booted(self) -> bool:
        """systemd runs as PID 1 inside (not yet the init script) and has finished booting."""
        if self.pid is None:
            return False
        done = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", "systemctl", "is-system-running"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout.strip() in ("running", "degraded")

    def show(self, *properties: str) -> dict[str, str]:
        text = self.run("systemctl", "show", "barbus.service", *(f"-p{p}" for p in properties))
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def journal(self) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", check=False)

    def main_pid_status(self) -> dict[str, str]:
        pid = self.show("MainPID")["MainPID"]
        text = self.run("cat", f"/proc/{pid}/status")
        return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}

    def close(self) -> None:
        if self.popen.poll() is None:
            pid = self.pid
            if pid is not None:
                os.kill(pid, signal.SIGKILL)  # PID 1 of the namespace: takes every process along
            self.popen.wait(timeout=20)
        # The namespace's systemd made cgroups on the host's hierarchy: remove the empty ones.
        for top in Path("/sys/fs/cgroup").glob("*"):
            for name in ("system.slice", "init.scope"):
                tree = top / name
                if tree.is_dir():
                    for sub in sorted(tree.rglob("*"), key=lambda p: -len(p.parts)):
                        if sub.is_dir():
                            with contextlib.suppress(OSError):
                                sub.rmdir()
                    with contextlib.suppress(OSError):
                        tree.rmdir()


def _units_folder(folder: Path) -> Path:
    """The system unit folder seen inside: targets, slices, journald and the exit path only, so
    booting pulls in no host service (udev, getty, ...) but the journal the README reads."""
    units = folder / "units"
    units.mkdir()
    wanted = [*SYSTEMD_UNITS.glob("*.target"), *SYSTEMD_UNITS.glob("*.slice")]
    wanted += [*SYSTEMD_UNITS.glob("systemd-journald*"), SYSTEMD_UNITS / "systemd-exit.service"]
    for unit in wanted:
        if unit.is_file() and not unit.is_symlink():
            shutil.copy(unit, units / unit.name)
    return units


@pytest.fixture
def systemd(venv: Path, tmp_path: Path) -> Iterator[tuple[_Systemd, int, Path]]:
    sim_port, http_port = free_ports(2)
    folder = Path(tempfile.mkdtemp(prefix="barbus-systemd-", dir="/tmp"))
    procs = _installed(venv, tmp_path)
    manager: _Systemd | None = None
    try:
        _start_sim(procs, sim_port)
        _units_folder(folder)
        write_config(
            folder / "barbus.toml",
            sim_port=sim_port,
            http_port=http_port,
            state=Path("/var/lib/barbus/state.sqlite"),
            engines=SERVICE_ENGINES,
        )
        (folder / "test.conf").write_text(
            f"[Service]\nWatchdogSec={WATCHDOG_SECONDS}s\nRestartSec=1s\n", encoding="utf-8"
        )
        (folder / "test.target").write_text(
            "[Unit]\nDescription=barbus under test\n"
            "Wants=barbus.service systemd-journald.service\n",
            encoding="utf-8",
        )
        init = folder / "init.sh"
        init.write_text(_INIT, encoding="utf-8")
        init.chmod(0o755)
        env = {**clean_env(), "T": str(folder), "VENV": str(venv), "UNIT": str(UNIT)}
        with (folder / "init.log").open("wb") as log:
            popen = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount", "--uts", "--mount-proc", str(init)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        manager = _Systemd(folder, popen)
        wait_until(manager.booted, 60, "systemd to boot in its namespace")
        yield manager, http_port, folder / "ov" / "var-up" / "lib" / "barbus" / "state.sqlite"
    finally:
        if manager is not None:
            manager.close()
        procs.close()
        shutil.rmtree(folder, ignore_errors=True)


def _active_with(sd: _Systemd, restarts: int) -> dict[str, str] | None:
    state = sd.show("ActiveState", "SubState", "StatusText", "NRestarts", "MainPID", "Result")
    if state.get("ActiveState") == "failed":
        pytest.fail(f"barbus.service failed: {state}\n{sd.journal()[-3000:]}")
    if (state.get("ActiveState"), state.get("SubState")) == ("active", "running") and state.get(
        "NRestarts"
    ) == str(restarts):
        return state
    return None


def test_shipped_unit_runs_hardened_reloads_survives_the_watchdog_and_stops_cleanly(
    systemd: tuple[_Systemd, int, Path], venv: Path
) -> None:
    sd, http_port, state_file = systemd
    running = wait_until(lambda: _active_with(sd, 0), 120, "barbus.service active/running")
    assert running["StatusText"] == "trading 1 strategies on BTCUSDT"
    wait_until(lambda: _trading(http_port, 600), 60, "the service to trade live bars")

    process = sd.main_pid_status()
    uid = sd.run("id", "-u", "barbus").strip()
    assert process["Uid"].split()[0] == uid != "0"
    assert process["CapEff"] == process["CapBnd"] == "0000000000000000"
    assert process["NoNewPrivs"] == "1"
    assert process["Seccomp"] == "2"  # the system-call filter is in force
    # MemoryDenyWriteExecute=yes: the C extensions the daemon runs on are loaded and working.
    maps = sd.run("cat", f"/proc/{running['MainPID']}/maps")
    for extension in ("uvloop", "_sqlite3", "aiohttp"):
        assert extension in maps, f"{extension} is not loaded in the service"

    sd.run("systemctl", "reload", "barbus.service")
    wait_until(lambda: "log level is now INFO" in sd.journal(), 20, "SIGHUP reload in the log")
    assert sd.show("MainPID")["MainPID"] == running["MainPID"]

    # A stuck daemon stops pinging: systemd kills it and starts it again, which resumes.
    sd.run("kill", "-STOP", running["MainPID"])
    restarted = wait_until(lambda: _active_with(sd, 1), 10 * WATCHDOG_SECONDS, "a watchdog restart")
    assert restarted["MainPID"] != running["MainPID"]
    assert "Watchdog timeout" in sd.journal()
    before = get_status(http_port)
    wait_until(
        lambda: _trading(http_port, (before or {}).get("bars_processed", 0)),
        60,
        "the restarted service to trade on",
    )

    sd.run("systemctl", "stop", "barbus.service")
    stopped = sd.show("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")
    assert stopped == {
        "ActiveState": "inactive",
        "Result": "success",
        "ExecMainCode": "1",  # exited (not killed)
        "ExecMainStatus": "0",
    }, sd.journal()[-3000:]

    # What the service recorded across the watchdog kill replays to the same trades.
    parity = subprocess.run(
        [str(venv / "bin" / "barbus"), "parity", "--state", str(state_file)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
        check=False,
    )
    assert parity.returncode == 0, parity.stdout + parity.stderr
    [line] = parity.stdout.splitlines()
    assert line.startswith("sma-btc: "), line
    assert line.endswith(": identical"), line

    # A refusal (exit 2, here a config error) fails the unit at once instead of a restart loop.
    sd.run("sh", "-c", "echo 'bogus = 1' >> /etc/barbus/barbus.toml")
    sd.run("systemctl", "start", "--no-block", "barbus.service")

    def failed_unit() -> dict[str, str] | None:
        state = sd.show("ActiveState", "ExecMainStatus", "NRestarts")
        return state if state["ActiveState"] == "failed" else None

    failed = wait_until(failed_unit, 30, "the misconfigured service to fail")
    assert failed["ExecMainStatus"] == "2"
    assert failed["NRestarts"] == "0", sd.journal()[-2000:]
