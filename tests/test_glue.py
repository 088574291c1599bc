"""A number that the prose quotes comes from the run: chapter 1 built at two parameter sets shows, in its rendered
prose, the values that its own outputs glued, and they change with the run."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "01_optimal_transport"
GLUE_ROLE = re.compile(r"\{glue:text\}`([A-Za-z_]\w*)(?::([^`]*))?`")

pytest.importorskip("papermill")
pytest.importorskip("myst_nb")


def _build(out: Path, seed: int) -> tuple[list[tuple[str, str]], dict, list[str]]:
    """Run the chapter at ``seed`` with a few problems and render it; return the glue references of its Markdown
    (name, format spec) in order, the values its outputs glued, and the texts that the page shows for them."""
    import nbformat

    cmd = [sys.executable, str(ROOT / "ci" / "execute.py"), CHAPTER, "-p", "seed", str(seed), "-p", "n_problems",
           "4", "--out", str(out), "--html"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    nb = nbformat.read(out / f"{CHAPTER}.ipynb", as_version=4)
    refs = [m.groups("") for c in nb.cells if c.cell_type == "markdown" for m in GLUE_ROLE.finditer(c.source)]
    glued = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook", {})
            if scrap.get("name"):
                glued[scrap["name"]] = output["data"][scrap.get("mime_prefix", "") + "text/plain"]
    page = (out / "_build" / "html" / f"{CHAPTER}.html").read_text(encoding="utf-8")
    shown = [html.unescape(s) for s in re.findall(r'<span class="pasted-text">(.*?)</span>', page, flags=re.S)]
    return refs, glued, shown


def _expected(text_plain: str, spec: str) -> str:
    value = json.loads(text_plain) if text_plain[:1] not in "'\"" else text_plain[1:-1]
    return format(value, spec) if spec else str(value)


def test_glued_numbers_in_the_prose_are_the_outputs_and_move_with_the_run(tmp_path):
    runs = [_build(tmp_path / f"seed{seed}", seed) for seed in (1, 2)]
    for refs, glued, shown in runs:
        assert refs, f"{CHAPTER} quotes no glued number in its prose"
        assert len(shown) == len(refs), "every glue reference of the Markdown is rendered once"
        for (name, spec), text in zip(refs, shown):
            assert text == _expected(glued[name], spec), (name, spec, text, glued[name])
    (refs, glued_1, shown_1), (_, glued_2, shown_2) = runs
    parameters = {"n_problems", "n_random_potentials", "rtol", "seed"}
    moved = [name for (name, _), a, b in zip(refs, shown_1, shown_2) if a != b and name not in parameters]
    assert moved, "no computed number in the prose changed between two seeds"
