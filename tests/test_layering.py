"""Every import in ``wiml/`` points down the layer stack, and no module imports itself in a circle.

:data:`LAYERS` below is the single place that says which package sits in which layer (docs/architecture.md
describes it). Layers are listed bottom-up; a module may import modules of its own layer or of a lower one.
The test parses the source (``ast``), so imports inside functions and ``TYPE_CHECKING`` blocks count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "wiml"

#: (layer name, module prefixes), bottom-up. ``"wiml"`` means the package's ``__init__`` only.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        ("wiml", "wiml.errors", "wiml.utils", "wiml.config", "wiml.layout", "wiml.runlock", "wiml.colors"),
    ),
    ("data", ("wiml.data",)),
    ("networks", ("wiml.networks",)),
    ("evaluation", ("wiml.evaluation",)),
    ("interactive", ("wiml.interactive",)),
    ("training", ("wiml.training",)),
    ("cam", ("wiml.cam",)),
    ("experiments", ("wiml.experiments",)),
    ("annotator", ("wiml.annotator",)),
    ("gui", ("wiml.gui",)),
    ("cli", ("wiml.cli",)),
)

#: the lowest layer that may import a Qt binding
QT_LAYER = "gui"
QT_PACKAGES = ("PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy")


def module_name(path: Path, root: Path = PACKAGE_ROOT) -> str:
    """Dotted name of the module at ``path`` in the package folder ``root`` (``wiml/``)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    """``{dotted module name: source path}`` of every ``.py`` file under ``root``."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The ``wiml`` modules (and top-level third-party packages) that ``path`` imports, anywhere in it.

    ``from wiml.x import y`` counts as an import of ``wiml.x.y`` when that is a module, else of ``wiml.x``.
    Relative imports are resolved against ``name``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            children = [f"{target}.{alias.name}" for alias in node.names]
            sub = [c for c in children if c in known]
            found.update(sub)
            if len(sub) < len(children):
                found.add(target)
    return found


def layer_of(module: str) -> int | None:
    """Index in :data:`LAYERS` of the longest matching prefix; None when no layer claims the module."""
    best, best_len = None, -1
    for index, (_layer, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = (
                module == prefix if prefix == "wiml" else module == prefix or module.startswith(prefix + ".")
            )
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    """``{module: wiml modules it imports}`` (imports of ``wiml`` only; a missing module is kept by name)."""
    modules = all_modules(root)
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        deps = {m for m in imports_of(path, name, known) if m == "wiml" or m.startswith("wiml.")}
        graph[name] = {d for d in deps if d != name}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (src, dst)
        for src, deps in graph.items()
        for dst in deps
        if layer_of(src) is not None and layer_of(dst) is not None and layer_of(dst) > layer_of(src)
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# -- the checker itself, on tiny made-up packages with known answers ----------------------------------------


def _write_package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "wiml"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return pkg


def test_checker_finds_an_upward_import_and_a_cycle(tmp_path):
    pkg = _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "data/__init__.py": "",
            "data/io.py": "from wiml.errors import x\ndef f():\n    from wiml.cli import main\n",
            "cli/__init__.py": "",
            "cli/main.py": "from . import helper\n",
            "cli/helper.py": "import wiml.cli.main\n",
        },
    )
    graph = import_graph(pkg)
    assert graph["wiml.data.io"] == {"wiml.errors", "wiml.cli.main"}
    assert graph["wiml.cli.main"] == {"wiml.cli.helper"}
    assert upward_imports(graph) == {("wiml.data.io", "wiml.cli.main")}
    assert cycles(graph) == [["wiml.cli.helper", "wiml.cli.main"]]


def test_layer_of_uses_the_longest_prefix():
    assert LAYERS[layer_of("wiml")][0] == "core"
    assert LAYERS[layer_of("wiml.errors")][0] == "core"
    assert LAYERS[layer_of("wiml.data.io")][0] == "data"
    assert LAYERS[layer_of("wiml.experiments.pipeline")][0] == "experiments"
    assert layer_of("wiml.nowhere") is None
    assert layer_of("wimlx") is None


# -- the package --------------------------------------------------------------------------------------------


def test_every_module_has_a_layer():
    missing = sorted(m for m in all_modules() if layer_of(m) is None)
    assert not missing, f"add these modules to LAYERS in tests/test_layering.py: {missing}"


def test_every_import_points_down():
    found = sorted(upward_imports(import_graph()))
    assert not found, "upward imports (importer -> imported, see LAYERS):\n" + "\n".join(
        f"  {a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})" for a, b in found
    )


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in found)


def test_imports_name_existing_modules():
    graph = import_graph()
    known = set(graph)
    dangling = sorted((src, dst) for src, deps in graph.items() for dst in deps if dst not in known)
    assert not dangling, f"imports of wiml modules that do not exist: {dangling}"


def test_only_the_gui_and_above_import_qt():
    modules = all_modules()
    known = set(modules)
    qt_floor = [name for name, _ in LAYERS].index(QT_LAYER)
    below = sorted(
        name
        for name, path in modules.items()
        if layer_of(name) < qt_floor
        and any(m.split(".")[0] in QT_PACKAGES for m in imports_of(path, name, known))
    )
    assert not below, f"Qt imported below the gui layer: {below}"


def test_gui_modules_all_use_qt():
    """A ``wiml.gui`` module imports Qt or a Qt module of ``wiml.gui``; Qt-free code goes to the annotator core."""
    modules = all_modules()
    known = set(modules)
    qt_free = sorted(
        name
        for name, path in modules.items()
        if name.startswith("wiml.gui.")
        and not any(
            m.split(".")[0] in QT_PACKAGES or m.startswith("wiml.gui.") for m in imports_of(path, name, known)
        )
    )
    assert not qt_free, f"wiml/gui/ modules without Qt belong in wiml/annotator/: {qt_free}"
