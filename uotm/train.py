r"""The image trainer: one loop for every preset (the UOTM paper's image experiments, arXiv:2305.14777).

Each iteration (:func:`train_step`) makes one Adam step on the potential, then one on the map:

.. math::

    L_v = \mathbb E_{x,z}\,\Psi_1^*\big(v(T(x,z)) - c(x,T(x,z))\big) + \mathbb E_y\,\Psi_2^*\big(-v(y)\big)
          + \tfrac{\gamma}{2}\,\mathbb E_y\lVert\nabla_y v(y)\rVert^2,
    \qquad
    L_T = \mathbb E_{x',z'}\big[c(x',T(x',z')) - v(T(x',z'))\big],

(:class:`uotm.losses.SemiDual`) with :math:`c(x,y)=\tau\lVert x-y\rVert^2`, a fresh source batch
:math:`x\sim N(0,I)` of the image's shape and latents :math:`z\sim N(0,I_{z\_dim})` for each step, and real
images :math:`y`. Then the EMA of the map's weights moves towards them. Both learning rates follow a cosine from
their initial value to ``lr_floor`` over ``schedule_epochs`` epochs, stepped once per epoch.

**S-JKO** (``cfg.model == "sjko"``, arXiv:2402.05443) runs through the same state, loop, snapshots and processes. Phase
:math:`k` is one JKO step; an iteration is a potential step then a map step on

.. math::

    L_v = \mathbb E_y\,\Psi^*\big(-v(y+\sigma_k\varepsilon)\big) + \mathbb E_{x,z}\,v(T(x,z))
          + \tfrac{\gamma}{2}\,\mathbb E\lVert\nabla v(y+\sigma_k\varepsilon)\rVert^2,
    \qquad
    L_T = \mathbb E_{x',z',z''}\big[c_h(T_{old}(x',z''),T(x',z')) - v(T(x',z'))\big]

(:class:`uotm.losses.JKOStep`: the semi-dual's losses with a balanced source side and :math:`\tau=1/(2h)`, the
constant cost term of :math:`L_v` left out; the ``jsd`` variant as there), with
:math:`\sigma_k=` ``noise_scale/(k+1)``, independent latents for the map and the frozen ``old_map``, and
:math:`T_{old}(x,\cdot)=x` in phase 0. When the iteration that starts phase :math:`k\ge1` begins, the map's
current weights are copied into ``state.old_map`` (on every process; it gets no gradient); the map, the potential,
both Adam states, the EMA and the schedule simply go on. The cosine runs once over all phases, stepped every
iteration, to ``lr_floor``. The snapshot holds ``old_map`` and the phase, so a resumed run repeats an
uninterrupted one across phase boundaries too. Sampling is one forward of the EMA map, as for UOTM.

The loop and :func:`train_step` are written once; the model is chosen in one place, :func:`iteration_for`, which
gives the config's :class:`UOTMIteration` or :class:`SJKOIteration`: the losses, the schedule, and S-JKO's own
steps (entering a phase, the data noise, :math:`T_{old}`).

:func:`train` runs the loop: one process, or several under torchrun (``uotm.dist``); the global batch is
``cfg.batch_size`` whatever their number. A run folder (:mod:`uotm.runs`) holds ``config.yaml``, ``metrics.jsonl``
(one JSON line every ``log_every`` iterations: means since the last line), ``samples-<step>.png`` (the EMA map on
fixed :math:`x, z`) and ``snapshot.pt`` (everything needed to continue: on the CPU, a resumed run repeats an
uninterrupted one bit for bit).

Randomness: the network initialisation uses ``cfg.seed``; the source points and latents come from one generator
seeded with ``cfg.seed`` that draws the *global* batch on every process (each keeps its slice), and the data order
is a function of ``(seed, epoch)`` (:class:`uotm.data.images.BatchOrder`). So one process and ``R`` processes
compute the same gradients up to rounding, and the snapshot's generator state is the same on every process.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import dist as udist
from . import runs
from . import sjko as sj
from .data.images import BatchOrder, ImageDataset, TensorImages, batches, make_dataset
from .losses import SemiDual, jko_step, r1_penalty
from .presets import ImageConfig
from .runs import read_metrics  # noqa: F401 - the metrics log of a run folder (uotm.train.read_metrics)

Tensor = torch.Tensor

LOSS_KEYS = ("potential_loss", "r1", "map_loss", "cost", "v_real", "v_fake")
# fields that may change when a run is resumed: how long it runs, what it writes, where the data are
# (and the speed-ups that keep the algorithm: the memory format and torch.compile)
RESUMABLE_CHANGES = ("epochs", "steps", "log_every", "sample_every", "snapshot_every", "num_workers", "data_root",
                     "channels_last", "compile")


def default_networks(cfg):
    """The paper's networks for ``cfg``: ``uotm.nets.build_networks(cfg) -> (transport_map, potential)``."""
    from .nets import build_networks

    return build_networks(cfg)


def autocast(cfg, device: torch.device):
    """bf16 autocast on CUDA when ``cfg.precision == "bf16"``; nothing (fp32) elsewhere."""
    if device.type == "cuda" and cfg.precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def source_batch(cfg, n: int, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
    """``n`` source points ``x`` (n, C, H, W) and latents ``z`` (n, z_dim), all N(0, I), from ``generator``."""
    x = torch.randn(n, cfg.channels, cfg.image_size, cfg.image_size, generator=generator, device=device)
    z = torch.randn(n, cfg.net.z_dim, generator=generator, device=device)
    return x, z


def save_grid(images: Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Write images in [−1, 1] (n, C, H, W) as one PNG grid (atomically)."""
    from torchvision.utils import save_image

    from .runs import write_atomic

    return write_atomic(path, lambda p: save_image(images.float().cpu().clamp(-1, 1) * 0.5 + 0.5, p, nrow=nrow))


@dataclass
class TrainState:
    """Everything one iteration reads and changes. ``transport_map`` and ``potential`` are the plain modules;
    ``map_ddp`` and ``potential_ddp`` are what the training forward calls (DDP wrappers with several processes,
    else the same modules)."""

    cfg: ImageConfig
    transport_map: nn.Module
    potential: nn.Module
    ema: nn.Module
    opt_map: torch.optim.Optimizer
    opt_potential: torch.optim.Optimizer
    sched_map: torch.optim.lr_scheduler.LRScheduler
    sched_potential: torch.optim.lr_scheduler.LRScheduler
    noise: torch.Generator  # draws x and z
    device: torch.device
    map_ddp: nn.Module
    potential_ddp: nn.Module
    rank: int = 0
    world_size: int = 1
    channels_last: bool = False
    step: int = 0  # iterations done
    epoch: int = 0  # the current epoch
    batch: int = 0  # the next batch of the current epoch
    compiled: dict = field(default_factory=dict, repr=False)  # torch.compile'd callables by role; empty: eager
    _lists: dict = field(default_factory=dict, repr=False)
    # S-JKO only: the frozen map of the previous phase (unused in phase 0, where T_old is the identity) and the
    # phase of the last iteration begun
    old_map: nn.Module | None = None
    phase: int = 0
    iteration: UOTMIteration | None = None  # the model's iteration (iteration_for(cfg)); make_state sets it


class UOTMIteration:
    r"""What the image loop asks of UOTM: its losses (:class:`uotm.losses.SemiDual` with the config's
    :math:`\Psi_1^*`, :math:`\Psi_2^*`, :math:`\tau` and ``reference_half_tau``), its schedule and its length, and
    the three points where a model's iteration may add a step of its own (none for UOTM). :class:`SJKOIteration`
    overrides what S-JKO does differently; :func:`iteration_for` picks one for a config."""

    name = "UOTM"
    uses_old_map = False  # whether the state keeps a frozen copy of the map (S-JKO's T_old)
    schedule_every_iteration = False  # the cosine is stepped once per epoch

    def __init__(self, cfg: ImageConfig):
        self.cfg = cfg
        self.losses = SemiDual(cfg.psi1, cfg.psi2, cfg.tau, cfg.reference_half_tau)

    def schedule_length(self) -> int:
        """The cosine schedule's ``T_max``, in the steps it is stepped by: ``schedule_epochs`` epochs."""
        return self.cfg.schedule_epochs

    def total_steps(self, batches_per_epoch: int) -> int:
        """The iterations of a whole run (before ``cfg.steps`` cuts it short): ``epochs`` epochs."""
        return self.cfg.epochs * batches_per_epoch

    def steady_step(self) -> int:
        """The iteration from which an iteration is typical of the run (what the benchmark times): the first."""
        return 0

    def begin(self, state: TrainState) -> None:
        """Called when an iteration begins (``state.step`` iterations done)."""

    def real_batch(self, state: TrainState, y: Tensor) -> Tensor:
        """The real batch the potential step sees: ``y`` itself."""
        return y

    def map_source(self, state: TrainState, x: Tensor, amp) -> Tensor:
        """The points the map step's cost is measured from, for the source batch ``x``: ``x`` itself."""
        return x

    def log_extras(self, state: TrainState) -> dict:
        """What a metrics line (and the benchmark's report) adds for this model: nothing."""
        return {}

    def plan(self) -> dict:
        """What a dry run (:func:`run_plan`) adds for this model: nothing."""
        return {}


class SJKOIteration(UOTMIteration):
    r"""What the image loop asks of S-JKO (arXiv:2402.05443): the losses of one JKO step
    (:func:`uotm.losses.jko_step`: ``sjko.loss``, ``sjko.h``, ``sjko.cost_scale`` over the image's
    :math:`C\cdot H\cdot W` coordinates), a cosine over all phases stepped every iteration, and its three steps:
    entering the phase of the iteration (:func:`enter_phase`), noise :math:`\sigma_k` on the real batch, and the
    frozen map :math:`T_{old}(x,z')` of the previous phase (the identity in phase 0) as the points the map step's
    cost is measured from."""

    name = "S-JKO"
    uses_old_map = True
    schedule_every_iteration = True

    def __init__(self, cfg: ImageConfig):
        self.cfg, sc = cfg, cfg.sjko
        self.losses = jko_step(sc.loss, sc.h, sc.cost_scale, cfg.channels * cfg.image_size ** 2)

    def schedule_length(self) -> int:
        """One cosine over all phases, stepped every iteration: ``sjko.total_steps``."""
        return self.cfg.sjko.total_steps

    def total_steps(self, batches_per_epoch: int) -> int:
        """All phases' iterations, ``sjko.total_steps``, whatever ``epochs`` says."""
        return self.cfg.sjko.total_steps

    def steady_step(self) -> int:
        """The start of phase 1 (where the old map runs: two map forwards per map step), if the run has one."""
        sc = self.cfg.sjko
        return sc.phase_start(min(1, sc.phases - 1))

    def plan(self) -> dict:
        """The schedule a dry run shows: phases, iterations, the Euclidean step h that the cost convention means
        (``h`` times the coordinates for ``per_coordinate``), the cosine."""
        cfg, sc = self.cfg, self.cfg.sjko
        scale = cfg.channels * cfg.image_size**2 if sc.cost_scale == "per_coordinate" else 1
        return {"sjko_schedule": {
            "phases": sc.phases, "first_phase_steps": sc.first_phase_steps, "phase_steps": sc.phase_steps,
            "total_steps": sc.total_steps, "steps_run": cfg.total_steps, "euclidean_h": float(f"{sc.h * scale:.6g}"),
            "cosine": f"{cfg.lr_map:g}/{cfg.lr_potential:g} -> {cfg.lr_floor:g} over {sc.total_steps} iterations",
        }}

    def begin(self, state: TrainState) -> None:
        """Enter the phase of the iteration about to run (:func:`enter_phase`)."""
        enter_phase(state)

    def real_batch(self, state: TrainState, y: Tensor) -> Tensor:
        r"""``y`` plus :math:`\sigma_k\varepsilon`, :math:`\sigma_k=` ``noise_scale/(k+1)`` in phase :math:`k`
        (:func:`uotm.sjko.data_noise`), drawn from the state's generator; ``y`` itself when ``noise_scale`` is 0."""
        sc = self.cfg.sjko
        sigma = sj.data_noise(state.phase, sc.noise_scale) if sc.noise_scale > 0 else 0.0
        y = y.detach()
        if sigma > 0:
            y = y + sigma * _draw_like(state, tuple(y.shape))
            if state.channels_last:
                y = y.contiguous(memory_format=torch.channels_last)
        return y

    def map_source(self, state: TrainState, x: Tensor, amp) -> Tensor:
        """:math:`T_{old}(x,z')` with a fresh latent :math:`z'` (drawn in every phase, so that the generator's
        sequence does not depend on the phase); ``x`` itself in phase 0, where :math:`T_{old}` is the identity."""
        z_old = _draw_like(state, (x.shape[0], self.cfg.net.z_dim))
        if state.phase == 0:
            return x
        with torch.no_grad(), amp:
            return state.old_map(x, z_old)

    def log_extras(self, state: TrainState) -> dict:
        """The phase of the last iteration begun."""
        return {"phase": state.phase}


#: The image loop's model by ``ImageConfig.model``.
ITERATIONS: dict[str, type[UOTMIteration]] = {"uotm": UOTMIteration, "sjko": SJKOIteration}


def iteration_for(cfg: ImageConfig) -> UOTMIteration:
    """The iteration of ``cfg.model`` (:data:`ITERATIONS`), with its losses made from ``cfg``: the one place where
    the image trainer and the benchmark choose between the models."""
    if cfg.model not in ITERATIONS:
        raise ValueError(f"unknown model {cfg.model!r}: choose one of {', '.join(ITERATIONS)}")
    return ITERATIONS[cfg.model](cfg)


def make_state(cfg: ImageConfig, transport_map: nn.Module, potential: nn.Module, device="cpu",
               info: udist.DistInfo | None = None) -> TrainState:
    """Check ``cfg`` (:meth:`~uotm.presets.ImageConfig.validate`), put the networks on ``device`` (channels-last
    as ``cfg.channels_last`` says), copy the map into its EMA,
    and make the optimisers (fused Adam on CUDA, foreach elsewhere), the schedulers and the noise generator (seeded
    with ``cfg.seed``). With ``info`` of several processes, the networks are wrapped in DDP (the process group must
    exist).

    Speed-ups that keep the algorithm, both fields of the config:

    * ``cfg.channels_last``: the channels-last memory format (``None``, the default: on CUDA only; ``True`` or
      ``False``: on every device, or never);
    * ``cfg.compile``: any of ``"map"``, ``"potential"``: ``torch.compile`` those networks' forward calls. The
      potential's call on real data stays eager on the iterations that apply R1: R1 differentiates it twice
      (``create_graph=True``), and AOTAutograd's compiled backward does not support double backward
      ("torch.compile with aot_autograd does not currently support double backward", PyTorch 2.14). Its calls on
      transported images (both steps) are compiled.

    For S-JKO (``cfg.model == "sjko"``), ``state.old_map`` is a frozen copy of the map (eval mode, no gradients,
    not wrapped in DDP, run eagerly even with ``cfg.compile``) that :func:`train_step` overwrites when a phase
    begins, and the cosine schedulers span ``cfg.sjko.total_steps`` iterations (the caller steps them every
    iteration, as :func:`train` does).

    An option that changes the algorithm, off by default:

    * ``cfg.r1_every = k > 1``: lazy R1 (StyleGAN2's lazy regularisation): the penalty is added, times ``k``, only on
      the iterations whose ``state.step`` is a multiple of ``k``; the others skip the double backward. The expected
      penalty per iteration is unchanged, its variance is not, and StyleGAN2 also rescales Adam's learning rate and
      betas by ``k / (k + 1)``, which this does not.
    """
    cfg = cfg.validate()
    device = torch.device(device)
    cuda = device.type == "cuda"
    channels_last = cuda if cfg.channels_last is None else cfg.channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    transport_map = transport_map.to(device, memory_format=fmt).train()
    potential = potential.to(device, memory_format=fmt).train()
    ema = copy.deepcopy(transport_map).eval().requires_grad_(False)
    kw = {"fused": True} if cuda else {"foreach": True}
    opt_map = torch.optim.Adam(transport_map.parameters(), lr=cfg.lr_map, betas=tuple(cfg.betas), **kw)
    opt_pot = torch.optim.Adam(potential.parameters(), lr=cfg.lr_potential, betas=tuple(cfg.betas), **kw)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR
    iteration = iteration_for(cfg)
    t_max = iteration.schedule_length()
    sched_map = cosine(opt_map, T_max=t_max, eta_min=cfg.lr_floor)
    sched_pot = cosine(opt_pot, T_max=t_max, eta_min=cfg.lr_floor)
    noise = torch.Generator(device=device).manual_seed(cfg.seed)
    rank, world = (info.rank, info.world_size) if info is not None else (0, 1)
    map_ddp = udist.wrap(transport_map, info) if info is not None else transport_map
    pot_ddp = udist.wrap(potential, info) if info is not None else potential
    compiled = {}
    if "map" in cfg.compile:
        compiled["map_ddp"] = torch.compile(map_ddp)
        compiled["map"] = compiled["map_ddp"] if map_ddp is transport_map else torch.compile(transport_map)
    if "potential" in cfg.compile:
        compiled["potential_ddp"] = torch.compile(pot_ddp)
        compiled["potential"] = compiled["potential_ddp"] if pot_ddp is potential else torch.compile(potential)
    old_map = copy.deepcopy(transport_map).eval().requires_grad_(False) if iteration.uses_old_map else None
    state = TrainState(cfg, transport_map, potential, ema, opt_map, opt_pot, sched_map, sched_pot, noise, device,
                       map_ddp, pot_ddp, rank, world, channels_last, compiled=compiled,
                       old_map=old_map, iteration=iteration)
    state._lists = {
        "map": list(transport_map.parameters()), "potential": list(potential.parameters()),
        "ema": list(ema.parameters()), "map_buffers": list(transport_map.buffers()),
        "ema_buffers": list(ema.buffers()),
    }
    return state


def _draw(state: TrainState, b: int) -> tuple[Tensor, Tensor]:
    """This process's slice of a global source batch (x, z): every process draws all ``b * world_size``."""
    x, z = source_batch(state.cfg, b * state.world_size, state.noise, state.device)
    if state.world_size > 1:
        x, z = x[state.rank * b:(state.rank + 1) * b], z[state.rank * b:(state.rank + 1) * b]
    if state.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, z


def _draw_like(state: TrainState, shape: tuple[int, ...]) -> Tensor:
    """This process's slice of a global N(0, I) draw whose first dimension is ``shape[0] * world_size``."""
    b = shape[0]
    t = torch.randn(b * state.world_size, *shape[1:], generator=state.noise, device=state.device)
    return t[state.rank * b:(state.rank + 1) * b] if state.world_size > 1 else t


@torch.no_grad()
def enter_phase(state: TrainState) -> None:
    """S-JKO: if the iteration about to run (``state.step`` done) belongs to a later phase than ``state.phase``,
    freeze the map's current weights into ``state.old_map`` and move to that phase. :func:`train_step` calls it."""
    phase = state.cfg.sjko.phase_of(state.step)
    if phase != state.phase:
        state.old_map.load_state_dict(state.transport_map.state_dict())
        state.phase = phase


@torch.no_grad()
def update_ema(state: TrainState) -> None:
    """EMA of the map: ``ema ← decay·ema + (1−decay)·map`` on all parameters at once; buffers are copied."""
    lists = state._lists
    torch._foreach_lerp_(lists["ema"], lists["map"], 1.0 - state.cfg.ema_decay)
    if lists["ema_buffers"]:
        torch._foreach_copy_(lists["ema_buffers"], lists["map_buffers"])


def _potential_update(state: TrainState, y: Tensor, x: Tensor, t_x: Tensor, amp) -> tuple[Tensor, ...]:
    """The potential's step: ``v`` on the real batch ``y`` and on the transported batch ``t_x`` = T(x, z) (a
    constant), the model's potential loss plus R1 on ``y`` on the iterations that take it (``r1_every``), one
    optimiser step. Returns ``(loss_v, r1, v_real, v_fake)`` (v in fp32)."""
    cfg = state.cfg
    r1_on = cfg.r1_gamma > 0 and state.step % cfg.r1_every == 0
    y = y.detach().requires_grad_(r1_on)
    potential = state.compiled.get("potential_ddp", state.potential_ddp)
    with amp:
        v_real = (state.potential_ddp if r1_on else potential)(y)  # R1's double backward: eager
        v_fake = potential(t_x)
    v_real, v_fake = v_real.float(), v_fake.float()
    loss_v = state.iteration.losses.potential_loss(v_real, v_fake, x, t_x.float())
    if r1_on:
        r1 = r1_penalty(v_real, y, cfg.r1_gamma * cfg.r1_every)
    else:
        r1 = torch.zeros((), device=state.device)
    state.opt_potential.zero_grad(set_to_none=True)
    (loss_v + r1).backward(inputs=state._lists["potential"])
    state.opt_potential.step()
    return loss_v, r1, v_real, v_fake


def train_step(state: TrainState, y: Tensor) -> dict[str, Tensor]:
    """One iteration of the model (``state.iteration``, :func:`iteration_for`) on this process's real batch ``y``
    (b, C, H, W) in [−1, 1]: a potential step, a map step, an EMA update. Returns the detached losses as 0-d tensors
    on the device (no host synchronisation): ``potential_loss`` (the potential loss of ``state.iteration.losses``),
    ``r1`` (the penalty added to the potential's loss at this iteration: with lazy R1, ``r1_every`` times R1 or 0),
    ``map_loss``, ``cost`` (the mean cost of the map step: :math:`c(x,T(x,z))`, or S-JKO's
    :math:`c_h(T_{old},T)`), ``v_real`` and ``v_fake`` (mean potential on real and transported images).

    The model's own steps come in at three points (:class:`UOTMIteration`, :class:`SJKOIteration`): when the
    iteration begins (S-JKO enters its phase), on the real batch of the potential step (S-JKO's data noise) and on
    the points the map step's cost is measured from (S-JKO's :math:`T_{old}(x,z')`). The networks run under bf16
    autocast on CUDA (``cfg.precision == "bf16"``); the cost, the Ψ* terms and R1's reductions are computed in
    fp32. The caller advances ``state.step`` (lazy R1 reads it; S-JKO's phase follows it)."""
    cfg, it = state.cfg, state.iteration
    it.begin(state)
    b = y.shape[0]
    amp = autocast(cfg, state.device)
    fast = state.compiled
    if state.channels_last:
        y = y.contiguous(memory_format=torch.channels_last)

    # potential step: T(x, z) is a constant here
    x, z = _draw(state, b)
    with torch.no_grad(), amp:
        t_x = fast.get("map", state.transport_map)(x, z)
    loss_v, r1, v_real, v_fake = _potential_update(state, it.real_batch(state, y), x, t_x, amp)

    # map step: fresh x, z; the potential's weights get no gradient
    x, z = _draw(state, b)
    x_from = it.map_source(state, x, amp)
    with amp:
        t_x = fast.get("map_ddp", state.map_ddp)(x, z)
        v_t = fast.get("potential", state.potential)(t_x)
    t_x, x_from = t_x.float(), x_from.float()
    loss_t = it.losses.map_loss(v_t.float(), x_from, t_x)
    state.opt_map.zero_grad(set_to_none=True)
    loss_t.backward(inputs=state._lists["map"])
    state.opt_map.step()
    update_ema(state)

    with torch.no_grad():
        cost = it.losses.cost(x_from, t_x.detach()).mean()
    return {"potential_loss": loss_v.detach(), "r1": r1.detach(), "map_loss": loss_t.detach(), "cost": cost,
            "v_real": v_real.detach().mean(), "v_fake": v_fake.detach().mean()}


# ----------------------------------------------------------------------------------------------------------------
# snapshots


def snapshot_dict(state: TrainState) -> dict:
    """Everything :func:`load_snapshot` needs to continue exactly where ``state`` is."""
    cuda = state.device.type == "cuda"
    extra = {}
    if state.old_map is not None:  # S-JKO: the frozen map of the current phase, and that phase
        extra = {"old_map": state.old_map.state_dict(), "phase": state.phase}
    return {
        **extra,
        "transport_map": state.transport_map.state_dict(), "potential": state.potential.state_dict(),
        "ema": state.ema.state_dict(),
        "opt_map": state.opt_map.state_dict(), "opt_potential": state.opt_potential.state_dict(),
        "sched_map": state.sched_map.state_dict(), "sched_potential": state.sched_potential.state_dict(),
        "step": state.step, "epoch": state.epoch, "batch": state.batch,
        "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(state.device) if cuda else None,
                "noise": state.noise.get_state()},
        # the data order is a function of (seed, epoch): its position is all the state it has
        "data": {"seed": state.cfg.seed, "epoch": state.epoch, "batch": state.batch},
        "world_size": state.world_size,
        "config": state.cfg.to_dict(),
    }


def load_snapshot(state: TrainState, snap: dict) -> None:
    state.transport_map.load_state_dict(snap["transport_map"])
    state.potential.load_state_dict(snap["potential"])
    state.ema.load_state_dict(snap["ema"])
    state.opt_map.load_state_dict(snap["opt_map"])
    state.opt_potential.load_state_dict(snap["opt_potential"])
    state.sched_map.load_state_dict(snap["sched_map"])
    state.sched_potential.load_state_dict(snap["sched_potential"])
    state.step, state.epoch, state.batch = snap["step"], snap["epoch"], snap["batch"]
    if state.old_map is not None:
        if "old_map" not in snap:
            raise ValueError("the snapshot holds no old_map: it is not an S-JKO run's")
        state.old_map.load_state_dict(snap["old_map"])
        state.phase = snap["phase"]
    torch.set_rng_state(snap["rng"]["torch"])
    if state.device.type == "cuda" and snap["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state(snap["rng"]["cuda"], state.device)
    state.noise.set_state(snap["rng"]["noise"])


def save_config(cfg: ImageConfig, path: str | Path) -> None:
    runs.write_yaml(path, cfg.to_dict())


def parameter_counts(cfg: ImageConfig, build: Callable | None = None) -> dict[str, int]:
    """The number of parameters of the map and of the potential for ``cfg``, without allocating them."""
    build = build or default_networks
    try:
        with torch.device("meta"):
            transport_map, potential = build(cfg)
    except (NotImplementedError, RuntimeError):  # a network whose initialisation needs real tensors
        transport_map, potential = build(cfg)
    return {"transport_map": sum(p.numel() for p in transport_map.parameters()),
            "potential": sum(p.numel() for p in potential.parameters())}


def _check_resumable(old: ImageConfig, new: ImageConfig, run_dir: Path) -> None:
    runs.check_same_config(old.to_dict(), new.to_dict(), run_dir, RESUMABLE_CHANGES)


# ----------------------------------------------------------------------------------------------------------------
# the loop


def train(cfg: ImageConfig, run_dir: str | Path, *, resume: bool = False, build: Callable | None = None,
          dataset: ImageDataset | None = None, device=None, progress: bool = True,
          overwrite: bool = False) -> TrainState:
    """Train UOTM or S-JKO (``cfg.model``) with ``cfg``, writing into ``run_dir``; return the final
    :class:`TrainState`.

    Args:
        cfg: the configuration (a preset, possibly changed).
        run_dir: the run folder; a new run refuses a folder that already holds a snapshot (unless
            ``overwrite``: then the old run's files are removed) but restarts one that stopped before its first.
        resume: continue the run in ``run_dir`` from its ``snapshot.pt`` (its config must match ``cfg`` except
            for :data:`RESUMABLE_CHANGES`; ``steps`` and ``epochs`` count from the run's start). S-JKO runs
            ``cfg.sjko.total_steps`` iterations (fewer with ``steps``), whatever ``epochs`` says.
        build: ``build(cfg) -> (transport_map, potential)``; default :func:`uotm.nets.build_networks`.
        dataset: the training images; default ``make_dataset(cfg)``.
        device: default ``cuda:LOCAL_RANK`` if CUDA is available, else the CPU.
        progress: show a progress bar (process 0 only).

    Under torchrun, every process calls this; process 0 alone writes files. A NaN or infinite loss, or a state
    whose weights, optimiser states or learning rates are not finite, stops the run with ``FloatingPointError``
    and leaves the last good snapshot in place. Ctrl-C raises :class:`uotm.runs.Interrupted` (a
    ``KeyboardInterrupt``) naming the step reached and the step ``resume`` continues from.

    The folder is checked (writable, not another run's, a readable snapshot to resume) before the data and the
    networks are made; every fault there is a ``ValueError`` of one sentence.
    """
    cfg = cfg.validate()
    run_dir = Path(run_dir)
    snap = None
    if resume:
        snap = runs.check_resume(run_dir)
        try:
            old = ImageConfig.from_dict(snap["config"])
        except (ValueError, TypeError):
            raise runs.damaged(run_dir / runs.SNAPSHOT) from None
        _check_resumable(old, cfg, run_dir)
    else:
        runs.check_new(run_dir, overwrite)
    if dataset is None:
        dataset = make_dataset(cfg)

    info = udist.setup(device)
    try:
        return _train(cfg, run_dir, snap, build or default_networks, dataset, info, progress,
                      overwrite=overwrite and not resume)
    finally:
        udist.cleanup(info)


def configure_backends(device: torch.device) -> None:
    """The backend settings of a training run (the trainer and the benchmark): on CUDA, cuDNN's autotuner and TF32
    for convolutions and matrix products (what "fp32" means there)."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


RUN_FILES = (runs.SNAPSHOT, runs.METRICS, runs.CONFIG, "samples-*.png", "events.out.tfevents.*")


def _train(cfg, run_dir: Path, snap, build, dataset, info: udist.DistInfo, progress: bool,
           overwrite: bool = False) -> TrainState:
    from tqdm.auto import tqdm

    device, main = info.device, info.is_main
    configure_backends(device)
    order = BatchOrder(len(dataset), cfg.batch_size, cfg.seed, info.rank, info.world_size)
    if isinstance(dataset, TensorImages) and device.type == "cuda":
        dataset = dataset.to(device)

    torch.manual_seed(cfg.seed)
    transport_map, potential = build(cfg)
    state = make_state(cfg, transport_map, potential, device, info)
    if snap is not None:
        load_snapshot(state, snap)
        del snap

    metrics_path, snap_path = run_dir / runs.METRICS, run_dir / runs.SNAPSHOT
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if overwrite:
            runs.clear(run_dir, RUN_FILES)
        save_config(cfg, run_dir / runs.CONFIG)
        runs.truncate_metrics(metrics_path, state.step)
    log = runs.MetricsLog(metrics_path if main else None, append=True)
    board = tensorboard_writer(run_dir, state.step) if main else None

    it = state.iteration
    total = it.total_steps(order.batches_per_epoch)
    if cfg.steps:
        total = min(total, cfg.steps)
    n_grid = 64 if cfg.image_size <= 64 else 16
    grid_x, grid_z = source_batch(cfg, n_grid, torch.Generator().manual_seed(cfg.seed + 1), "cpu")
    never = total + 1
    acc = torch.zeros(len(LOSS_KEYS), device=device)  # sums since the last metrics line
    first_bad = torch.full((), never, dtype=torch.long, device=device)  # first iteration with a NaN/inf loss
    last = {"step": state.step, "time": time.perf_counter(), "snapshot": state.step if state.step else None}
    start_time = time.perf_counter()

    def kept() -> str:
        return (f"{snap_path} still holds the last good state (iteration {last['snapshot']})"
                if last["snapshot"] is not None else "no snapshot was written")

    def not_finite(where: str) -> FloatingPointError:
        return FloatingPointError(f"the {where} held NaN or infinite values at iteration {state.step}; the run "
                                  f"stopped and {kept()}; lower the learning rates")

    def check_finite() -> None:
        bad = int(udist.all_reduce_min(first_bad, info.world_size).item())
        if bad != never:
            raise FloatingPointError(f"a loss became NaN or infinite at iteration {bad}; the run stopped and "
                                     f"{kept()}; lower the learning rates or raise r1_gamma")

    def write_metrics() -> None:
        n = state.step - last["step"]
        means = (udist.all_reduce_mean(acc, info.world_size) / max(n, 1)).tolist()
        check_finite()
        now = time.perf_counter()
        row = {"step": state.step, "epoch": state.epoch + state.batch / order.batches_per_epoch,
               "kimg": state.step * cfg.batch_size / 1000,
               **dict(zip(LOSS_KEYS, means)),
               "lr_map": state.opt_map.param_groups[0]["lr"], "lr_potential": state.opt_potential.param_groups[0]["lr"],
               "sec_per_iter": (now - last["time"]) / max(n, 1), "seconds": now - start_time}
        row.update(it.log_extras(state))
        if not all(math.isfinite(v) for v in row.values()):  # the learning rates (the losses were checked)
            raise not_finite("learning rates")
        acc.zero_()
        last["step"], last["time"], last["row"] = state.step, now, row
        log.write(row)
        if main:
            if board is not None:
                for key, value in row.items():
                    if key != "step":
                        board.add_scalar(f"train/{key}", value, state.step)
            bar.set_postfix(loss_v=f"{row['potential_loss']:.3g}", loss_T=f"{row['map_loss']:.3g}",
                            cost=f"{row['cost']:.3g}", **it.log_extras(state))

    bar = tqdm(total=total, initial=state.step, disable=not (progress and main), unit="it", dynamic_ncols=True,
               desc=f"{it.name} {cfg.preset}")
    try:
        while state.step < total:
            for y in batches(dataset, order, state.epoch, state.batch, device, cfg.num_workers):
                losses = train_step(state, y)
                values = torch.stack([losses[k] for k in LOSS_KEYS])
                acc += values
                bad = ~torch.isfinite(values).all()
                first_bad.copy_(torch.where(bad & (first_bad == never), state.step + 1, first_bad))
                state.step += 1
                state.batch += 1
                end_of_epoch = state.batch == order.batches_per_epoch
                if it.schedule_every_iteration or end_of_epoch:  # S-JKO: every iteration; UOTM: every epoch
                    state.sched_map.step()
                    state.sched_potential.step()
                if end_of_epoch:
                    state.epoch, state.batch = state.epoch + 1, 0
                bar.update(1)
                done = state.step >= total
                if state.step % cfg.log_every == 0 or done:
                    write_metrics()
                if state.step % cfg.snapshot_every == 0 or done:
                    check_finite()
                    snap = snapshot_dict(state)
                    if not runs.is_finite(snap):  # the same weights on every process: all stop together
                        raise not_finite("weights, optimiser states or learning rates")
                    if main:
                        runs.write_atomic(snap_path, lambda p: torch.save(snap, p))
                        if progress:  # a line that stays, above the bar (a notebook cell shows both)
                            row = last.get("row", {})
                            bar.write(f"step {state.step}/{total}: snapshot written; potential loss "
                                      f"{row.get('potential_loss', float('nan')):.4g}, map loss "
                                      f"{row.get('map_loss', float('nan')):.4g}, {row.get('sec_per_iter', 0):.3g} s/it")
                    del snap
                    last["snapshot"] = state.step
                if main and (state.step % cfg.sample_every == 0 or done):
                    _sample_grid(state, grid_x, grid_z, run_dir / f"samples-{state.step:07d}.png")
                if done:
                    break
    except KeyboardInterrupt:
        raise runs.Interrupted(state.step, last["snapshot"]) from None
    finally:
        bar.close()
        log.close()
        if board is not None:
            board.close()
    return state


def tensorboard_writer(run_dir: Path, step: int):
    """A TensorBoard writer whose event files go beside ``metrics.jsonl`` (the same rows, as ``train/<key>``), or
    None where TensorBoard is not installed. A resumed run drops the events logged after its snapshot's step."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir), purge_step=step if step else None)


@torch.no_grad()
def _sample_grid(state: TrainState, x: Tensor, z: Tensor, path: Path) -> None:
    """The EMA map on the fixed (x, z), as one PNG."""
    outs = []
    for i in range(0, x.shape[0], 16):
        with autocast(state.cfg, state.device):
            outs.append(state.ema(x[i:i + 16].to(state.device), z[i:i + 16].to(state.device)).float().cpu())
    images = torch.cat(outs)
    save_grid(images, path, nrow=int(math.ceil(math.sqrt(images.shape[0]))))


# ----------------------------------------------------------------------------------------------------------------
# the plan of a run (what `python -m uotm train --dry-run` prints)


def run_plan(cfg: ImageConfig, run_dir: str | Path | None = None, count: bool = True) -> dict:
    """What a run of ``cfg`` would do, without data or training: the config, the parameter counts (if ``count``:
    :func:`parameter_counts`), the run folder (default ``runs/PRESET``, ``runs/sjko-PRESET`` for S-JKO), the
    processes (torchrun's ``WORLD_SIZE``) and the images per process, and for S-JKO its schedule (phases,
    iterations, the Euclidean step h that its cost convention means, the cosine). A global batch that the
    processes cannot share is one sentence."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    if run_dir is None:
        run_dir = os.path.join("runs", cfg.preset if cfg.model == "uotm" else f"{cfg.model}-{cfg.preset}")
    plan = {"config": cfg.to_dict(), "parameters": parameter_counts(cfg) if count else None, "run_dir": str(run_dir),
            "world_size": world, "batch_per_process": cfg.batch_size // world}
    plan.update(iteration_for(cfg).plan())
    return plan


def format_plan(plan: dict) -> str:
    """:func:`run_plan` for a reader: the config as YAML, then the parameters, the processes and S-JKO's
    schedule."""
    import yaml

    counts = plan["parameters"]
    lines = [yaml.safe_dump(plan["config"], sort_keys=False).rstrip(),
             f"parameters: transport_map {counts['transport_map']:,}, potential {counts['potential']:,}",
             f"run folder: {plan['run_dir']}; {plan['world_size']} process(es) of {plan['batch_per_process']} images "
             "each"]
    sch = plan.get("sjko_schedule")
    if sch:
        lines.append(f"S-JKO: {sch['phases']} phases ({sch['first_phase_steps']} iterations, then "
                     f"{sch['phase_steps']} each): {sch['total_steps']} iterations; runs {sch['steps_run']}; "
                     f"Euclidean step h = {sch['euclidean_h']:g}; cosine {sch['cosine']}")
    return "\n".join(lines)
