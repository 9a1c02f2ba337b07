"""Strategy specs: names, files, modules and plugins resolve to their class, or one clear error."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from barbus.daemon.core.errors import StrategyError
from barbus.strategies import StrategySource, create_strategy, load_shipped, resolve_strategy
from barbus.strategies.sma_cross import SmaCross
from tests.kit.processes import REPO_ROOT

STRATEGY_FILE = '''
"""A user's strategy: buy on the first bar, never sell."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from barbus.daemon.core.events import Bar, Signal
from barbus.daemon.core.params import BaseParams
from barbus.daemon.core.strategy import Strategy


@dataclasses.dataclass(frozen=True)
class HoldParams(BaseParams):
    size: int = 3


class Hold(Strategy[HoldParams]):
    name: ClassVar[str] = "hold"
    params_type: ClassVar[type[BaseParams]] = HoldParams

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        return Signal.BUY if position == 0.0 else None

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        pass
'''


@pytest.fixture
def user_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder outside the project holding a strategy file; sys.path and modules restored."""
    (tmp_path / "hold.py").write_text(STRATEGY_FILE, encoding="utf-8")
    path, modules = list(sys.path), set(sys.modules)
    yield tmp_path
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def test_a_registered_name_is_the_built_in_class() -> None:
    source = resolve_strategy("sma_cross")
    assert source.cls is SmaCross
    assert (source.spec, source.origin) == ("sma_cross", "built-in")
    # The source file's, in the compiled build too (where the module is an extension beside it).
    module_file = REPO_ROOT / "strategies" / "sma_cross.py"
    assert source.fingerprint == hashlib.sha256(module_file.read_bytes()).hexdigest()[:16]


@pytest.mark.parametrize("spec", ["hold.py:Hold", "hold.py", "./hold.py:Hold"])
def test_a_file_spec_relative_to_the_base_folder(user_dir: Path, spec: str) -> None:
    source = resolve_strategy(spec, base_dir=user_dir)
    assert source.name == "hold"
    assert source.spec == f"{user_dir / 'hold.py'}:Hold"
    assert source.origin == f"file {user_dir / 'hold.py'}"
    expected = hashlib.sha256(STRATEGY_FILE.encode()).hexdigest()[:16]
    assert (source.fingerprint, source.source) == (expected, STRATEGY_FILE)
    strategy = create_strategy(source, {"size": "5"})
    assert strategy.params.size == 5


def test_a_file_spec_is_relative_to_the_current_folder_by_default(
    user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(user_dir)
    assert resolve_strategy("hold.py:Hold").spec == f"{user_dir / 'hold.py'}:Hold"


@pytest.mark.parametrize("spec", ["hold:Hold", "hold.Hold"])
def test_a_module_spec_naming_a_file_of_the_base_folder_is_that_file(
    user_dir: Path, spec: str
) -> None:
    """Canonical and absolute, so parity and Ray find it from anywhere."""
    source = resolve_strategy(spec, base_dir=user_dir)
    assert (source.name, source.spec) == ("hold", f"{user_dir / 'hold.py'}:Hold")
    assert source.source == STRATEGY_FILE


def test_a_package_in_the_base_folder_loads_as_a_module(user_dir: Path) -> None:
    package = user_dir / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "hold.py").write_text(STRATEGY_FILE, encoding="utf-8")
    source = resolve_strategy("mypkg.hold:Hold", base_dir=user_dir)
    assert (source.spec, source.origin, source.source) == (
        "mypkg.hold:Hold",
        "module mypkg.hold",
        None,
    )


def test_a_module_edited_after_this_process_imported_it_is_refused(user_dir: Path) -> None:
    """The import is cached: the old class must not run under the new file's fingerprint."""
    package = user_dir / "edited"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "hold.py").write_text(STRATEGY_FILE, encoding="utf-8")
    resolve_strategy("edited.hold:Hold", base_dir=user_dir)
    (package / "hold.py").write_text(STRATEGY_FILE + "# tuned\n", encoding="utf-8")
    with pytest.raises(StrategyError, match="was edited after this process imported it"):
        resolve_strategy("edited.hold:Hold", base_dir=user_dir)


def test_an_import_error_inside_a_module_names_its_line_not_a_missing_module(
    user_dir: Path,
) -> None:
    (user_dir / "mypkg2").mkdir()  # a package, so it is imported as a module
    (user_dir / "mypkg2" / "__init__.py").write_text("import my\n", encoding="utf-8")
    with pytest.raises(StrategyError) as caught:
        resolve_strategy("mypkg2.sub:X", base_dir=user_dir)
    assert "__init__.py line 1: ModuleNotFoundError: No module named 'my'" in str(caught.value)


def test_a_constructor_that_raises_is_one_strategy_error(user_dir: Path) -> None:
    broken = STRATEGY_FILE.replace(
        "    def on_bar(",
        "    def __init__(self, params: HoldParams) -> None:\n"
        "        super().__init__(params)\n        self.x = 1 / 0\n\n    def on_bar(",
    )
    (user_dir / "broken_init.py").write_text(broken, encoding="utf-8")
    with pytest.raises(StrategyError) as caught:
        create_strategy(resolve_strategy("broken_init.py:Hold", base_dir=user_dir))
    message = str(caught.value)
    assert "building it failed" in message
    assert "broken_init.py line " in message
    assert "ZeroDivisionError" in message


def test_a_module_spec_of_an_installed_module() -> None:
    source = resolve_strategy("barbus.strategies.sma_cross:SmaCross")
    assert source.cls is SmaCross
    assert source.origin == "module barbus.strategies.sma_cross"


def test_editing_the_file_changes_the_fingerprint(user_dir: Path) -> None:
    before = resolve_strategy("hold.py:Hold", base_dir=user_dir)
    (user_dir / "hold.py").write_text(STRATEGY_FILE + "\n# tuned\n", encoding="utf-8")
    after = resolve_strategy("hold.py:Hold", base_dir=user_dir)
    assert before.fingerprint != after.fingerprint
    assert before.cls is not after.cls  # each version is its own module


def test_shipped_source_rebuilds_the_class_without_the_file(user_dir: Path) -> None:
    source = resolve_strategy("hold.py:Hold", base_dir=user_dir)
    assert source.source is not None
    (user_dir / "hold.py").unlink()
    for name in [m for m in sys.modules if m.startswith("_barbus_strategy_")]:
        del sys.modules[name]
    rebuilt = load_shipped(source.spec, source.source, source.fingerprint)
    assert (rebuilt.name, rebuilt.spec, rebuilt.fingerprint) == (
        "hold",
        source.spec,
        source.fingerprint,
    )
    with pytest.raises(StrategyError, match="does not match its fingerprint"):
        load_shipped(source.spec, source.source + "#", source.fingerprint)


def test_a_class_passed_directly_is_described_by_where_it_lives(user_dir: Path) -> None:
    from_file = resolve_strategy("hold.py:Hold", base_dir=user_dir)
    again = StrategySource.of_class(from_file.cls)
    assert (again.spec, again.fingerprint, again.source) == (
        from_file.spec,
        from_file.fingerprint,
        from_file.source,
    )
    assert StrategySource.of_class(SmaCross).spec == "sma_cross"


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.mark.parametrize(
    ("spec", "files", "fragments"),
    [
        ("sma_cros", {}, ["unknown strategy 'sma_cros'", "did you mean 'sma_cross'"]),
        ("missing.py:X", {}, ["strategy file not found:", "missing.py"]),
        (
            "broken.py:X",
            {"broken.py": "import math\ndef f(:\n    pass\n"},
            ["syntax error in ", "broken.py line 2", "def f(:"],
        ),
        (
            "needs.py:X",
            {"needs.py": '"""x"""\nimport math\nimport not_a_module_anywhere\n'},
            ["needs.py line 3", "ModuleNotFoundError", "not_a_module_anywhere"],
        ),
        (
            "raises.py:X",
            {"raises.py": "x = 1\nraise RuntimeError('boom at import')\n"},
            ["raises.py line 2", "RuntimeError: boom at import"],
        ),
        ("plain.py:Foo", {"plain.py": "class Foo:\n    pass\n"}, ["not a barbus strategy"]),
        ("plain.py:Bar", {"plain.py": "class Foo:\n    pass\n"}, ["has no class 'Bar'"]),
        ("plain.py", {"plain.py": "x = 1\n"}, ["defines 0 strategy classes"]),
        (
            "hold.py:Hol",
            {},
            ["has no class 'Hol'", "did you mean 'Hold'", "strategies in it: Hold"],
        ),
        ("no_such_module:X", {}, ["no module named 'no_such_module'"]),
        ("a b", {}, ["is not a name, path/to/file.py:ClassName or package.module:ClassName"]),
    ],
)
def test_bad_specs_raise_one_clear_line(
    user_dir: Path, spec: str, files: dict[str, str], fragments: list[str]
) -> None:
    for name, text in files.items():
        _write(user_dir, name, text)
    with pytest.raises(StrategyError) as caught:
        resolve_strategy(spec, base_dir=user_dir)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("kept", [True, False], ids=["ipython-cell", "python-c"])
def test_a_notebook_class_is_fingerprinted_by_its_code(user_dir: Path, kept: bool) -> None:
    """A Jupyter cell's class has no module file; IPython keeps the cell's text in linecache
    (``python -c`` does not: then the bytecode counts)."""
    import linecache
    import types

    def cell(number: int, text: str) -> type:
        filename = f"<ipython-input-{number}-{kept}>"
        if kept:
            linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        module = types.ModuleType(f"notebook_{number}_{kept}")
        sys.modules[module.__name__] = module
        exec(compile(text, filename, "exec"), module.__dict__)
        found: type = module.__dict__["Hold"]
        return found

    first = cell(1, STRATEGY_FILE)
    edited = cell(2, STRATEGY_FILE.replace("Signal.BUY if", "Signal.SELL if"))
    again = cell(3, STRATEGY_FILE)
    fingerprints = [StrategySource.of_class(c).fingerprint for c in (first, edited, again)]
    assert "no-source" not in fingerprints
    assert fingerprints[0] != fingerprints[1]
    assert fingerprints[0] == fingerprints[2]  # the same code, re-run: the same jobs
