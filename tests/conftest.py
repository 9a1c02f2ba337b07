"""Shared test set-up: hypothesis profiles and the bundled data paths."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI runs derandomised so a red build is reproducible; locally hypothesis explores freely.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Never touch the user's real cache: every test (and every subprocess it starts) gets its own.
os.environ["BARBUS_CACHE_DIR"] = _CACHE_DIR = tempfile.mkdtemp(prefix="barbus-test-cache-")
atexit.register(shutil.rmtree, _CACHE_DIR, True)

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
