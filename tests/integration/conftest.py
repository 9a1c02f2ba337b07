"""Fixtures shared by the integration tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.processes import Processes


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def batch_log() -> Iterator[list[logging.LogRecord]]:
    """Records of the ``barbus.batch`` logger (whatever the ``barbus`` logger's propagation)."""
    handler = _Collect()
    logger = logging.getLogger("barbus.batch")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path / "processes")
    try:
        yield procs
    finally:
        procs.close()
