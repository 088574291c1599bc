r"""Toy UOTM: learn a stochastic map between low-dimensional distributions (the reference's ``train_toy.py``).

One iteration takes a source batch :math:`x` and a data batch :math:`y`, makes ``potential_steps`` Adam steps on the
potential's loss (fresh :math:`z` each time, same batches), then one Adam step on the map's loss (the semi-dual
losses of :class:`uotm.losses.SemiDual`, the loop of the reference's ``train_toy.py``).

Differences from the reference, all deliberate:

* the cost is :math:`c(x,y)=\tau\lVert x-y\rVert^2` (the paper's); the reference toy trainer used
  :math:`\tfrac\tau2\lVert x-y\rVert^2` in both losses, so its ``--tau 0.1`` is this trainer's ``tau=0.05``;
* the potential's loss has shape (B,) (the reference's broadcast to (B, B, 1) with a noise source is a bug);
* every random draw comes from one seeded generator, so a run is repeatable bit for bit on the CPU;
  :func:`training_data` returns the points a run of a config trains on, without training.

The module is also the home of the toy family of the command line (``python -m uotm toy --model
uotm|otm|sjko|wae``): :func:`toy_model` is the one place where a toy model is chosen (its config class, run files
and trainer: this module's, :mod:`uotm.sjko`'s or :mod:`uotm.wae`'s), :func:`resolve_toy` resolves a config
through the one configuration base (defaults, ``--config``, ``--set``), :func:`run_toy` trains into a run folder.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import NON_NEGATIVE, POSITIVE, SEED, UNIT, Config, Rule
from .data.toy import ToyDistribution, resolve_pair
from .data import toy as toy_data
from .losses import SemiDual, source_gradient_penalty
from .nets.toy import ToyMap, ToyPotential
from .psi import get_psi
from . import runs
from .runs import write_atomic, write_yaml

Tensor = torch.Tensor

RUN_FILES = (runs.CONFIG, runs.METRICS, "source.npy", "transported.npy", "target.npy", runs.SNAPSHOT,
             "joint.png", "density.png", "scatter.png", "losses.png")


@dataclass
class ToyConfig(Config):
    """Everything a toy run needs. Defaults are the reference's (``train_toy.py``), except ``tau`` (no default
    there) and the source/target pair, which are the outlier experiment's."""

    source: str = "noise"
    target: str = "outlier"
    dim: int | None = None  # for noise/p/q/outlier; taken from the other side if that has its own
    outlier_fraction: float = 0.01
    outlier_loc: float = -1.0
    psi1: str = "kl"
    psi2: str = "kl"
    tau: float = 0.1
    reg_lambda: float = 0.0  # lambda of the source-gradient regulariser; 0 = off
    epochs: int = 400
    batch_size: int = 256
    lr_map: float = 1e-5
    lr_potential: float = 1e-5
    potential_steps: int = 5
    num_data: int = 4000
    hidden: int = 128
    seed: int = 0
    log_every: int = 50  # iterations between two lines of metrics.jsonl

    NAME = "toy "
    RULES = dict(dim=POSITIVE, outlier_fraction=UNIT, psi1=Rule(check=get_psi), psi2=Rule(check=get_psi),
                 tau=POSITIVE, reg_lambda=NON_NEGATIVE, epochs=POSITIVE, batch_size=POSITIVE, lr_map=POSITIVE,
                 lr_potential=POSITIVE,
                 potential_steps=POSITIVE, num_data=POSITIVE, hidden=POSITIVE, seed=SEED, log_every=POSITIVE)

    def validate(self) -> tuple[ToyDistribution, ToyDistribution]:
        """Check every field; return the resolved (source, target) laws. Raises ValueError with the reason."""
        self.check_fields()
        src, tgt = resolve_pair(self.source, self.target, self.dim, self.outlier_fraction, self.outlier_loc)
        for dist in (src, tgt):
            n = len(dist.fixed_points) if dist.fixed_points is not None else self.num_data
            if n * dist.dim > toy_data.MAX_POINT_VALUES:
                raise ValueError(f"{dist.name!r} would hold {n:,} points of dimension {dist.dim}, more than the "
                                 f"{toy_data.MAX_POINT_VALUES:,} numbers a toy run takes; lower num_data or dim")
            if not dist.is_noise and n < self.batch_size:
                raise ValueError(f"{dist.name!r} has {n} points, fewer than the batch size {self.batch_size}")
        return src, tgt


@dataclass
class ToyRun:
    """A trained toy model and what it produced."""

    config: ToyConfig
    transport_map: ToyMap
    potential: ToyPotential
    source: np.ndarray  # (N, d) source points used for the outputs
    transported: np.ndarray  # (N, d) T(x, z) for those points, same order
    target: np.ndarray  # (N, d) the data
    metrics: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @torch.no_grad()
    def mean_map(self, x, num_z: int = 64, seed: int = 0) -> np.ndarray:
        r"""The learned map averaged over the noise: :math:`\frac1K\sum_k T(x, z_k)`, shape (n, d)."""
        g = torch.Generator().manual_seed(seed)
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(-1, self.source.shape[1]))
        acc = torch.zeros_like(xt)
        for _ in range(num_z):
            acc += self.transport_map(xt, torch.randn(xt.shape[0], self.transport_map.z_dim, generator=g))
        return (acc / num_z).numpy()


def save_config(config: ToyConfig, path: Path) -> None:
    write_yaml(path, asdict(config))


def _iteration(
    cfg: ToyConfig, losses: SemiDual, tmap: ToyMap, pot: ToyPotential, opt_map, opt_pot, x: Tensor, y: Tensor,
    g: torch.Generator,
) -> dict[str, Tensor]:
    """One UOTM iteration on the losses ``losses``: ``potential_steps`` potential steps then one map step, all on
    the batches (x, y)."""
    pot_params = list(pot.parameters())
    map_params = list(tmap.parameters())
    z_dim = tmap.z_dim
    reg = cfg.reg_lambda > 0
    for _ in range(cfg.potential_steps):
        z = torch.randn(x.shape[0], z_dim, generator=g)
        xs = x.detach().requires_grad_(reg)
        with torch.set_grad_enabled(reg):
            t_x = tmap(xs, z)
        v_fake = pot(t_x)
        loss_v = losses.potential_loss(pot(y), v_fake, xs, t_x)
        if reg:
            loss_v = loss_v + source_gradient_penalty(v_fake, xs, cfg.reg_lambda)
        opt_pot.zero_grad(set_to_none=True)
        loss_v.backward(inputs=pot_params)
        opt_pot.step()
    z = torch.randn(x.shape[0], z_dim, generator=g)
    t_x = tmap(x, z)
    loss_t = losses.map_loss(pot(t_x), x, t_x)
    opt_map.zero_grad(set_to_none=True)
    loss_t.backward(inputs=map_params)
    opt_map.step()
    return {"potential_loss": loss_v.detach(), "map_loss": loss_t.detach(),
            "cost": losses.cost(x, t_x.detach()).mean()}


def _draw_data(cfg: ToyConfig, src: ToyDistribution, tgt: ToyDistribution,
               g: torch.Generator) -> tuple[Tensor, Tensor]:
    target = tgt.sample(cfg.num_data, g)
    source = src.sample(cfg.num_data, g)  # the fixed source set (a noise source is redrawn every batch)
    return source, target


def training_data(cfg: ToyConfig) -> tuple[np.ndarray, np.ndarray]:
    """The ``(source, target)`` point sets, each ``(num_data, d)`` float32, that :func:`train_toy` draws for
    ``cfg`` (the data first, then the source, from one generator seeded with ``cfg.seed``): the run's training data
    (``ToyRun.target``) and its fixed source set (``ToyRun.source``; a noise source is redrawn every batch in
    training, and this set is what the outputs transport). A point cloud (``npy:PATH``) is returned as it is."""
    src, tgt = cfg.validate()
    source, target = _draw_data(cfg, src, tgt, torch.Generator().manual_seed(cfg.seed))
    return source.numpy(), target.numpy()


def train_toy(cfg: ToyConfig, out_dir: str | Path | None = None, progress: bool = True) -> ToyRun:
    """Train a toy UOTM model. With ``out_dir``, write ``config.yaml`` first and ``metrics.jsonl`` as training goes
    (the folder must exist; :func:`write_outputs` writes the rest). Returns the trained :class:`ToyRun`."""
    src, tgt = cfg.validate()
    cfg = replace(cfg, dim=src.dim)  # the saved config says which dimension was used
    out = Path(out_dir) if out_dir is not None else None
    torch.manual_seed(cfg.seed)  # network initialisation
    g = torch.Generator().manual_seed(cfg.seed)  # every other draw
    source, target = _draw_data(cfg, src, tgt, g)
    d = src.dim
    tmap, pot = ToyMap(d, cfg.hidden), ToyPotential(d, cfg.hidden)
    opt_map = torch.optim.Adam(tmap.parameters(), lr=cfg.lr_map, foreach=True)
    opt_pot = torch.optim.Adam(pot.parameters(), lr=cfg.lr_potential, foreach=True)
    n_batches = min(len(target), len(source)) // cfg.batch_size
    semi_dual = SemiDual(cfg.psi1, cfg.psi2, cfg.tau)  # the losses (OTM: linear on both sides)

    metrics: list[dict] = []
    if out is not None:
        save_config(cfg, out / runs.CONFIG)
    log = runs.MetricsLog(out / runs.METRICS if out is not None else None)
    start = time.perf_counter()
    it = 0
    bar = tqdm(range(cfg.epochs), desc="toy UOTM", unit="epoch", disable=not progress, leave=False)
    try:
        for epoch in bar:
            perm_t = torch.randperm(len(target), generator=g)
            perm_s = torch.randperm(len(source), generator=g)
            for b in range(n_batches):
                sl = slice(b * cfg.batch_size, (b + 1) * cfg.batch_size)
                y = target[perm_t[sl]]
                x = torch.randn(cfg.batch_size, d, generator=g) if src.is_noise else source[perm_s[sl]]
                losses = _iteration(cfg, semi_dual, tmap, pot, opt_map, opt_pot, x, y, g)
                it += 1
                if it % cfg.log_every == 0 or (epoch == cfg.epochs - 1 and b == n_batches - 1):
                    row = {"step": it, "epoch": epoch + 1, **{k: float(v) for k, v in losses.items()},
                           "seconds": round(time.perf_counter() - start, 3)}
                    if not all(math.isfinite(row[k]) for k in losses):
                        raise FloatingPointError(
                            f"a loss became NaN or infinite at iteration {it} ({row}); lower lr_map and "
                            "lr_potential or raise tau")
                    metrics.append(row)
                    log.write(row)
                    bar.set_postfix(loss_v=f"{row['potential_loss']:.3g}", loss_T=f"{row['map_loss']:.3g}")
    finally:
        bar.close()
        log.close()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        z = torch.randn(len(source), tmap.z_dim, generator=g)
        transported = tmap(source, z)
    return ToyRun(cfg, tmap, pot, source.numpy(), transported.numpy(), target.numpy(), metrics, seconds)


def prepare_out_dir(path: str | Path, overwrite: bool, files: tuple[str, ...] = RUN_FILES) -> Path:
    """Make ``path`` ready for a toy run whose folder holds ``files``: refuse a path under a file or in a folder
    that cannot be written, and a folder that holds another run's outputs unless ``overwrite`` (then remove that
    run's files, and only those); a run that stopped before its outputs (its logs only: ``config.yaml``,
    ``*.jsonl``) is simply replaced."""
    outputs = [name for name in files if not name.endswith((".yaml", ".jsonl"))]
    out = runs.check_new(runs.check_writable(path, "--out"), overwrite, used=outputs, resumable=False)
    out.mkdir(parents=True, exist_ok=True)
    runs.clear(out, files)  # a stopped run's config and metrics too: this run writes its own
    return out


def write_outputs(run: ToyRun, out_dir: str | Path) -> list[Path]:
    """Write the arrays, the snapshot (both networks and the config) and the figures of ``run`` into ``out_dir``;
    return the paths."""
    out = Path(out_dir)
    written = []
    for name, arr in (("source", run.source), ("transported", run.transported), ("target", run.target)):
        path = out / f"{name}.npy"
        write_atomic(path, lambda p, a=arr: np.save(p, a))
        written.append(path)
    ckpt = {"transport_map": run.transport_map.state_dict(), "potential": run.potential.state_dict(),
            "config": asdict(run.config), "seconds": run.seconds}
    path = out / runs.SNAPSHOT
    write_atomic(path, lambda p: torch.save(ckpt, p))
    written.append(path)
    from .plots import plot_toy_run

    written.extend(plot_toy_run(run, out))
    return written


# ---------------------------------------------------------------------------------------------------------------
# The toy trainers as one family: ``python -m uotm toy --model uotm|otm|sjko|wae``

TOY_MODELS = ("uotm", "otm", "sjko", "wae")
OTM_PSI = "linear"  # OTM is UOTM with both Psi* linear: Psi*(s) = s makes both marginals exact (balanced OT)


@dataclass(frozen=True)
class ToyModel:
    """One member of the toy family: its config class, the files of its run folder, ``train(cfg, out, progress)``,
    which trains into an empty folder ``out`` and returns a one-line summary, and ``iterations(cfg)``, the number
    of training iterations."""

    config: type
    files: tuple[str, ...]
    train: Callable[[Config, Path, bool], str]
    iterations: Callable[[Config], int]


def _uotm_iterations(cfg: ToyConfig) -> int:
    sizes = [len(d.fixed_points) if d.fixed_points is not None else cfg.num_data for d in cfg.validate()]
    return cfg.epochs * (min(sizes) // cfg.batch_size)


def _train_uotm(cfg: ToyConfig, out: Path, progress: bool) -> str:
    run = train_toy(cfg, out_dir=out, progress=progress)
    write_outputs(run, out)
    return f"trained {cfg.epochs} epochs in {run.seconds:.1f} s; outputs in {out}"


def _train_sjko(cfg, out: Path, progress: bool) -> str:
    from .sjko import train_sjko_toy, write_sjko_outputs

    run = train_sjko_toy(cfg, out, progress=progress)
    write_sjko_outputs(run, out)
    return f"trained {len(run.phases)} JKO steps in {run.seconds:.1f} s; outputs in {out}"


def _train_wae(cfg, out: Path, progress: bool) -> str:
    from .wae import train_wae, write_wae_outputs

    write_yaml(out / runs.CONFIG, asdict(cfg))
    run = train_wae(cfg, progress=progress)
    write_wae_outputs(run, out)
    return f"trained {cfg.steps} steps in {run.seconds:.1f} s; outputs in {out}"


def toy_model(model: str) -> ToyModel:
    """The member ``model`` of the toy family (the one place where a toy model is chosen)."""
    from . import sjko, wae

    uotm = ToyModel(ToyConfig, RUN_FILES, _train_uotm, _uotm_iterations)
    members = {"uotm": uotm, "otm": uotm,
               "sjko": ToyModel(sjko.SJKOToyConfig, sjko.RUN_FILES, _train_sjko, sjko.total_steps),
               "wae": ToyModel(wae.WAEConfig, wae.RUN_FILES, _train_wae, lambda cfg: cfg.steps)}
    if model not in members:
        raise ValueError(f"unknown toy model {model!r}: choose one of {', '.join(TOY_MODELS)}")
    return members[model]


def resolve_toy(model: str = "uotm", preset: str | None = None, config: str | Path | None = None,
                settings: list[str] | tuple = ()) -> Config:
    r"""The validated config of a toy run of ``model`` (:data:`TOY_MODELS`): its defaults (``otm``: UOTM's with
    :math:`\Psi_1^*=\Psi_2^*=` ``linear``; ``sjko`` with ``preset``: that entry of :data:`uotm.sjko.TOY_PRESETS`),
    then the YAML file ``config`` (e.g. a run's ``config.yaml``), then the ``--set`` strings ``KEY=VALUE``. Every
    route ends in the config's ``from_dict`` and ``validate``: a fault is one sentence (``ValueError``)."""
    from .presets import read_yaml
    from .sjko import TOY_PRESETS

    member = toy_model(model)
    if preset is not None and preset not in TOY_PRESETS:
        raise ValueError(f"unknown S-JKO toy preset {preset!r}: choose one of {', '.join(TOY_PRESETS)}")
    if preset is not None and model != "sjko":
        raise ValueError(f"--preset {preset} is an S-JKO toy preset: add --model sjko (the other toy models start "
                         "from their defaults; change them with --set KEY=VALUE)")
    values = asdict(TOY_PRESETS[preset]) if preset else {}
    if model == "otm":
        values.update(psi1=OTM_PSI, psi2=OTM_PSI)
    if config is not None:
        values.update(read_yaml(config))
    cfg = member.config.from_dict(member.config.apply_settings(values, list(settings)))
    cfg.validate()
    if model == "otm" and (cfg.psi1, cfg.psi2) != (OTM_PSI, OTM_PSI):
        raise ValueError(f"otm is UOTM with psi1 = psi2 = {OTM_PSI} (balanced OT), not {cfg.psi1}/{cfg.psi2}: use "
                         "--model uotm for another Psi*")
    return cfg


def toy_plan(model: str, cfg: Config, out: str | Path) -> dict:
    """What ``python -m uotm toy --dry-run`` prints: the model, the resolved config, the run folder and the
    number of training iterations."""
    return {"model": model, "config": asdict(cfg), "out": str(out), "iterations": _member(model, cfg).iterations(cfg)}


def run_toy(model: str, cfg: Config, out: str | Path, overwrite: bool = False, progress: bool = True) -> str:
    """Train a toy ``model`` with ``cfg`` (from :func:`resolve_toy`) into the run folder ``out`` (checked first:
    :func:`prepare_out_dir`) and write its outputs; return a one-line summary."""
    member = _member(model, cfg)
    return member.train(cfg, prepare_out_dir(out, overwrite, member.files), progress)


def _member(model: str, cfg: Config) -> ToyModel:
    member = toy_model(model)
    if not isinstance(cfg, member.config):
        raise ValueError(f"a toy {model} run takes a {member.config.__name__}, not a {type(cfg).__name__}")
    return member
