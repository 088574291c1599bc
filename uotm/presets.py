"""Image-model configuration: one dataclass with the paper's defaults and one preset per experiment (SPEC §3).

``ImageConfig`` is what the image trainer, the sampler, the benchmark and the networks read; it is saved as YAML
beside every run. ``preset(name, **overrides)`` returns a preset with some fields changed, validated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace


@dataclass
class NetConfig:
    """The NCSN++-style map (DDGAN family, AdaGN on z) and the potential. Field names follow the paper's code."""

    base_channels: int = 128  # the reference's num_channels_dae
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.0
    fir_kernel: tuple[int, ...] = (1, 3, 3, 1)
    skip_rescale: bool = True
    resblock_type: str = "biggan"
    progressive_input: str = "residual"
    z_dim: int = 100  # the reference's nz
    z_emb_dim: int = 256
    n_mlp: int = 4  # layers of the z-mapping MLP
    tanh_output: bool = True
    potential: str = "small"  # "small" (32x32 and below) or "large" (256x256)
    potential_channels: int = 64  # the reference's ngf


@dataclass
class ImageConfig:
    """Everything an image run needs; defaults are the CIFAR-10 run of the paper."""

    preset: str = "cifar10"
    dataset: str = "cifar10"
    data_root: str = "data"
    image_size: int = 32
    channels: int = 3
    net: NetConfig = field(default_factory=NetConfig)
    # the semi-dual
    phi1: str = "kl"
    phi2: str = "kl"
    tau: float = 1e-3
    r1_gamma: float = 0.2
    reference_half_tau: bool = False  # the first public release used tau/2 in the potential loss only
    # optimisation
    batch_size: int = 256  # global, whatever the number of processes
    epochs: int = 600
    lr_map: float = 1.6e-4
    lr_potential: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    schedule_epochs: int = 1800  # cosine annealing's T_max, stepped once per epoch
    lr_floor: float = 1e-5
    ema_decay: float = 0.9999
    # running
    seed: int = 1024
    precision: str = "bf16"  # "bf16" (autocast on CUDA; fp32 on the CPU) or "fp32"
    channels_last: bool = True  # on CUDA only
    num_workers: int = 4
    log_every: int = 100  # iterations
    sample_every: int = 1000  # iterations between sample grids
    snapshot_every: int = 1000  # iterations between snapshots
    max_steps: int = 0  # stop after this many iterations (0: run all epochs)

    def validate(self) -> "ImageConfig":
        from .psi import get_psi

        get_psi(self.phi1)
        get_psi(self.phi2)
        positive_ints = ("image_size", "channels", "batch_size", "epochs", "schedule_epochs", "log_every",
                         "sample_every", "snapshot_every")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("tau", "lr_map", "lr_potential"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("r1_gamma", "lr_floor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be 'bf16' or 'fp32', got {self.precision!r}")
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        n_down = len(self.net.ch_mult) - 1
        if self.image_size % (2**n_down):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2**{n_down} for ch_mult "
                             f"{self.net.ch_mult}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ImageConfig":
        values = dict(values)
        net = values.pop("net", {}) or {}
        for klass, vals, where in ((NetConfig, net, "net."), (cls, values, "")):
            unknown = sorted(set(vals) - {f.name for f in fields(klass)})
            if unknown:
                raise ValueError(f"unknown config keys {[where + k for k in unknown]}")
        net = {k: tuple(v) if isinstance(v, list) else v for k, v in net.items()}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(net=NetConfig(**net), **values)


PRESETS: dict[str, ImageConfig] = {
    "cifar10": ImageConfig(),
    "cifar10+mnist": ImageConfig(preset="cifar10+mnist", dataset="cifar10+mnist"),
    "celeba_256": ImageConfig(
        preset="celeba_256", dataset="celeba_256", image_size=256,
        net=NetConfig(base_channels=64, ch_mult=(1, 1, 2, 2, 4, 4), n_mlp=3, potential="large"),
        tau=1e-5, r1_gamma=5.0, batch_size=32, epochs=450, lr_map=2e-4, lr_potential=1e-4, schedule_epochs=700,
        ema_decay=0.999,
    ),
    # a laptop-size model: scikit-learn's 8x8 digits upsampled to 16x16, one channel
    "digits": ImageConfig(
        preset="digits", dataset="digits", image_size=16, channels=1,
        net=NetConfig(base_channels=16, ch_mult=(1, 2, 2), num_res_blocks=1, attn_resolutions=(), z_dim=32,
                      z_emb_dim=64, n_mlp=2, potential_channels=16),
        tau=1e-3, r1_gamma=0.2, batch_size=64, epochs=60, lr_map=2e-4, lr_potential=1e-4, schedule_epochs=60,
        ema_decay=0.999, precision="fp32", num_workers=0, log_every=20, sample_every=200, snapshot_every=200,
    ),
}
PRESET_NAMES = tuple(PRESETS)


def preset(name: str, **overrides) -> ImageConfig:
    """The preset called ``name`` with ``overrides`` applied (``net=dict(...)`` changes network fields)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESET_NAMES)}")
    cfg = PRESETS[name]
    net_over = overrides.pop("net", None)
    unknown = sorted(set(overrides) - {f.name for f in fields(ImageConfig)})
    if unknown:
        raise ValueError(f"unknown config fields {unknown}")
    cfg = replace(cfg, **overrides)
    if net_over:
        cfg = replace(cfg, net=replace(cfg.net, **net_over))
    return cfg.validate()
