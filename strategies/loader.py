"""Find a strategy class from what a user writes after ``--strategy``, the same way everywhere.

A spec is one of:

- a registered name (``sma_cross``): a built-in, or a plugin that an installed distribution
  registers under the entry-point group ``barbus.strategies``;
- ``path/to/file.py:ClassName`` (``path/to/file.py`` alone when the file defines one strategy),
  relative to ``base_dir`` (the current folder, or the folder of the spec or config file that
  names it);
- ``package.module:ClassName`` or ``package.module.ClassName``, importable, or a module or
  package found in ``base_dir``.

:func:`resolve_strategy` returns a :class:`StrategySource`: the class plus where it came from and a
fingerprint of its module's source, which batch jobs and the daemon record so that results of two
versions of the code never mix. A file strategy also carries its source text, so batch workers
(local or on Ray) run exactly the text that was fingerprinted, wherever they are: see
:func:`load_shipped`. Every failure is a :class:`StrategyError` with one line that names the
user's file and line where there is one.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import importlib.machinery
import importlib.metadata
import inspect
import re
import sys
import traceback
import types
from collections.abc import Iterator
from pathlib import Path

from barbus.daemon.core.errors import StrategyError, did_you_mean
from barbus.daemon.core.params import BaseParams
from barbus.daemon.core.strategy import AnyStrategy, Strategy

__all__ = [
    "ENTRY_POINT_GROUP",
    "StrategySource",
    "available_strategies",
    "builtin_strategies",
    "describe_exception",
    "load_shipped",
    "module_docstring",
    "module_source_path",
    "resolve_strategy",
]

ENTRY_POINT_GROUP = "barbus.strategies"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclasses.dataclass(frozen=True)
class StrategySource:
    """A resolved strategy: the class, the spec that finds it again, and what its code was.

    ``spec`` is canonical (a file path made absolute), so a worker process resolves the same class
    from it. ``fingerprint`` is the SHA-256 of the defining module's source file (16 hex digits):
    it changes when that file is edited. ``source`` is the file's text for file strategies (shipped
    to workers with the job), ``None`` otherwise.
    """

    spec: str
    cls: type[AnyStrategy]
    origin: str
    fingerprint: str
    source: str | None = None

    @property
    def name(self) -> str:
        """The strategy's registered name (``cls.name``)."""
        return self.cls.name

    @classmethod
    def of_class(cls, strategy: type[AnyStrategy]) -> StrategySource:
        """Describe a class handed over directly (the Python API): a built-in keeps its name, a
        class loaded from a file its file spec, any other class ``module:QualName``."""
        checked = _checked(strategy, f"{strategy!r}")
        module = sys.modules.get(checked.__module__)
        shipped = getattr(module, "__barbus_file__", None)
        if shipped is not None:
            path, source, fingerprint = shipped
            return cls(f"{path}:{checked.__name__}", checked, f"file {path}", fingerprint, source)
        if builtin_strategies().get(checked.name) is checked:
            return _from_class(checked.name, checked, "built-in")
        spec = f"{checked.__module__}:{checked.__qualname__}"
        if module is not None and getattr(module, "__file__", None):
            fingerprint = _module_fingerprint(module)
        else:  # a notebook or ``python -c`` class: no module file to hash
            fingerprint = _class_fingerprint(checked)
        return cls(spec, checked, f"module {checked.__module__}", fingerprint)


def builtin_strategies() -> dict[str, type[AnyStrategy]]:
    """The strategies shipped with barbus, by registered name."""
    from barbus.strategies.bbrs import Bbrs
    from barbus.strategies.metatrend import MetaTrend
    from barbus.strategies.random_entry import RandomEntry
    from barbus.strategies.sma_cross import SmaCross

    return {cls.name: cls for cls in (SmaCross, MetaTrend, Bbrs, RandomEntry)}


def _plugin_entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_strategies() -> Iterator[StrategySource | StrategyError]:
    """Built-ins, then installed plugins; a plugin that fails to load is yielded as its error."""
    builtins = builtin_strategies()
    for name, cls in builtins.items():
        yield _from_class(name, cls, "built-in")
    for name, ep in sorted(_plugin_entry_points().items()):
        if name in builtins:
            continue
        try:
            yield _from_entry_point(ep)
        except StrategyError as exc:
            yield exc


def resolve_strategy(spec: str, base_dir: Path | None = None) -> StrategySource:
    """The strategy that ``spec`` names; relative file paths are taken from ``base_dir`` (cwd)."""
    text = spec.strip()
    if not text:
        raise StrategyError("empty strategy spec")
    builtins = builtin_strategies()
    if text in builtins:
        return _from_class(text, builtins[text], "built-in")
    plugins = _plugin_entry_points()
    if text in plugins:  # any entry-point name, even one that is not an identifier
        return _from_entry_point(plugins[text])
    if _IDENTIFIER.fullmatch(text):
        known = [*builtins, *sorted(plugins)]
        raise StrategyError(
            f"unknown strategy {text!r}{did_you_mean(text, known)} (strategies: "
            f"{', '.join(known)}; or give path/to/file.py:ClassName or package.module:ClassName)"
        )
    base = (base_dir or Path.cwd()).resolve()
    where, _, class_name = text.rpartition(":") if ":" in text else (text, "", "")
    if where.endswith(".py") or "/" in where or where.startswith("."):
        return _from_file(base / Path(where).expanduser(), class_name or None, spec)
    if not class_name and "." in where and _DOTTED.fullmatch(where):
        where, _, class_name = where.rpartition(".")
    if not _DOTTED.fullmatch(where) or not _IDENTIFIER.fullmatch(class_name or "_"):
        raise StrategyError(
            f"strategy spec {spec!r} is not a name, path/to/file.py:ClassName or "
            "package.module:ClassName"
        )
    return _from_module(where, class_name or None, base, spec)


def load_shipped(spec: str, source: str, fingerprint: str) -> StrategySource:
    """Rebuild a file strategy in a worker from the text shipped with its job.

    The worker does not need the file: it executes the shipped text (under the file's name, so
    tracebacks point at it) and checks that the text is the one the job was fingerprinted with.
    """
    path_text, _, class_name = spec.rpartition(":")
    if _fingerprint(source.encode("utf-8")) != fingerprint:
        raise StrategyError(f"strategy {spec}: the shipped source does not match its fingerprint")
    return _from_text(Path(path_text), source, class_name or None, spec)


def _fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


_IMPORTED: dict[str, str] = {}
"""Module name -> the fingerprint of its file when this process first resolved it."""


def _module_fingerprint(module: types.ModuleType) -> str:
    """The fingerprint of the module's source file, which must still be the code this process
    imported: an import is cached, so after an edit the class would be the old code under the
    new file's fingerprint (and fresh worker processes would run the new code)."""
    path = module_source_path(module)
    try:
        now = _fingerprint(Path(path).read_bytes()) if path else "no-source"
    except OSError:
        now = "no-source"
    first = _IMPORTED.setdefault(module.__name__, now)
    if now != first:
        raise StrategyError(
            f"module {module.__name__} ({path}) was edited after this process imported it: "
            "restart the process (or the notebook kernel) to run the new code; a file spec, "
            "path/file.py:ClassName, always runs the file as it is now"
        )
    return now


def module_source_path(module: types.ModuleType) -> str | None:
    """The module's source file, also when it runs compiled (the ``.py`` its extension module
    was built from, beside it): a shipped strategy has one fingerprint in both builds."""
    try:
        path = inspect.getsourcefile(module)
    except TypeError:
        path = None
    file = getattr(module, "__file__", None)
    if path is None and file:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            beside = Path(file.removesuffix(suffix) + ".py")
            if file.endswith(suffix) and beside.is_file():
                return str(beside)
    return path or file


def module_docstring(module: types.ModuleType) -> str | None:
    """The module's docstring, read from its source when compiled (mypyc keeps none)."""
    if module.__doc__ is not None:
        return module.__doc__
    path = module_source_path(module)
    try:
        return ast.get_docstring(ast.parse(Path(path).read_bytes())) if path else None
    except (OSError, SyntaxError, ValueError):
        return None


def _class_fingerprint(cls: type) -> str:
    """A class without a module file (a notebook cell): the text of its methods (IPython keeps
    cells in linecache; else their bytecode and constants) and its parameters' defaults, for
    the class and its bases from the same module, so an edited and re-run cell is new code."""
    parts: list[str] = []
    for klass in cls.__mro__:
        if klass.__module__ != cls.__module__:
            continue
        parts.append(klass.__qualname__)
        for name, value in sorted(vars(klass).items()):
            function = getattr(value, "fget", None) or getattr(value, "__func__", None) or value
            code = getattr(function, "__code__", None)
            if code is None:
                continue
            try:
                parts.append(inspect.getsource(function))
            except (OSError, TypeError):
                parts.append(f"{name}:{_code_text(code)}")
    params = getattr(cls, "params_type", None)
    if params is not None and dataclasses.is_dataclass(params):
        parts += [f"{f.name}={f.default!r}" for f in dataclasses.fields(params)]
    return _fingerprint("\n".join(parts).encode("utf-8"))


def _code_text(code: types.CodeType) -> str:
    """Bytecode, names and constants of ``code`` and the code nested in it (no addresses)."""
    consts = [_code_text(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}|{code.co_names}|{consts}"


def _checked(cls: object, what: str) -> type[AnyStrategy]:
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        kind = type(cls).__name__ if not isinstance(cls, type) else f"class {cls.__name__}"
        raise StrategyError(
            f"{what} is a {kind}, not a barbus strategy (subclass barbus.strategies.Strategy)"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise StrategyError(f"{what} is abstract: it does not implement {missing}")
    if not isinstance(getattr(cls, "name", None), str):
        raise StrategyError(f'{what} has no name: set name = "..." on the class')
    params = getattr(cls, "params_type", None)
    if not (isinstance(params, type) and issubclass(params, BaseParams)):
        raise StrategyError(f"{what}: params_type must be a dataclass subclassing BaseParams")
    if not dataclasses.is_dataclass(params):
        raise StrategyError(f"{what}: params_type {params.__name__} is not a dataclass")
    return cls


def _from_class(spec: str, cls: type[AnyStrategy], origin: str) -> StrategySource:
    return StrategySource(spec, cls, origin, _module_fingerprint(sys.modules[cls.__module__]))


def _from_entry_point(ep: importlib.metadata.EntryPoint) -> StrategySource:
    dist = f" {ep.dist.name} {ep.dist.version}" if ep.dist is not None else ""
    what = f"plugin {ep.name!r} ({ep.value}{',' if dist else ''}{dist})"
    try:
        loaded = ep.load()
    except Exception as exc:
        raise StrategyError(f"cannot load {what}: {describe_exception(exc, None)}") from None
    cls = _checked(loaded, what)
    return StrategySource(
        ep.name, cls, f"plugin{dist}: {ep.value}", _module_fingerprint(sys.modules[cls.__module__])
    )


def _from_module(module_name: str, class_name: str | None, base: Path, spec: str) -> StrategySource:
    top = module_name.partition(".")[0]
    if module_name == top and (base / f"{top}.py").is_file() and top not in sys.modules:
        # The user's own file (``my_ema:EmaCross`` beside my_ema.py): loaded as the file spec,
        # so its canonical spec is absolute (parity from any folder) and it ships to Ray.
        return _from_file(base / f"{top}.py", class_name, spec)
    local = (base / f"{top}.py").is_file() or (base / top / "__init__.py").is_file()
    if local and str(base) not in sys.path:
        sys.path.append(str(base))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            exc.name == module_name or module_name.startswith(exc.name + ".")
        ):
            raise StrategyError(
                f"strategy {spec!r}: no module named {exc.name!r} (not installed, and no "
                f"{top}.py in {base})"
            ) from None
        raise StrategyError(f"strategy {spec!r}: {describe_exception(exc, None)}") from None
    except Exception as exc:
        raise StrategyError(f"strategy {spec!r}: {describe_exception(exc, None)}") from None
    cls = _pick(module, class_name, f"module {module_name}")
    return StrategySource(
        f"{module_name}:{cls.__name__}", cls, f"module {module_name}", _module_fingerprint(module)
    )


def _from_file(path: Path, class_name: str | None, spec: str) -> StrategySource:
    path = path.resolve()
    if not path.is_file():
        raise StrategyError(f"strategy file not found: {path} (from {spec!r})")
    try:
        source = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyError(f"cannot read strategy file {path}: {exc}") from None
    return _from_text(path, source, class_name, spec)


def _from_text(path: Path, source: str, class_name: str | None, spec: str) -> StrategySource:
    fingerprint = _fingerprint(source.encode("utf-8"))
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"_barbus_strategy_{stem}_{fingerprint}"
    module = sys.modules.get(module_name)
    if module is None:
        module = _execute(path, source, module_name)
    cls = _pick(module, class_name, str(path))
    return StrategySource(f"{path}:{cls.__name__}", cls, f"file {path}", fingerprint, source)


def _execute(path: Path, source: str, module_name: str) -> types.ModuleType:
    """Run the file's text as a module named ``module_name`` (its folder importable, as for a
    script), registered in ``sys.modules`` so dataclass type hints resolve."""
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        line = (exc.text or "").strip()
        shown = f": {line}" if line else ""
        raise StrategyError(f"syntax error in {path} line {exc.lineno}: {exc.msg}{shown}") from None
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    module.__barbus_file__ = (path, source, _fingerprint(source.encode("utf-8")))  # type: ignore[attr-defined]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        del sys.modules[module_name]
        raise StrategyError(f"cannot load {path}: {describe_exception(exc, path)}") from None
    return module


def _pick(module: types.ModuleType, class_name: str | None, where: str) -> type[AnyStrategy]:
    """The class ``class_name`` of ``module``, or its one strategy class when no name is given."""
    if class_name is not None:
        if not hasattr(module, class_name):
            found = _strategies_in(module)
            listing = f" (strategies in it: {', '.join(found)})" if found else " (it has none)"
            hint = did_you_mean(class_name, found)
            raise StrategyError(f"{where} has no class {class_name!r}{hint}{listing}")
        return _checked(getattr(module, class_name), f"{where}:{class_name}")
    found = _strategies_in(module)
    if len(found) != 1:
        listing = ", ".join(found) or "none"
        raise StrategyError(
            f"{where} defines {len(found)} strategy classes ({listing}): name one with "
            f"{where}:ClassName"
        )
    return _checked(getattr(module, found[0]), f"{where}:{found[0]}")


def _strategies_in(module: types.ModuleType) -> list[str]:
    """Concrete strategy classes defined in ``module`` itself (not imported into it)."""
    return [
        name
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, Strategy)
        and value.__module__ == module.__name__
        and not inspect.isabstract(value)
    ]


def describe_exception(exc: BaseException, path: Path | None = None) -> str:
    """``file line N: Type: message`` for the innermost frame in the user's code (in ``path``,
    else outside importlib and barbus)."""
    frames: list[traceback.FrameSummary] = list(traceback.extract_tb(exc.__traceback__))
    if path is not None:
        frames = [f for f in frames if f.filename == str(path)] or frames
    else:
        here = str(Path(__file__).parent.parent)  # the barbus package
        frames = [
            f for f in frames if "importlib" not in f.filename and not f.filename.startswith(here)
        ] or frames
    where = f"{frames[-1].filename} line {frames[-1].lineno}: " if frames else ""
    return f"{where}{type(exc).__name__}: {exc}"
