"""The backend protocol: what the batch needs from a place that runs jobs, and nothing more.

A backend takes groups of jobs (:meth:`Backend.submit`) up to its :attr:`~Backend.capacity`
and hands back the finished ones (:meth:`Backend.wait`), each job with its outcome; what it
does when a worker dies is its own business (the local pool starts a fresh process, Ray
retries the task). Scheduling and retries are not a backend's: :mod:`.retry` drives every
backend with the same policy, so the local processes, the in-process run and Ray retry a job
the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from barbus.replay.batch.job import JobOutcome
from barbus.replay.batch.jobs import Job

__all__ = ["Backend", "Finished"]


@dataclass(frozen=True)
class Finished:
    """A job a backend is done with: its outcome, and whether a failure may run again.

    ``retryable`` is False when the backend already gave the job its second chance (Ray re-runs
    a task whose worker died before it reports the death).
    """

    job: Job
    outcome: JobOutcome
    retryable: bool = True


class Backend(Protocol):
    """Where the jobs of a batch run (see the module docstring)."""

    @property
    def capacity(self) -> int:
        """Groups it takes at once: :meth:`submit` is called no more often than that."""
        ...

    @property
    def bytes_sent(self) -> int:
        """The pickled size of the job records sent to workers so far."""
        ...

    @property
    def retry_note(self) -> str | None:
        """Where a retry runs, for the log line (``"on a fresh worker"``); None: no line."""
        ...

    def submit(self, group: tuple[Job, ...]) -> None:
        """Start ``group`` (:mod:`.groups`: jobs that run in one pass; a slot is free: fewer
        than :attr:`capacity` groups are running)."""
        ...

    def wait(self) -> list[list[Finished]]:
        """The groups that finished since the last call, each as its jobs, after blocking
        until at least one did or a short while passed (then none: the caller sees signals
        between calls)."""
        ...
