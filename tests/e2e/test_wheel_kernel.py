"""``pip install barbus`` builds the compiled kernel where a C compiler exists, and pure Python
where none does (or with ``BARBUS_PURE_PYTHON=1``); the installed ``barbus --version`` says which.

The wheel of this checkout is the one ``tests/e2e/conftest.py`` builds (compiled, unless this run
has ``BARBUS_PURE_PYTHON`` set, as CI's pure-Python leg has). A second wheel is built with ``CC``
naming a compiler that does not exist: the machine without a compiler.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

from tests.e2e.conftest import REPO_ROOT, clean_env, run_checked


def _compiled_modules() -> list[str]:
    """The modules ``setup.py`` compiles, as paths inside the wheel (``barbus/...py``)."""
    setup = (REPO_ROOT / "setup.py").read_text(encoding="utf-8")
    listing = setup[setup.index("COMPILED = [") : setup.index("]", setup.index("COMPILED = ["))]
    return re.findall(r'"(barbus/[\w/]+\.py)"', listing)


def _extensions(wheel: Path) -> set[str]:
    """The extension modules in ``wheel``, as the ``.py`` path each one compiles."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    return {re.sub(r"\.cpython-[^/]*\.so$", ".py", n) for n in names if n.endswith(".so")}


def _version(python: str, env: dict[str, str], cwd: Path) -> str:
    return run_checked([python, "-m", "barbus.daemon.cli", "--version"], env=env, cwd=cwd)


def test_the_wheel_carries_the_kernel_its_build_could_compile(wheel: Path, tmp_path: Path) -> None:
    compilable = not os.environ.get("BARBUS_PURE_PYTHON") and shutil.which("cc")
    extensions = _extensions(wheel)
    unpacked = tmp_path / "wheel"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    env = {**clean_env(), "PYTHONPATH": str(unpacked)}
    env.pop("BARBUS_PURE_PYTHON", None)
    version = _version(sys.executable, env, tmp_path)
    if compilable:
        modules = _compiled_modules()
        assert "barbus/daemon/core/engine.py" in modules
        assert extensions == {*modules, "barbus/kernel__mypyc.py"}
        assert (unpacked / "barbus" / "compiled_sources.json").is_file()
        assert version.strip() == "barbus 0.1.0, compiled kernel (mypyc)"
        forced = _version(sys.executable, {**env, "BARBUS_PURE_PYTHON": "1"}, tmp_path)
        assert forced.strip() == "barbus 0.1.0, pure-Python kernel (BARBUS_PURE_PYTHON is set)"
    else:
        assert extensions == set()
        assert "pure-Python kernel (this install has no compiled kernel)" in version


def test_a_machine_without_a_c_compiler_builds_and_runs_pure_python(tmp_path: Path) -> None:
    env = {**clean_env(), "CC": str(tmp_path / "no-such-cc")}
    env.pop("BARBUS_PURE_PYTHON", None)
    run_checked(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check"),
            *("--wheel-dir", str(tmp_path), str(REPO_ROOT)),
        ],
        timeout=600,
        env=env,
    )
    [wheel] = tmp_path.glob("barbus-*.whl")
    assert _extensions(wheel) == set()
    unpacked = tmp_path / "wheel"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
        assert "barbus/daemon/core/engine.py" in archive.namelist()
    run_env = {**env, "PYTHONPATH": str(unpacked)}
    version = _version(sys.executable, run_env, tmp_path)
    assert version.strip() == (
        "barbus 0.1.0, pure-Python kernel (this install has no compiled kernel)"
    )
    report = run_checked(
        [
            *(sys.executable, "-m", "barbus.daemon.cli", "replay", "--strategy", "sma_cross"),
            *("--end", "2025-05-22", "--no-plot", "--out", str(tmp_path / "out")),
        ],
        env={**run_env, "BARBUS_CACHE_DIR": str(tmp_path / "cache")},
        cwd=tmp_path,
    )
    assert report.startswith("strategy      sma_cross")
