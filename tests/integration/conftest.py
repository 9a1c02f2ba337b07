"""Fixtures shared by the integration tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


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
