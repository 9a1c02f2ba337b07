"""Which kernel runs: the mypyc-compiled modules, or the same modules as pure Python.

The compiled kernel is the pure-Python source compiled ahead of time (``setup.py``), and both
give bit-identical results, so the choice is about speed only. It is made once, when ``barbus``
is first imported, before any kernel module loads: the pure modules run when

- ``BARBUS_PURE_PYTHON=1`` is set (a run that must not use the compiled kernel, such as the
  compiled-against-pure parity check), or
- the build compiled nothing (no C compiler, or ``BARBUS_PURE_PYTHON=1`` at install), or
- a compiled module's source changed since the build (an edited checkout): its edits run, in
  pure Python, with one warning to rebuild (``make build``). The compiled modules call one
  another directly in C, so the kernel is compiled as a whole or not at all.

Pure Python is forced by a meta-path finder that loads barbus's modules from their ``.py``
files only, ahead of the extension modules beside them.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["PURE_ENV", "build_name", "choose", "describe"]

PURE_ENV = "BARBUS_PURE_PYTHON"
_HERE = Path(__file__).resolve().parent
_MANIFEST = "compiled_sources.json"  # beside the package's __init__
_choice: dict[str, str] = {}  # "reason": why this process runs the kernel it runs


class _SourceOnlyFinder(importlib.abc.MetaPathFinder):
    """Find ``barbus.*`` modules as ``.py`` files, never as the compiled extensions beside them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is None or not fullname.startswith("barbus."):
            return None
        loaders = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, loaders).find_spec(fullname)
            if spec is not None:
                return spec
        return None


def _compiled_sources(root: Path) -> dict[str, str] | None:
    """The build's source hashes (module path under ``root`` -> SHA-256), None if none."""
    try:
        manifest = json.loads((root / _MANIFEST).read_text())
        sources = manifest["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return sources if isinstance(sources, dict) else None


def _built(source: Path) -> bool:
    """Whether the extension module of ``source`` exists for this Python."""
    return any(source.with_suffix(s).exists() for s in importlib.machinery.EXTENSION_SUFFIXES)


def _stale(sources: dict[str, str], root: Path) -> list[str]:
    """The compiled modules whose source no longer matches the build, or lacks its extension."""
    stale = []
    for relative, digest in sources.items():
        source = root / relative
        built = _built(source)
        try:
            same = hashlib.sha256(source.read_bytes()).hexdigest() == digest
        except OSError:
            same = False
        if not (built and same):
            stale.append(relative)
    return stale


def _why_pure(root: Path = _HERE) -> str | None:
    """Why this process must run the pure modules of the package folder ``root``, or None to
    run the compiled ones."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"{PURE_ENV} is set"
    sources = _compiled_sources(root)
    if sources is None:
        return "this install has no compiled kernel"
    if not any(_built(root / relative) for relative in sources):
        # A checkout compiled for another Python version (a second venv beside it): not stale.
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return f"this install has no compiled kernel for Python {version}"
    stale = _stale(sources, root)
    if not stale:
        return None
    why = f"the compiled kernel is older than its source ({', '.join(sorted(stale))})"
    logging.getLogger("barbus").warning("%s: running pure Python; rebuild with `make build`", why)
    return why


def choose() -> str:
    """Decide which kernel this process runs (once); return the reason in words."""
    if "reason" not in _choice:
        why = _why_pure()
        if why is not None:
            sys.meta_path.insert(0, _SourceOnlyFinder())
        _choice["reason"] = why or "compiled with mypyc"
    return _choice["reason"]


def build_name() -> str:
    """``compiled`` or ``pure``: what the kernel modules loaded in this process are."""
    from barbus.daemon.core import engine

    suffix = Path(engine.__file__ or "").name
    return "compiled" if suffix.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) else "pure"


def describe() -> str:
    """One phrase for ``--version`` and logs: the build and why, e.g. ``compiled (mypyc)``."""
    name = build_name()
    return "compiled kernel (mypyc)" if name == "compiled" else f"pure-Python kernel ({choose()})"
