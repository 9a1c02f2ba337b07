"""Which kernel runs: stale sources fall back to pure Python, BARBUS_PURE_PYTHON forces it.

The manifest checks run on a package folder made here (a manifest, a source and a stand-in
extension file), never on the real install; the environment switch runs in subprocesses.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import logging
import sys
from pathlib import Path

import pytest

import barbus.daemon.core
from barbus import kernel_build
from tests.kit.processes import barbus as run_barbus
from tests.kit.processes import checkout_python

MODULE = "daemon/core/engine.py"
EXTENSION = importlib.machinery.EXTENSION_SUFFIXES[0]


def make_package(root: Path, recorded_source: bytes, source: bytes, built: bool = True) -> Path:
    """A package folder whose manifest recorded ``recorded_source`` for ``MODULE``."""
    path = root / MODULE
    path.parent.mkdir(parents=True)
    path.write_bytes(source)
    if built:
        path.with_suffix(EXTENSION).write_bytes(b"\x7fELF stand-in")
    digest = hashlib.sha256(recorded_source).hexdigest()
    manifest = {"compiler": "mypyc", "sources": {MODULE: digest}}
    (root / "compiled_sources.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture
def barbus_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> pytest.LogCaptureFixture:
    """Capture of the ``barbus`` logger (made to propagate to pytest's capture)."""
    monkeypatch.delenv(kernel_build.PURE_ENV, raising=False)
    monkeypatch.setattr(logging.getLogger("barbus"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="barbus")
    return caplog


def test_matching_sources_with_their_extensions_run_compiled(
    tmp_path: Path, barbus_log: pytest.LogCaptureFixture
) -> None:
    root = make_package(tmp_path, b"x = 1\n", b"x = 1\n")
    assert kernel_build._why_pure(root) is None
    assert barbus_log.records == []


def test_an_edited_source_runs_pure_with_one_warning_naming_it(
    tmp_path: Path, barbus_log: pytest.LogCaptureFixture
) -> None:
    root = make_package(tmp_path, b"x = 1\n", b"x = 2\n")
    why = kernel_build._why_pure(root)
    assert why == f"the compiled kernel is older than its source ({MODULE})"
    assert len(barbus_log.records) == 1
    assert barbus_log.records[0].levelno == logging.WARNING
    message = barbus_log.records[0].getMessage()
    assert MODULE in message
    assert "make build" in message
    assert "\n" not in message


def test_a_kernel_compiled_for_another_python_runs_pure_quietly(
    tmp_path: Path, barbus_log: pytest.LogCaptureFixture
) -> None:
    root = make_package(tmp_path, b"x = 1\n", b"x = 1\n", built=False)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert kernel_build._why_pure(root) == (
        f"this install has no compiled kernel for Python {version}"
    )
    assert barbus_log.records == []


def test_one_missing_extension_of_several_runs_pure_with_a_warning(
    tmp_path: Path, barbus_log: pytest.LogCaptureFixture
) -> None:
    root = make_package(tmp_path, b"x = 1\n", b"x = 1\n")
    other = root / "daemon/core/bus.py"
    other.write_bytes(b"y = 1\n")
    manifest = json.loads((root / "compiled_sources.json").read_text())
    manifest["sources"]["daemon/core/bus.py"] = hashlib.sha256(b"y = 1\n").hexdigest()
    (root / "compiled_sources.json").write_text(json.dumps(manifest))
    assert kernel_build._why_pure(root) == (
        "the compiled kernel is older than its source (daemon/core/bus.py)"
    )
    assert len(barbus_log.records) == 1


def test_no_manifest_or_a_damaged_one_is_no_compiled_kernel(
    tmp_path: Path, barbus_log: pytest.LogCaptureFixture
) -> None:
    assert kernel_build._why_pure(tmp_path) == "this install has no compiled kernel"
    (tmp_path / "compiled_sources.json").write_text("{not json")
    assert kernel_build._why_pure(tmp_path) == "this install has no compiled kernel"
    assert barbus_log.records == []


def test_the_environment_switch_wins_over_a_good_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_package(tmp_path, b"x = 1\n", b"x = 1\n")
    monkeypatch.setenv(kernel_build.PURE_ENV, "1")
    assert kernel_build._why_pure(root) == "BARBUS_PURE_PYTHON is set"
    monkeypatch.setenv(kernel_build.PURE_ENV, "0")
    assert kernel_build._why_pure(root) is None


def test_the_source_only_finder_finds_the_py_file_beside_an_extension(tmp_path: Path) -> None:
    package = tmp_path / "barbus" / "kern"
    package.mkdir(parents=True)
    (package / "mod.py").write_text("x = 1\n")
    (package / f"mod{EXTENSION}").write_bytes(b"\x7fELF stand-in")
    finder = kernel_build._SourceOnlyFinder()
    spec = finder.find_spec("barbus.kern.mod", [str(package)])
    assert spec is not None
    assert spec.origin == str(package / "mod.py")
    assert isinstance(spec.loader, importlib.machinery.SourceFileLoader)
    # The standard finder would pick the extension: the stand-in proves the case is real.
    standard = importlib.machinery.PathFinder.find_spec("mod", [str(package)])
    assert standard is not None
    assert standard.origin == str(package / f"mod{EXTENSION}")
    assert finder.find_spec("other.mod", [str(package)]) is None  # not barbus
    assert finder.find_spec("barbus", None) is None  # top level: the normal finders
    real = finder.find_spec("barbus.daemon.core.engine", list(barbus.daemon.core.__path__))
    assert real is not None
    assert (real.origin or "").endswith("engine.py")


def python(code: str, env: dict[str, str]) -> str:
    done = checkout_python(code, env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.process
def test_barbus_pure_python_runs_the_py_modules_and_version_says_so() -> None:
    pure = {"BARBUS_PURE_PYTHON": "1"}
    version = run_barbus("--version", env=pure)
    assert "pure-Python kernel (BARBUS_PURE_PYTHON is set)" in version.stdout
    code = (
        "import barbus.kernel_build as k, barbus.daemon.core.engine as e, "
        "barbus.strategies.indicators.averages as a; print(e.__file__, a.__file__, k.build_name())"
    )
    engine_file, averages_file, name = python(code, pure).split()
    assert engine_file.endswith("engine.py")
    assert averages_file.endswith("averages.py")
    assert name == "pure"
    # Without the switch the same modules are the extensions, when this checkout has them.
    engine_file, _, name = python(code, {}).split()
    assert name == ("compiled" if engine_file.endswith(EXTENSION) else "pure")
