"""The recorded equity curve costs 8 bytes a bar (a float64 store), not a list of float objects."""

from __future__ import annotations

import tracemalloc

import numpy as np

from barbus.daemon.core.engine import StrategyEngine
from tests.factories import make_bar
from tests.unit.core.kit import FREE, Script, ScriptParams

BARS = 50_000


def _retained(record_equity: bool) -> tuple[int, StrategyEngine]:
    """Bytes still allocated after feeding BARS bars to an engine that never trades."""
    bars = [make_bar(100.0 + (i % 7), minute=i) for i in range(BARS)]
    e = StrategyEngine(Script(ScriptParams(), {}), "BTCUSDT", FREE, record_equity=record_equity)
    tracemalloc.start()
    try:
        for b in bars:
            e.on_bar(b)
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return retained, e


def test_equity_curve_retains_about_eight_bytes_a_bar_and_reads_as_float64() -> None:
    without, _ = _retained(False)
    retained, e = _retained(True)
    # A list keeps an 8-byte slot plus a 24-byte float per bar (~1.6 MB here); float64 keeps 8.
    extra = retained - without
    assert extra < 10 * BARS + 64 * 1024, f"{extra:,} bytes for {BARS:,} bars"
    assert e.equity_curve is not None
    curve = np.frombuffer(e.equity_curve, dtype=np.float64)
    assert curve.shape == (BARS,)
    assert (curve == 10_000.0).all()  # the starting cash, never invested
