"""``barbus ARGS`` through :func:`barbus.daemon.cli.main` in the test's own process.

A subprocess costs an interpreter start and the imports (a second or more on this machine);
the error and usage cases only need the exit code and the two streams, and in-process a
traceback is an exception that fails the test. Apart from the process kit because it starts
no process: it returns what :func:`tests.kit.processes.barbus` returns, so a test can use
either, and it leaves the ``barbus`` logger as it found it (``main`` configures it).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from barbus.daemon.cli import main

Run = subprocess.CompletedProcess[str]


@contextmanager
def barbus_logger_restored() -> Iterator[None]:
    """The ``barbus`` logger's handlers, level and propagation as they were before."""
    logger = logging.getLogger("barbus")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        yield
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def run_main(capsys: pytest.CaptureFixture[str], *args: object) -> Run:
    """Run ``main([...args])``: its exit code (argparse's usage errors exit with it), stdout
    and stderr as captured by ``capsys``."""
    argv = [str(arg) for arg in args]
    with barbus_logger_restored():
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["barbus", *argv], code, out, err)
