"""Toy distributions (the UOTM reference's ``train_toy.py`` and the S-JKO authors' toy runs) and point clouds read
from ``.npy`` files.

Names and their laws (``d`` is the requested dimension where a law has none of its own):

============  =====  ==========================================================================
name          dim    law
============  =====  ==========================================================================
noise         d      N(0, I_d)
p             d      ½ N(1, 0.5²) + ½ N(−1, 0.5²) per coordinate (halves split exactly)
q             d      ⅔ N(2, 0.5²) + ⅓ N(−1, 0.5²)
outlier       d      (1−f) N(1, 0.1²) + f N(loc, 0.1²); f = ``outlier_fraction``, loc = ``outlier_loc``
gaussian      2      N((0, 10), I)
8gaussians    2      eight N(c, 0.02 I), equal weights, centres evenly spaced on the circle of radius 2
25gaussian    2      N(c, 0.005 I), c in {−6, −3, 0, 3, 6}²
twocircles    2      circles of radius 4 and 8, Gaussian noise 0.2
moons         2      scikit-learn's two moons, noise 0.1, centred and scaled by 2
checkerboard  2      uniform on the dark squares of a 4×4 board on [−4, 4]²
npy:PATH      file   the (N, d) float array stored at PATH
============  =====  ==========================================================================

Mixtures with a fixed weight (``p``, ``q``, ``outlier``) are split exactly: of n points, ``int(n * f)`` come from
the outlier mode, as in the reference; the rows are shuffled, so any prefix of a sample is a sample of the mixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

Tensor = torch.Tensor
Sampler = Callable[[int, int, torch.Generator], Tensor]  # (n, dim, generator) -> (n, dim)

FLEXIBLE_DIM = ("noise", "p", "q", "outlier")
FIXED_2D = ("gaussian", "8gaussians", "25gaussian", "twocircles", "moons", "checkerboard")
TOY_NAMES = FLEXIBLE_DIM + FIXED_2D


def _randn(n: int, d: int, g: torch.Generator) -> Tensor:
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def _two_modes(n_first: int, n: int, d: int, g: torch.Generator, m1: float, m2: float, std: float) -> Tensor:
    """Exactly ``n_first`` points from N(m1, std²) and the rest from N(m2, std²), in random order (so that any
    prefix of the rows is a sample of the mixture)."""
    first = std * _randn(n_first, d, g) + m1
    second = std * _randn(n - n_first, d, g) + m2
    return torch.cat([first, second])[torch.randperm(n, generator=g)]


def _centres_mixture(n: int, g: torch.Generator, centres: Tensor, std: float) -> Tensor:
    idx = torch.randint(len(centres), (n,), generator=g)
    return centres[idx] + std * _randn(n, 2, g)


def _eight_gaussians(n: int, d: int, g: torch.Generator) -> Tensor:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centres = 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    return _centres_mixture(n, g, centres, math.sqrt(0.02))


def _twentyfive_gaussians(n: int, d: int, g: torch.Generator) -> Tensor:
    grid = torch.tensor([-6.0, -3.0, 0.0, 3.0, 6.0], dtype=torch.float64)
    centres = torch.cartesian_prod(grid, grid)
    return _centres_mixture(n, g, centres, math.sqrt(0.005))


def _two_circles(n: int, d: int, g: torch.Generator) -> Tensor:
    radius = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < 0.5, 4.0, 8.0)
    theta = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    pts = torch.stack([radius * theta.cos(), radius * theta.sin()], dim=1)
    return pts + 0.2 * _randn(n, 2, g)


def _moons(n: int, d: int, g: torch.Generator) -> Tensor:
    from sklearn.datasets import make_moons

    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    pts, _ = make_moons(n_samples=n, noise=0.1, random_state=seed)
    pts = torch.as_tensor(pts, dtype=torch.float64)
    return 2.0 * (pts - torch.tensor([0.5, 0.25], dtype=torch.float64))


def _checkerboard(n: int, d: int, g: torch.Generator) -> Tensor:
    # a 4x4 board of unit-2 squares on [-4, 4]^2; keep the squares whose (row + column) is even
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    col = torch.randint(4, (n,), generator=g)
    row = 2 * torch.randint(2, (n,), generator=g) + (col % 2)
    return torch.stack([col + u[:, 0], row + u[:, 1]], dim=1) * 2.0 - 4.0


@dataclass(frozen=True)
class ToyDistribution:
    """A named law on R^dim that draws samples; ``fixed_points`` holds a loaded point cloud (``npy:``)."""

    name: str
    dim: int
    sampler: Sampler | None = None
    fixed_points: np.ndarray | None = None

    @property
    def is_noise(self) -> bool:
        """The standard Gaussian: a trainer may draw fresh samples of it at every step."""
        return self.name == "noise"

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` samples as a float32 tensor of shape (n, dim); a point cloud returns all its points, shuffled."""
        if self.fixed_points is not None:
            pts = torch.as_tensor(self.fixed_points, dtype=torch.float32)
            return pts[torch.randperm(len(pts), generator=generator)]
        if n < 1:
            raise ValueError(f"the number of samples must be positive, got {n}")
        assert self.sampler is not None
        return self.sampler(n, self.dim, generator).to(torch.float32)


#: The largest point cloud a toy run takes, in numbers (N x d): 10 million, e.g. 100 000 points in 100 dimensions
#: (80 MB as float64); a toy run keeps several copies of its data and writes them out.
MAX_POINT_VALUES = 10_000_000


def load_point_cloud(path: str | Path) -> np.ndarray:
    """Read an (N, d) float array from ``path`` and check it (at most :data:`MAX_POINT_VALUES` numbers); ValueError
    with the reason otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"point cloud file {str(p)!r} does not exist")
    try:
        arr = np.load(p, allow_pickle=False, mmap_mode="r")  # the shape first: nothing read yet
    except Exception as exc:  # noqa: BLE001 - any read failure is the user's file
        raise ValueError(f"cannot read {str(p)!r} as a NumPy .npy array: {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{str(p)!r} is not a NumPy .npy array (an .npz archive?); save the (N, d) array with np.save")
    if arr.size > MAX_POINT_VALUES:
        raise ValueError(f"{str(p)!r} holds {arr.size:,} numbers (shape {arr.shape}), more than the "
                         f"{MAX_POINT_VALUES:,} a toy run takes; subsample it")
    arr = np.array(arr)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{str(p)!r} holds {arr.dtype} values; it must hold real numbers")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{str(p)!r} has shape {arr.shape}; it must be an (N, d) array with N >= 2 points")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{str(p)!r} holds NaN or infinite values in {bad} of its {len(arr)} rows")
    return arr


def make_distribution(
    name: str, dim: int | None = None, outlier_fraction: float = 0.01, outlier_loc: float = -1.0
) -> ToyDistribution:
    """The distribution called ``name`` (see the module's table, or ``npy:PATH``).

    ``dim`` is needed only for the laws that have no dimension of their own (``noise``, ``p``, ``q``,
    ``outlier``; 1 if omitted); for the others it must be omitted or agree.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a distribution name must be a non-empty string, got {name!r}")
    if name.startswith("npy:"):
        pts = load_point_cloud(name[4:])
        if dim is not None and dim != pts.shape[1]:
            raise ValueError(f"{name!r} holds {pts.shape[1]}-dimensional points but dimension {dim} was asked for")
        return ToyDistribution(name, pts.shape[1], fixed_points=pts)
    if name in FIXED_2D:
        if dim is not None and dim != 2:
            raise ValueError(f"{name!r} is 2-dimensional but dimension {dim} was asked for")
        sampler = {
            "gaussian": lambda n, d, g: _randn(n, 2, g) + torch.tensor([0.0, 10.0], dtype=torch.float64),
            "8gaussians": _eight_gaussians,
            "25gaussian": _twentyfive_gaussians,
            "twocircles": _two_circles,
            "moons": _moons,
            "checkerboard": _checkerboard,
        }[name]
        return ToyDistribution(name, 2, sampler)
    if name not in FLEXIBLE_DIM:
        raise ValueError(f"unknown distribution {name!r}: choose one of {', '.join(TOY_NAMES)}, or npy:PATH")
    d = 1 if dim is None else dim
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"the dimension must be a positive integer, got {dim!r}")
    if name == "outlier":
        if not 0.0 <= outlier_fraction < 1.0:
            raise ValueError(f"the outlier fraction must lie in [0, 1), got {outlier_fraction}")
        if not math.isfinite(outlier_loc):
            raise ValueError(f"the outlier location must be finite, got {outlier_loc}")
        f, loc = outlier_fraction, outlier_loc
        sampler = lambda n, d_, g: _two_modes(n - int(n * f), n, d_, g, 1.0, loc, 0.1)  # noqa: E731
    elif name == "noise":
        sampler = lambda n, d_, g: _randn(n, d_, g)  # noqa: E731
    elif name == "p":
        sampler = lambda n, d_, g: _two_modes(n // 2, n, d_, g, 1.0, -1.0, 0.5)  # noqa: E731
    else:  # q
        sampler = lambda n, d_, g: _two_modes(2 * n // 3, n, d_, g, 2.0, -1.0, 0.5)  # noqa: E731
    return ToyDistribution(name, d, sampler)


def resolve_pair(
    source: str, target: str, dim: int | None = None, outlier_fraction: float = 0.01, outlier_loc: float = -1.0
) -> tuple[ToyDistribution, ToyDistribution]:
    """Source and target laws of one dimension: a law with a dimension of its own sets it for the other side."""
    kw = dict(outlier_fraction=outlier_fraction, outlier_loc=outlier_loc)

    def own_dim(name: str) -> bool:
        return isinstance(name, str) and (name.startswith("npy:") or name in FIXED_2D)

    if dim is None:
        for name in (target, source):
            if own_dim(name):
                dim = make_distribution(name, None, **kw).dim
                break
    src = make_distribution(source, None if own_dim(source) else dim, **kw)
    tgt = make_distribution(target, None if own_dim(target) else dim, **kw)
    if src.dim != tgt.dim:
        raise ValueError(
            f"the source {source!r} is {src.dim}-dimensional but the target {target!r} is {tgt.dim}-dimensional"
        )
    return src, tgt
