"""The import graph follows the layers: kernel <- strategies <- {replay, daemon service} <- top.

Every module's imports are read with ``ast`` (function-level and ``TYPE_CHECKING`` imports
included: a late import is still a dependency) and each edge between barbus modules is checked
against the declared layers. Inside ``barbus.replay`` the graph must also have no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

KERNEL_SHIMS = frozenset({"barbus.daemon.events", "barbus.strategies.base"})
# The cli is a package: each of its modules is top.
TOP = frozenset({"barbus.daemon.cli", "barbus.daemon.parity"})
ALLOWED: dict[str, frozenset[str]] = {
    "kernel": frozenset({"kernel"}),
    "strategies": frozenset({"kernel", "strategies"}),
    "replay": frozenset({"kernel", "strategies", "replay"}),
    "service": frozenset({"kernel", "strategies", "service"}),
    "top": frozenset({"kernel", "strategies", "replay", "service", "top", "root"}),
    # The namespace facade: its API names load lazily (PEP 562) from the replay on first use.
    "root": frozenset({"replay"}),
}


def layer_of(module: str) -> str:
    """The layer a barbus module belongs to."""
    if module == "barbus":
        return "root"
    if (
        module in KERNEL_SHIMS
        or module == "barbus.daemon.core"
        or module.startswith("barbus.daemon.core.")
    ):
        return "kernel"
    if module in TOP or any(module.startswith(f"{top}.") for top in TOP):
        return "top"
    for layer in ("strategies", "replay"):
        if module == f"barbus.{layer}" or module.startswith(f"barbus.{layer}."):
            return layer
    if module == "barbus.daemon" or module.startswith("barbus.daemon."):
        return "service"
    raise AssertionError(f"{module} is in no layer")


def barbus_modules() -> dict[str, Path]:
    """Every first-party module by import name, from the real folders (``barbus/`` links them)."""
    modules = {"barbus": REPO_ROOT / "barbus" / "__init__.py"}
    for package in ("daemon", "strategies", "replay"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(("barbus", *parts)).removesuffix(".__init__")
            modules[name] = path
    return modules


def imports_of(module: str, path: Path, known: Iterable[str]) -> set[str]:
    """The barbus modules ``module`` imports anywhere in its file (a ``from X import name``
    of a submodule counts as that submodule)."""
    known = set(known)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {name for name in found if name == "barbus" or name.startswith("barbus.")}


def graph() -> dict[str, set[str]]:
    modules = barbus_modules()
    return {name: imports_of(name, path, modules) - {name} for name, path in modules.items()}


def bad_edges(edges: dict[str, set[str]]) -> list[str]:
    """Each edge outside the layers, as ``module -> imported (layer -> layer)``."""
    bad = []
    for module, imported in sorted(edges.items()):
        source = layer_of(module)
        for target in sorted(imported):
            # __version__ and the lazy API: the root holds no code of any layer at import time.
            if target == "barbus" and module != "barbus":
                continue
            if layer_of(target) not in ALLOWED[source]:
                bad.append(f"{module} -> {target} ({source} -> {layer_of(target)})")
    return bad


def cycles(edges: dict[str, set[str]], prefix: str) -> list[list[str]]:
    """Elementary cycles among the modules under ``prefix``, one per strongly connected set."""
    inside = {m: {t for t in ts if t.startswith(prefix)} for m, ts in edges.items()}
    inside = {m: ts for m, ts in inside.items() if m.startswith(prefix)}
    found: list[list[str]] = []
    done: set[str] = set()
    for start in sorted(inside):
        if start in done:
            continue
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(inside.get(node, ())):
                if nxt == start:
                    found.append([*path, start])
                    done.update(path)
                    stack.clear()
                    break
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def test_every_import_edge_is_inside_the_layers() -> None:
    bad = bad_edges(graph())
    assert not bad, "imports across the layers:\n" + "\n".join(bad)


def test_replay_modules_import_each_other_without_a_cycle() -> None:
    found = cycles(graph(), "barbus.replay")
    assert not found, "import cycles in barbus.replay:\n" + "\n".join(
        " -> ".join(cycle) for cycle in found
    )


BATCH = "barbus.replay.batch"
BATCH_MODULES = frozenset(
    f"{BATCH}.{name}"
    for name in (
        "backend",
        "job",
        "jobs",
        "journal",
        "local",
        "metrics",
        "ray",
        "retry",
        "run",
        "spec",
        "tables",
    )
)


def all_imports(path: Path) -> set[str]:
    """Every module a file names in an import, wherever the import is (absolute names only)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def top_level_imports(path: Path) -> set[str]:
    """Modules a file imports when it is imported (module-level statements, not functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_batch_package_is_in_the_replay_layer_and_imports_ray_only_when_it_runs() -> None:
    """The batch package's modules are checked like every other (replay layer, no cycle), its
    submodules never import the package's ``__init__`` (the public API imports them), and
    importing the package never imports Ray: only ``batch.ray`` names ``ray``, and nothing
    imports ``batch.ray`` but inside a function."""
    modules = barbus_modules()
    edges = graph()
    assert BATCH_MODULES | {BATCH} <= {m for m in modules if m.startswith(BATCH)}
    assert {layer_of(module) for module in BATCH_MODULES | {BATCH}} == {"replay"}
    assert [m for m in BATCH_MODULES if BATCH in edges[m]] == []
    users_of_ray = sorted(
        name
        for name, path in modules.items()
        if "ray" in {m.split(".")[0] for m in all_imports(path)}
    )
    assert users_of_ray == [f"{BATCH}.ray"]
    eager = sorted(
        name for name, path in modules.items() if f"{BATCH}.ray" in top_level_imports(path)
    )
    assert eager == []


def test_the_checker_sees_late_imports_and_names_the_layers(tmp_path: Path) -> None:
    """The checks themselves: a function-level import counts, a bad edge is printed with its
    layers, and a two-module cycle is found."""
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from barbus.replay.runner import run_replay\n")
    edges = {"barbus.daemon.core.engine": imports_of("barbus.daemon.core.engine", path, [])}
    assert edges["barbus.daemon.core.engine"] == {"barbus.replay.runner"}
    assert bad_edges(edges) == [
        "barbus.daemon.core.engine -> barbus.replay.runner (kernel -> replay)"
    ]
    loop = {"barbus.replay.a": {"barbus.replay.b"}, "barbus.replay.b": {"barbus.replay.a"}}
    assert cycles(loop, "barbus.replay") == [
        ["barbus.replay.a", "barbus.replay.b", "barbus.replay.a"]
    ]
    assert layer_of("barbus.daemon.events") == "kernel"
    assert layer_of("barbus.daemon.feeds.binance") == "service"
    assert layer_of("barbus.daemon.parity") == "top"
    assert layer_of("barbus.daemon.cli.replay") == "top"


REPORT_MODULES = frozenset(
    f"barbus.replay.reports.{name}"
    for name in (
        "plotting",
        "results_table",
        "run_chart",
        "accounts_chart",
        "heatmap",
        "batch_page",
        "batch_report",
    )
)
TERMINAL = frozenset({"tqdm", "barbus.replay.progress"})


def test_the_reports_are_a_replay_package_of_pictures_without_the_terminal() -> None:
    """One module per picture or page in ``barbus.replay.reports``, all in the replay layer;
    the progress bar (tqdm) is the terminal's, in ``barbus.replay.progress``, never imported by
    a picture."""
    modules = barbus_modules()
    reports = {m for m in modules if m.startswith("barbus.replay.reports.")}
    assert reports == REPORT_MODULES
    assert {layer_of(m) for m in [*reports, "barbus.replay.reports"]} == {"replay"}
    for module in sorted(reports):
        terminal = {
            name
            for name in all_imports(modules[module])
            if any(name == t or name.startswith(f"{t}.") for t in TERMINAL)
        }
        assert not terminal, f"{module} imports the terminal side: {sorted(terminal)}"
    assert "tqdm" in all_imports(modules["barbus.replay.progress"])
