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
    """The real batch worker, then a record of its memory (for the batch benchmark), with
    ``PeakAnon``: its largest anonymous memory, sampled every 5 ms while it ran. Anonymous
    memory is the process's own heap; the mapped data are file pages, which it never counts
    (``Private`` does count the file pages that only this worker touched)."""
    from barbus.replay.batch.local import worker_main

    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _anon_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    worker_main(conn, cache_dir)
    done.set()
    sampler.join()
    _dump_memory("worker", PeakAnon=max(peak[0], _anon_kib()))


def _anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


def baseline_worker() -> None:
    """A worker process that imported everything a batch worker imports but ran no job."""
    import barbus.replay.batch  # noqa: F401

    _dump_memory("baseline")


def _dump_memory(kind: str, **extra: int) -> None:
    folder = os.environ.get(MEMORY_DIR_ENV)
    if folder:
        path = Path(folder) / f"{kind}-{os.getpid()}.json"
        path.write_text(json.dumps({**memory_kib(), **extra}), encoding="utf-8")
