r"""S-JKO: the JKO scheme of a Wasserstein gradient flow, one step at a time through the UOT semi-dual (Choi, Choi
and Kang, "Scalable Wasserstein Gradient Flow for Generative Modeling through Unbalanced Optimal Transport",
arXiv:2402.05443).

One JKO step with step size :math:`h` moves :math:`\mu_k` towards the data :math:`\nu`:

.. math::

    \mu_{k+1} = \arg\min_\rho\ \tfrac1{2h}W_2^2(\rho,\mu_k) + D_\Psi(\rho|\nu).

It is the UOT problem :math:`\inf_\pi\int c\,d\pi+D_{\Psi_1}(\pi_0|\mu)+D_{\Psi_2}(\pi_1|\nu)` (UOTM paper,
arXiv:2305.14777) with a *balanced* source side (:math:`\Psi_1^*(s)=s`, so the plan's first
marginal is :math:`\mu_k` exactly), the divergence :math:`\Psi` on the data side and the cost
:math:`c_h(x,y)=\lVert x-y\rVert^2/(2h)`; :math:`\mu_{k+1}` is the plan's second marginal. With the maps
reparametrised on the source :math:`\mu_0` (:math:`\mu_k=T_{k\#}\mu_0`), one iteration of phase :math:`k` is a
potential step then a map step on

.. math::

    L_v = \mathbb E_\nu\,\Psi^*\big(-v(y+\sigma_k\varepsilon)\big) + \mathbb E\,v(T(x,z))
          + \tfrac{\gamma}{2}\mathbb E\lVert\nabla_y v\rVert^2,
    \qquad
    L_T = \mathbb E\big[c_h(T_{old}(x,z'),T(x,z)) - v(T(x,z))\big],

with :math:`T_{old}` the map of the previous phase (the identity in phase 0) and independent latents
:math:`z, z'`. The authors' code averages the squared distance over the :math:`d` coordinates
(:math:`\lVert x-y\rVert^2/(2hd)`); this module's default is the Euclidean :math:`h` of the formula, and
``cost_scale="per_coordinate"`` gives the authors' convention (their :math:`h` is a Euclidean step of :math:`hd`).

This module holds what every S-JKO trainer shares: :func:`uotm.losses.jko_step` (the two losses of one JKO step by the
authors' names: :class:`uotm.losses.JKOStep`, the semi-dual's with the data-side conjugates
:data:`uotm.psi.JKO_PSI`, and :class:`uotm.losses.JKOStepJSD`, the JSD variant of their code) and the
data-noise schedule; the closed-form Gaussian iterates that check a learned flow are
:func:`uotm.exact.gaussian_jko_iterates`. Below them, the toy trainer :func:`train_sjko_toy`
(:class:`SJKOToyConfig`, :data:`TOY_PRESETS`, :func:`sample`) runs the authors' one-generator scheme or the
naive one-map-per-step baseline on 2-D data, and times both (and counts their network forwards with a counter
it is given, :class:`uotm.bench.ForwardCounter`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .config import NON_NEGATIVE, POSITIVE, SEED, UNIT, Config, Rule, one_of
from .data.toy import TOY_NAMES, make_distribution
from . import losses, runs
from .losses import r1_penalty
from .nets.toy import LatentFreeMap, ToyMap, ToyPotential
from .presets import COST_SCALES, check_loss_name
from .psi import JKO_PSI
from .runs import write_yaml

Tensor = torch.Tensor


def data_noise(phase: int, scale: float = 1 / 32) -> float:
    r"""The authors' noise on the data in phase ``phase`` (from 0): :math:`\sigma_k=\mathrm{scale}/(k+1)`."""
    if not isinstance(phase, int) or phase < 0:
        raise ValueError(f"phase must be a non-negative integer, got {phase!r}")
    return scale / (phase + 1)


# ---------------------------------------------------------------------------------------------------------------
# The toy trainer: S-JKO (one generator from the source) and the naive O(K^2) scheme (one map per phase).
# ---------------------------------------------------------------------------------------------------------------

# Toy S-JKO trainer (the authors' ``train.py``, public repository Jae-Moo/Scalable-JKO, on 2-D data), and the naive
# baseline it replaces.
#
# ``scheme="sjko"`` is the authors' scheme: **one** generator :math:`T_\theta(x,z)` maps the source
# :math:`\mu_0=N(0,I_d)` straight to :math:`\mu_{k+1}`. At the start of phase :math:`k\ge1` a frozen copy of it
# becomes :math:`T_{old}` (phase 0: the identity); the generator, the potential and both Adam states continue across
# phases. An iteration costs three generator forwards (the potential step's, the frozen copy's and the map step's;
# two in phase 0, where :math:`T_{old}` is the identity) whatever :math:`k` is.
#
# ``scheme="naive"`` is the JKO-ICNN-style baseline: one map per phase, :math:`T_k:\mu_k\to\mu_{k+1}`, and a batch of
# :math:`\mu_k` is made by pushing source points through the :math:`k` earlier (frozen) maps; the map is trained with
# the cost :math:`c_h(x_k,T_k(x_k,z))`. Choices of this baseline (documented, not the JKO-ICNN code's): map :math:`k`
# starts from map :math:`k-1`'s weights with a fresh Adam state; the potential and its Adam state continue across
# phases (as in S-JKO); the two source batches of an iteration (one for each step) are pushed together, one forward
# per earlier map. An iteration at phase :math:`k` costs :math:`k+2` forwards; drawing :math:`\mu_K` costs :math:`K`.
#
# Both schemes draw their random numbers in the same order, so at phase 0 (where they are the same algorithm) they
# give the same result bit for bit. Every draw comes from one seeded :class:`torch.Generator`.


SCHEMES = ("sjko", "naive")
NORMAL_TARGET = "normal"  # a Gaussian target given by target_mean and target_cov


@dataclass
class SJKOToyConfig(Config):
    """Everything a toy S-JKO run needs. Defaults are the authors' toy settings (their README), except the cost
    convention: ``cost_scale="euclidean"`` here, while their code averages over coordinates (``per_coordinate``,
    used by the presets in :data:`TOY_PRESETS` that copy their runs)."""

    target: str = "25gaussian"  # a name of uotm.data.toy, npy:PATH, or "normal" (target_mean, target_cov)
    target_mean: list | None = None  # for target="normal"
    target_cov: list | None = None  # for target="normal"
    dim: int | None = None  # only for targets without a dimension of their own (noise, p, q, outlier)
    scheme: str = "sjko"  # "sjko" (one generator, O(K)) or "naive" (one map per phase, O(K^2))
    loss: str = "kl"  # kl | chi | softplus | jsd
    h: float = 1.0  # JKO step size
    cost_scale: str = "euclidean"  # "euclidean": |x-y|^2/(2h); "per_coordinate": |x-y|^2/(2hd) (authors' code)
    phases: int = 10  # K, the number of JKO steps
    phase_steps: int = 5000  # iterations per phase
    first_phase_steps: int | None = None  # iterations of phase 0 (the authors' init_num_iterations); None = phase_steps
    batch_size: int = 400
    lr_map: float = 1e-4
    lr_potential: float = 2e-5
    betas: tuple[float, float] = (0.5, 0.9)
    r1_gamma: float = 0.0  # R1 weight on the data: gamma/2 E|grad v(y)|^2; 0 = off
    noise_scale: float = 1 / 32  # add N(0, sigma_k^2) to the data in phase k, sigma_k = noise_scale/(k+1); 0 = off
    ignore_z: bool = False  # a deterministic map (it ignores its latent), for the Gaussian check
    z_dim: int = 2
    hidden: int = 128
    seed: int = 0
    eval_samples: int = 10000  # points of each mu_k for its mean and covariance (same source points every phase)
    keep_points: int = 500  # points of each mu_k kept for plots
    sample_repeats: int = 5  # repeats when timing one batch of mu_k (the median is kept)
    log_every: int = 100  # iterations between two lines of metrics.jsonl

    NAME = "S-JKO toy "
    RULES = dict(dim=POSITIVE, scheme=one_of(*SCHEMES), loss=Rule(check=check_loss_name), h=POSITIVE,
                 cost_scale=one_of(*COST_SCALES), phases=POSITIVE, phase_steps=POSITIVE, first_phase_steps=POSITIVE,
                 batch_size=POSITIVE, lr_map=POSITIVE, lr_potential=POSITIVE, betas=UNIT,
                 r1_gamma=NON_NEGATIVE, z_dim=POSITIVE, hidden=POSITIVE, seed=SEED, eval_samples=POSITIVE,
                 keep_points=NON_NEGATIVE, sample_repeats=POSITIVE, log_every=POSITIVE)

    def validate(self) -> "ToyTarget":
        """Check every field; return the resolved target. Raises ValueError with the reason."""
        self.check_fields()
        if self.keep_points > self.eval_samples:
            raise ValueError(f"keep_points ({self.keep_points}) cannot exceed eval_samples ({self.eval_samples})")
        return _resolve_target(self)


@dataclass(frozen=True)
class ToyTarget:
    """The data law of a run: a toy distribution, or a Gaussian ``N(mean, cov)`` (``dist`` None)."""

    name: str
    dim: int
    dist: object | None = None  # a uotm.data.toy.ToyDistribution
    mean: np.ndarray | None = None
    cov: np.ndarray | None = None

    def sample(self, n: int, g: torch.Generator) -> Tensor:
        """``n`` points, float32, shape (n, dim)."""
        if self.dist is None:
            chol = torch.as_tensor(np.linalg.cholesky(self.cov))
            eps = torch.randn(n, self.dim, generator=g, dtype=torch.float64)
            return (torch.as_tensor(self.mean) + eps @ chol.T).to(torch.float32)
        if self.dist.fixed_points is not None:  # a point cloud: draw rows with replacement
            pts = torch.as_tensor(self.dist.fixed_points, dtype=torch.float32)
            return pts[torch.randint(len(pts), (n,), generator=g)]
        return self.dist.sample(n, g)


def _resolve_target(cfg: SJKOToyConfig) -> ToyTarget:
    if not isinstance(cfg.target, str) or not cfg.target:
        raise ValueError(f"target must be a non-empty string, got {cfg.target!r}")
    if cfg.target != NORMAL_TARGET:
        if cfg.target_mean is not None or cfg.target_cov is not None:
            raise ValueError(f"target_mean and target_cov are for target={NORMAL_TARGET!r}, not {cfg.target!r}")
        if cfg.target == "noise":
            raise ValueError("the target cannot be 'noise': the source is already N(0, I)")
        if not (cfg.target in TOY_NAMES or cfg.target.startswith("npy:")):
            raise ValueError(f"unknown target {cfg.target!r}: choose one of {', '.join(TOY_NAMES[1:])}, "
                             f"npy:PATH, or {NORMAL_TARGET!r} with target_mean and target_cov")
        dist = make_distribution(cfg.target, cfg.dim)
        return ToyTarget(cfg.target, dist.dim, dist=dist)
    if cfg.target_mean is None or cfg.target_cov is None:
        raise ValueError(f"target={NORMAL_TARGET!r} needs target_mean (d,) and target_cov (d, d)")
    try:
        mean = np.asarray(cfg.target_mean, dtype=np.float64)
        cov = np.asarray(cfg.target_cov, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"target_mean and target_cov must be numbers, got {cfg.target_mean!r}, "
                         f"{cfg.target_cov!r}") from None
    if mean.ndim != 1 or mean.shape[0] < 1 or cov.shape != (mean.shape[0], mean.shape[0]):
        raise ValueError(f"target_mean must have shape (d,) and target_cov (d, d); got {mean.shape} and {cov.shape}")
    if cfg.dim is not None and cfg.dim != mean.shape[0]:
        raise ValueError(f"dim={cfg.dim} disagrees with the {mean.shape[0]}-dimensional target_mean")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise ValueError("target_mean and target_cov must be finite")
    if not np.allclose(cov, cov.T, atol=1e-12):
        raise ValueError(f"target_cov must be symmetric, got {cov.tolist()}")
    if np.linalg.eigvalsh(cov).min() <= 0:
        raise ValueError(f"target_cov must be positive definite, got {cov.tolist()}")
    return ToyTarget(NORMAL_TARGET, mean.shape[0], mean=mean, cov=cov)


#: The authors' toy runs (their README: 10 phases, h=1, 5 000 iterations per phase, batch 400, lr 1e-4 / 2e-5, no
#: R1; their cost is averaged over coordinates, hence ``per_coordinate``), and the Gaussian check of
#: :func:`uotm.exact.gaussian_jko_iterates` (Euclidean h, no data noise, no R1, a map that ignores z) at the same
#: budget.
TOY_PRESETS: dict[str, SJKOToyConfig] = {
    "25gaussian": SJKOToyConfig(target="25gaussian", cost_scale="per_coordinate"),
    "twocircles": SJKOToyConfig(target="twocircles", cost_scale="per_coordinate"),
    "gaussian2d": SJKOToyConfig(target=NORMAL_TARGET, target_mean=[2.0, -1.0], target_cov=[[1.0, 0.6], [0.6, 0.8]],
                                cost_scale="euclidean", noise_scale=0.0, ignore_z=True),
}


@dataclass
class SJKOPhase:
    r"""What one phase (one JKO step, :math:`\mu_k\to\mu_{k+1}`) produced and cost."""

    phase: int  # k, from 0; the phase's output is mu_{k+1}
    train_seconds: float  # wall time of the phase's training iterations
    train_cpu_seconds: float  # CPU time of this thread in the same span (other jobs on the machine do not count)
    iteration_seconds: float  # median wall time of one iteration in the phase
    forwards_per_iteration: float | None  # map forward calls per training iteration, counted (None: no counter)
    sample_seconds: float  # time to draw one batch (batch_size points) of mu_{k+1}, median of sample_repeats
    sample_cpu_seconds: float  # the same in this thread's CPU time
    mean: np.ndarray  # (d,) mean of mu_{k+1} over eval_samples points
    cov: np.ndarray  # (d, d) covariance of the same points
    points: np.ndarray  # (keep_points, d) of those points
    potential_loss: float  # last iteration's losses
    map_loss: float
    cost: float  # last iteration's mean transport cost c_h


@dataclass
class SJKOToyRun:
    """A trained toy S-JKO (or naive) model and its per-phase records."""

    config: SJKOToyConfig
    generator: nn.Module | None  # sjko: the final generator mu_0 -> mu_K; naive: None
    maps: list  # naive: the K maps (map k: mu_k -> mu_{k+1}); sjko: empty
    states: list  # sjko: the generator's state dict at the end of every phase; naive: empty
    potential: ToyPotential
    phases: list[SJKOPhase] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    data: np.ndarray | None = None  # (keep_points, d) data points, for plots
    seconds: float = 0.0
    forwards: int | None = None  # map forward calls in all training iterations, counted (None: no counter)

    @property
    def means(self) -> np.ndarray:
        """(K, d): the mean of mu_{k+1} after each phase k."""
        return np.stack([p.mean for p in self.phases])

    @property
    def covs(self) -> np.ndarray:
        """(K, d, d): the covariance of mu_{k+1} after each phase k."""
        return np.stack([p.cov for p in self.phases])


def _new_map(cfg: SJKOToyConfig, d: int) -> nn.Module:
    if cfg.ignore_z:
        return LatentFreeMap(d, cfg.hidden, z_dim=cfg.z_dim)
    return ToyMap(d, cfg.hidden, z_dim=cfg.z_dim)


def _frozen_copy(module: nn.Module, cfg: SJKOToyConfig, d: int) -> nn.Module:
    twin = _new_map(cfg, d)
    twin.load_state_dict(module.state_dict())
    twin.requires_grad_(False)
    return twin.eval()


@torch.no_grad()
def _draw(cfg: SJKOToyConfig, d: int, nets: list, n: int, g: torch.Generator) -> Tensor:
    """``n`` points of the law the networks ``nets`` give, applied in turn to N(0, I) points (S-JKO: one network;
    naive: the maps 0..k)."""
    x = torch.randn(n, d, generator=g)
    for net in nets:
        x = net(x, torch.randn(n, cfg.z_dim, generator=g))
    return x


def _phase_nets(run: SJKOToyRun, phase: int) -> list:
    cfg, d = run.config, run.potential.body.inp.in_features
    if cfg.scheme == "naive":
        return run.maps[: phase + 1]
    net = _new_map(cfg, d)
    net.load_state_dict(run.states[phase])
    return [net.eval()]


def sample(run: SJKOToyRun, n: int, phase: int | None = None, seed: int = 0) -> np.ndarray:
    r"""``n`` points of :math:`\mu_{k+1}`, the law after phase ``phase`` (default: the last phase, :math:`\mu_K`),
    as an (n, d) float32 array. S-JKO: one forward of that phase's generator; naive: ``phase + 1`` pushes."""
    K = len(run.phases)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if phase is None:
        phase = K - 1
    if not isinstance(phase, int) or isinstance(phase, bool) or not 0 <= phase < K:
        raise ValueError(f"phase must be an integer in [0, {K - 1}] (phase k gives mu_(k+1)), got {phase!r}")
    d = run.potential.body.inp.in_features
    return _draw(run.config, d, _phase_nets(run, phase), n, torch.Generator().manual_seed(seed)).numpy()


def save_sjko_config(config: SJKOToyConfig, path: str | Path) -> None:
    write_yaml(path, asdict(config))


def train_sjko_toy(cfg: SJKOToyConfig, out_dir: str | Path | None = None, progress: bool = True,
                   counter=None) -> SJKOToyRun:
    """Train ``cfg.phases`` JKO steps on a toy target with ``cfg.scheme``. With ``out_dir`` (an existing folder),
    write ``config.yaml`` first, ``metrics.jsonl`` as training goes and ``phases.jsonl`` (one line per phase).
    With ``counter`` (a :class:`uotm.bench.ForwardCounter`: ``attach(module)`` hooks a module and returns it,
    ``count`` is the running number of hooked forward calls), every map the run makes is attached to it and the
    forward calls of the training iterations are reported per phase (``forwards_per_iteration``) and in all
    (``forwards``); the draws that evaluate a phase are left out. Returns the :class:`SJKOToyRun`."""
    target = cfg.validate()
    if out_dir is not None and not Path(out_dir).is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is not an existing folder")
    if counter is not None and not (callable(getattr(counter, "attach", None)) and hasattr(counter, "count")):
        raise ValueError(f"counter must have attach(module) and count, like uotm.bench.ForwardCounter; got "
                         f"{type(counter).__name__}")
    cfg = replace(cfg, dim=target.dim)
    d, B, naive = target.dim, cfg.batch_size, cfg.scheme == "naive"
    out = Path(out_dir) if out_dir is not None else None

    torch.manual_seed(cfg.seed)  # network initialisation
    g = torch.Generator().manual_seed(cfg.seed)  # every training draw
    watch = counter.attach if counter is not None else (lambda net: net)  # every map goes through it
    gen = watch(_new_map(cfg, d))  # sjko: the generator; naive: the map of the current phase
    pot = ToyPotential(d, cfg.hidden)
    betas = tuple(cfg.betas)
    opt_pot = torch.optim.Adam(pot.parameters(), lr=cfg.lr_potential, betas=betas, foreach=True)
    opt_map = torch.optim.Adam(gen.parameters(), lr=cfg.lr_map, betas=betas, foreach=True)
    pot_params = list(pot.parameters())
    frozen: list[nn.Module] = []  # naive: the maps of the earlier phases
    old: nn.Module | None = None  # sjko: T_old (None = identity)
    step = losses.jko_step(cfg.loss, cfg.h, cfg.cost_scale, d)  # the losses of one JKO step
    run = SJKOToyRun(cfg, None, [], [], pot, forwards=None if counter is None else 0)
    run.data = target.sample(max(cfg.keep_points, 1), torch.Generator().manual_seed(cfg.seed + 2)).numpy()[
        : cfg.keep_points]
    r1 = cfg.r1_gamma > 0

    if out is not None:
        save_sjko_config(cfg, out / runs.CONFIG)
    log = runs.MetricsLog(out / runs.METRICS if out is not None else None)
    phase_log = runs.MetricsLog(out / "phases.jsonl" if out is not None else None)
    start = time.perf_counter()
    it = 0
    first = cfg.phase_steps if cfg.first_phase_steps is None else cfg.first_phase_steps
    bar = tqdm(total=first + (cfg.phases - 1) * cfg.phase_steps, desc=f"S-JKO toy ({cfg.scheme})", unit="it",
               disable=not progress, leave=False)
    try:
        for k in range(cfg.phases):
            if k >= 1:
                if naive:  # freeze map k-1; map k starts from its weights, with a fresh Adam state
                    frozen.append(watch(_frozen_copy(gen, cfg, d)))
                    fresh = watch(_new_map(cfg, d))
                    fresh.load_state_dict(gen.state_dict())
                    gen = fresh
                    opt_map = torch.optim.Adam(gen.parameters(), lr=cfg.lr_map, betas=betas, foreach=True)
                else:  # a frozen copy of the generator becomes T_old; everything else continues
                    old = watch(_frozen_copy(gen, cfg, d))
            map_params = list(gen.parameters())
            sigma = data_noise(k, cfg.noise_scale) if cfg.noise_scale > 0 else 0.0
            counted_from = counter.count if counter is not None else 0
            n_it = first if k == 0 else cfg.phase_steps
            it_times = []
            phase_start, phase_cpu = time.perf_counter(), time.thread_time()
            for i in range(n_it):
                t_it = time.perf_counter()
                x = torch.randn(B, d, generator=g)  # source batch of the potential step
                x2 = torch.randn(B, d, generator=g)  # source batch of the map step
                if naive and frozen:  # a batch of mu_k for each step: both pushed through the k earlier maps
                    with torch.no_grad():
                        xx = torch.cat([x, x2])
                        for net in frozen:
                            xx = net(xx, torch.randn(2 * B, cfg.z_dim, generator=g))
                    x, x2 = xx[:B], xx[B:]
                # potential step
                y = target.sample(B, g)
                if sigma > 0:
                    y = y + sigma * torch.randn(B, d, generator=g)
                y.requires_grad_(r1)
                z = torch.randn(B, cfg.z_dim, generator=g)
                with torch.no_grad():
                    fake = gen(x, z)
                v_real = pot(y)
                loss_v = step.potential_loss(v_real, pot(fake))  # no T_old: see uotm.losses.JKOStep
                if r1:
                    loss_v = loss_v + r1_penalty(v_real, y, cfg.r1_gamma)
                opt_pot.zero_grad(set_to_none=True)
                loss_v.backward(inputs=pot_params)
                opt_pot.step()
                # map step
                if old is not None:
                    z_old = torch.randn(B, cfg.z_dim, generator=g)
                    with torch.no_grad():
                        x_old = old(x2, z_old)
                else:  # sjko phase 0 (T_old = identity), or naive: the map starts from its own input
                    x_old = x2
                z = torch.randn(B, cfg.z_dim, generator=g)
                fake = gen(x2, z)
                loss_t = step.map_loss(pot(fake), x_old, fake)
                opt_map.zero_grad(set_to_none=True)
                loss_t.backward(inputs=map_params)
                opt_map.step()
                with torch.no_grad():
                    cost = step.cost(x_old, fake)
                it += 1
                it_times.append(time.perf_counter() - t_it)
                bar.update(1)
                if (i + 1) % cfg.log_every == 0 or i == n_it - 1:
                    row = {"phase": k, "step": it, "potential_loss": float(loss_v.detach()),
                           "map_loss": float(loss_t.detach()),
                           "cost": float(cost.detach().mean()), "seconds": round(time.perf_counter() - start, 3)}
                    if not all(math.isfinite(row[key]) for key in ("potential_loss", "map_loss", "cost")):
                        raise FloatingPointError(f"a loss became NaN or infinite at phase {k}, iteration {it} "
                                                 f"({row}); lower the learning rates or raise h")
                    run.metrics.append(row)
                    log.write(row)
            train_seconds, train_cpu = time.perf_counter() - phase_start, time.thread_time() - phase_cpu
            forwards = None
            if counter is not None:  # counted before the evaluation's draws
                forwards = (counter.count - counted_from) / n_it
                run.forwards += counter.count - counted_from
            gen.eval()
            nets = frozen + [gen] if naive else [gen]
            if not naive:
                run.states.append({key: val.detach().clone() for key, val in gen.state_dict().items()})
            times, cpu_times = [], []
            tg = torch.Generator().manual_seed(cfg.seed + 3)
            for _ in range(cfg.sample_repeats):
                t0, c0 = time.perf_counter(), time.thread_time()
                _draw(cfg, d, nets, B, tg)
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.thread_time() - c0)
            pts = _draw(cfg, d, nets, cfg.eval_samples, torch.Generator().manual_seed(cfg.seed + 1)).double().numpy()
            gen.train()
            rec = SJKOPhase(k, train_seconds, train_cpu, float(np.median(it_times)), forwards,
                            float(np.median(times)), float(np.median(cpu_times)),
                            pts.mean(axis=0), np.atleast_2d(np.cov(pts, rowvar=False)),
                            pts[: cfg.keep_points].astype(np.float32), float(loss_v.detach()),
                            float(loss_t.detach()),
                            float(cost.detach().mean()))
            run.phases.append(rec)
            phase_log.write({
                "phase": k, "train_seconds": round(train_seconds, 4), "train_cpu_seconds": round(train_cpu, 4),
                "iteration_seconds": rec.iteration_seconds, "forwards_per_iteration": forwards,
                "sample_seconds": rec.sample_seconds, "sample_cpu_seconds": rec.sample_cpu_seconds,
                "mean": rec.mean.tolist(), "cov": rec.cov.tolist()})
    finally:
        bar.close()
        log.close()
        phase_log.close()
    run.seconds = time.perf_counter() - start
    gen.requires_grad_(False)
    if naive:
        run.maps = frozen + [gen.eval()]
    else:
        run.generator = gen.eval()
    return run


# ---------------------------------------------------------------------------------------------------------------
# A toy S-JKO run folder (``python -m uotm toy --model sjko``)
# ---------------------------------------------------------------------------------------------------------------

#: The files of a toy S-JKO run folder: :func:`train_sjko_toy` writes ``config.yaml``, ``metrics.jsonl`` and
#: ``phases.jsonl`` as it goes, :func:`write_sjko_outputs` the rest when it is done.
RUN_FILES = ("config.yaml", "metrics.jsonl", "phases.jsonl", "samples.npy", "snapshot.pt", "flow.png")
NUM_SAMPLES = 2000  # points of mu_K written to samples.npy


def total_steps(cfg: SJKOToyConfig) -> int:
    """The training iterations of ``cfg``: phase 0's ``first_phase_steps`` (else ``phase_steps``), then
    ``phase_steps`` in each of the other ``phases - 1`` phases."""
    first = cfg.phase_steps if cfg.first_phase_steps is None else cfg.first_phase_steps
    return first + (cfg.phases - 1) * cfg.phase_steps


def write_sjko_outputs(run: SJKOToyRun, out_dir: str | Path) -> list[Path]:
    r"""Write what a finished toy S-JKO run leaves beside its logs into ``out_dir``: ``samples.npy``
    (:data:`NUM_SAMPLES` points of the last law :math:`\mu_K`, :func:`sample`), ``snapshot.pt`` (the config, the
    potential and, for ``scheme="sjko"``, the generator's weights at the end of every phase (``states``; the last is
    the final generator) or, for ``"naive"``, the weights of the ``K`` maps (``maps``)) and ``flow.png``
    (:func:`uotm.plots.plot_sjko_flow`). Every file is written atomically; returns the paths."""
    from .plots import plot_sjko_flow
    from .runs import SNAPSHOT, write_atomic

    out = Path(out_dir)
    points = sample(run, NUM_SAMPLES)
    snap = {"config": asdict(run.config), "potential": run.potential.state_dict(), "seconds": run.seconds}
    if run.config.scheme == "naive":
        snap["maps"] = [m.state_dict() for m in run.maps]
    else:
        snap["states"] = run.states
    return [write_atomic(out / "samples.npy", lambda p: np.save(p, points)),
            write_atomic(out / SNAPSHOT, lambda p: torch.save(snap, p)),
            plot_sjko_flow(run, out / "flow.png")]
