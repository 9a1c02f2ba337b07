"""Shared test set-up: hypothesis profiles, the bundled data paths and the ``process`` tier."""

from __future__ import annotations

import atexit
import multiprocessing.process
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI runs derandomised so a red build is reproducible; locally hypothesis explores freely.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
# make test-fast: a quick look while editing (make test and CI run the full example counts).
settings.register_profile("fast", deadline=None, max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Never touch the user's real cache: every test (and every subprocess it starts) gets its own.
os.environ["BARBUS_CACHE_DIR"] = _CACHE_DIR = tempfile.mkdtemp(prefix="barbus-test-cache-")
atexit.register(shutil.rmtree, _CACHE_DIR, True)
# Nor the user's data folder: --data SYMBOL and the daemon's warm-up read an empty one unless a
# test points them at its own.
os.environ["BARBUS_DATA_DIR"] = _DATA_FOLDER = tempfile.mkdtemp(prefix="barbus-test-data-")
atexit.register(shutil.rmtree, _DATA_FOLDER, True)

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "replay" / "data"
BTC_2025 = DATA_DIR / "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"
BTC_2023_WITH_GAP = DATA_DIR / "BTCUSDT_1m_2023-03-16_2023-05-05.csv.gz"


@pytest.fixture(scope="session")
def btc_2025_path() -> Path:
    return BTC_2025


@pytest.fixture(scope="session")
def btc_2023_path() -> Path:
    return BTC_2023_WITH_GAP


# -- the process tier --------------------------------------------------------------------------

# Folders whose every test runs real processes (the CLI, the sim, the daemon, Prometheus).
PROCESS_FOLDERS = (REPO_ROOT / "tests" / "integration", REPO_ROOT / "tests" / "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under ``PROCESS_FOLDERS`` ``process`` (elsewhere the module marks it)."""
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in PROCESS_FOLDERS):
            item.add_marker(pytest.mark.process)


def _no_process(*_args: object, **_kwargs: object) -> None:
    raise AssertionError(
        "this test starts a process but is not marked `process` (pytest.mark.process), so "
        "`make test-fast` would run it: mark it"
    )


@pytest.fixture(autouse=True)
def _fast_tier_starts_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``-m "not process"`` (``make test-fast``) a test that starts a subprocess or a
    worker process fails, so the fast tier stays what it says (the full run is untouched)."""
    if "not process" not in str(request.config.getoption("markexpr", "")):
        return
    if request.node.get_closest_marker("process") is not None:
        return
    monkeypatch.setattr(subprocess.Popen, "__init__", _no_process)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", _no_process)
