"""The batch job model: what one replay of a batch is, its stable id, and how a grid becomes jobs.

A :class:`Job` is a small picklable record that every backend ships to its workers (local worker
processes, Ray tasks); the job function and its result row are :mod:`.job`, apart, because the
planner (:mod:`.spec`) and the journal need the model and its ids without running anything.

The strategy is resolved once, in the parent, when the jobs are planned: each job carries the
canonical spec, the fingerprint of the strategy's source and, for a file strategy, the file's
text. A worker rebuilds a file strategy from that text (so it runs exactly what was
fingerprinted, even if the file is edited or deleted mid-batch, and a Ray node needs no copy of
it) and resolves any other spec itself, refusing a module whose fingerprint is not the job's.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from barbus.daemon.core.broker import ExecutionConfig
from barbus.daemon.core.errors import BarbusError, ConfigError, StrategyError
from barbus.daemon.core.params import ParamValue
from barbus.replay.folder_series import symbol_of
from barbus.replay.runner import ReplayConfig
from barbus.strategies import (
    StrategyLike,
    StrategySource,
    create_strategy,
    load_shipped,
    resolve_strategy,
    strategy_source,
)

__all__ = ["Job", "expand_jobs", "remember", "strategy_of"]


@dataclass(frozen=True)
class Job:
    """One replay of a batch. Picklable and small: names, numbers and at most one strategy file's
    text, never bars.

    ``strategy`` is the canonical spec (a file spec with an absolute path). ``fingerprint`` pins
    the strategy's code (:class:`~barbus.strategies.StrategySource`); ``""`` leaves it unpinned
    (a hand-built job: the worker runs whatever the spec names then). ``source`` is a file
    strategy's text, shipped to the worker. ``strategy_name`` is the class's ``name`` (the
    ``strategy`` column), ``""`` for the spec itself.
    """

    strategy: str
    params: tuple[tuple[str, ParamValue], ...]
    data: str
    symbol: str
    start_ms: int | None = None
    end_ms: int | None = None
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    fingerprint: str = ""
    source: str | None = field(default=None, repr=False)
    strategy_name: str = ""

    @property
    def job_id(self) -> str:
        """A stable id: the same job gets the same id in every run (used to resume).

        It covers the code's fingerprint, so an edited strategy's jobs are new jobs; an
        unpinned job keeps the id it had before fingerprints existed. The execution enters as
        :meth:`~barbus.daemon.core.broker.ExecutionConfig.identity` (the first release's four
        options, later ones only when set), so a job that uses no newer option keeps its id
        and an earlier release's ``results.jsonl`` still resumes.
        """
        identity: list[Any] = [
            self.strategy,
            list(self.params),
            self.data,
            self.symbol,
            self.start_ms,
            self.end_ms,
            self.execution.identity(),
        ]
        if self.fingerprint:
            identity.append(self.fingerprint)
        canonical = json.dumps(identity, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def replay_config(self) -> ReplayConfig:
        """The replay this job runs, with the strategy the batch planned (:func:`strategy_of`)."""
        return ReplayConfig(
            strategy=strategy_of(self),
            params=dict(self.params),
            data=Path(self.data),
            symbol=self.symbol,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            execution=self.execution,
        )


# Per process (the parent, a local worker, a Ray worker): strategies already built for jobs, by
# (spec, fingerprint), so a 100-job grid reads and executes a strategy file once per process.
_RESOLVED: dict[tuple[str, str], StrategySource] = {}


def remember(source: StrategySource) -> None:
    """Keep ``source`` as this process's build of its (spec, fingerprint): the batch planner
    resolved it, so in-process jobs need not resolve or rebuild it again."""
    _RESOLVED[(source.spec, source.fingerprint)] = source


def strategy_of(job: Job) -> StrategySource:
    """The strategy ``job`` runs: the code the batch fingerprinted, or a one-line error.

    A file strategy is rebuilt from the text shipped with the job (no file needed); a name,
    module or plugin is resolved here and must have the job's fingerprint (another version of a
    module on this worker or node fails the job, naming both fingerprints).
    """
    if not job.fingerprint:
        return resolve_strategy(job.strategy)  # unpinned: whatever the spec names now
    key = (job.strategy, job.fingerprint)
    found = _RESOLVED.get(key)
    if found is not None:
        return found
    if job.source is not None:
        found = load_shipped(job.strategy, job.source, job.fingerprint)
    else:
        found = resolve_strategy(job.strategy)
        if found.fingerprint != job.fingerprint:
            raise StrategyError(
                f"strategy {job.strategy}: the code on this worker has fingerprint "
                f"{found.fingerprint}, the batch was planned with {job.fingerprint} (another "
                "version of the module here: install the same version on every node, or run "
                "the batch again to plan this one)"
            )
    _RESOLVED[key] = found
    return found


def expand_jobs(
    strategy: StrategyLike,
    data: Sequence[Path],
    *,
    grid: Mapping[str, Sequence[ParamValue]] | None = None,
    params: Mapping[str, ParamValue] | None = None,
    periods: Sequence[tuple[int | None, int | None]] = ((None, None),),
    symbol: str | None = None,
    execution: ExecutionConfig | None = None,
    base_dir: Path | None = None,
) -> tuple[list[Job], list[str]]:
    """The cartesian product of grid values x data files x periods, as jobs.

    ``strategy`` (a spec, relative to ``base_dir`` or the current folder, a resolved source or a
    class) is resolved once, here: every job pins that code (see :class:`Job`), and a strategy
    that cannot be loaded is a :class:`StrategyError` before any job exists.
    Parameter combinations the strategy rejects (say slow <= fast) are not jobs: they are
    returned as readable reasons instead, so a grid can span an area with invalid corners.
    """
    source = strategy_source(strategy, base_dir)
    remember(source)
    grid = dict(grid or {})
    fixed = dict(params or {})
    overlap = set(grid) & set(fixed)
    if overlap:
        raise ConfigError(f"parameters {sorted(overlap)} are both fixed and in the grid")
    execution = execution or ExecutionConfig()
    names = sorted(grid)
    jobs: list[Job] = []
    invalid: list[str] = []
    for values in itertools.product(*(grid[name] for name in names)):
        combo = {**fixed, **dict(zip(names, values, strict=True))}
        try:
            built = create_strategy(source, combo)
        except BarbusError as exc:
            if not names:
                raise
            invalid.append(f"{source.name} {combo}: {exc}")
            continue
        # Typed values ("5" from a command line becomes 5), so ids match a TOML spec's.
        typed = built.params.as_dict()
        frozen = tuple(sorted((name, typed[name]) for name in combo))
        for path, (start_ms, end_ms) in itertools.product(data, periods):
            jobs.append(
                Job(
                    strategy=source.spec,
                    params=frozen,
                    data=str(Path(path).resolve()),
                    symbol=symbol or symbol_of(Path(path)),
                    start_ms=start_ms,
                    end_ms=end_ms,
                    execution=execution,
                    fingerprint=source.fingerprint,
                    source=source.source,
                    strategy_name=source.name,
                )
            )
    return jobs, invalid
