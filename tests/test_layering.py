"""The package's import layering, read from the source with :mod:`ast` (imports inside functions included).

From the bottom: the foundations (configuration records, run folders, processes, figures); the paper's objects that
need nothing else (data, Ψ*, networks, with the presets that describe them); the losses and the exact answers; the
trainers; what uses a trained model or the trainer (sampling, metrics, the benchmark); the command line. A module may
import from its own layer or a lower one, never from a higher one, and no two modules import each other, directly or
through others.
"""

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "uotm"
LAYERS = (
    ("foundations", {"uotm.config", "uotm.runs", "uotm.dist", "uotm.plots", "uotm.book"}),
    ("data, psi, nets", {"uotm.data", "uotm.psi", "uotm.nets", "uotm.presets"}),
    ("losses, exact", {"uotm.losses", "uotm.exact"}),
    ("trainers", {"uotm.toy", "uotm.sjko", "uotm.wae", "uotm.train"}),
    ("sampling, metrics, bench", {"uotm.sample", "uotm.metrics", "uotm.bench"}),
    ("cli", {"uotm.cli", "uotm.__main__", "uotm"}),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """The layer of ``module``: that of the longest listed name that is it or a package above it."""
    for i, (_, names) in enumerate(LAYERS):
        if module in names and module != "uotm":
            return i
    parent = module.rpartition(".")[0]
    if module == "uotm":
        return len(LAYERS) - 1
    return layer(parent)


def imports(module: str) -> set[str]:
    """The modules of the package that ``module`` imports (a name imported from a package counts as its submodule
    when there is one)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "uotm"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "uotm":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return {m for m in found if m != module and m in MODULES}


def test_every_module_is_in_a_layer_and_imports():
    for name in MODULES:
        assert 0 <= layer(name) < len(LAYERS), name
        if name != "uotm.__main__":
            importlib.import_module(name)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_one_above_it(module):
    above = {m: LAYERS[layer(m)][0] for m in imports(module) if layer(m) > layer(module)}
    assert not above, f"{module} (layer {LAYERS[layer(module)][0]!r}) imports from above: {above}"


def test_no_import_cycle():
    graph = {m: imports(m) for m in MODULES}
    # a package's __init__ re-exporting its own submodules is not a cycle
    graph = {m: {t for t in targets if not t.startswith(m + ".")} for m, targets in graph.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
