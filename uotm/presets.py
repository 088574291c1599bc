"""Image-model configuration: one dataclass with the paper's defaults and one preset per experiment (the UOTM paper,
arXiv:2305.14777, and the S-JKO paper, arXiv:2402.05443).

``ImageConfig`` is what the image trainer, the sampler, the benchmark and the networks read; it is saved as YAML
beside every run. ``preset(name, **overrides)`` returns a preset with some fields changed, validated.

Two models share the trainer, the networks and the presets: ``model="uotm"`` (default) and
``model="sjko"`` (S-JKO: a sequence of JKO steps, each a UOT problem). **Selecting S-JKO is one switch
on the same preset name**: ``preset("cifar10", model="sjko")``, or ``python -m uotm train --preset cifar10 --model
sjko``, gives the S-JKO defaults of that experiment: the preset's UOTM config with :data:`SJKO_OVERRIDES` applied
(the authors' CIFAR-10 settings; R1 20 on CelebA-HQ-256) and its :class:`SJKOConfig` from :data:`SJKO_SETTINGS`.
:func:`preset_defaults` gives that base config for any ``(name, model)``.

With ``model="sjko"`` the training length is set by the phases: ``sjko.total_steps`` = ``first_phase_steps +
(phases - 1) * phase_steps`` iterations, and the cosine schedule goes once from the initial learning rates to
``lr_floor`` over all of them, stepped every iteration (the authors' schedule). ``epochs`` and ``schedule_epochs``
are not read (the data are cycled through as many epochs as the phases take); ``steps`` still stops a run early
without changing the schedule. Nor are the UOTM-only fields ``tau``, ``psi1``, ``psi2`` and
``reference_half_tau`` read: the cost is ``sjko.h`` and the divergence ``sjko.loss``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from . import runs
from .config import NON_NEGATIVE, POSITIVE, SEED, UNIT, Config, Rule, one_of


def _psi_name(name: str) -> None:
    from .psi import get_psi

    get_psi(name)


#: S-JKO's cost conventions (:func:`uotm.losses.jko_tau`) and its data-side losses (:data:`uotm.psi.JKO_PSI` and
#: the JSD variant, :func:`uotm.losses.jko_step`), named here where the configurations check them.
COST_SCALES = ("euclidean", "per_coordinate")
SJKO_LOSSES = ("kl", "chi", "softplus", "jsd")


def check_loss_name(name: str) -> str:
    if name not in SJKO_LOSSES:
        raise ValueError(f"unknown S-JKO loss {name!r}: choose one of {', '.join(SJKO_LOSSES)}")
    return name


def _sjko_loss(name: str) -> None:
    check_loss_name(name)


def _cost_scale(name: str) -> None:
    if name not in COST_SCALES:
        raise ValueError(f"must be one of {', '.join(COST_SCALES)}, got {name!r}")


@dataclass
class NetConfig(Config):
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

    RULES = dict(base_channels=POSITIVE, ch_mult=Rule(low=0, low_open=True, min_items=1), num_res_blocks=POSITIVE,
                 attn_resolutions=POSITIVE, dropout=UNIT, fir_kernel=Rule(low=0, low_open=True, min_items=1),
                 z_dim=POSITIVE, z_emb_dim=POSITIVE, n_mlp=POSITIVE, potential=one_of("small", "large"),
                 potential_channels=POSITIVE)


MODELS = ("uotm", "sjko")
COMPILABLE = ("map", "potential")  # the networks whose forward calls torch.compile may take


@dataclass
class SJKOConfig(Config):
    """S-JKO's settings (read when ``ImageConfig.model == "sjko"``); defaults: the authors' CIFAR-10 code
    (Jae-Moo/Scalable-JKO).

    Phase ``k`` (from 0) is one JKO step: ``first_phase_steps`` iterations in phase 0, then ``phase_steps`` in each
    of the others. Its cost is ``||T_old - T||^2 / (2 h)`` (``cost_scale="per_coordinate"``: the squared distance
    averaged over the pixels, the authors' convention, so their ``h = 0.1`` is a Euclidean step ``0.1 d``), its
    data-side divergence ``loss`` (``kl``, ``chi``, ``softplus``, ``jsd``: :mod:`uotm.sjko`), and the real images
    get Gaussian noise of standard deviation ``noise_scale / (k + 1)``. One ``h`` serves every phase (the authors'
    code has ``init_h`` for phase 0 and ``h`` after it; their commands set both to 0.1). ``phases=1`` is their
    "fixed-source UOTM": a single step from the source, the source side balanced.
    """

    h: float = 0.1
    cost_scale: str = "per_coordinate"
    loss: str = "kl"
    phases: int = 100
    first_phase_steps: int = 10_000
    phase_steps: int = 2_000
    noise_scale: float = 1 / 32

    RULES = dict(h=POSITIVE, cost_scale=Rule(check=_cost_scale), loss=Rule(check=_sjko_loss), phases=POSITIVE,
                 first_phase_steps=POSITIVE, phase_steps=POSITIVE, noise_scale=NON_NEGATIVE)

    @property
    def total_steps(self) -> int:
        """The iterations of all phases: ``first_phase_steps + (phases - 1) * phase_steps``."""
        return self.first_phase_steps + (self.phases - 1) * self.phase_steps

    def phase_start(self, phase: int) -> int:
        """The iteration (counted from 0) at which ``phase`` starts."""
        return 0 if phase == 0 else self.first_phase_steps + (phase - 1) * self.phase_steps

    def phase_of(self, step: int) -> int:
        """The phase of the iteration that starts with ``step`` iterations done (the last phase beyond the end)."""
        if step < self.first_phase_steps:
            return 0
        return min(1 + (step - self.first_phase_steps) // self.phase_steps, self.phases - 1)

    def validate(self) -> "SJKOConfig":
        self.check_fields("sjko.")
        return self


@dataclass
class ImageConfig(Config):
    """Everything an image run needs; defaults are the CIFAR-10 run of the paper (UOTM).

    ``model`` is ``"uotm"`` or ``"sjko"``; the ``sjko`` block is read by S-JKO only (see the module's text for the
    fields each model reads)."""

    preset: str = "cifar10"
    model: str = "uotm"
    dataset: str = "cifar10"
    data_root: str = "data"
    image_size: int = 32
    channels: int = 3
    net: NetConfig = field(default_factory=NetConfig)
    sjko: SJKOConfig = field(default_factory=SJKOConfig)
    # the semi-dual
    psi1: str = "kl"
    psi2: str = "kl"
    tau: float = 1e-3
    r1_gamma: float = 0.2
    r1_every: int = 1  # lazy R1 every k iterations (times k); 1 = every iteration, the paper's algorithm
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
    channels_last: bool | None = None  # channels-last memory format; None: on CUDA only, true/false: always/never
    compile: tuple[str, ...] = ()  # torch.compile the "map" and/or the "potential" (uotm.train.make_state)
    num_workers: int = 4
    log_every: int = 100  # iterations
    sample_every: int = 1000  # iterations between sample grids
    snapshot_every: int = 1000  # iterations between snapshots
    steps: int = 0  # stop after this many iterations (0: run all epochs; S-JKO: all phases)

    RULES = dict(model=one_of(*MODELS), image_size=POSITIVE, channels=POSITIVE, psi1=Rule(check=_psi_name),
                 psi2=Rule(check=_psi_name), tau=POSITIVE, r1_gamma=NON_NEGATIVE, r1_every=POSITIVE,
                 batch_size=POSITIVE, epochs=POSITIVE, lr_map=POSITIVE, lr_potential=POSITIVE, betas=UNIT,
                 schedule_epochs=POSITIVE, lr_floor=NON_NEGATIVE, ema_decay=UNIT, seed=SEED,
                 precision=one_of("bf16", "fp32"), compile=one_of(*COMPILABLE), num_workers=NON_NEGATIVE,
                 log_every=POSITIVE, sample_every=POSITIVE, snapshot_every=POSITIVE, steps=NON_NEGATIVE)

    def validate(self) -> "ImageConfig":
        """Check every field (:meth:`uotm.config.Config.check_fields`, the ``net`` and ``sjko`` blocks too) and
        the image size against the network's down-sampling; return ``self``."""
        self.check_fields()
        n_down = len(self.net.ch_mult) - 1
        if self.image_size % (2**n_down):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2**{n_down} for ch_mult "
                             f"{self.net.ch_mult}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def total_steps(self) -> int | None:
        """S-JKO: the iterations of the run (all phases, or ``steps`` if fewer). UOTM: ``steps`` if set,
        else ``None`` (epochs times the data set's batches, which the config alone does not know)."""
        if self.model == "sjko":
            return min(self.sjko.total_steps, self.steps) if self.steps else self.sjko.total_steps
        return self.steps or None


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

# S-JKO (arXiv:2402.05443): what changes from a preset's UOTM config when model="sjko". The authors' CIFAR-10 code:
# lr map 2e-4 / potential 1e-4, cosine to 5e-5 (their eta_min) over all phases; batch 256, R1 0.2 and EMA 0.9999 are
# the UOTM preset's already. CelebA-HQ-256 has no public command: R1 20 from a secondary summary of the S-JKO paper,
# the rest as the UOTM preset.
_SJKO_COMMON = dict(model="sjko", lr_map=2e-4, lr_potential=1e-4, lr_floor=5e-5)
SJKO_OVERRIDES: dict[str, dict] = {
    "cifar10": dict(_SJKO_COMMON),
    "cifar10+mnist": dict(_SJKO_COMMON),
    "celeba_256": dict(_SJKO_COMMON, r1_gamma=20.0),
    # the UOTM digits settings (lr 2e-4 / 1e-4 already) with the authors' cosine floor; EMA 0.99 (a time constant
    # of one 100-iteration phase): 0.999 lags an 800-iteration run (proxy FID 42 for the EMA against 22 for the
    # last iterate after 1 300 iterations; 0.99 gives 31 for both after 800)
    "digits": dict(_SJKO_COMMON, ema_decay=0.99),
}
#: Each preset's S-JKO block. CIFAR-10 (and CIFAR-10 + MNIST, CelebA-HQ-256 for want of a public command): 100
#: phases, 10 000 iterations in phase 0 then 2 000 per phase, h = 0.1 per coordinate, KL, noise 1/32 (208 000
#: iterations). Digits: 6 phases, 300 iterations then 100 per phase (800 iterations of 64 images: about 0.47 s
#: each on one shared CPU core, 6-10 minutes), the same h, loss and noise.
SJKO_SETTINGS: dict[str, SJKOConfig] = {
    "cifar10": SJKOConfig(),
    "cifar10+mnist": SJKOConfig(),
    "celeba_256": SJKOConfig(),
    "digits": SJKOConfig(phases=6, first_phase_steps=300, phase_steps=100),
}


def preset_defaults(name: str, model: str = "uotm") -> ImageConfig:
    """The base config of preset ``name`` for ``model`` (``"uotm"``: :data:`PRESETS`; ``"sjko"``: the same preset
    with :data:`SJKO_OVERRIDES` and :data:`SJKO_SETTINGS`), not validated; a new object each call."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESET_NAMES)}{hint}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    cfg = PRESETS[name]
    if model == "sjko":
        cfg = replace(cfg, sjko=replace(SJKO_SETTINGS[name]), **SJKO_OVERRIDES[name])
    return replace(cfg, net=replace(cfg.net), sjko=replace(cfg.sjko))


def preset(name: str, **overrides) -> ImageConfig:
    """The preset called ``name`` with ``overrides`` applied (``net=dict(...)`` changes network fields,
    ``sjko=dict(...)`` S-JKO fields). ``model="sjko"`` starts from the preset's S-JKO defaults
    (:func:`preset_defaults`): ``preset("cifar10", model="sjko")`` is the authors' S-JKO CIFAR-10 run."""
    model = overrides.pop("model", "uotm")
    cfg = preset_defaults(name, model)
    net_over = overrides.pop("net", None)
    sjko_over = overrides.pop("sjko", None)
    unknown = sorted(set(overrides) - {f.name for f in fields(ImageConfig)})
    if unknown:
        raise ValueError(f"unknown config fields {unknown}")
    cfg = replace(cfg, **overrides)
    if net_over:
        cfg = replace(cfg, net=replace(cfg.net, **net_over))
    if sjko_over:
        unknown = sorted(set(sjko_over) - {f.name for f in fields(SJKOConfig)})
        if unknown:
            raise ValueError(f"unknown S-JKO fields {unknown}")
        cfg = replace(cfg, sjko=replace(cfg.sjko, **sjko_over))
    return cfg.validate()


# ----------------------------------------------------------------------------------------------------------------
# resolving a command's config: preset, YAML file, --set strings, flags


BLOCKS = ("net", "sjko")  # nested config blocks: --set net.KEY=VALUE, --set sjko.KEY=VALUE


def read_yaml(path: str | Path, run_file: bool = False) -> dict:
    """The mapping in the YAML file ``path``; bad syntax or anything but a mapping is one sentence (for a run's own
    ``config.yaml``, ``run_file``: "damaged: restore it or start a new folder")."""
    import yaml

    from .runs import DAMAGED

    path = Path(path)
    hint = f": {DAMAGED}" if run_file else ""
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "a syntax error"
        raise ValueError(f"config file {str(path)!r} is not valid YAML{where} ({problem}){hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read config file {str(path)!r} ({exc}){hint}") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of config keys, not "
                         f"{type(values).__name__}{hint}")
    return values


def resolve(preset_name: str | None = None, config: str | Path | None = None, run_dir: str | Path | None = None,
            resume: bool = False, settings: list[str] | tuple = (), model: str | None = None,
            **fields_) -> ImageConfig:
    """The config an image command means, validated: the preset's defaults for the model (``model``, else the
    YAML file's, else ``"uotm"``), then the YAML file ``config`` (or, to resume without either, the run's own
    ``run_dir/config.yaml``), then the ``--set`` strings, then the named fields (``None`` = unchanged). Every
    route (flags, ``--set``, YAML, a resumed folder) ends in :meth:`ImageConfig.from_dict` and
    :meth:`ImageConfig.validate`: one sentence names the first bad key."""
    values: dict = {}
    run_file = not config and resume and run_dir is not None and not preset_name
    source = config or (Path(run_dir) / "config.yaml" if run_file else None)
    if run_file and not Path(source).exists():
        raise ValueError(f"there is no run in {str(run_dir)!r}: {str(source)!r} does not exist")
    hint = f" (damaged: {runs.DAMAGED})" if run_file else ""
    if source:
        values = read_yaml(source, run_file=run_file)
    name = preset_name or values.get("preset") or (PRESET_NAMES[0] if source else None)
    if name is None:
        raise ValueError(f"give --preset (one of {', '.join(PRESET_NAMES)}) or --config YAML")
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESET_NAMES)}{hint}")
    model = model or values.get("model") or "uotm"
    if not isinstance(model, str) or model not in MODELS:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}{hint}")
    base = preset_defaults(name, model).to_dict()
    for block in BLOCKS:
        extra = values.pop(block, None) or {}
        if not isinstance(extra, dict):
            raise ValueError(f"{block} in {str(source)!r} must be a mapping of {block}.* keys, got {extra!r}{hint}")
        unknown = sorted(set(extra) - set(base[block]))
        if unknown:
            raise ValueError(f"unknown config keys {[f'{block}.{k}' for k in unknown]} in {str(source)!r}{hint}")
        base[block].update(extra)
    unknown = sorted(set(values) - set(base))
    if unknown:
        raise ValueError(f"unknown config keys {unknown} in {str(source)!r}{hint}")
    base.update(values)
    base["preset"], base["model"] = name, model
    if any(item.partition("=")[0].strip() == "model" for item in settings):
        raise ValueError("choose the model with --model (it picks the preset's defaults for that model), not --set "
                         "model=...")
    ImageConfig.apply_settings(base, list(settings))
    for key, value in fields_.items():
        if value is not None:
            base[key] = value
    try:
        cfg = ImageConfig.from_dict(base).validate()
    except ValueError as exc:
        if run_file:
            raise ValueError(f"{exc} (in {str(source)!r}: damaged: {runs.DAMAGED})") from None
        raise
    if cfg.model == "sjko" and fields_.get("epochs") is not None:
        raise ValueError(f"S-JKO's length is set by its phases (sjko.phases={cfg.sjko.phases}, "
                         f"{cfg.sjko.total_steps} iterations), not by --epochs: change --set sjko.phases=N, or stop "
                         f"early with --steps")
    return cfg
