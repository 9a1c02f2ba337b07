"""Logging set-up: stderr, one line per record, readable by a person and by journald.

Under systemd (``$JOURNAL_STREAM`` set) each line is prefixed with its syslog priority
(``<3>`` for errors, ...), which journald turns into the record's priority, and the timestamp is
left out because the journal adds its own.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable

__all__ = ["ECHO_LIMIT", "RateLimitedLog", "clip", "configure_logging", "kv"]

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class _JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


def configure_logging(level: str = "INFO") -> None:
    """Send ``barbus.*`` records at ``level`` and above to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s %(levelname)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
            )
        )
    root = logging.getLogger("barbus")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


ECHO_LIMIT = 200


def clip(text: object, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was: input is never echoed whole."""
    value = str(text)
    if len(value) <= limit:
        return value
    return f"{value[:limit]}... ({len(value)} chars)"


class RateLimitedLog:
    """At most ``burst`` lines per kind per ``interval`` seconds; the rest are counted and told in
    one summary line ("feed: N more malformed messages suppressed in the last S s"), so a flood of
    bad input cannot flood the journal. Cheap: one dict look-up and a clock read per call."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        prefix: str = "feed",
        burst: int = 5,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.prefix = prefix
        self.burst = burst
        self.interval = interval
        self.clock = clock
        # kind -> [window start, lines logged in the window, suppressed in the window]
        self._windows: dict[str, list[float]] = {}
        self._due = math.inf  # when the first window with suppressed lines ends

    def warning(self, kind: str, message: str, *args: object) -> None:
        """Log ``message % args`` at WARNING unless ``kind`` already used up its burst."""
        now = self.clock()
        window = self._windows.get(kind)
        if window is None:
            window = self._windows[kind] = [now, 0, 0]
        elif now - window[0] >= self.interval:
            self._summarize(kind, window, now)
            window[0], window[1], window[2] = now, 0, 0
        if window[1] < self.burst:
            window[1] += 1
            self.logger.warning(message, *args)
        else:
            window[2] += 1
            self._due = min(self._due, window[0] + self.interval)

    def tick(self, now: float) -> None:
        """Tell what was suppressed in windows that ended by ``now`` (monotonic s), even if
        no further line of that kind comes: call it often, it costs one comparison."""
        if now < self._due:
            return
        self._due = math.inf
        for kind, window in self._windows.items():
            if window[2] and now - window[0] >= self.interval:
                self._summarize(kind, window, now)
                window[0], window[1], window[2] = now, 0, 0
            elif window[2]:
                self._due = min(self._due, window[0] + self.interval)

    def flush(self) -> None:
        """Say what was suppressed so far (on reconnect and stop), and start new windows."""
        now = self.clock()
        for kind, window in self._windows.items():
            self._summarize(kind, window, now)
        self._windows.clear()
        self._due = math.inf

    def suppressed(self, kind: str) -> int:
        window = self._windows.get(kind)
        return 0 if window is None else int(window[2])

    def _summarize(self, kind: str, window: list[float], now: float) -> None:
        if window[2]:
            self.logger.warning(
                "%s: %d more %s messages suppressed in the last %.0f s",
                self.prefix,
                int(window[2]),
                kind,
                now - window[0],
            )


def kv(fields: dict[str, object]) -> str:
    """``key=value`` words for one log line; a value with a space, quote or ``=`` is quoted."""
    words = []
    for key, value in fields.items():
        text = repr(value) if isinstance(value, float) else str(value)
        if not text or any(c in text for c in ' "=\n\t'):
            text = json.dumps(text)
        words.append(f"{key}={text}")
    return " ".join(words)
