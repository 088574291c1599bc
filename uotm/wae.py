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
(``encoder="gaussian"``, :math:`z=\mu(x)+\sigma(x)\odot\varepsilon`, reparametrised). The networks are in
:mod:`uotm.nets.wae` (residual MLPs for the 2-D toy laws and point clouds, a small convolutional pair for the
``digits`` images, 16×16, one channel, in [−1, 1]); :func:`build_networks` picks them for a configuration.

:func:`uotm.exact.vegan_sides` computes both sides of the theorem exactly for discrete :math:`P_X` and :math:`P_Z`
(two linear programs, ``ot.emd2``), merging atoms that the decoder sends to the same point (to a stated tolerance:
:func:`uotm.exact.pushforward`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import NON_NEGATIVE, POSITIVE, SEED, Config, Rule, one_of
from .losses import WAEGAN, WAEMMD, mmd_imq
from .nets.wae import ConvDecoder, ConvEncoder, LatentDiscriminator, MLPDecoder, MLPEncoder

Tensor = torch.Tensor

ENCODERS = ("deterministic", "gaussian")
#: WAE's objectives by ``WAEConfig.penalty``: the one place the trainer chooses between them.
WAE_LOSSES: dict[str, type[WAEMMD]] = {"mmd": WAEMMD, "gan": WAEGAN}
PENALTIES = tuple(WAE_LOSSES)
IMAGE_DATA = ("digits",)


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
    # batch_size >= 2: the unbiased MMD needs pairs
    RULES = dict(z_dim=POSITIVE, encoder=one_of(*ENCODERS), penalty=one_of(*PENALTIES), lam=NON_NEGATIVE,
                 prior_sigma2=POSITIVE, steps=POSITIVE, batch_size=Rule(low=2), lr_map=POSITIVE, lr_discriminator=POSITIVE, discriminator_steps=POSITIVE, hidden=POSITIVE,
                 num_blocks=NON_NEGATIVE, width=POSITIVE, num_data=POSITIVE, seed=SEED, log_every=POSITIVE)

    def validate(self) -> "WAEConfig":
        """Check every field; return ``self``. Raises ValueError with the reason."""
        self.check_fields()
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
# a WAE run folder (``python -m uotm toy --model wae``)

#: The files of a WAE run folder: ``config.yaml`` (written before training), then what
#: :func:`write_wae_outputs` writes when training is done.
RUN_FILES = ("config.yaml", "metrics.jsonl", "samples.npy", "snapshot.pt", "samples.png")


def write_wae_outputs(run: WAERun, out_dir: str | Path, seed: int = 0) -> list[Path]:
    r"""Write a trained WAE into ``out_dir``: ``metrics.jsonl`` (the rows of :func:`train_wae`, the step under
    ``step``), ``snapshot.pt`` (the config and the encoder's, decoder's and, for WAE-GAN, discriminator's weights),
    ``samples.npy`` (samples :math:`G(Z)`, :math:`Z\sim P_Z`, drawn with ``seed``: 2 000 points for a toy law,
    64 images (64, 1, S, S) in [-1, 1] for ``digits``) and ``samples.png`` (them beside the data:
    :func:`uotm.plots.plot_samples`). Every file is written atomically; returns the paths."""
    import json
    from dataclasses import asdict

    from .plots import plot_samples
    from .runs import METRICS, SNAPSHOT, write_atomic, write_text

    out = Path(out_dir)
    samples = run.sample(64 if run.config.is_image else 2000, seed).numpy()
    snap = {"config": asdict(run.config), "encoder": run.encoder.state_dict(), "decoder": run.decoder.state_dict(),
            "seconds": run.seconds}
    if run.discriminator is not None:
        snap["discriminator"] = run.discriminator.state_dict()
    title = f"WAE-{run.config.penalty.upper()} on {run.config.data}, lambda={run.config.lam:g}"
    return [write_text(out / METRICS, "".join(json.dumps(row) + "\n" for row in run.metrics)),
            write_atomic(out / SNAPSHOT, lambda p: torch.save(snap, p)),
            write_atomic(out / "samples.npy", lambda p: np.save(p, samples)),
            plot_samples(run.data[:len(samples)].numpy(), samples, out / "samples.png", title)]
