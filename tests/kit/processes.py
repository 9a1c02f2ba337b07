"""Child processes of a test: this checkout's ``barbus`` (or an installed one), sims and daemons.

Output goes to files (no pipe fills up and blocks a child), every process is ended at teardown,
and a sim's address is read from the one JSON line it prints once it listens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kit.scenario import HISTORY, SPEED
from tests.kit.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_CLI = (sys.executable, "-m", "barbus.daemon.cli")  # ``barbus`` from this checkout


def checkout_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child that runs this checkout, without systemd's variables (the
    test's own service manager would otherwise receive the child's notifications)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"):
        env.pop(name, None)
    return {**env, **(extra or {})}


class Proc:
    """A child process whose stdout and stderr go to files (no pipe can fill up and block it)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        folder: Path,
        env: dict[str, str],
        cwd: Path = REPO_ROOT,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.out_path = folder / f"{name}.out"
        self.err_path = folder / f"{name}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.popen = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
                preexec_fn=preexec,  # noqa: PLW1509 - the child runs no threads before exec
            )

    def running(self) -> bool:
        return self.popen.poll() is None

    def code(self) -> int | None:
        return self.popen.poll()

    def log(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def stop_cleanly(self, timeout: float = 15) -> str:
        """SIGTERM, which must end the process with exit 0 within ``timeout``; its log."""
        self.popen.send_signal(signal.SIGTERM)
        assert self.wait(timeout=timeout) == 0, self.log()[-3000:]
        return self.log()

    def stop(self) -> None:
        """Teardown: terminate, then kill what does not go."""
        if self.running():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def announced(proc: Proc, timeout: float = 60) -> dict[str, Any]:
    """The JSON line a sim exchange prints once it listens (``{"host": ..., "port": ...}``)."""
    text = wait_until(
        lambda: proc.stdout() if "\n" in proc.stdout() else None,
        timeout,
        f"{proc.name}'s address line",
        watch=proc,
    )
    address: dict[str, Any] = json.loads(text.splitlines()[0])
    return address


class Processes:
    """Starts sims and daemons; :meth:`close` ends every one still running (fixture teardown).

    ``command`` is how ``barbus`` is run (this checkout by default; an installed venv's
    ``bin/barbus`` with its own ``env`` and ``cwd`` in the end-to-end tests)."""

    def __init__(
        self,
        folder: Path,
        *,
        command: tuple[str, ...] = CHECKOUT_CLI,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.folder = folder
        self.command = command
        self.base_env = checkout_env() if env is None else env
        self.cwd = cwd
        self.started: list[Proc] = []
        folder.mkdir(parents=True, exist_ok=True)

    def start(
        self,
        name: str,
        args: list[str],
        env: dict[str, str] | None = None,
        *,
        preexec: Callable[[], None] | None = None,
    ) -> Proc:
        """``barbus ARGS...`` as a child process, ended at :meth:`close`."""
        return self.spawn(name, [*self.command, *args], env, preexec=preexec)

    def spawn(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        *,
        preexec: Callable[[], None] | None = None,
    ) -> Proc:
        """Any program (e.g. ``prometheus``) as a child process, ended at :meth:`close`."""
        proc = Proc(
            f"{len(self.started):02d}-{name}",
            command,
            self.folder,
            {**self.base_env, **(env or {})},
            self.cwd,
            preexec,
        )
        self.started.append(proc)
        return proc

    def sim(
        self,
        data: Path | list[Path] | None,
        *extra: str,
        port: int = 0,
        speed: float = SPEED,
        exit_at_end: bool = True,
        history: int = HISTORY,
        start_on_connect: bool = True,
    ) -> tuple[Proc, int]:
        """A sim exchange on ``data`` (None: its bundled data); returns it with the port it
        listens on, read from the line it prints. Without ``exit_at_end`` it keeps serving
        (REST backfills) until the test ends it."""
        files = [] if data is None else data if isinstance(data, list) else [data]
        proc = self.start(
            "sim",
            [
                "sim-exchange",
                *(w for path in files for w in ("--data", str(path))),
                "--port",
                str(port),
                "--speed",
                str(speed),
                "--history-bars",
                str(history),
                *(["--start-on-connect"] if start_on_connect else []),
                *(["--exit-at-end"] if exit_at_end else []),
                *extra,
            ],
        )
        bound: int = announced(proc)["port"]
        return proc, bound

    def daemon(
        self,
        config: Path,
        env: dict[str, str] | None = None,
        *,
        preexec: Callable[[], None] | None = None,
    ) -> Proc:
        return self.start("daemon", ["run", "--config", str(config)], env, preexec=preexec)

    def close(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


def barbus(
    *args: object,
    timeout: float = 120,
    stdout: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``barbus ARGS...`` from this checkout, to completion, its output captured (stdout goes
    to the file descriptor ``stdout`` instead when given, e.g. a pipe's write end), with the
    extra environment ``env``."""
    return subprocess.run(
        [*CHECKOUT_CLI, *map(str, args)],
        cwd=REPO_ROOT,
        env=checkout_env(env),
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )


def checkout_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -c CODE`` on this checkout (the kernel chosen afresh), its output captured."""
    return subprocess.run(
        [CHECKOUT_CLI[0], "-c", code],
        cwd=REPO_ROOT,
        env=checkout_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
