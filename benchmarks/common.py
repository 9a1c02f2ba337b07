"""Shared helpers for the benchmarks: a deterministic big CSV and process memory readings."""

from __future__ import annotations

import json
import multiprocessing.connection
import os
import threading
from pathlib import Path

from barbus.daemon.core.synthetic import synthetic_series
from barbus.replay.bars_out import write_bars


def write_synthetic_csv(path: Path, rows: int, seed: int = 7) -> Path:
    """Write ``rows`` synthetic bars in the barbus CSV layout (prices to 2 decimals), once."""
    if path.exists():
        return path
    return write_bars(path, synthetic_series(rows, seed=seed, symbol="SYNTHUSDT"))


def memory_kib(pid: int | None = None) -> dict[str, int]:
    """Peak RSS (VmHWM) and current RSS, PSS and private (USS) memory of a process, in KiB."""
    base = Path(f"/proc/{pid or os.getpid()}")
    values: dict[str, int] = {}
    for line in (base / "status").read_text().splitlines():
        if line.startswith(("VmHWM:", "VmRSS:", "RssAnon:")):
            key, amount = line.split(":", 1)
            values[key] = int(amount.split()[0])
    rollup = (base / "smaps_rollup").read_text().splitlines()
    private = 0
    for line in rollup:
        key, _, rest = line.partition(":")
        if key in ("Pss", "Rss"):
            values[key] = int(rest.split()[0])
        if key in ("Private_Clean", "Private_Dirty"):
            private += int(rest.split()[0])
    values["Private"] = private
    return values


MEMORY_DIR_ENV = "BARBUS_BENCH_MEMORY_DIR"


def measuring_worker(conn: multiprocessing.connection.Connection, cache_dir: str) -> None:
    """The real batch worker, announced for :class:`AnonSampler` and followed by a record of
    its memory at exit (for the batch benchmark)."""
    from barbus.replay.batch.local import worker_main

    folder = os.environ.get(MEMORY_DIR_ENV)
    if folder:
        (Path(folder) / f"running-{os.getpid()}").touch()
    worker_main(conn, cache_dir)
    _dump_memory("worker")


class AnonSampler:
    """The largest anonymous memory (RssAnon: the process's own heap, never the mapped data's
    file pages) of every announced worker, read from /proc every 5 ms by a thread of the
    driver: a thread in the worker would take the worker's GIL and CPU, and slow the very
    parallel run it measures."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.peaks: dict[int, int] = {}  # pid -> KiB
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> AnonSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            for marker in self.folder.glob("running-*"):
                pid = int(marker.name.partition("-")[2])
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:  # exited
                    continue
                for line in status.splitlines():
                    if line.startswith("RssAnon:"):
                        self.peaks[pid] = max(self.peaks.get(pid, 0), int(line.split()[1]))


def baseline_worker(conn: multiprocessing.connection.Connection, cache_dir: str) -> None:
    """A pool worker that imported everything a batch worker imports but ran no job."""
    import barbus.replay.batch  # noqa: F401

    _dump_memory("baseline")


def _dump_memory(kind: str, **extra: int) -> None:
    folder = os.environ.get(MEMORY_DIR_ENV)
    if folder:
        path = Path(folder) / f"{kind}-{os.getpid()}.json"
        path.write_text(json.dumps({**memory_kib(), **extra}), encoding="utf-8")
