"""Build the compiled kernel: the hot modules compiled by mypyc from their typed source.

Everything else about the package is in ``pyproject.toml``; this file only adds the extension
modules. They are the same ``.py`` files compiled ahead of time (mypyc), so a build without them
is the same program, only slower: set ``BARBUS_PURE_PYTHON=1``, or build where no C compiler
exists, and the pure-Python modules are what runs (``barbus --version`` says which). A failed
compilation is reported in one line and leaves the pure build, never a broken one.

Beside the extensions the build writes ``barbus/compiled_sources.json``: the SHA-256 of every
compiled module's source. At import, ``barbus.kernel_build`` runs the compiled modules only when
each source still matches (an edited checkout runs its edits, in pure Python, until rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent

# The per-bar path, compiled together (mypyc needs a compiled class's bases compiled with it):
# the kernel's hot modules, every indicator and every shipped strategy. The cold parts (the
# snapshot format, indicator discovery with its runtime-checkable protocol, series, the trade log
# formats, I/O) stay interpreted.
COMPILED = [
    "barbus/daemon/core/events.py",
    "barbus/daemon/core/orders.py",
    "barbus/daemon/core/strategy.py",
    "barbus/daemon/core/account.py",
    "barbus/daemon/core/broker.py",
    "barbus/daemon/core/sizing.py",
    "barbus/daemon/core/working.py",
    "barbus/daemon/core/aggregate.py",
    "barbus/daemon/core/bus.py",
    "barbus/daemon/core/engine.py",
    "barbus/daemon/core/session.py",
    "barbus/strategies/indicators/checks.py",
    "barbus/strategies/indicators/exact_sums.py",
    "barbus/strategies/indicators/averages.py",
    "barbus/strategies/sma_cross.py",
]
MANIFEST = "barbus/compiled_sources.json"
GROUP = "barbus.kernel"  # barbus/kernel__mypyc.so: calls between the compiled modules stay in C


def _why_pure() -> str | None:
    """Why this build leaves the kernel interpreted, or None to compile it."""
    if os.environ.get("BARBUS_PURE_PYTHON", "") not in ("", "0"):
        return "BARBUS_PURE_PYTHON is set"
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler} is not on PATH)"
    try:
        import mypyc.build  # noqa: F401
    except ImportError:
        return "mypyc is not installed (it comes with mypy)"
    return None


def _source_hashes() -> dict[str, str]:
    return {
        path.removeprefix("barbus/"): hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
        for path in COMPILED
    }


class BuildKernel(build_ext):
    """build_ext that reports a failed compilation in one line and writes the source hashes."""

    def run(self) -> None:
        self._remove_stale()
        try:
            super().run()
        except Exception as exc:  # a compiler error must leave a working (pure) package
            print(f"barbus: compiling the kernel failed ({exc}); pure Python", file=sys.stderr)
            self._remove_built()
            return
        self._write_manifest()

    def _target_dir(self) -> Path:
        return ROOT if self.inplace else Path(self.build_lib)

    def _write_manifest(self) -> None:
        target = self._target_dir() / MANIFEST
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"compiler": "mypyc", "sources": _source_hashes()}, indent=1))

    def _remove_stale(self) -> None:
        """Delete extension modules of barbus that this build does not make (a module taken off
        the list, or all of them in a pure build): Python would import them over the source."""
        root = self._target_dir()
        wanted = {self.get_ext_filename(ext.name) for ext in self.extensions}  # type: ignore[no-untyped-call]
        for folder, _, files in os.walk(root / "barbus", followlinks=True):
            for name in files:
                path = Path(folder, name)
                if name.endswith(".so") and path.relative_to(root).as_posix() not in wanted:
                    path.unlink()

    def _remove_built(self) -> None:
        for ext in self.extensions:
            built = self._target_dir() / self.get_ext_filename(ext.name)  # type: ignore[no-untyped-call]
            built.unlink(missing_ok=True)


# The setuptools commands that build extensions; the others (metadata, sdist) need none, and
# mypyc's code generation (tens of seconds) runs when ``mypycify`` is called.
_BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}


def _ext_modules() -> list[Any]:
    if not _BUILDS & set(sys.argv[1:]):
        return []
    why = _why_pure()
    if why is not None:
        print(f"barbus: building the pure-Python kernel: {why}", file=sys.stderr)
        return []
    from mypyc.build import mypycify

    # The compiled modules import nothing outside the standard library and barbus, so the build
    # environment needs no numpy or pandas: the interpreted modules mypy follows from them are
    # read for their types only (silently, third-party imports as Any); the compiled ones are
    # checked with the project's strict settings (mypy reads pyproject.toml).
    options = ["--follow-imports=silent", "--ignore-missing-imports"]
    return list(mypycify([*options, *COMPILED], opt_level="3", group_name=GROUP))


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": BuildKernel})
