"""The toy networks of the reference's ``train_toy.py`` (public repository Jae-Moo/UOTM): residual MLPs of width 128.

For 1-D data the map has 182,273 parameters and the potential 165,505, as in the reference. :class:`LatentFreeMap`,
a map that ignores its latent, is S-JKO's for the Gaussian check (the exact JKO step there is deterministic).
"""

from __future__ import annotations

import math

import torch
from torch import nn

Tensor = torch.Tensor


class ResidualMLP(nn.Module):
    """Input ``Linear(d, h)`` then ``num_blocks`` residual blocks ``h <- (h + f(h)) / sqrt(2)``, each ``f`` being
    three ``[Linear(h, h), SiLU]`` pairs."""

    def __init__(self, in_dim: int, hidden: int = 128, num_blocks: int = 3):
        super().__init__()
        if in_dim < 1 or hidden < 1 or num_blocks < 0:
            raise ValueError(f"need in_dim >= 1, hidden >= 1, num_blocks >= 0; got {in_dim}, {hidden}, {num_blocks}")
        self.inp = nn.Linear(in_dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(*[m for _ in range(3) for m in (nn.Linear(hidden, hidden), nn.SiLU())])
            for _ in range(num_blocks)
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = (h + block(h)) / math.sqrt(2.0)
        return h


def _head(hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))


class ToyPotential(nn.Module):
    """The potential :math:`v(y)`: residual MLP and a Linear-SiLU-Linear head to one value per sample, shape (B,)."""

    def __init__(self, dim: int, hidden: int = 128, num_blocks: int = 3):
        super().__init__()
        self.body = ResidualMLP(dim, hidden, num_blocks)
        self.head = _head(hidden, 1)

    def forward(self, y: Tensor) -> Tensor:
        return self.head(self.body(y))[:, 0]


class ToyMap(nn.Module):
    """The stochastic map :math:`T(x, z)`: an embedding of the noise ``z`` is added to the residual MLP's features
    of ``x`` before the head. ``z`` has the data's dimension by default, as in the reference."""

    def __init__(self, dim: int, hidden: int = 128, num_blocks: int = 3, z_dim: int | None = None):
        super().__init__()
        self.z_dim = dim if z_dim is None else z_dim
        self.z_embed = nn.Sequential(nn.Linear(self.z_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.body = ResidualMLP(dim, hidden, num_blocks)
        self.head = _head(hidden, dim)

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        if z is None:
            z = torch.randn(x.shape[0], self.z_dim, device=x.device, dtype=x.dtype)
        return self.head(self.body(x) + self.z_embed(z))


class LatentFreeMap(nn.Module):
    """A deterministic toy map :math:`T(x)`: the residual MLP and head of :class:`ToyMap` without the latent's
    embedding; it accepts and ignores ``z`` so that it can stand where a stochastic map does."""

    def __init__(self, dim: int, hidden: int = 128, num_blocks: int = 3, z_dim: int = 2):
        super().__init__()
        self.z_dim = z_dim
        self.body = ResidualMLP(dim, hidden, num_blocks)
        self.head = _head(hidden, dim)

    def forward(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        return self.head(self.body(x))
