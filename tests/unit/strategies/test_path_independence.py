"""Windowed indicators are functions of their window alone, so a replay's trades do not depend on
where its warm-up started (issue 9, item 1), through the CLI as a user runs it."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction
from pathlib import Path

import pytest

from barbus.strategies.indicators import SMA, BollingerBands
from tests.kit.processes import barbus

STARTS = (None, "2023-03-17T10:11", "2023-03-18")


@pytest.mark.process
@pytest.mark.parametrize("params", [(10, 30), (7, 25)])
def test_three_warm_up_starts_give_byte_identical_trades(
    btc_2023_path: Path, tmp_path: Path, params: tuple[int, int]
) -> None:
    # The 2023-03-24 halt is an hour of one close: fast == slow exactly, so with a running-sum
    # residue the exit depended on the rounding schedule, i.e. on the start (7/25 differed even
    # with the old cross rule; 10/30 with the symmetric one).
    fast, slow = params
    logs = []
    for i, start in enumerate(STARTS):
        out = tmp_path / f"run{i}"
        args = ["replay", "--strategy", "sma_cross", "--data", btc_2023_path, "--no-plot"]
        args += ["--param", f"fast={fast}", "--param", f"slow={slow}", "--no-cache"]
        args += ["--trade-from", "2023-03-19", "--out", out]
        if start is not None:
            args += ["--start", start]
        result = barbus(*args)
        assert result.returncode == 0, result.stderr
        logs.append((out / "trades.csv").read_bytes())
    assert logs[0].count(b"\n") > 1000
    assert logs[1] == logs[0]
    assert logs[2] == logs[0]


def decimal_or_not(rng: random.Random, kind: str) -> float:
    if kind == "decimal" or (kind == "mixed" and rng.random() < 0.9):
        return round(rng.uniform(1.0, 1e5), rng.randint(0, 8))
    return rng.uniform(1e-3, 1e5)


@pytest.mark.parametrize("kind", ["decimal", "binary", "mixed"])
def test_sma_and_bands_equal_a_fresh_instance_fed_only_the_window(kind: str) -> None:
    rng = random.Random(kind)
    for period in (1, 2, 7, 30):
        xs = [decimal_or_not(rng, kind) for _ in range(400)]
        xs[100:160] = [28_080.0] * 60  # a flat stretch
        sma, bands = SMA(period), BollingerBands(period)
        for i, x in enumerate(xs):
            if i == 200:  # a JSON round trip on the way changes nothing
                saved = json.loads(json.dumps([sma.snapshot(), bands.snapshot()]))
                sma, bands = SMA(period), BollingerBands(period)
                sma.restore(saved[0])
                bands.restore(saved[1])
            value = sma.update(x)
            bands.update(x)
            if i < period - 1:
                continue
            window = xs[i - period + 1 : i + 1]
            fresh, fresh_bands = SMA(period), BollingerBands(period)
            for y in window:
                fresh.update(y)
                fresh_bands.update(y)
            assert value == fresh.value == bands.middle == fresh_bands.middle
            assert bands.std == fresh_bands.std
            # Independent reference: exact rational mean and variance of the window's floats.
            exact = [Fraction(y) for y in window]
            mean = sum(exact) / period
            variance = sum((y - mean) ** 2 for y in exact) / period
            assert value == pytest.approx(float(mean), rel=1e-15)
            assert bands.std == pytest.approx(math.sqrt(variance), rel=1e-9, abs=1e-9)
            if len(set(window)) == 1:
                assert value == window[0]
                assert bands.std == 0.0


def test_an_old_sma_snapshot_with_sum_and_since_restores_from_its_window() -> None:
    # As the previous version wrote it (its "sum" carried residue); only the window counts now.
    window = [28_080.01, 28_080.02, 28_079.99]
    old = {"kind": "SMA", "period": 3, "window": window, "sum": 84_240.02000000001}
    old |= {"since": 2, "value": 28_080.006666666668, "ready": True}
    sma, fresh = SMA(3), SMA(3)
    sma.restore(old)
    for x in window:
        fresh.update(x)
    assert sma.value == fresh.value == float(sum(Fraction(str(x)) for x in window) / 3)
    assert sma.update(28_080.0) == fresh.update(28_080.0)


def test_an_old_bollinger_snapshot_with_pivot_and_m2_restores_from_its_window() -> None:
    # The previous version's layout (a sliding Welford state); only the window counts now.
    window = [28_080.0, 28_080.0, 28_080.0, 28_080.0]
    old = {"kind": "BollingerBands", "period": 4, "num_std": 2.0, "window": window}
    old |= {"pivot": 28_080.000000001, "mean": -1e-9, "m2": 3.2e-17, "noise": 1e-9, "since": 3}
    old |= {"outputs": [28_080.0, 2.8e-9, 28_080.0, 28_080.0, 0.5, 2e-13], "ready": True}
    bands = BollingerBands(4, 2.0)
    bands.restore(old)
    bands.update(28_080.0)
    assert (bands.middle, bands.std, bands.upper, bands.lower) == (
        28_080.0,
        0.0,
        28_080.0,
        28_080.0,
    )
