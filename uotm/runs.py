"""Run folders: the one place where run files are written and read back.

A run folder holds ``config.yaml``, ``metrics.jsonl`` (one JSON object a line, the iteration under ``step``), and
``snapshot.pt`` (everything needed to continue). This module

* checks a folder before any expensive set-up (:func:`check_writable`, :func:`check_new`, :func:`check_resume`):
  a path under a file or in a folder that cannot be written is refused, a folder that already holds a snapshot is
  refused unless ``overwrite`` (a folder with a config but no snapshot, left by a run that stopped before its first
  snapshot, may simply be restarted), and a resumed folder must hold a readable snapshot;
* writes every file atomically (:func:`write_atomic`: a temporary file beside it, then ``os.replace``; a failure
  removes the temporary file);
* loads a snapshot (:func:`load_snapshot_file`), turning a truncated, empty or garbage file into one sentence, and
  says whether a snapshot is good (:func:`is_finite`: weights, optimiser states and learning rates finite);
* appends to the metrics log as a run goes (:class:`MetricsLog`: one JSON line a row, flushed at once) and reads it
  back (:func:`read_metrics`), skipping a torn last line with a warning that names the file.

Every fault is a ``ValueError`` of one sentence (the command line prints it and exits with status 2);
:class:`Interrupted` is the ``KeyboardInterrupt`` of a run stopped by Ctrl-C, with the step reached and the step
that ``--resume`` continues from (exit status 130).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
SNAPSHOT = "snapshot.pt"
DAMAGED = "restore it or start a new folder"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: ``step`` iterations were done; ``resume_step`` is the snapshot's (None: none yet)."""

    def __init__(self, step: int, resume_step: int | None):
        super().__init__(step, resume_step)
        self.step, self.resume_step = step, resume_step

    def __str__(self) -> str:
        if self.resume_step is None:
            return (f"interrupted at step {self.step}; no snapshot was written yet, so run the same command again to "
                    "start over")
        return f"interrupted at step {self.step}; --resume continues from step {self.resume_step}"


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` through ``write(tmp)`` on a temporary file beside it (same suffix, so that writers which go
    by the suffix, such as ``np.savez`` or ``savefig``, write the right format), then rename it into place. A crash
    never leaves a half-written ``path``; an error removes the temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text))


def write_yaml(path: str | Path, values: dict) -> Path:
    import yaml

    return write_text(path, yaml.safe_dump(values, sort_keys=False))


def check_writable(path: str | Path, what: str = "the run folder", folder: bool = True) -> Path:
    """Refuse, in one sentence, a ``path`` that cannot be made: one under a file, a file where a folder is wanted
    (or a folder where a file is), or one whose nearest existing folder cannot be written. Writes nothing."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise ValueError(f"{what} {str(path)!r} is a file, not a folder")
        if not folder and path.is_dir():
            raise ValueError(f"{what} {str(path)!r} is a folder; give a file name")
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {str(path)!r} cannot be made: {str(parent)!r} is a file, not a folder")
    try:  # a real probe: os.access says yes to root on a read-only file system
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ValueError(f"{what} {str(path)!r} cannot be written: {str(parent)!r} is not writable "
                         f"({exc.strerror or exc})") from None
    return path


def check_new(run_dir: str | Path, overwrite: bool = False, used: Iterable[str] = (SNAPSHOT,),
              resumable: bool = True) -> Path:
    """Check that a new run may start in ``run_dir``: writable, and holding none of the files ``used`` (a
    snapshot, by default) unless ``overwrite``. Writes nothing."""
    run_dir = check_writable(run_dir)
    present = [name for name in used if (run_dir / name).exists()]
    if present and not overwrite:
        raise ValueError(f"{str(run_dir)!r} already holds a run ({', '.join(present)}); "
                         f"{'resume it (--resume), ' if resumable else ''}pass --overwrite to replace it, or choose "
                         "another folder")
    return run_dir


def clear(run_dir: str | Path, patterns: Iterable[str]) -> None:
    """Remove the files of ``run_dir`` matching ``patterns`` (a run's own files, and only those)."""
    run_dir = Path(run_dir)
    for pattern in patterns:
        for path in run_dir.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def damaged(path: str | Path, what: str = "snapshot") -> ValueError:
    return ValueError(f"the {what} {str(path)!r} is damaged (truncated, empty or not a {what} file): {DAMAGED}")


def load_snapshot_file(path: str | Path, keys: Iterable[str] = ("step", "config")) -> dict:
    """The snapshot at ``path`` (on the CPU, tensors only); a missing, truncated, empty or foreign file is one
    sentence."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{str(path)!r} does not exist: give the folder of a training run")
    try:
        snap = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - whatever the unpickler says, the file is not a readable snapshot
        raise damaged(path) from None
    if not isinstance(snap, dict) or any(k not in snap for k in keys):
        raise damaged(path)
    return snap


def check_resume(run_dir: str | Path) -> dict:
    """The snapshot of the run in ``run_dir`` that ``--resume`` continues (checked readable and writable)."""
    run_dir = Path(run_dir)
    path = run_dir / SNAPSHOT
    if not path.is_file():
        why = ("it holds a config but no snapshot: the run stopped before its first one, so start it again without "
               "--resume" if (run_dir / CONFIG).is_file() else "there is no run there")
        raise ValueError(f"cannot resume: {str(path)!r} does not exist ({why})")
    check_writable(run_dir)
    return load_snapshot_file(path)


def changed_keys(old: dict, new: dict, allowed: Iterable[str] = (), prefix: str = "") -> list[str]:
    """The keys (dotted for nested mappings) whose values differ, ``allowed`` ones left out."""
    allowed = set(allowed)
    out = []
    for key in sorted(set(old) | set(new)):
        name = prefix + key
        if name in allowed:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_keys(a, b, allowed, name + ".")
        elif a != b:
            out.append(name)
    return out


def check_same_config(old: dict, new: dict, run_dir: str | Path, allowed: Iterable[str]) -> None:
    """Refuse to resume ``run_dir`` (trained with ``old``) with ``new``, naming each changed key."""
    changed = changed_keys(old, new, allowed)
    if changed:
        def get(d, key):
            for part in key.split("."):
                d = d.get(part) if isinstance(d, dict) else None
            return d

        what = ", ".join(f"{k}: {get(old, k)!r} -> {get(new, k)!r}" for k in changed)
        raise ValueError(f"the run in {str(run_dir)!r} was trained with another config ({what}); resume it with its "
                         f"own config.yaml (only {', '.join(allowed)} may change) or start a new run folder")


def is_finite(obj) -> bool:
    """Whether every floating-point number of ``obj`` (tensors, floats, nested in dicts, lists and tuples) is
    finite: a snapshot is good only if its weights, optimiser states and learning rates are."""
    import torch

    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(is_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(is_finite(v) for v in obj)
    return True


class MetricsLog:
    """A JSON-lines log of a run (``metrics.jsonl``, ``phases.jsonl``) written as the run goes: one row a line,
    flushed at once, so that a killed run leaves every row it logged (and at worst a torn last line, which
    :func:`read_metrics` skips). ``path=None`` (no run folder, or not process 0) logs nothing; ``append`` continues
    a resumed run's log. A row must be finite numbers, strings, lists and mappings: NaN is not JSON, so a row
    holding one is a ``ValueError`` (the trainers stop on a non-finite loss before they log it)."""

    def __init__(self, path: str | Path | None, append: bool = False):
        self.path = Path(path) if path is not None else None
        self._file = open(self.path, "a" if append else "w", buffering=1) if self.path is not None else None

    def write(self, row: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(row, allow_nan=False) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _metric_lines(path: Path) -> list[tuple[str, dict]]:
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError
        except ValueError:
            if i == len(lines) - 1:
                warnings.warn(f"{str(path)!r}: skipped its torn last line (a run stopped while writing it)",
                              stacklevel=3)
                break
            raise damaged(path, "metrics log") from None
        out.append((line, row))
    return out


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a metrics log (a run folder, or the file itself); a torn last line (a run killed while
    writing it) is skipped with a warning that names the file; a damaged line elsewhere is one sentence."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    if not path.is_file():
        return []
    return [row for _, row in _metric_lines(path)]


def truncate_metrics(path: str | Path, step: int, key: str = "step") -> None:
    """Keep the lines of ``path`` up to ``step`` (those of a resumed snapshot), dropping a torn last line."""
    path = Path(path)
    if not path.is_file():
        return
    keep = [line for line, row in _metric_lines(path) if row.get(key, 0) <= step]
    write_text(path, "".join(line + "\n" for line in keep))
