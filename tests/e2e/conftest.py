"""What the end-to-end tests share: the wheel built from this checkout, and running commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_checked(
    args: list[str],
    timeout: float = 300,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run ``args``; its stdout, or a test failure with its stderr when it exits non-zero."""
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=cwd
    )
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def clean_env() -> dict[str, str]:
    """The environment of a user with only the installed venv: nothing from this checkout."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip install /path/to/barbus`` builds from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    run_checked(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(out),
            str(REPO_ROOT),
        ]
    )
    [built] = out.glob("barbus-*.whl")
    return built
