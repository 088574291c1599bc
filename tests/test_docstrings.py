"""The package's docstrings: LaTeX only in raw strings, and no pointer to files outside the repository.

A backslash in a docstring that is not raw is an escape: ``\\tau`` becomes a tab and ``\\rVert`` a carriage return,
and the rendered formula is silently wrong. Every module, class and function docstring of ``uotm/`` is parsed with
:mod:`ast` and read back from the source.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "uotm").rglob("*.py"))
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # every control character but the newline
OUTSIDE = re.compile(r"SPEC\s*§|SPEC\.md|PERFORMANCE\.md|STYLE\.md|TOOLCHAIN\.md|\.\./shared|/work/")


def docstrings(path: Path):
    """(name, the docstring's constant node) for the module and every class and function of ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in [tree, *ast.walk(tree)]:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                yield getattr(node, "name", "<module>"), first.value


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docstrings_hold_no_control_characters_and_latex_only_in_raw_strings(path):
    source = path.read_text()
    bad = []
    for name, node in docstrings(path):
        if CONTROL.search(node.value):
            bad.append(f"{name} (line {node.lineno}): a control character, from a backslash in a string not raw")
        literal = ast.get_source_segment(source, node)
        if "\\" in literal and not literal.lstrip("bfuBFU").lower().startswith("r"):
            bad.append(f"{name} (line {node.lineno}): a backslash in a docstring that is not raw")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("folder", ["uotm", "scripts"])
def test_no_reference_to_files_outside_the_repository(folder):
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in sorted((ROOT / folder).rglob("*")) if path.suffix in (".py", ".sh", ".md")
            for n, line in enumerate(path.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, "\n".join(hits)
