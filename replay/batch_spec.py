"""Transitional: ``daemon/cli/batch.py`` still imports these from here.

Delete this file when the CLI is wired to :func:`barbus.replay.batch.plan_from_request`; nothing
else imports it.
"""

from barbus.replay.batch.spec import BatchPlan, load_spec, parse_grid, plan_jobs

__all__ = ["BatchPlan", "load_spec", "parse_grid", "plan_jobs"]
