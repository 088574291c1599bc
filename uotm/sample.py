r"""Sampling a trained map: :math:`y = T(x, z)` with :math:`x\sim N(0,I)` of the image's shape and
:math:`z\sim N(0,I_{z\_dim})`, using the EMA weights of a run's snapshot.

``sample(run_dir, n)`` returns ``uint8`` images (n, H, W, C); ``python -m uotm sample --run DIR -n 50000 --out
samples.npz`` writes them as ``arr_0`` of an ``.npz`` (the layout the usual FID tools read).

The same holds for an S-JKO run (``model: sjko`` in its config): its one generator maps the source straight to the
last phase's law, so a sample is one forward of its EMA map whatever the number of phases (the old map of the
snapshot is the previous phase's, for resuming only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .train import autocast, default_networks, source_batch

Tensor = torch.Tensor


def to_uint8(images: Tensor) -> Tensor:
    """Images in [−1, 1] → ``uint8`` in [0, 255] (rounded, clipped)."""
    return (images.float() * 127.5 + 127.5).round_().clamp_(0, 255).to(torch.uint8)


@torch.no_grad()
def generate(transport_map: torch.nn.Module, cfg, n: int, batch_size: int = 256, seed: int = 0, device=None,
             progress: bool = False) -> Tensor:
    """``n`` samples of ``transport_map`` as ``uint8`` images (n, C, H, W) on the CPU; repeatable for a ``seed``."""
    if n < 1 or batch_size < 1:
        raise ValueError(f"n and batch_size must be positive, got n={n}, batch_size={batch_size}")
    device = torch.device(device) if device is not None else next(transport_map.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    out = torch.empty(n, cfg.channels, cfg.image_size, cfg.image_size, dtype=torch.uint8)
    was_training = transport_map.training
    transport_map.eval()
    from tqdm.auto import tqdm

    with tqdm(total=n, disable=not progress, unit="img", leave=False) as bar:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            x, z = source_batch(cfg, b, g, device)
            with autocast(cfg, device):
                y = transport_map(x, z)
            out[start:start + b] = to_uint8(y).cpu()
            bar.update(b)
    transport_map.train(was_training)
    return out


def load_run(run_dir: str | Path, device="cpu", build: Callable | None = None, weights: str = "ema"):
    """The config and the map of the run in ``run_dir`` (its ``snapshot.pt``), with the ``weights`` of
    ``"ema"`` (default) or ``"transport_map"`` (the last iterate), in eval mode on ``device``."""
    from .presets import ImageConfig
    from .runs import SNAPSHOT, damaged, load_snapshot_file

    path = Path(run_dir) / SNAPSHOT
    if weights not in ("ema", "transport_map"):
        raise ValueError(f"weights must be 'ema' or 'transport_map', got {weights!r}")
    snap = load_snapshot_file(path, keys=("config", weights))
    try:
        cfg = ImageConfig.from_dict(snap["config"]).validate()
        transport_map, _ = (build or default_networks)(cfg)
        transport_map.load_state_dict(snap[weights])
    except (ValueError, TypeError, KeyError, RuntimeError):
        raise damaged(path) from None
    return cfg, transport_map.to(device).eval().requires_grad_(False)


def sample(run_dir: str | Path, n: int, batch_size: int = 256, seed: int = 0, device=None,
           build: Callable | None = None, progress: bool = False) -> np.ndarray:
    """``n`` samples of the EMA map of the run in ``run_dir`` (UOTM or S-JKO): ``uint8`` array (n, H, W, C)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg, tmap = load_run(run_dir, device, build)
    images = generate(tmap, cfg, n, batch_size, seed, device, progress)
    return images.permute(0, 2, 3, 1).numpy()


def check_out(path: str | Path, overwrite: bool = False) -> Path:
    """Check that ``path`` may receive a samples file before any sampling: not a folder, not an existing file
    unless ``overwrite``, and in a folder that can be written (or made). Writes nothing."""
    from .runs import check_writable

    path = Path(path)
    check_writable(path, "--out", folder=False)
    if path.exists() and not overwrite:
        raise ValueError(f"--out {str(path)!r} already exists; pass --overwrite to replace it or choose another file")
    return path


def save_npz(path: str | Path, images: np.ndarray) -> Path:
    """Write ``uint8`` images (n, H, W, C) as ``arr_0`` of ``path`` (atomically; a failure leaves no file)."""
    from .runs import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda p: np.savez(p, images))


def write_samples(run_dir: str | Path, n: int, out: str | Path, overwrite: bool = False, batch_size: int = 256,
                  seed: int = 0, device=None, progress: bool = False) -> tuple[Path, np.ndarray]:
    """``n`` samples of the run in ``run_dir`` (:func:`sample`) written to the ``.npz`` ``out`` (:func:`save_npz`);
    ``out`` and the numbers are checked before anything is sampled (:func:`check_out`). Returns the path and the
    images."""
    check_out(out, overwrite)
    for name, value in (("-n", n), ("--batch", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    images = sample(run_dir, n, batch_size, seed, device, progress=progress)
    return save_npz(out, images), images
