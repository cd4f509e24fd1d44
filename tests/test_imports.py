"""The package's import graph, read from the source: no module reaches itself again.

Every import counts, the ones inside functions too: a lazy import only moves a cycle
from import time to the first call. Edges go to what a statement loads: ``from . import
x`` to the submodule ``x`` when there is one, else to the package's ``__init__`` (whose
namespace it reads, so ``from . import __version__`` in a module that ``__init__``
imports is a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xpnet"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file for every module under the package directory ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, module: str, is_package: bool, level: int) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if not level:
        return name
    base = module.split(".")
    base = base[: len(base) - level + (1 if is_package else 0)]
    return ".".join([*base, name] if name else base)


def _loaded(name: str, modules: dict[str, Path]) -> str | None:
    """The module of the package that importing ``name`` reads: itself, or the nearest
    enclosing one (``xpnet.sweeps.grid`` as an attribute of ``xpnet.sweeps``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module level or in a function."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node.module or "", module, is_package, node.level)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                hit = _loaded(target, modules)
                if hit is not None and hit != module:
                    graph[module].add(hit)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done (no cycle through it)
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n]
            if n not in state and (cycle := visit(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph(PACKAGE)
    assert len(graph) > 20 and "xpnet.sweeps" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_lazy_imports_are_edges():
    graph = import_graph(PACKAGE)
    # the sweep driver reaches Dask only when given a client, inside the function
    assert "xpnet.distributed" in graph["xpnet.sweeps.driver"]
    assert "xpnet.sweeps.driver" not in graph["xpnet.distributed"]


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        (  # a function-level import closes the loop
            {"a.py": "from .b import f\n", "b.py": "def f():\n    from .a import g\n"},
            ["pkg.a", "pkg.b", "pkg.a"],
        ),
        (  # a submodule reading a name off the package's __init__
            {"__init__.py": "from .c import x\nv = 1\n", "c.py": "from . import v\nx = v\n"},
            ["pkg", "pkg.c", "pkg"],
        ),
        (  # `from . import sub` and absolute imports reach the submodule itself
            {"s/__init__.py": "", "s/d.py": "from .. import e\n", "e.py": "import pkg.s.d\n"},
            ["pkg.e", "pkg.s.d", "pkg.e"],
        ),
    ],
)
def test_a_cycle_is_found_and_printed(tmp_path, files, cycle):
    root = _write(tmp_path / "pkg", files)
    assert find_cycle(import_graph(root)) == cycle


def test_a_chain_without_a_loop_is_no_cycle(tmp_path):
    root = _write(tmp_path / "pkg", {
        "__init__.py": "from .a import f\n",
        "a.py": "from . import b\ndef f():\n    from .b import g\n    import os\n",
        "b.py": "from .c import h\nimport numpy\n",
        "c.py": "",
    })  # fmt: skip
    graph = import_graph(root)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": set()}
    assert find_cycle(graph) is None


def private_imports(root: Path) -> list[str]:
    """``module: name`` for every private name (``_x``, not a module) that a module of
    the package imports from another one: a private name belongs to its own module."""
    modules = module_names(root)
    out = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = _resolve(node.module or "", module, is_package, node.level)
            if _loaded(base, modules) is None:
                continue  # another library's names are its own business
            for a in node.names:
                private = a.name.startswith("_") and not a.name.startswith("__")
                if private and f"{base}.{a.name}" not in modules:
                    out.append(f"{module}: {a.name} from {base}")
    return out


def test_no_module_imports_another_modules_private_names():
    assert private_imports(PACKAGE) == []


def test_a_private_import_is_found(tmp_path):
    root = _write(tmp_path / "pkg", {
        "__init__.py": "",
        "a.py": "def _helper():\n    pass\n",
        "b.py": "from . import _c\nfrom .a import _helper\nfrom numpy import _globals\n",
        "_c.py": "def f():\n    from ..pkg.a import _helper, __doc__\n",
    })  # fmt: skip
    assert private_imports(root) == ["pkg._c: _helper from pkg.a", "pkg.b: _helper from pkg.a"]
