"""The networks of the Wasserstein auto-encoder (:mod:`uotm.wae`): deterministic or Gaussian encoders
:math:`Q(Z|X)`, decoders :math:`G`, and WAE-GAN's latent discriminator.

Residual MLPs (:class:`uotm.nets.toy.ResidualMLP`) for points of :math:`R^d` (the 2-D toy laws, point clouds), and a
small convolutional pair for 16×16 one-channel images in [−1, 1] (``digits``).
"""

from __future__ import annotations

import torch
from torch import nn

from .toy import ResidualMLP

Tensor = torch.Tensor


class _Encoder(nn.Module):
    """Shared tail of the encoders: features → mean (deterministic) or (mean, log-variance) (Gaussian)."""

    z_dim: int
    stochastic: bool

    def _setup_head(self, features: int, z_dim: int, stochastic: bool) -> None:
        self.z_dim, self.stochastic = z_dim, stochastic
        self.head = nn.Linear(features, 2 * z_dim if stochastic else z_dim)

    def _features(self, x: Tensor) -> Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def moments(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """The mean (B, z_dim) and, for a Gaussian encoder, the log-variance (clamped to [−10, 4]), else None."""
        out = self.head(self._features(x))
        if not self.stochastic:
            return out, None
        mean, log_var = out.chunk(2, dim=1)
        return mean, log_var.clamp(-10.0, 4.0)

    def forward(self, x: Tensor, generator: torch.Generator | None = None, sample: bool = True) -> Tensor:
        r"""A draw of :math:`Z\sim Q(Z|x)` (the mean for a deterministic encoder or with ``sample=False``)."""
        mean, log_var = self.moments(x)
        if log_var is None or not sample:
            return mean
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + (0.5 * log_var).exp() * eps


class MLPEncoder(_Encoder):
    """Residual MLP (``uotm.nets.toy.ResidualMLP``) from R^d to the latent space."""

    def __init__(self, dim: int, z_dim: int, hidden: int = 128, num_blocks: int = 2, stochastic: bool = False):
        super().__init__()
        self.body = nn.Sequential(ResidualMLP(dim, hidden, num_blocks), nn.SiLU())
        self._setup_head(hidden, z_dim, stochastic)

    def _features(self, x: Tensor) -> Tensor:
        return self.body(x)


class MLPDecoder(nn.Module):
    """Residual MLP from the latent space to R^d (no output squashing: toy data are unbounded)."""

    def __init__(self, z_dim: int, dim: int, hidden: int = 128, num_blocks: int = 2):
        super().__init__()
        self.z_dim = z_dim
        self.body = nn.Sequential(ResidualMLP(z_dim, hidden, num_blocks), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)


class ConvEncoder(_Encoder):
    """16×16×1 (any multiple of 4) → latent: two stride-2 convolutions (16 → 8 → 4) and a linear layer."""

    def __init__(self, z_dim: int, width: int = 32, image_size: int = 16, stochastic: bool = False):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.SiLU(), nn.Flatten(),
            nn.Linear(2 * width * (image_size // 4) ** 2, 4 * width), nn.SiLU())
        self._setup_head(4 * width, z_dim, stochastic)

    def _features(self, x: Tensor) -> Tensor:
        return self.body(x)


class ConvDecoder(nn.Module):
    """Latent → 16×16×1 in [−1, 1]: a linear layer to 4×4 maps, two stride-2 transposed convolutions, tanh."""

    def __init__(self, z_dim: int, width: int = 32, image_size: int = 16):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
        self.z_dim, self.width, self.side = z_dim, width, image_size // 4
        self.inp = nn.Sequential(nn.Linear(z_dim, 4 * width), nn.SiLU(),
                                 nn.Linear(4 * width, 2 * width * self.side ** 2), nn.SiLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(2 * width, 2 * width, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, 1, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        h = self.inp(z).view(z.shape[0], 2 * self.width, self.side, self.side)
        return self.body(h)


class LatentDiscriminator(nn.Module):
    """WAE-GAN's discriminator on the latent space: a residual MLP to one logit per point, shape (B,)."""

    def __init__(self, z_dim: int, hidden: int = 128, num_blocks: int = 2):
        super().__init__()
        self.body = nn.Sequential(ResidualMLP(z_dim, hidden, num_blocks), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z)[:, 0]
