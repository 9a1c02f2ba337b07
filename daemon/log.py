"""Logging set-up: stderr, one line per record, readable by a person and by journald.

Under systemd (``$JOURNAL_STREAM`` set) each line is prefixed with its syslog priority
(``<3>`` for errors, ...), which journald turns into the record's priority, and the timestamp is
left out because the journal adds its own.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["configure_logging"]

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
