"""ci/execute.py: a chapter whose computed quantity is wrong fails with its cell named; parameters given on the
command line are checked against the chapter's parameters cell before anything runs; every run opens with its
banner."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("papermill")
pytest.importorskip("jupytext")


def _execute_module():
    spec = importlib.util.spec_from_file_location("ci_execute", ROOT / "ci" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _kernel_available(name: str) -> bool:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return False
    return True


@pytest.fixture
def ex():
    return _execute_module()


@pytest.fixture
def sandbox(tmp_path, monkeypatch, ex):
    """ci/execute.py pointed at a notebooks/ folder of the test's own."""
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setattr(ex, "ROOT", tmp_path)
    monkeypatch.setattr(ex, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(ex, "OUT_DIR", tmp_path / "executed")
    monkeypatch.setattr(ex, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(ex, "PARAMS_DIR", tmp_path / "params")
    monkeypatch.setattr(ex, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(ex, "CONFIG", tmp_path / "_config.yml")
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    (tmp_path / "uotm").mkdir()
    (tmp_path / "uotm" / "__init__.py").write_text('__version__ = "9.9.9"\n')
    return tmp_path


TINY = '''# %% [markdown]
# # A tiny chapter
#
# Its text.

# %% tags=["parameters"]
seed = 0  # seed
epochs = 80  # training epochs
lr = 0.0003  # learning rate
psis = ["kl", "chi"]  # conjugates
check_networks = True  # assert the claims about trained networks

# %%
print(seed, epochs, lr, psis, check_networks)
'''


def test_a_wrong_value_fails_chapter_1_and_the_cell_is_named(sandbox, ex):
    if not _kernel_available(ex.KERNEL):
        pytest.skip(f"no Jupyter kernel {ex.KERNEL!r} (make venv installs it)")
    text = (ROOT / "notebooks" / "01_optimal_transport.py").read_text()
    right = "    primal = ot.emd2(a, b, C)\n"
    assert text.count(right) == 1, "chapter 1 changed: update the line this test breaks"
    # a primal value wrong by one part in 10^5: ten times the chapter's tolerance
    wrong = text.replace(right, "    primal = ot.emd2(a, b, C) * (1 + 1e-5)\n")
    (sandbox / "notebooks" / "01_broken.py").write_text(wrong)
    (plan,) = ex.plan_runs(["01_broken"], "default", {}, None)
    ok, _, message = ex.execute_chapter(plan, 300)
    assert not ok
    assert "AssertionError" in message
    assert "errors = {" in message  # the cell of the checks, named by its first line
    assert (sandbox / "executed" / "01_broken.ipynb").exists()  # the failed notebook is kept for reading


@pytest.mark.parametrize("argv, words", [
    (["tiny", "-p", "epoch", "12"], ["'epoch'", "not a parameter of tiny", "did you mean 'epochs'"]),
    (["tiny", "-p", "epochs", "1.5"], ["'epochs'", "expects an integer", "default is 80"]),
    (["tiny", "-p", "psis", "kl"], ["'psis'", "expects a list"]),
    (["tiny", "-p", "check_networks", "yes please"], ["expects true/false"]),
    (["tinny"], ["no chapter 'tinny'", "did you mean 'tiny'"]),
    (["tiny", "other", "-p", "epochs", "3"], ["exactly one chapter"]),
])
def test_bad_parameters_stop_with_one_sentence_before_running(sandbox, ex, capsys, argv, words):
    (sandbox / "notebooks" / "tiny.py").write_text(TINY)
    (sandbox / "notebooks" / "other.py").write_text(TINY)
    assert ex.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err
    assert not (sandbox / "runs").exists() and not (sandbox / "executed").exists()  # nothing ran


def test_a_parameters_file_is_checked_too(sandbox, ex, capsys):
    (sandbox / "notebooks" / "tiny.py").write_text(TINY)
    bad = sandbox / "p.yaml"
    bad.write_text("lr: fast\n")
    assert ex.main(["tiny", "-f", str(bad)]) == 2
    assert "expects a number" in capsys.readouterr().err


def test_custom_parameters_get_their_own_folder_and_turn_the_claims_off(sandbox, ex):
    (sandbox / "notebooks" / "tiny.py").write_text(TINY)
    (plan,) = ex.plan_runs(["tiny"], "default", {"epochs": 12, "lr": 1}, None)
    assert plan.params_set == "custom"
    assert plan.overrides == {"epochs": 12, "lr": 1.0, "check_networks": False}
    assert isinstance(plan.overrides["lr"], float)
    assert plan.out.parent == sandbox / "runs" and plan.out.name.startswith("tiny-")
    (again,) = ex.plan_runs(["tiny"], "default", {"lr": 1.0, "epochs": 12}, None)
    assert again.out == plan.out  # the folder is named by the parameters, not by their order
    (checked,) = ex.plan_runs(["tiny"], "default", {"seed": 1, "check_networks": True}, None)
    assert checked.overrides["check_networks"] is True
    (book,) = ex.plan_runs(["tiny"], "default", {}, None)
    assert book.out == sandbox / "executed" and book.overrides == {}


def test_a_run_opens_with_its_banner(sandbox, ex):
    if not _kernel_available(ex.KERNEL):
        pytest.skip(f"no Jupyter kernel {ex.KERNEL!r} (make venv installs it)")
    import nbformat

    (sandbox / "notebooks" / "tiny.py").write_text(TINY)
    (sandbox / "params").mkdir()
    (sandbox / "params" / "tiny.yaml").write_text("epochs: 2\ncheck_networks: false\n")
    for params_set, words in [("default", ["the default parameters", "seed 0", "uotm 9.9.9"]),
                              ("ci", ["{note}", "small CI parameters", "not checked"])]:
        (plan,) = ex.plan_runs(["tiny"], params_set, {}, None)
        ok, _, message = ex.execute_chapter(plan, 120)
        assert ok, message
        nb = nbformat.read(plan.notebook, as_version=4)
        first = nb.cells[0].source
        assert first.startswith("# A tiny chapter\n")
        banner = first.split("\n\n")[1]
        for word in words:
            assert word in banner, (word, banner)
        assert nb.metadata["uotm_run"]["params"] == params_set
        assert nb.metadata["uotm_run"]["seed"] == 0


def test_the_banner_says_what_a_custom_run_did_not_check(ex):
    info = {"chapter": "tiny", "params": "custom", "overrides": {"epochs": 12, "check_networks": False},
            "seed": 3, "claims_checked": False, "version": "0.1.0", "commit": "abc1234", "date": "2026-12-02",
            "seconds": 12.4, "ok": True}
    text = ex.banner(info)
    assert "`epochs=12`" in text and "seed 3" in text and "abc1234" in text and "12 s" in text
    assert "measured but not asserted" in text


def test_the_command_line_reaches_main_with_a_misspelt_name():
    import subprocess

    result = subprocess.run([sys.executable, str(ROOT / "ci" / "execute.py"), "04_learning_the_map", "-p", "epoch",
                             "12"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: the command line sets 'epoch', which is not a parameter of "
                                     "04_learning_the_map; did you mean 'epochs'?")


def test_a_second_build_executes_only_what_changed(sandbox, ex, capsys):
    if not _kernel_available(ex.KERNEL):
        pytest.skip(f"no Jupyter kernel {ex.KERNEL!r} (make venv installs it)")
    for name in ("a_first", "b_second"):
        (sandbox / "notebooks" / f"{name}.py").write_text(TINY)

    def build() -> dict[str, str]:
        assert ex.main([]) == 0
        lines = capsys.readouterr().out.splitlines()
        return {line.split()[1]: line.split()[0] for line in lines if line.split()[0] in ("ok", "cached")}

    assert build() == {"a_first": "ok", "b_second": "ok"}
    assert build() == {"a_first": "cached", "b_second": "cached"}
    assert (sandbox / "executed" / "a_first.ipynb").exists()
    (sandbox / "notebooks" / "b_second.py").write_text(TINY.replace("epochs = 80", "epochs = 81"))
    assert build() == {"a_first": "cached", "b_second": "ok"}
    (sandbox / "uotm" / "__init__.py").write_text('__version__ = "9.9.10"\n')  # the package changed: both again
    assert build() == {"a_first": "ok", "b_second": "ok"}
    assert len(list((sandbox / "cache").glob("b_second-*.ipynb"))) == 1  # stale runs are dropped
    assert ex.main(["--no-cache", "a_first"]) == 0
    assert "ok     a_first" in capsys.readouterr().out
