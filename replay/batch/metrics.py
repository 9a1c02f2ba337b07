"""Batch metrics for Prometheus, kept by the batch's driver process alone.

Workers (subprocesses or Ray tasks) send back, with every result, the few numbers a job
produced (bars, seconds, cache hits and misses, which worker ran it); the driver is the only
process that writes metrics. That is exact for counters, gauges and histograms alike, works
the same for both backends, and costs the replay hot path nothing: counting happens once per
job, never per bar. Labels stay low-cardinality: ``worker`` is the worker slot (0..N-1, or
``ray``), never a job or a parameter. ``barbus batch --metrics-port P`` serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["BatchMetrics"]


@dataclass
class BatchMetrics:
    registry: CollectorRegistry
    jobs: Gauge
    finished: Counter
    bars: Counter
    bars_per_second: Gauge
    job_seconds: Histogram
    cache_hits: Counter
    cache_misses: Counter
    cache_bytes_mapped: Gauge

    @classmethod
    def create(cls) -> BatchMetrics:
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            jobs=Gauge(
                "barbus_batch_jobs", "Jobs of the running batch by state", ["state"], registry=reg
            ),
            finished=Counter(
                "barbus_batch_jobs_finished", "Jobs finished", ["status"], registry=reg
            ),
            bars=Counter("barbus_replay_bars", "Bars replayed", ["worker"], registry=reg),
            bars_per_second=Gauge(
                "barbus_replay_bars_per_second",
                "Replay speed of the worker's last job",
                ["worker"],
                registry=reg,
            ),
            job_seconds=Histogram(
                "barbus_replay_job_seconds",
                "Wall time of one job",
                buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
                registry=reg,
            ),
            cache_hits=Counter(
                "barbus_cache_hits",
                "Cache loads served from memory or mapped from disk",
                registry=reg,
            ),
            cache_misses=Counter(
                "barbus_cache_misses", "Cache loads that parsed the source", registry=reg
            ),
            cache_bytes_mapped=Gauge(
                "barbus_cache_bytes_mapped",
                "Bytes of cached columns the batch's datasets map",
                registry=reg,
            ),
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns the server."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server

    def set_progress(self, total: int, done: int, concurrency: int) -> None:
        running = min(concurrency, total - done)
        self.jobs.labels("running").set(running)
        self.jobs.labels("queued").set(total - done - running)
        self.jobs.labels("done").set(done)
