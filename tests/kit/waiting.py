"""Waiting for a condition with a timeout: the one polling loop of the process tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from tests.kit.processes import Proc

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    watch: Proc | None = None,
    interval: float = 0.05,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns something other than None/False (that result); fail
    naming ``what`` (and the last result) after ``timeout`` seconds, or at once when the
    ``watch``ed process has exited. An exception in ``retry_on`` counts as "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = predicate()
        except retry_on as exc:
            last, result = exc, None
        else:
            last = result
        if result is not None and result is not False:
            return result
        if watch is not None and not watch.running():
            pytest.fail(f"{what}: {watch.name} exited with {watch.code()}:\n{watch.log()[-3000:]}")
        if time.monotonic() > deadline:
            detail = f"\n{watch.name} log:\n{watch.log()[-3000:]}" if watch is not None else ""
            pytest.fail(
                f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r:.300}){detail}"
            )
        time.sleep(interval)
