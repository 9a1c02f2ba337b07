"""The compiled kernel gives the pure-Python kernel's results, byte for byte.

Every shipped strategy (as ``barbus strategies`` lists them) and every example user strategy
file runs ``barbus replay`` twice on the same bars, once on the compiled kernel and once with
``BARBUS_PURE_PYTHON=1``, on the bundled data and on 200k synthetic bars; trades.csv and
summary.json (without its two timing keys) must be identical. The daemon path too: a daemon on
the compiled kernel trades against the sim exchange, and ``barbus parity`` on the pure kernel
must find every engine's trades identical (and the strategies' fingerprints the same).

Without a compiled kernel these tests skip, saying so, unless ``BARBUS_REQUIRE_COMPILED=1``
(CI's compiled leg) makes that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from barbus.daemon.core.synthetic import synthetic_series
from barbus.replay.bars_out import write_bars
from tests.conftest import BTC_2025
from tests.kit.probes import all_bars_processed
from tests.kit.processes import REPO_ROOT, Processes, barbus, checkout_python
from tests.kit.scenario import ENGINE_NAMES, ENGINES, write_config, write_slice
from tests.kit.waiting import wait_until
from tests.net import free_port

pytestmark = pytest.mark.process

PURE = {"BARBUS_PURE_PYTHON": "1"}
TIMING_KEYS = ("replay_seconds", "bars_per_second")
SYNTHETIC_BARS = 200_000
EXAMPLES = sorted((REPO_ROOT / "examples" / "strategies").glob("*.py"))


def run_cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``barbus ARGS`` from this checkout with extra environment ``env``."""
    return barbus(*args, env=env, timeout=600)


@pytest.fixture(scope="module", autouse=True)
def compiled_kernel() -> None:
    """The checkout runs the compiled kernel (else skip, or fail under BARBUS_REQUIRE_COMPILED)."""
    version = run_cli("--version")
    assert version.returncode == 0, version.stderr
    if "compiled kernel" not in version.stdout:
        why = f"no compiled kernel runs here: {version.stdout.strip()} {version.stderr.strip()}"
        if os.environ.get("BARBUS_REQUIRE_COMPILED", "") not in ("", "0"):
            pytest.fail(f"BARBUS_REQUIRE_COMPILED is set but {why}")
        pytest.skip(why)
    pure = run_cli("--version", env=PURE)
    assert "pure-Python kernel (BARBUS_PURE_PYTHON is set)" in pure.stdout, pure.stdout


def shipped_strategies() -> list[str]:
    """The built-in names, from ``barbus strategies`` (an unindented ``name: summary`` line)."""
    listed = run_cli("strategies")
    assert listed.returncode == 0, listed.stderr
    names = [line.split(":")[0] for line in listed.stdout.splitlines() if line[:1].isalnum()]
    assert {"sma_cross", "metatrend", "bbrs", "random"} <= set(names), listed.stdout
    return names


SPECS = [*shipped_strategies(), *(str(path.relative_to(REPO_ROOT)) for path in EXAMPLES)]


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    return write_bars(folder / "SYNTHUSDT_1m.csv", synthetic_series(SYNTHETIC_BARS))


@dataclass(frozen=True)
class Replay:
    trades: bytes
    summary: dict[str, object]
    stderr: str


def replay(spec: str, data: Path, out: Path, env: dict[str, str] | None = None) -> Replay:
    done = run_cli(
        "replay", "--strategy", spec, "--data", data, "--out", out, "--no-plot", "--no-cache",
        "--allow-short", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    for key in TIMING_KEYS:
        assert key in summary
        del summary[key]
    return Replay((out / "trades.csv").read_bytes(), summary, done.stderr)


@pytest.mark.parametrize("data_name", ["bundled", "synthetic"])
@pytest.mark.parametrize("spec", SPECS)
def test_compiled_and_pure_replays_are_byte_identical(
    spec: str, data_name: str, synthetic_csv: Path, tmp_path: Path
) -> None:
    data = BTC_2025 if data_name == "bundled" else synthetic_csv
    compiled = replay(spec, data, tmp_path / "compiled")
    pure = replay(spec, data, tmp_path / "pure", env=PURE)
    assert "older than its source" not in compiled.stderr  # the compiled run was compiled
    assert compiled.trades == pure.trades
    assert compiled.summary == pure.summary
    assert json.dumps(compiled.summary) == json.dumps(pure.summary)  # same keys, same order
    assert compiled.trades.count(b"\n") > 1 or compiled.summary["trades"] == 0


def test_every_strategy_trades_somewhere(synthetic_csv: Path, tmp_path: Path) -> None:
    """The byte comparison is not vacuous: each strategy trades on the synthetic bars."""
    for spec in SPECS:
        result = replay(spec, synthetic_csv, tmp_path / spec.replace("/", "_"))
        assert int(str(result.summary["trades"])) > 0, spec


@pytest.fixture(scope="module")
def compiled_daemon_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A daemon on the compiled kernel ran the shipped strategies over 1,500 bars of the sim."""
    folder = tmp_path_factory.mktemp("compiled-daemon")
    series = write_slice(BTC_2025, 30_000, 1_500, folder / "data")
    procs = Processes(folder / "processes")
    try:
        _, sim_port = procs.sim(Path(series.source))
        http_port = free_port()
        state = folder / "state.sqlite"
        config = write_config(
            folder / "barbus.toml", sim_port=sim_port, http_port=http_port, state=state,
            engines=ENGINES,
        )  # fmt: skip
        daemon = procs.daemon(config)
        wait_until(all_bars_processed(http_port, series), 120, "every bar", watch=daemon)
        log = daemon.stop_cleanly()
        assert "older than its source" not in log
        yield state
    finally:
        procs.close()


def test_pure_parity_finds_the_compiled_daemons_trades_identical(
    compiled_daemon_state: Path,
) -> None:
    done = run_cli("parity", "--state", compiled_daemon_state, env=PURE)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(ENGINE_NAMES)
    assert all(line.endswith(": identical") for line in lines), done.stdout


def test_a_cli_error_is_one_line_and_exit_2_on_both_kernels(tmp_path: Path) -> None:
    """A short without --allow-short halts the strategy: the kernel's StrategyError (a compiled
    exception class) must reach the CLI as one line and exit 2, as it does in pure Python."""
    spec = "examples/strategies/ema_long_short.py"
    args = ("replay", "--strategy", spec, "--no-plot", "--no-cache", "--out", tmp_path / "out")
    compiled, pure = run_cli(*args), run_cli(*args, env=PURE)
    assert (compiled.returncode, pure.returncode) == (2, 2), compiled.stderr
    assert compiled.stderr == pure.stderr
    assert compiled.stderr.startswith("barbus: error: ")
    assert compiled.stderr.count("\n") == 1


def test_an_interpreted_user_strategy_runs_on_the_compiled_bases() -> None:
    """examples/strategies/ema_cross.py and a strategy with its own parameter dataclass that
    redeclares an inherited field subclass the compiled ``Strategy`` in-process: snapshot and
    restore, ready and warmup_bars work on them (run in a child, so this process's kernel choice
    does not matter)."""
    done = checkout_python(USER_STRATEGY_CHECK)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["compiled", "ok"], done.stdout


USER_STRATEGY_CHECK = """
import dataclasses, importlib.machinery, math
import barbus.daemon.core.engine as engine, barbus.daemon.core.strategy as strategy
from barbus.daemon.core.synthetic import synthetic_series
from barbus.daemon.core.events import Bar, Signal
from barbus.kernel_build import build_name
from barbus.strategies.base import BaseParams, Strategy
from barbus.strategies.indicators import EMA, SMA
from barbus.strategies.loader import resolve_strategy

ext = tuple(importlib.machinery.EXTENSION_SUFFIXES)
for module in (engine, strategy):
    assert module.__file__.endswith(ext), module.__file__
print(build_name())

@dataclasses.dataclass(frozen=True)
class OwnParams(BaseParams):
    timeframe: str = "5m"  # redeclared: kept in the instance dict of an interpreted subclass
    period: int = 7

class Own(Strategy[OwnParams]):
    params_type = OwnParams
    def __init__(self, p):
        super().__init__(p)
        self._sma = SMA(p.period)
        self.count = 0
    def on_bar(self, bar, position):
        self.count += 1
        self._sma.update(bar.close)
        return None

ema_cross = resolve_strategy("examples/strategies/ema_cross.py").cls
assert not ema_cross.__module__.startswith("barbus"), ema_cross.__module__
series = synthetic_series(500)
bars = [Bar(series.symbol, "1m", t, o, h, l, c, v) for t, o, h, l, c, v in zip(
    series.open_time_ms.tolist(), series.open.tolist(), series.high.tolist(),
    series.low.tolist(), series.close.tolist(), series.volume.tolist())]
for cls, expected_warmup in ((ema_cross, None), (Own, 7)):
    for module in (cls.__module__,):
        assert not str(getattr(__import__("sys").modules[module], "__file__", "")).endswith(ext)
    p = cls.params_type()
    a = cls(p)
    assert not a.ready and a.warmup_bars >= 1
    if expected_warmup is not None:
        assert a.warmup_bars == expected_warmup and p.timeframe == "5m"
    n = a.warmup_bars
    for bar in bars[:n]:
        a.on_bar(bar, 0.0)
    assert a.ready, cls
    state = a.snapshot()
    assert state, cls
    b = cls(p)
    b.restore(state)
    assert b.snapshot() == state
    assert [a.on_bar(bar, 0.0) for bar in bars[n:]] == [b.on_bar(bar, 0.0) for bar in bars[n:]]
    assert a.snapshot() == b.snapshot()
print("ok")
"""
