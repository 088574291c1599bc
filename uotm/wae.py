r"""Penalised optimal transport through encoders: the Wasserstein auto-encoder (Tolstikhin et al.,
"Wasserstein Auto-Encoders", ICLR 2018; Bousquet et al., "From optimal transport to generative modeling: the VEGAN
cookbook", arXiv:1705.07642).

For a latent-variable model :math:`P_G=G_\#P_Z` with a deterministic decoder :math:`G`, the VEGAN theorem of
Bousquet et al. (2017) says

.. math::

    W_c(P_X, G_\#P_Z) = \inf_{Q(Z|X):\,Q_Z=P_Z}\ \mathbb E_{P_X}\mathbb E_{Q(Z|X)}\,c(X, G(Z)).

Relaxing the constraint :math:`Q_Z=P_Z` with a divergence gives the penalised objective of the Wasserstein
auto-encoder (WAE, Tolstikhin et al. 2018), trained here with :math:`c(x,y)=\lVert x-y\rVert^2` (summed over the
coordinates, or pixels):

.. math::

    \mathbb E_{P_X}\mathbb E_{Q(Z|X)}\lVert X-G(Z)\rVert^2 + \lambda\, D(Q_Z, P_Z),\qquad P_Z=N(0,\sigma_z^2 I).

* ``penalty="mmd"`` (WAE-MMD, the default): :math:`D` is the squared MMD with the inverse multiquadric kernel
  :math:`k(x,y)=\sum_s C_s/(C_s+\lVert x-y\rVert^2)`, :math:`C_s=2d_z\sigma_z^2 s`,
  :math:`s\in\{0.1,0.2,0.5,1,2,5,10\}`, estimated by the unbiased U-statistic (:func:`uotm.losses.mmd_imq`);
* ``penalty="gan"`` (WAE-GAN): :math:`D` is the Jensen–Shannon divergence estimated by a latent discriminator,
  trained by alternating steps; the encoder's term is the non-saturating :math:`-\log\sigma(d(\tilde z))`. With
  this penalty and :math:`c=\lVert\cdot\rVert^2` the objective is the adversarial auto-encoder's.

The losses are :class:`uotm.losses.WAEMMD` and :class:`uotm.losses.WAEGAN` (:data:`WAE_LOSSES` by penalty);
:func:`train_wae` calls them.

The encoder :math:`Q(Z|X)` is deterministic (``encoder="deterministic"``, :math:`z=\mu(x)`) or Gaussian
(``encoder="gaussian"``, :math:`z=\mu(x)+\sigma(x)\odot\varepsilon`, reparametrised). Networks: residual MLPs
(:class:`uotm.nets.toy.ResidualMLP`) for the 2-D toy laws and point clouds, a small convolutional pair for the
``digits`` images (16×16, one channel, in [−1, 1]).

:func:`vegan_sides` computes both sides of the theorem exactly for discrete :math:`P_X` and :math:`P_Z` (two linear
programs, ``ot.emd2``), merging atoms that the decoder sends to the same point (to a stated tolerance:
:func:`pushforward`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import NON_NEGATIVE, POSITIVE, SEED, Config
from .losses import WAEGAN, WAEMMD, mmd_imq
from .nets.toy import ResidualMLP

Tensor = torch.Tensor

ENCODERS = ("deterministic", "gaussian")
#: WAE's objectives by ``WAEConfig.penalty``: the one place the trainer chooses between them.
WAE_LOSSES: dict[str, type[WAEMMD]] = {"mmd": WAEMMD, "gan": WAEGAN}
PENALTIES = tuple(WAE_LOSSES)
IMAGE_DATA = ("digits",)


# ----------------------------------------------------------------------------------------------------------------
# networks


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


# ----------------------------------------------------------------------------------------------------------------
# configuration


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass
class WAEConfig(Config):
    """Everything a WAE run needs. ``data`` is a 2-D toy law of :mod:`uotm.data.toy` (or ``npy:PATH``) or
    ``digits`` (the 1 500 training digits of :mod:`uotm.data.images`, 16×16, in [−1, 1])."""

    data: str = "8gaussians"
    z_dim: int = 2
    encoder: str = "deterministic"  # or "gaussian"
    penalty: str = "mmd"  # or "gan"
    lam: float = 10.0  # lambda, the weight of D(Q_Z, P_Z)
    prior_sigma2: float = 1.0  # P_Z = N(0, prior_sigma2 I)
    steps: int = 2000  # optimiser steps of the encoder and decoder
    batch_size: int = 128
    lr_map: float = 1e-3  # Adam learning rate of the encoder and decoder (cosine-annealed to lr_map / 10)
    lr_discriminator: float = 5e-4  # WAE-GAN only
    discriminator_steps: int = 1  # WAE-GAN only: discriminator steps per encoder/decoder step
    hidden: int = 128  # width of the MLPs (toy data, discriminator)
    num_blocks: int = 2  # residual blocks of the MLPs
    width: int = 32  # base channels of the convolutional encoder/decoder (digits)
    num_data: int = 4000  # points drawn from a toy law (ignored for digits and npy:)
    data_root: str = "data"  # where the digits' cache lives (nothing is downloaded)
    seed: int = 0
    log_every: int = 50  # steps between two rows of metrics

    @property
    def is_image(self) -> bool:
        return self.data in IMAGE_DATA

    NAME = "WAE "
    RULES = dict(z_dim=POSITIVE, lam=NON_NEGATIVE, prior_sigma2=POSITIVE, steps=POSITIVE, batch_size=POSITIVE,
                 lr_map=POSITIVE, lr_discriminator=POSITIVE, discriminator_steps=POSITIVE, hidden=POSITIVE,
                 num_blocks=NON_NEGATIVE, width=POSITIVE, num_data=POSITIVE, seed=SEED, log_every=POSITIVE)

    def validate(self) -> "WAEConfig":
        """Check every field; return ``self``. Raises ValueError with the reason."""
        self.check_fields()
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}: choose one of {', '.join(ENCODERS)}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}: choose one of {', '.join(PENALTIES)}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (the unbiased MMD needs pairs), got {self.batch_size}")
        if not self.data:
            raise ValueError(f"data must be a non-empty string, got {self.data!r}")
        if not self.is_image:
            from .data.toy import make_distribution

            try:
                dist = make_distribution(self.data)
            except ValueError as err:
                raise ValueError(f"{err} (or {', '.join(IMAGE_DATA)} for images)") from None
            if dist.is_noise:
                raise ValueError("data='noise' is the prior itself; choose a toy law with structure")
            n = len(dist.fixed_points) if dist.fixed_points is not None else self.num_data
            if n < self.batch_size:
                raise ValueError(f"{self.data!r} gives {n} points, fewer than the batch size {self.batch_size}")
        elif self.batch_size > 1500:
            raise ValueError(f"the digits' training split has 1500 images, fewer than the batch size {self.batch_size}")
        return self


def load_data(cfg: WAEConfig, generator: torch.Generator, train: bool = True) -> Tensor:
    """The training data of ``cfg`` as float32: (N, d) points or (N, 1, 16, 16) images in [−1, 1]. ``train=False``
    gives the 297 held-out digits (images only)."""
    if cfg.is_image:
        from .data.images import make_dataset, to_signed
        from .presets import preset

        return to_signed(make_dataset(preset("digits", data_root=cfg.data_root), train=train).images)
    if not train:
        raise ValueError("held-out data exist only for the image data sets; draw a fresh toy sample instead")
    from .data.toy import make_distribution

    return make_distribution(cfg.data).sample(cfg.num_data, generator)


def build_networks(cfg: WAEConfig, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module, nn.Module | None]:
    """(encoder, decoder, discriminator or None) for ``cfg`` and data of shape ``data_shape`` (without the batch)."""
    stochastic = cfg.encoder == "gaussian"
    if cfg.is_image:
        if len(data_shape) != 3 or data_shape[0] != 1 or data_shape[1] != data_shape[2]:
            raise ValueError(f"the convolutional networks take (1, S, S) images, got {data_shape}")
        enc = ConvEncoder(cfg.z_dim, cfg.width, data_shape[1], stochastic)
        dec = ConvDecoder(cfg.z_dim, cfg.width, data_shape[1])
    else:
        if len(data_shape) != 1:
            raise ValueError(f"the MLPs take (d,) points, got {data_shape}")
        enc = MLPEncoder(data_shape[0], cfg.z_dim, cfg.hidden, cfg.num_blocks, stochastic)
        dec = MLPDecoder(cfg.z_dim, data_shape[0], cfg.hidden, cfg.num_blocks)
    disc = LatentDiscriminator(cfg.z_dim, cfg.hidden, cfg.num_blocks) if cfg.penalty == "gan" else None
    return enc, dec, disc


# ----------------------------------------------------------------------------------------------------------------
# training


@dataclass
class WAERun:
    """A trained WAE: encoder Q(Z|X), decoder G, the training data and the metrics."""

    config: WAEConfig
    encoder: nn.Module
    decoder: nn.Module
    discriminator: nn.Module | None
    data: Tensor  # the training data (N, d) or (N, 1, S, S)
    metrics: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @torch.no_grad()
    def encode(self, x, sample: bool = False, seed: int = 0, batch: int = 1000) -> Tensor:
        """Latent codes (n, z_dim) of ``x``: the encoder's mean, or a draw of Q(Z|x) with ``sample=True``."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float32)
        g = torch.Generator().manual_seed(seed)
        return torch.cat([self.encoder(xb, g, sample) for xb in x.split(batch)])

    @torch.no_grad()
    def decode(self, z, batch: int = 1000) -> Tensor:
        """G(z) for codes ``z`` (n, z_dim)."""
        z = torch.as_tensor(np.asarray(z) if not isinstance(z, Tensor) else z, dtype=torch.float32)
        return torch.cat([self.decoder(zb) for zb in z.split(batch)])

    def reconstruct(self, x, sample: bool = False, seed: int = 0) -> Tensor:
        """G(Z) with Z the encoder's mean for ``x`` (or a draw of Q(Z|x) with ``sample=True``)."""
        return self.decode(self.encode(x, sample, seed))

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """``n`` samples G(Z), Z ~ P_Z = N(0, prior_sigma2 I), repeatable for a ``seed``."""
        if not _positive_int(n):
            raise ValueError(f"the number of samples must be a positive integer, got {n!r}")
        g = torch.Generator().manual_seed(seed)
        z = math.sqrt(self.config.prior_sigma2) * torch.randn(n, self.config.z_dim, generator=g)
        return self.decode(z)


def train_wae(cfg: WAEConfig, data: Tensor | None = None, progress: bool = True) -> WAERun:
    r"""Train a WAE on ``cfg.data`` (or on ``data``, a float tensor of the right kind, when given). Every random draw
    after the networks' initialisation comes from one generator seeded with ``cfg.seed``, so a run repeats bit for
    bit on the CPU. Metrics every ``log_every`` steps: ``recon`` (the batch's mean cost), ``penalty``
    (:math:`D(Q_Z,P_Z)` on the batch: the MMD estimate, or for WAE-GAN the discriminator's Jensen–Shannon estimate
    :math:`\log 2 - \tfrac12 L_d`, both with ``mmd`` logged too) and ``loss``."""
    cfg.validate()
    with torch.random.fork_rng(devices=[]):  # the initialisation must not disturb the caller's global state
        torch.manual_seed(cfg.seed)
        g = torch.Generator().manual_seed(cfg.seed)
        if data is None:
            data = load_data(cfg, g)
        else:
            data = torch.as_tensor(data, dtype=torch.float32)
            if len(data) < cfg.batch_size or not torch.isfinite(data).all():
                raise ValueError(f"data must hold at least batch_size={cfg.batch_size} finite samples, got "
                                 f"{len(data)}")
        enc, dec, disc = build_networks(cfg, tuple(data.shape[1:]))
    objective = WAE_LOSSES[cfg.penalty](cfg.lam, cfg.prior_sigma2)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr_map)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=cfg.lr_map / 10)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_discriminator, betas=(0.5, 0.999)) if disc else None
    sigma = math.sqrt(cfg.prior_sigma2)
    n, b = len(data), cfg.batch_size
    perm, pos = torch.randperm(n, generator=g), 0
    metrics: list[dict] = []
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.steps + 1), desc=f"WAE-{cfg.penalty.upper()}", unit="step", disable=not progress,
               leave=False)
    try:
        for step in bar:
            if pos + b > n:
                perm, pos = torch.randperm(n, generator=g), 0
            x = data[perm[pos:pos + b]]
            pos += b
            z_prior = sigma * torch.randn(b, cfg.z_dim, generator=g)
            z = enc(x, g)
            logs = {}
            if disc is not None:  # WAE-GAN: the discriminator's steps first
                for _ in range(cfg.discriminator_steps):
                    loss_d = objective.discriminator_loss(disc, z, z_prior)
                    opt_d.zero_grad(set_to_none=True)
                    loss_d.backward()
                    opt_d.step()
                penalty = objective.penalty(z, z_prior, disc)
                logs["penalty"] = objective.js_estimate(loss_d)
                with torch.no_grad():
                    logs["mmd"] = float(mmd_imq(z, z_prior, cfg.prior_sigma2))
            else:
                penalty = objective.penalty(z, z_prior)
                logs["penalty"] = float(penalty.detach())
            loss, recon = objective.map_loss(x, dec(z), penalty)
            opt.zero_grad(set_to_none=True)
            loss.backward(inputs=params)
            opt.step()
            sched.step()
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = {"step": step, "recon": float(recon.detach()), **logs, "loss": float(loss.detach()),
                       "seconds": round(time.perf_counter() - start, 3)}
                if not all(math.isfinite(v) for k, v in row.items() if k != "step"):
                    raise FloatingPointError(f"a loss became NaN or infinite at step {step} ({row}); lower lr_map")
                metrics.append(row)
                bar.set_postfix(recon=f"{row['recon']:.3g}", penalty=f"{row['penalty']:.3g}")
    finally:
        bar.close()
    for net in (enc, dec, disc):
        if net is not None:
            net.eval()
    return WAERun(cfg, enc, dec, disc, data, metrics, time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------------------------
# the VEGAN theorem on discrete laws


def _weights(w, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one weight per atom, got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero")
    return w / w.sum()


def _atoms(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be an (n, d) array of atoms with n, d >= 1, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


MERGE_RTOL = 1e-9  # pushed atoms closer than this, relative to the points' scale, are one atom of G#P_Z


def pushforward(gz, b, rtol: float = MERGE_RTOL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The discrete law :math:`G_\#P_Z` from the pushed atoms ``gz`` (m, d) = G(z_j) and their weights ``b`` (m,).
    Returns (distinct points (k, d), their weights (k,), the index (m,) of each z_j's point).

    Two atoms are merged when they agree to the tolerance ``rtol`` relative to the scale of the points:
    :math:`\max_l|G(z_i)_l-G(z_j)_l|\le \mathrm{rtol}\cdot s` with :math:`s=\max_{j,l}|G(z_j)_l|` (and merging
    is transitive: a chain of such pairs is one atom). Bit equality (``np.unique``) is not the test: a decoder that
    sends two latent atoms to one point computes the two images by different floating-point paths (another row of
    a matrix product, another SIMD lane), and they can differ by a few units in the last place (5.6e-16 was seen on
    one CPU). The default 1e-9 is far above such rounding and far below the distance between points that are meant
    to differ. Each merged atom is placed at the first of its members (in the order of ``gz``); the points come
    in the order of their first member."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    gz = np.asarray(gz, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if gz.ndim != 2 or len(gz) < 1:
        raise ValueError(f"gz must be an (m, d) array of pushed atoms with m >= 1, got shape {gz.shape}")
    if b.shape != (len(gz),):
        raise ValueError(f"b must have shape ({len(gz)},), one weight per pushed atom, got {b.shape}")
    if not np.all(np.isfinite(gz)):
        raise ValueError("the pushed atoms hold NaN or infinite values")
    if not (isinstance(rtol, (int, float)) and not isinstance(rtol, bool) and 0 <= rtol < 1):
        raise ValueError(f"rtol must be a number in [0, 1), got {rtol!r}")
    m = len(gz)
    tol = rtol * float(np.abs(gz).max())
    pairs = cKDTree(gz).query_pairs(tol, p=np.inf, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    _, label = connected_components(graph, directed=False)
    # number the groups by their first member, so that the points come in the order of gz
    _, first = np.unique(label, return_index=True)
    order = np.argsort(first)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    inverse = inverse[label]
    points = gz[np.sort(first)]
    return points, np.bincount(inverse, weights=b, minlength=len(points)), inverse


def merge_margins(gz, rtol: float = MERGE_RTOL) -> tuple[float, float]:
    """How clear-cut :func:`pushforward`'s merging of the pushed atoms ``gz`` (m, d) is: ``(spread, separation)``,
    both in the max-norm and relative to the scale of the points (their largest coordinate in absolute value).
    ``spread`` is the largest distance between an atom and the point it was merged into (0 when nothing is
    merged), ``separation`` the smallest distance between two distinct points (inf when there is one). A merge
    that decides nothing close has ``spread`` far below ``rtol`` and ``separation`` far above it."""
    from scipy.spatial.distance import pdist

    gz = np.asarray(gz, dtype=np.float64)
    points, _, index = pushforward(gz, np.ones(len(gz)), rtol)
    scale = float(np.abs(gz).max()) or 1.0
    spread = float(np.abs(gz - points[index]).max()) / scale
    separation = float(pdist(points, "chebyshev").min()) / scale if len(points) > 1 else math.inf
    return spread, separation


@dataclass
class VeganCheck:
    """Both sides of the VEGAN theorem for one discrete problem, and the plans that attain them."""

    w_data: float  # W_c(P_X, G#P_Z): an OT problem in data space, between X and the distinct points G(z)
    w_latent: float  # inf over Q(Z|X) with Q_Z = P_Z of E c(X, G(Z)): an OT problem between X and Z
    plan_data: np.ndarray  # (n, k) optimal coupling of P_X and G#P_Z
    plan_latent: np.ndarray  # (n, m) optimal coupling of P_X and P_Z; Q(z_j | x_i) = plan_latent[i, j] / a_i
    cost: np.ndarray  # (n, m) M_ij = c(x_i, G(z_j))
    n_pushed_atoms: int  # k, the number of distinct points G(z_j) (< m when G is not injective on the atoms)

    @property
    def injective(self) -> bool:
        """Whether G sends the m latent atoms to m distinct points (then both sides are one linear program)."""
        return self.n_pushed_atoms == self.plan_latent.shape[1]

    @property
    def relative_error(self) -> float:
        return abs(self.w_data - self.w_latent) / max(abs(self.w_data), abs(self.w_latent), 1e-300)


def vegan_sides(x, z, decoder: Callable | np.ndarray, a=None, b=None, rtol: float = MERGE_RTOL) -> VeganCheck:
    r"""Both sides of :math:`W_c(P_X,G_\#P_Z)=\inf_{Q(Z|X):Q_Z=P_Z}\mathbb E\,c(X,G(Z))` exactly, with
    :math:`c=\lVert\cdot\rVert^2`, :math:`P_X=\sum_i a_i\delta_{x_i}` and :math:`P_Z=\sum_j b_j\delta_{z_j}`
    (uniform weights by default).

    ``decoder`` is the deterministic :math:`G`: a function (or ``torch.nn.Module``) from the (m, d_z) array of
    latent atoms to an (m, d) array, or the (m, d) array of the values :math:`G(z_j)` itself. The left side is
    ``ot.emd2`` between :math:`P_X` and the law :math:`G_\#P_Z`, whose atoms are the *distinct* points
    :math:`G(z_j)` with the summed weights (images that agree to the relative tolerance ``rtol`` are one point:
    see :func:`pushforward`); the right side is ``ot.emd2`` between :math:`P_X` and :math:`P_Z` with the cost
    :math:`M_{ij}=c(x_i,G(z_j))`, whose couplings are exactly the :math:`Q(Z|X)` with :math:`Q_Z=P_Z`.

    When :math:`G` is injective on the atoms the two programs are the same one (the same costs, the columns in
    another order), so their agreement only checks the solver; the theorem has content where :math:`G` is not
    injective (:attr:`VeganCheck.injective` is False)."""
    import ot

    x = _atoms(x, "x")
    z = _atoms(z, "z")
    a = _weights(a, len(x), "a")
    b = _weights(b, len(z), "b")
    if isinstance(decoder, np.ndarray):
        gz = decoder
    elif isinstance(decoder, nn.Module):
        p = next(decoder.parameters(), None)
        dtype = p.dtype if p is not None else torch.float64
        with torch.no_grad():
            gz = decoder(torch.as_tensor(z, dtype=dtype)).double().numpy()
    elif callable(decoder):
        gz = decoder(z)
    else:
        raise ValueError(f"decoder must be a function of the latent atoms or the array of their images, "
                         f"got {type(decoder).__name__}")
    gz = np.asarray(gz, dtype=np.float64)
    if gz.ndim == 1 and x.shape[1] == 1:
        gz = gz[:, None]
    if gz.shape != (len(z), x.shape[1]):
        raise ValueError(f"the decoder must give one point of R^{x.shape[1]} per latent atom, shape "
                         f"({len(z)}, {x.shape[1]}); got {gz.shape}")
    if not np.all(np.isfinite(gz)):
        raise ValueError("the decoder gave NaN or infinite points")
    points, weights, _ = pushforward(gz, b, rtol)
    cost_data = ot.dist(x, points, metric="sqeuclidean")
    cost = ot.dist(x, gz, metric="sqeuclidean")
    plan_data = ot.emd(a, weights, cost_data, numItermax=10 ** 7)
    plan_latent = ot.emd(a, b, cost, numItermax=10 ** 7)
    return VeganCheck(float((plan_data * cost_data).sum()), float((plan_latent * cost).sum()), plan_data,
                      plan_latent, cost, len(points))


def random_vegan_problem(n: int, m: int, seed: int, d: int = 2, d_z: int = 2,
                         collapse: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Callable]:
    r"""A random discrete problem (x, z, a, b, G): ``n`` data atoms and ``m`` latent atoms with random weights, G a
    random two-layer tanh network :math:`R^{d_z}\to R^d`. With ``collapse`` = k > 0, G is made non-injective on the
    atoms: the last k latent atoms are copies of others reflected through the first coordinate, and G is made even
    in that coordinate (it reads :math:`|z_1|`), so each pair of atoms lands on one point."""
    if not (_positive_int(n) and _positive_int(m) and _positive_int(d) and _positive_int(d_z)):
        raise ValueError(f"n, m, d, d_z must be positive integers, got {n}, {m}, {d}, {d_z}")
    if not isinstance(collapse, int) or not 0 <= collapse <= m // 2:
        raise ValueError(f"collapse must be an integer in [0, m // 2] = [0, {m // 2}], got {collapse!r}")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0)
    z = rng.normal(size=(m, d_z))
    if collapse:
        z[:, 0] = np.abs(z[:, 0]) + 0.1  # the reflected copies must differ from the originals
        z[m - collapse:] = z[:collapse] * np.r_[-1.0, np.ones(d_z - 1)]
    a = rng.uniform(0.2, 1.0, n)
    b = rng.uniform(0.2, 1.0, m)
    w1, c1 = rng.normal(size=(d_z, 16)), rng.normal(size=16)
    w2 = rng.normal(size=(16, d)) * 1.5

    def decoder(latent: np.ndarray) -> np.ndarray:
        u = np.array(latent, dtype=np.float64)
        if collapse:
            u[:, 0] = np.abs(u[:, 0])
        return np.tanh(u @ w1 + c1) @ w2

    return x, z, a / a.sum(), b / b.sum(), decoder
