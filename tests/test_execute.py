"""The chapters' checks are real: a chapter whose computed quantity is wrong fails, and ci/execute.py names the
chapter's failing cell (the acceptance's "show it once by breaking one", kept as a test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("papermill")
pytest.importorskip("jupytext")


def _execute_module():
    spec = importlib.util.spec_from_file_location("ci_execute", ROOT / "ci" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kernel_available(name: str) -> bool:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return False
    return True


def test_a_wrong_value_fails_chapter_1_and_the_cell_is_named(tmp_path, monkeypatch):
    ex = _execute_module()
    if not _kernel_available(ex.KERNEL):
        pytest.skip(f"no Jupyter kernel {ex.KERNEL!r} (make venv installs it)")
    text = (ROOT / "notebooks" / "01_optimal_transport.py").read_text()
    right = "    primal = ot.emd2(a, b, C)\n"
    assert text.count(right) == 1, "chapter 1 changed: update the line this test breaks"
    # a primal value wrong by one part in 10^5: ten times the chapter's tolerance
    wrong = text.replace(right, "    primal = ot.emd2(a, b, C) * (1 + 1e-5)\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_broken.py").write_text(wrong)
    monkeypatch.setattr(ex, "ROOT", tmp_path)
    monkeypatch.setattr(ex, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(ex, "OUT_DIR", tmp_path / "executed")
    monkeypatch.setattr(ex, "PARAMS_DIR", tmp_path / "params")
    ok, _, message = ex.execute_chapter("01_broken", "default", 300)
    assert not ok
    assert "AssertionError" in message
    assert "errors = {" in message  # the cell of the checks, named by its first line
    assert (tmp_path / "executed" / "01_broken.ipynb").exists()  # the failed notebook is kept for reading
