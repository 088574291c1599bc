"""Checks of the book's sources (always) and of the built site (when `python ci/build_book.py` has been run)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[!_]*.py"))
TOC = ROOT / "book" / "_toc.yml"
HTML = ROOT / "_build" / "html"


def _cells(path: Path) -> list[dict]:
    """The cells of a Jupytext percent-format file as dicts with ``cell_type``, ``tags`` and ``source``."""
    try:
        import jupytext
    except ImportError:  # the test extra alone: read the `# %%` headers ourselves
        cells, current = [], None
        for line in path.read_text().splitlines():
            if line.startswith("# %%"):
                header = line[4:]
                tags = re.search(r"tags=\[([^\]]*)\]", header)
                current = {
                    "cell_type": "markdown" if "[markdown]" in header else "code",
                    "tags": re.findall(r'"([^"]+)"', tags.group(1)) if tags else [],
                    "source": [],
                }
                cells.append(current)
            elif current is not None:
                current["source"].append(line)
        return [dict(c, source="\n".join(c["source"])) for c in cells]
    nb = jupytext.read(path)
    return [{"cell_type": c.cell_type, "tags": list(c.metadata.get("tags", [])), "source": c.source}
            for c in nb.cells]


def _parameter_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        found = [node[k] for k in ("root", "file") if isinstance(node.get(k), str)]
        for value in node.values():
            if isinstance(value, (dict, list)):
                found.extend(_toc_files(value))
        return found
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


def _toc_chapters() -> list[str]:
    """Chapter names that the toc points at as executed/NAME (the notebooks/NAME.py pages)."""
    return [f.split("/", 1)[1].removesuffix(".ipynb") for f in _toc_files(yaml.safe_load(TOC.read_text()))
            if f.startswith("executed/")]


def test_there_are_chapters():
    assert NOTEBOOKS, "no chapters in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exactly_one_parameters_cell(path):
    cells = _cells(path)
    tagged = [c for c in cells if "parameters" in c["tags"]]
    assert len(tagged) == 1, f"{path.name} has {len(tagged)} cells tagged 'parameters'; it needs exactly one"
    assert tagged[0]["cell_type"] == "code"
    names = _parameter_names(tagged[0]["source"])
    assert names, f"the parameters cell of {path.name} assigns nothing"
    # every override in ci/params must name a parameter of the chapter (papermill would ignore a typo)
    ci_params = ROOT / "ci" / "params" / f"{path.stem}.yaml"
    if ci_params.exists():
        overrides = yaml.safe_load(ci_params.read_text()) or {}
        unknown = set(overrides) - names
        assert not unknown, f"{ci_params.name} sets {sorted(unknown)}, which {path.name} does not define"


def test_toc_points_at_existing_chapters():
    for name in _toc_chapters():
        assert (ROOT / "notebooks" / f"{name}.py").exists(), f"the toc names executed/{name} but notebooks/{name}.py is missing"


@pytest.mark.skipif(not HTML.is_dir(), reason="the book has not been built (run: python ci/build_book.py --params ci)")
@pytest.mark.parametrize("name", _toc_chapters())
def test_built_chapter_has_figures_and_no_errors(name):
    page = HTML / "executed" / f"{name}.html"
    assert page.exists(), f"{page.relative_to(ROOT)} is missing: the build is older than the toc; rebuild the book"
    html = page.read_text(encoding="utf-8")
    assert "<img" in html, f"{name}: no figure on the page"
    assert "Traceback" not in html, f"{name}: the page shows a traceback"
    assert "An Exception was encountered" not in html, f"{name}: the page holds papermill's error banner"
    assert not re.search(r'class="[^"]*\b(output_error|traceback)\b', html), f"{name}: the page holds an error output"
    # printed output (stdout and stderr, merged by nb_merge_streams) must not report an exception
    for block in re.findall(r'<div class="[^"]*\boutput (?:stream|stderr)\b[^"]*">(.*?)</div>', html, flags=re.S):
        found = re.search(r"\b[A-Z]\w*(?:Error|Exception)\b", block)
        assert not found, f"{name}: printed output reports {found.group(0)}: {block[:300]}"


ANECDOTE = re.compile(r"while writing|this session|digest|could not be read", flags=re.I)


def test_the_book_speaks_of_the_method_and_its_own_runs_only():
    """No page, and not the README, tells how it was written ("in runs made while writing this page", ...)."""
    paths = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md")), *NOTEBOOKS]
    found = [f"{p.relative_to(ROOT)}:{k}: {line.strip()[:100]}" for p in paths
             for k, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1) if ANECDOTE.search(line)]
    assert not found, "anecdotes instead of evidence:\n" + "\n".join(found)


OUTSIDE = re.compile(r"SPEC §|\.\./shared|PERFORMANCE\.md|/work/")


def test_the_book_cites_nothing_outside_the_repository():
    """A reader has the repository, the papers and the public code: no page points at a file they do not have."""
    paths = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md")), *NOTEBOOKS]
    found = [f"{p.relative_to(ROOT)}:{k}: {line.strip()[:100]}" for p in paths
             for k, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1) if OUTSIDE.search(line)]
    assert not found, "references to files outside the repository:\n" + "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_claims_about_networks_are_off_at_ci_size_only_through_check_networks(path):
    """A chapter that trains networks has the parameter check_networks (True by default), and its CI parameters turn
    it off; no chapter keeps the old name check_quality."""
    source = path.read_text(encoding="utf-8")
    assert "check_quality" not in source, f"{path.name}: rename check_quality to check_networks"
    params = next(c for c in _cells(path) if "parameters" in c["tags"])
    if "Claims(" not in source:
        return
    assert re.search(r"^check_networks = True\b", params["source"], flags=re.M), (
        f"{path.name} makes claims about trained networks but has no `check_networks = True` parameter")
    ci = yaml.safe_load((ROOT / "ci" / "params" / f"{path.stem}.yaml").read_text()) or {}
    assert ci.get("check_networks") is False, f"ci/params/{path.stem}.yaml must set check_networks: false"


@pytest.mark.skipif(not HTML.is_dir(), reason="the book has not been built (run: python ci/build_book.py --params ci)")
@pytest.mark.parametrize("name", _toc_chapters())
def test_built_chapter_opens_with_its_run(name):
    """Each built chapter says, under its title, which run it is; a CI-size page says its claims are not checked."""
    html = (HTML / "executed" / f"{name}.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    assert "This page is a run" in text, f"{name}: no run banner under the title"
    found = re.search(r"This page is a run of\s+notebooks/(\S+)\.py with the (default|small CI) parameters", text)
    assert found and found.group(1) == name, f"{name}: the banner names another chapter or parameter set"
    if found.group(2) == "small CI":
        assert "not checked" in text, f"{name}: a CI-size page must say that its claims are not checked"
