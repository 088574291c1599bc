"""Execute the book's chapters: notebooks/NAME.py (Jupytext percent format), run by papermill.

    python ci/execute.py                                   # every chapter, default parameters -> _build/executed/
    python ci/execute.py --params ci                       # every chapter with ci/params/NAME.yaml
    python ci/execute.py 04_learning_the_map -p epochs 12 -p taus "[0.01, 2.0]"   # -> _build/runs/NAME-<hash>/
    python ci/execute.py 04_learning_the_map -f my_params.yaml --html     # and render the page as HTML

Each chapter is converted to a notebook with jupytext and run with the kernel "python3" of the environment running
this script, from the folder notebooks/. ``--params default`` keeps the values of the cell tagged ``parameters``;
``--params ci`` overrides them with ci/params/NAME.yaml. ``-p KEY VALUE`` (VALUE read as YAML) and ``-f FILE`` set
parameters of one chapter; every name and type is checked against its parameters cell before anything runs, and
such a run goes to its own folder _build/runs/NAME-<hash of the parameters>/. With custom parameters the claims
about trained networks (``check_networks``) are measured but not asserted, unless ``-p check_networks true``.

The executed notebook opens with one line written by the run: the parameter set, the seed, the package version and
commit, the date and the run time (and, for the CI parameters, that the claims are not checked at that size).

A chapter that fails is still written (papermill marks the failing cell), the other chapters still run, and the
script exits with status 1 after naming every failing chapter and cell. Bad input stops with one sentence, exit 2.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PARAMS_DIR = ROOT / "ci" / "params"
OUT_DIR = ROOT / "_build" / "executed"
RUNS_DIR = ROOT / "_build" / "runs"
CACHE_DIR = ROOT / "_build" / "cache"
CONFIG = ROOT / "_config.yml"
KERNEL = "python3"
CHECK_PARAMETER = "check_networks"


class UsageError(Exception):
    """Bad input from the command line: reported as one sentence, exit status 2."""


def chapter_names() -> list[str]:
    """Every chapter in notebooks/, in file-name order."""
    return sorted(p.stem for p in NOTEBOOKS.glob("*.py") if not p.name.startswith("_"))


def parameter_defaults(name: str) -> dict:
    """The names and values assigned in chapter ``name``'s cell tagged ``parameters`` (literals only)."""
    import jupytext

    nb = jupytext.read(NOTEBOOKS / f"{name}.py")
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise UsageError(f"notebooks/{name}.py has {len(cells)} cells tagged 'parameters'; it needs exactly one")
    defaults = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                defaults[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                defaults[node.targets[0].id] = None  # not a literal: any type is accepted
    return defaults


def load_ci_params(name: str) -> dict:
    """The overrides of ci/params/NAME.yaml (none where that file does not exist)."""
    path = PARAMS_DIR / f"{name}.yaml"
    if not path.exists():
        return {}
    return read_yaml_mapping(path)


def read_yaml_mapping(path: Path) -> dict:
    import yaml

    try:
        params = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UsageError(f"cannot read {path}: {' '.join(str(err).split())}") from None
    params = params or {}
    if not isinstance(params, dict):
        raise UsageError(f"{path} must hold a mapping of parameter names to values, not a {type(params).__name__}")
    return params


def parse_value(text: str):
    """A ``-p`` value, read as YAML (as papermill's ``-y`` does): ``12``, ``0.5``, ``[0.01, 2.0]``, ``kl``, ``true``."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _type_name(value) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping", type(None): "None"}.get(type(value), type(value).__name__)


def check_overrides(name: str, overrides: dict, defaults: dict, source: str) -> dict:
    """Check every override's name and type against the chapter's parameters; return them (ints widened to float
    where the default is a float). Raises UsageError with one sentence on the first bad one."""
    checked = {}
    for key, value in overrides.items():
        if key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; it has {', '.join(defaults)}"
            raise UsageError(f"{source} sets {key!r}, which is not a parameter of {name}{hint}")
        default = defaults[key]
        ok = (default is None or type(value) is type(default)
              or (isinstance(default, float) and type(value) is int)
              or (isinstance(default, (list, tuple)) and isinstance(value, (list, tuple))))
        if not ok:
            raise UsageError(f"{source} sets {key!r} to {value!r}, but {name} expects {_type_name(default)} "
                             f"there (its default is {default!r})")
        checked[key] = float(value) if isinstance(default, float) and type(value) is int else value
    return checked


@dataclass
class RunPlan:
    """What one execution of one chapter runs with."""

    name: str
    params_set: str  # "default", "ci" or "custom"
    overrides: dict
    out: Path

    @property
    def notebook(self) -> Path:
        return self.out / f"{self.name}.ipynb"


def params_hash(overrides: dict) -> str:
    return hashlib.sha256(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:10]


def plan_runs(names: list[str], params_set: str, custom: dict, out: Path | None) -> list[RunPlan]:
    """Resolve what each chapter runs with; every check happens here, before anything runs."""
    known = chapter_names()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"there is no chapter {name!r} in notebooks/{hint}")
    if custom and len(names) != 1:
        raise UsageError("-p and -f set the parameters of one chapter: name exactly one chapter")
    plans = []
    for name in names:
        defaults = parameter_defaults(name)
        overrides = {}
        if params_set == "ci":
            overrides = check_overrides(name, load_ci_params(name), defaults, f"ci/params/{name}.yaml")
        label = params_set
        if custom:
            overrides.update(check_overrides(name, custom, defaults, "the command line"))
            if CHECK_PARAMETER in defaults and CHECK_PARAMETER not in custom:
                overrides[CHECK_PARAMETER] = False
            label = "custom"
        where = out if out is not None else (RUNS_DIR / f"{name}-{params_hash(overrides)}" if custom else OUT_DIR)
        plans.append(RunPlan(name, label, overrides, where))
    return plans


def repository_url() -> str:
    """The repository's web address: that of the GitHub Actions run building the book (GITHUB_REPOSITORY), else
    ``repository.url`` of _config.yml."""
    import yaml

    if os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{os.environ['GITHUB_REPOSITORY']}"
    config = yaml.safe_load(CONFIG.read_text()) if CONFIG.exists() else {}
    return str(((config or {}).get("repository") or {}).get("url", "")).rstrip("/")


def cache_key(plan: RunPlan) -> str:
    """What an executed book chapter depends on: its source, its parameters, the package's source, the pinned
    versions, this executor (it writes the banner) and the repository address (in the banner's links)."""
    digest = hashlib.sha256()
    files = [NOTEBOOKS / f"{plan.name}.py", ROOT / "constraints.txt", Path(__file__).resolve()]
    files += sorted((ROOT / "uotm").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name).encode())
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    digest.update(json.dumps([plan.params_set, plan.overrides], sort_keys=True, default=str).encode())
    digest.update(repository_url().encode())
    return digest.hexdigest()[:16]


def cached_notebook(plan: RunPlan) -> Path:
    return CACHE_DIR / f"{plan.name}-{plan.params_set}-{cache_key(plan)}.ipynb"


def check_kernel() -> None:
    """Fail early unless the kernel "python3" runs this interpreter (so the chapters see the same packages)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        raise UsageError(f"no Jupyter kernel named {KERNEL!r}: install ipykernel in {sys.prefix}") from None
    exe = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3"/"python3.X" by the running interpreter (sys.executable).
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    if exe in bare:
        return
    # Compare the folders, not the resolved files: a virtual environment's python is a link to the base one.
    if Path(exe).absolute().parent != Path(sys.executable).absolute().parent:
        raise UsageError(f"the kernel {KERNEL!r} ({spec.resource_dir}) runs {exe}, not this interpreter "
                         f"{sys.executable}; remove that kernel spec or run this script with {exe}")


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


def package_version() -> str:
    found = re.search(r'^__version__ = "([^"]+)"', (ROOT / "uotm" / "__init__.py").read_text(), flags=re.M)
    return found.group(1) if found else "unknown"


def git_commit() -> str:
    """The checkout's commit (short hash), with "+changes" when tracked files differ from it; "unknown" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def run_info(plan: RunPlan, seconds: float, ok: bool) -> dict:
    params = {**parameter_defaults(plan.name), **plan.overrides}
    return {"chapter": plan.name, "params": plan.params_set, "overrides": plan.overrides,
            "seed": params.get("seed"), "claims_checked": bool(params.get(CHECK_PARAMETER, True)),
            "version": package_version(), "commit": git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "seconds": round(seconds, 1), "ok": ok, "repository": repository_url()}


def banner(info: dict) -> str:
    """The line that opens an executed chapter (MyST Markdown)."""
    what = {"default": "the default parameters", "ci": "the small CI parameters",
            "custom": "custom parameters"}[info["params"]]
    if info["params"] == "custom" and info["overrides"]:
        what += " (" + ", ".join(f"`{k}={v!r}`" for k, v in info["overrides"].items()) + ")"
    seed = f", seed {info['seed']}" if info["seed"] is not None else ""
    line = (f"**This page is a run** of `notebooks/{info['chapter']}.py` with {what}{seed}: uotm {info['version']} "
            f"at commit `{info['commit']}`, on {info['date']}, in {info['seconds']:.0f} s. "
            f"Re-run it: `python ci/execute.py {info['chapter']} -p seed 1`.")
    links = page_links(info["chapter"], info.get("repository", ""))
    if links:
        line += " " + links
    if info["params"] == "ci":
        return (":::{note}\n" + line + " The figures come from a short run, and the claims that the prose makes "
                "about trained networks are **not checked** at this size; the book published from `main` is the "
                "default run, where every claim is asserted.\n:::")
    if not info["claims_checked"]:
        line += " The claims about trained networks were measured but not asserted in this run."
    return line


def parameter_rows(source: str) -> list[tuple[str, str, str]]:
    """(name, value as written, meaning) for each ``name = value  # meaning`` line of a parameters cell."""
    rows = []
    for line in source.splitlines():
        found = re.match(r"^([A-Za-z_]\w*)\s*=\s*(.*?)\s*(?:#\s*(.*))?$", line)
        if found:
            rows.append((found.group(1), found.group(2), (found.group(3) or "").strip()))
    return rows


def parameters_table(source: str, info: dict) -> str:
    """The run's parameters as a Markdown table (name, value, meaning), values changed by the run marked."""
    overrides = info["overrides"]
    lines = [f"**Parameters of this run** (the cell tagged `parameters` in `notebooks/{info['chapter']}.py`; change "
             f"one with `python ci/execute.py {info['chapter']} -p NAME VALUE`):", "",
             "| parameter | value | meaning |", "|---|---|---|"]
    for name, written, meaning in parameter_rows(source):
        value = f"`{written}`"
        if name in overrides:
            value = f"**`{overrides[name]!r}`** (default `{written}`)"
        meaning = meaning.replace("|", "\\|")
        lines.append(f"| `{name}` | {value} | {meaning} |")
    return "\n".join(lines)


def present_parameters(nb, info: dict) -> None:
    """Show the parameters once, as a table: the parameters cell and papermill's injected one are kept in the
    notebook (to re-run it) but removed from the page (tag ``remove-cell``)."""
    import nbformat

    for k, cell in enumerate(nb.cells):
        tags = cell.metadata.setdefault("tags", [])
        if "parameters" in tags and cell.cell_type == "code":
            table = nbformat.v4.new_markdown_cell(parameters_table(cell.source, info))
            table.metadata["tags"] = ["parameters-table"]
            nb.cells.insert(k, table)
            break
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")


def page_links(name: str, repository: str) -> str:
    """Links from a chapter to its source and to a running notebook (Binder, for a repository on GitHub)."""
    if not repository:
        return ""
    source = f"{repository}/blob/main/notebooks/{name}.py"
    links = f"[Source: `notebooks/{name}.py`]({source})"
    if repository.startswith("https://github.com/"):
        slug = repository.removeprefix("https://github.com/")
        links += (f" · [open it as a notebook on Binder](https://mybinder.org/v2/gh/{slug}/main?"
                  f"urlpath=lab/tree/notebooks/{name}.py)")
    return links + "."


def add_banner(path: Path, info: dict) -> None:
    """Put the run's banner under the chapter's title (the first Markdown heading), its parameters as a table
    where its parameters cell was, and its facts in the metadata (``uotm_run``)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata["uotm_run"] = info
    present_parameters(nb, info)
    text = banner(info)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        heads = [k for k, line in enumerate(lines) if line.startswith("# ")]
        if heads:
            k = heads[0]
            cell.source = "\n".join(lines[:k + 1] + ["", text, ""] + lines[k + 1:])
            break
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(text))
    nbformat.write(nb, path)


def execute_chapter(plan: RunPlan, cell_timeout: int) -> tuple[bool, float, str]:
    """Run one chapter. Returns (succeeded, seconds, message)."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = NOTEBOOKS / f"{plan.name}.py"
    plan.out.mkdir(parents=True, exist_ok=True)
    staged = ROOT / "_build" / "jupytext" / f"{plan.name}-{os.getpid()}.ipynb"
    staged.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(jupytext.read(source), staged, fmt="ipynb")
    start = time.perf_counter()
    ok, message = True, ""
    try:
        papermill.execute_notebook(str(staged), str(plan.notebook), parameters=plan.overrides, cwd=str(NOTEBOOKS),
                                   kernel_name=KERNEL, language="python", execution_timeout=cell_timeout,
                                   progress_bar=False, log_output=False)
    except PapermillExecutionError as err:
        ok, message = False, describe_failure(plan.notebook, err)
    except Exception as err:  # a timeout or a dead kernel: papermill re-raises nbclient's error
        ok, message = False, describe_failure(plan.notebook, err)
    finally:
        staged.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    if plan.notebook.exists():
        add_banner(plan.notebook, run_info(plan, seconds, ok))
    if ok:
        n = len(plan.overrides)
        message = f"{n} parameter override(s)" if n else "default parameters"
    return ok, seconds, message


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Example: python ci/execute.py 04_learning_the_map -p epochs 12")
    parser.add_argument("names", nargs="*", metavar="NAME", help="chapters to run (file stems in notebooks/); "
                        "all of them when none is given")
    parser.add_argument("--params", choices=("default", "ci"), default="default",
                        help="default: the chapters' own parameters; ci: overrides from ci/params/NAME.yaml")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="set one parameter of the chapter (VALUE read as YAML); repeat for more")
    parser.add_argument("-f", "--parameters-file", metavar="FILE", help="a YAML file of parameters of the chapter")
    parser.add_argument("--out", type=Path, help="folder for the executed notebook (default: _build/executed/, or "
                        "_build/runs/NAME-<hash>/ with -p or -f)")
    parser.add_argument("--html", action="store_true", help="also render each executed chapter as a one-page site: "
                        "_build/html/NAME.html in its output folder (_build/pages/NAME/ for the book's runs)")
    parser.add_argument("--no-cache", action="store_true", help="execute even the chapters whose cached run is "
                        "up to date (the book's runs are cached in _build/cache/, keyed by what they depend on)")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    return parser.parse_args(argv)


def render(plan: RunPlan) -> bool:
    """Render the executed chapter as a one-page site; print where it is and any warning. True if none."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from build_book import render_page  # ci/build_book.py imports this module: import it only when needed

    # a book run renders beside the book's build, not among the executed notebooks
    where = ROOT / "_build" / "pages" / plan.name if plan.out == OUT_DIR else plan.out
    page, warnings = render_page(plan.notebook, where)
    for warning in warnings:
        print(f"  {plan.name}: {' '.join(warning.split())}", file=sys.stderr)
    print(f"page   {plan.name:<32} {page}" + (f"  ({len(warnings)} warning(s))" if warnings else ""), flush=True)
    return not warnings


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        custom = read_yaml_mapping(Path(args.parameters_file)) if args.parameters_file else {}
        for key, value in args.parameter:
            custom[key] = parse_value(value)
        names = args.names or chapter_names()
        if not names:
            raise UsageError("no chapters found in notebooks/")
        plans = plan_runs(names, args.params, custom, args.out)
        check_kernel()
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # The chapters import this checkout's uotm even where it is not installed in editable mode.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

    failures = []
    total = time.perf_counter()
    for plan in plans:
        cacheable = plan.params_set in ("default", "ci") and plan.out == OUT_DIR and not args.no_cache
        cached = cached_notebook(plan) if cacheable else None
        if cached is not None and cached.exists():
            plan.out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(cached, plan.notebook)
            print(f"cached {plan.name:<32} {'':9}  ({plan.params_set} params) unchanged since its run: "
                  f"{cached.relative_to(ROOT) if cached.is_relative_to(ROOT) else cached}", flush=True)
            if args.html and not render(plan):
                failures.append((plan, "the page has build warnings (printed above)"))
            continue
        ok, seconds, message = execute_chapter(plan, args.cell_timeout)
        if ok and cached is not None:
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            for stale in CACHE_DIR.glob(f"{plan.name}-{plan.params_set}-*.ipynb"):
                stale.unlink()
            shutil.copy2(plan.notebook, cached)
        status = "ok    " if ok else "FAILED"
        print(f"{status} {plan.name:<32} {seconds:7.1f} s  ({plan.params_set} params) {message}", flush=True)
        if not ok:
            failures.append((plan, message))
        if args.html and plan.notebook.exists() and not render(plan):
            failures.append((plan, "the page has build warnings (printed above)"))
    where = sorted({str(p.out.relative_to(ROOT)) if p.out.is_relative_to(ROOT) else str(p.out) for p in plans})
    print(f"executed {len(plans)} chapter(s) in {time.perf_counter() - total:.1f} s; notebooks in "
          f"{', '.join(where)}", flush=True)
    if failures:
        for plan, message in failures:
            print(f"chapter {plan.name} failed: {message} (see {plan.notebook})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
