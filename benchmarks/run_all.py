"""Run every benchmark, then say which met its target; exit 1 if any missed (``make bench``).

Usage: ``python -m benchmarks.run_all [--only NAME ...] [--list]``.
Each benchmark runs as its own process (a fresh interpreter, as a user would start it), one after
the other so they do not compete for the CPUs, and its output goes straight to this terminal.
A benchmark's exit code is its verdict: 0 met its target (or has none), 1 missed it, anything
else failed. One that misses does not stop the others: the summary at the end lists all of them.
``bench_ray`` is skipped, not missed, when Ray is not installed (it is an optional extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BENCHMARKS", "Benchmark", "Outcome", "main", "run"]


@dataclass(frozen=True)
class Benchmark:
    name: str  # module under ``benchmarks``, or a dotted module name
    target: str  # what exit code 0 means
    needs: str | None = None  # an optional import it cannot run without

    @property
    def module(self) -> str:
        return self.name if "." in self.name else f"benchmarks.{self.name}"


BENCHMARKS = (
    Benchmark(
        "bench_replay",
        "compiled: sma_cross >= 0.25x, metatrend, bbrs >= 0.2x the bare loop; pure: 300,000 bars/s",
    ),
    Benchmark("bench_speed_gate", "replay/bare ratio >= 80 % of speed_gate.json"),
    Benchmark("bench_cache", "ingest >= 1 M rows/s, warm open < 10 ms"),
    Benchmark(
        "bench_batch", "2-worker parallel efficiency >= 90 %, worker peak anon memory < 100 MB"
    ),
    Benchmark("bench_shared_pass", "no target: strategy-bars/s, shared passes vs one per job"),
    Benchmark("bench_daemon_lag", "no target: prints p50 / p99 decision lag"),
    Benchmark("bench_metrics_overhead", "metrics cost < 5 % of bars/s"),
    Benchmark("bench_ray", "identical results on every backend", needs="ray"),
)


@dataclass(frozen=True)
class Outcome:
    benchmark: Benchmark
    verdict: str  # met, MISSED, FAILED, skipped
    detail: str
    seconds: float

    @property
    def bad(self) -> bool:
        return self.verdict in ("MISSED", "FAILED")


def run(benchmark: Benchmark) -> Outcome:
    """Run one benchmark to completion, its output on this process's stdout and stderr."""
    if benchmark.needs and importlib.util.find_spec(benchmark.needs) is None:
        return Outcome(benchmark, "skipped", f"needs {benchmark.needs} (not installed)", 0.0)
    print(f"== {benchmark.name}: {benchmark.target}", flush=True)
    started = time.perf_counter()
    code = subprocess.run([sys.executable, "-m", benchmark.module], check=False).returncode
    seconds = time.perf_counter() - started
    if code == 0:
        return Outcome(benchmark, "met", benchmark.target, seconds)
    if code == 1:
        return Outcome(benchmark, "MISSED", benchmark.target, seconds)
    return Outcome(benchmark, "FAILED", f"exit code {code}", seconds)


def summary(outcomes: Sequence[Outcome]) -> str:
    width = max(len(o.benchmark.name) for o in outcomes)
    lines = ["", "benchmark summary"]
    for o in outcomes:
        took = f"{o.seconds:6.1f} s" if o.verdict != "skipped" else "       -"
        lines.append(f"  {o.benchmark.name:<{width}}  {o.verdict:<7}  {took}  {o.detail}")
    bad = [o.benchmark.name for o in outcomes if o.bad]
    ran = sum(o.verdict != "skipped" for o in outcomes)
    lines.append(
        f"{len(bad)} of {ran} missed or failed: {', '.join(bad)}"
        if bad
        else f"all {ran} benchmarks that ran met their targets"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run these (names from --list, or dotted module names) instead of all",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    known = {b.name: b for b in BENCHMARKS}
    if args.list:
        for b in BENCHMARKS:
            print(f"{b.name:<24} {b.target}")
        return 0
    chosen = [known.get(name, Benchmark(name, "exit code 0")) for name in args.only or known]
    outcomes = [run(b) for b in chosen]
    print(summary(outcomes), flush=True)
    return 1 if any(o.bad for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
