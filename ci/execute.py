"""Execute the book's chapters: notebooks/NAME.py (Jupytext percent format) -> _build/executed/NAME.ipynb.

Each chapter is converted to a notebook with jupytext and run by papermill with the kernel "python3" of the
environment running this script, from the folder notebooks/ (so relative paths in a chapter are relative to it).
Parameters: ``--params default`` runs every chapter with the values in its cell tagged ``parameters``;
``--params ci`` overrides them with ci/params/NAME.yaml where that file exists.

A chapter that fails is still written (papermill marks the failing cell), the other chapters still run, and the
script exits with status 1 after naming every failing chapter and cell.

    python ci/execute.py                         # every chapter, default parameters
    python ci/execute.py --params ci --only 01_optimal_transport
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PARAMS_DIR = ROOT / "ci" / "params"
OUT_DIR = ROOT / "_build" / "executed"
KERNEL = "python3"


def chapter_names() -> list[str]:
    """Every chapter in notebooks/, in file-name order."""
    return sorted(p.stem for p in NOTEBOOKS.glob("*.py") if not p.name.startswith("_"))


def load_params(name: str, mode: str) -> dict:
    """The parameter overrides of chapter ``name`` for ``mode`` ("default": none; "ci": ci/params/NAME.yaml)."""
    if mode == "default":
        return {}
    path = PARAMS_DIR / f"{name}.yaml"
    if not path.exists():
        return {}
    import yaml

    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a mapping of parameter names to values, got {type(params).__name__}")
    return params


def check_kernel() -> None:
    """Fail early unless the kernel "python3" runs this interpreter (so the chapters see the same packages)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        raise SystemExit(f"no Jupyter kernel named {KERNEL!r}: install ipykernel in {sys.prefix}") from None
    exe = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3"/"python3.X" by the running interpreter (sys.executable).
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    if exe in bare:
        return
    # Compare the folders, not the resolved files: a virtual environment's python is a link to the base one.
    if Path(exe).absolute().parent != Path(sys.executable).absolute().parent:
        raise SystemExit(
            f"the kernel {KERNEL!r} ({spec.resource_dir}) runs {exe}, not this interpreter {sys.executable}; "
            f"remove that kernel spec or run this script with {exe}"
        )


def first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return "<empty cell>"


def describe_failure(nb_path: Path, error: Exception) -> str:
    """Which cell failed: its index, its first source line and the exception, read from the executed notebook.

    Papermill inserts red banner cells (tag ``papermill-error-cell-tag``) into a failed notebook; the index given
    here counts the cells without them, as papermill's ``cell_index`` does (with an ``injected-parameters`` cell
    after the ``parameters`` cell when parameters were passed).
    """
    import nbformat

    cell_index = getattr(error, "cell_index", None)
    ename = getattr(error, "ename", type(error).__name__)
    evalue = getattr(error, "evalue", str(error)).strip().splitlines()
    evalue = evalue[-1] if evalue else ""
    line = None
    if nb_path.exists():
        nb = nbformat.read(nb_path, as_version=4)
        cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
        if cell_index is None:  # a timeout or a dead kernel: the cell papermill left unfinished or in error
            for k, c in enumerate(cells):
                if c.cell_type == "code" and (c.metadata.get("papermill", {}).get("status") in ("running", "failed")
                                              or any(o.output_type == "error" for o in c.get("outputs", []))):
                    cell_index = k
                    break
        if cell_index is not None and 0 <= cell_index < len(cells):
            line = first_line(cells[cell_index].source)
    where = f"cell {cell_index}" if cell_index is not None else "an unknown cell"
    if line is not None:
        where += f" ({line!r})"
    return f"{where}: {ename}: {' '.join(evalue.split())}"


def execute_chapter(name: str, mode: str, cell_timeout: int) -> tuple[bool, float, str]:
    """Run one chapter. Returns (succeeded, seconds, message)."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = NOTEBOOKS / f"{name}.py"
    if not source.exists():
        return False, 0.0, f"no such chapter: {source.relative_to(ROOT)}"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    staged = ROOT / "_build" / "jupytext" / f"{name}.ipynb"
    staged.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(source)
    jupytext.write(nb, staged, fmt="ipynb")
    out = OUT_DIR / f"{name}.ipynb"
    params = load_params(name, mode)
    known = papermill.inspect_notebook(str(staged))
    unknown = sorted(set(params) - set(known))
    if unknown:
        return False, 0.0, (f"ci/params/{name}.yaml sets {', '.join(unknown)}, which the cell tagged "
                            f"'parameters' does not define (it defines {', '.join(known) or 'nothing'})")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(staged),
            str(out),
            parameters=params,
            cwd=str(NOTEBOOKS),
            kernel_name=KERNEL,
            execution_timeout=cell_timeout,
            progress_bar=False,
            log_output=False,
        )
    except PapermillExecutionError as err:
        return False, time.perf_counter() - start, describe_failure(out, err)
    except Exception as err:  # a timeout or a dead kernel: papermill re-raises nbclient's error
        return False, time.perf_counter() - start, describe_failure(out, err)
    return True, time.perf_counter() - start, f"{len(params)} parameter override(s)" if params else "default parameters"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", choices=("default", "ci"), default="default",
                        help="default: the chapters' own parameters; ci: overrides from ci/params/NAME.yaml")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="chapters to run (file stems in notebooks/)")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    args = parser.parse_args(argv)

    names = args.only or chapter_names()
    if not names:
        print("no chapters found in notebooks/", file=sys.stderr)
        return 1
    check_kernel()
    # The chapters import this checkout's uotm even where it is not installed in editable mode.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    failures = []
    total = time.perf_counter()
    for name in names:
        ok, seconds, message = execute_chapter(name, args.params, args.cell_timeout)
        status = "ok    " if ok else "FAILED"
        print(f"{status} {name:<32} {seconds:7.1f} s  ({args.params} params) {message}", flush=True)
        if not ok:
            failures.append((name, message))
    print(f"executed {len(names)} chapter(s) in {time.perf_counter() - total:.1f} s; "
          f"notebooks in {OUT_DIR.relative_to(ROOT)}/", flush=True)
    if failures:
        for name, message in failures:
            print(f"chapter {name} failed: {message} (see _build/executed/{name}.ipynb)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
