"""Build the book: execute every chapter the table of contents names, then run Jupyter Book on the results.

    python ci/build_book.py [--params default|ci] [--skip-execute] [--no-cache]

1. book/_toc.yml names the chapters as ``executed/NAME``; each is the notebook notebooks/NAME.py.
2. ci/execute.py runs them into _build/executed/NAME.ipynb (skipped with --skip-execute, which reuses those). A
   chapter whose source, parameters, package source and pinned versions have not changed since its last successful
   run is not executed again: its run is taken from _build/cache/ (``--no-cache`` executes every chapter).
3. They are copied to book/executed/ (ignored by git: ``*.ipynb``), where the toc points; Jupyter Book cannot read
   files outside its source folder book/.
4. ``jupyter-book build book --all -W -n --keep-going`` with the root _config.yml (which sets ``execute_notebooks: off``),
   writing the site to _build/html. On GitHub Actions the repository address in it is the one the build runs in.

Exits non-zero if a chapter fails (the book is still built, so the failing cell can be read in it) or if the build
reports any warning.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
TOC = BOOK / "_toc.yml"
EXECUTED_IN_BOOK = BOOK / "executed"
PREFIX = "executed/"

sys.path.insert(0, str(Path(__file__).resolve().parent))
import execute  # noqa: E402  (ci/execute.py)


def toc_files(node) -> list[str]:
    """Every ``file:`` entry of a (jb-book) table of contents, in order."""
    found = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for value in node.values():
            if isinstance(value, (list, dict)):
                found.extend(toc_files(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(toc_files(item))
    return found


def toc_chapters() -> list[str]:
    """The chapter names (notebooks/NAME.py) that the toc points at as executed/NAME."""
    entries = toc_files(yaml.safe_load(TOC.read_text()))
    names = []
    for entry in entries:
        if entry.startswith(PREFIX):
            name = entry[len(PREFIX):].removesuffix(".ipynb")
            if not (execute.NOTEBOOKS / f"{name}.py").exists():
                raise SystemExit(f"{TOC.relative_to(ROOT)} names {entry}, but notebooks/{name}.py does not exist")
            names.append(name)
    return names


def failed_cells(path: Path) -> list[int]:
    """Indices of the code cells of an executed notebook that hold an error output."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [k for k, c in enumerate(nb.cells)
            if c.cell_type == "code" and any(o.output_type == "error" for o in c.get("outputs", []))]


def place_executed(names: list[str]) -> tuple[list[str], list[str]]:
    """Copy _build/executed/NAME.ipynb to book/executed/. Returns the names that have no executed notebook and
    the names whose notebook holds an error output."""
    if EXECUTED_IN_BOOK.exists():
        shutil.rmtree(EXECUTED_IN_BOOK)
    EXECUTED_IN_BOOK.mkdir(parents=True)
    missing, with_errors = [], []
    for name in names:
        src = execute.OUT_DIR / f"{name}.ipynb"
        if not src.exists():
            missing.append(name)
            continue
        shutil.copy2(src, EXECUTED_IN_BOOK / src.name)
        if failed_cells(src):
            with_errors.append(name)
    return missing, with_errors


def jupyter_book_command() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if not exe.exists():
        found = shutil.which("jupyter-book")
        if found is None:
            raise SystemExit("jupyter-book is not installed: pip install -e '.[book]'")
        exe = Path(found)
    return [str(exe), "build", str(BOOK), "--config", str(book_config()), "--path-output", str(ROOT),
            "--all", "-W", "-n", "--keep-going"]


def book_config() -> Path:
    """_config.yml, or on GitHub Actions a copy of it (_build/_config.yml) that names the repository the build runs
    in, so that the repository button and the chapters' links point at it."""
    source = ROOT / "_config.yml"
    url = execute.repository_url()
    config = yaml.safe_load(source.read_text())
    if config.get("repository", {}).get("url", "").rstrip("/") == url:
        return source
    config.setdefault("repository", {})["url"] = url
    derived = ROOT / "_build" / "_config.yml"
    derived.parent.mkdir(parents=True, exist_ok=True)
    derived.write_text(yaml.safe_dump(config, sort_keys=False))
    return derived


def render_page(notebook: Path, out: Path) -> tuple[Path, list[str]]:
    """Render one executed chapter as a one-page site under ``out``/_build/html. Returns the page and the build's
    warnings, less those about references to other chapters (which a one-page site cannot resolve)."""
    src = out / "page_src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    shutil.copy2(notebook, src / notebook.name)
    for name in ("references.bib", "bibliography.md"):  # citations need a bibliography in the site
        shutil.copy2(BOOK / name, src / name)
    shutil.copytree(BOOK / "_static", src / "_static")  # the book's stylesheet (wide tables and code scroll)
    (src / "_toc.yml").write_text(f"format: jb-book\nroot: {notebook.stem}\nchapters:\n  - file: bibliography\n")
    cmd = jupyter_book_command()
    cmd[2], cmd[6] = str(src), str(out)  # the source folder and --path-output
    cmd = [c for c in cmd if c != "-W"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    log = result.stdout + result.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    elsewhere = re.compile(r"undefined label|equation label .* not found|equation not found|unknown document|"
                           r"Unknown target|failed to create a cross reference|reference target not found")
    warnings = [w for w in warnings if not elsewhere.search(w)]
    page = out / "_build" / "html" / f"{notebook.stem}.html"
    if result.returncode != 0 and not page.exists():
        warnings.append(f"jupyter-book failed (exit status {result.returncode}): {log.strip()[-2000:]}")
    return page, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", choices=("default", "ci"), default="default",
                        help="parameters the chapters run with (see ci/execute.py)")
    parser.add_argument("--skip-execute", action="store_true",
                        help="reuse the notebooks already in _build/executed/")
    parser.add_argument("--no-cache", action="store_true", help="execute every chapter, even those whose cached run "
                        "is up to date")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    names = toc_chapters()
    status = 0
    if names and not args.skip_execute:
        exec_args = ["--params", args.params, "--cell-timeout", str(args.cell_timeout), *names]
        exec_args += ["--no-cache"] if args.no_cache else []
        if execute.main(exec_args) != 0:
            status = 1
    missing, with_errors = place_executed(names)
    if missing:
        print(f"no executed notebook for: {', '.join(missing)} (run without --skip-execute)", file=sys.stderr)
        return 1
    if with_errors:
        print(f"executed notebooks with an error output: {', '.join(with_errors)}", file=sys.stderr)
        status = 1

    cmd = jupyter_book_command()
    print("$", " ".join(cmd), flush=True)
    build_start = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT)
    print(f"jupyter-book build: {time.perf_counter() - build_start:.1f} s, exit status {result.returncode}")
    if result.returncode != 0:
        print("the book build failed (warnings count as errors: -W)", file=sys.stderr)
        status = 1
    print(f"total: {time.perf_counter() - start:.1f} s ({args.params} params); "
          f"site in {(ROOT / '_build' / 'html').relative_to(ROOT)}/" + ("" if status == 0 else "  [FAILED]"))
    return status


if __name__ == "__main__":
    sys.exit(main())
