"""Transitional: ``daemon/cli/batch.py`` still imports this from here.

Delete this file when the CLI imports :class:`barbus.replay.batch.metrics.BatchMetrics`;
nothing else imports it.
"""

from barbus.replay.batch.metrics import BatchMetrics

__all__ = ["BatchMetrics"]
