"""One daemon run to the end of its data: a sim exchange on a bar file, the daemon on it until
every engine has seen the last bar, then a clean stop. The warm-up tests each vary only the
data, the sim's history, the engines and the ``[feed]`` lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from barbus.daemon.core.series import BarSeries
from tests.kit.probes import all_bars_processed, get_status
from tests.kit.processes import Processes
from tests.kit.recorded import Recorded, read_state
from tests.kit.scenario import Engine, write_config
from tests.kit.waiting import wait_until
from tests.net import free_port

__all__ = ["DaemonRun", "run_to_the_end"]


@dataclass
class DaemonRun:
    series: BarSeries
    state: Path
    recorded: Recorded
    first_status: dict[str, Any]  # /status once the daemon said it is warm
    log: str


def run_to_the_end(
    folder: Path, series: BarSeries, *, history: int, engines: tuple[Engine, ...], feed: str = ""
) -> DaemonRun:
    """The daemon on a sim serving ``series`` (its file) with ``history`` bars closed."""
    procs = Processes(folder / "processes")
    try:
        _, sim_port = procs.sim(Path(series.source), history=history)
        http_port = free_port()
        state = folder / "state.sqlite"
        config = write_config(
            folder / "barbus.toml",
            sim_port=sim_port,
            http_port=http_port,
            state=state,
            engines=engines,
            feed=feed,
        )
        daemon = procs.daemon(config)
        first = wait_until(
            lambda: s if (s := get_status(http_port)) is not None and s["warm"] else None,
            60,
            "the daemon warmed up",
            watch=daemon,
        )
        wait_until(
            all_bars_processed(http_port, series, total=False), 90, "every bar", watch=daemon
        )
        log = daemon.stop_cleanly()
        return DaemonRun(series, state, read_state(state), first, log)
    finally:
        procs.close()
