"""The progress of a running batch on the terminal: a tqdm bar, or log lines when not a terminal.

The terminal side of a batch (journald and CI logs get one line every few seconds instead of a
bar); apart from the reports, which are files written when the batch is done.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tqdm import tqdm

__all__ = ["BatchProgress"]

log = logging.getLogger("barbus.batch")


class BatchProgress:
    """``progress`` callback for :func:`replay.batch.run_batch`: jobs done/total, bars/s, ETA."""

    def __init__(self, total: int, *, interactive: bool | None = None) -> None:
        self.total = total
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._bar: tqdm[Any] | None = (
            tqdm(total=total, unit="job", dynamic_ncols=True) if self.interactive else None
        )
        self._last_log = 0.0

    def __call__(self, done: int, total: int, bars: int, elapsed: float) -> None:
        rate = bars / elapsed if elapsed > 0 else 0.0
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix_str(f"{rate:,.0f} bars/s", refresh=True)
            return
        now = time.monotonic()
        if done == total or now - self._last_log >= 5.0:
            self._last_log = now
            eta = (total - done) * elapsed / done if done else float("nan")
            log.info("batch: %d/%d jobs, %s bars/s, ETA %.0f s", done, total, f"{rate:,.0f}", eta)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
