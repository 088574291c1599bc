r"""The benchmark of the real iteration: ``python -m uotm bench --preset NAME``.

It times :func:`uotm.train.train_step`, the very function the trainer calls once per iteration (the potential step
with R1's double backward, then the map step, both Adam steps and the EMA update), on a state made by
:func:`uotm.train.make_state` from the preset's networks, with random images of the preset's shape in [−1, 1]. The
data pipeline (loading, flips, the copy to the device) and the trainer's logging are not timed.

What it reports:

* ``images_per_s`` (batch images per iteration time) and ``ms_per_iter``, over ``steps`` iterations after
  ``warmup`` untimed ones, with the device synchronised around the timed region only;
* the peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over the warm-up and the timed iterations, on the
  CPU the process's peak resident set size (``resource.getrusage``, everything the process ever held);
* ``gflop_per_image_iter``: the floating-point operations of one ``train_step`` divided by the batch, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matrix products, convolutions and attention, forward, backward and
  R1's double backward; element-wise ops count zero), on the same state run eagerly after the timed iterations. The FIR
  resampling runs as box filters (pooling, counted zero) on CUDA and as a depthwise convolution (counted) on the
  CPU, so the CPU's count is a little higher;
* ``tflops`` (that work per second) and ``peak_share``, its share of the device's dense peak from :data:`PEAKS`
  (``null`` for a device not in the table, the CPU included).

S-JKO (``--model sjko``): the same, for the S-JKO iteration (:class:`uotm.train.SJKOIteration`) of phase 1, the
steady state of every phase after the first: the map's forward without gradients as the old map, data noise, then
as UOTM. The report names the ``model`` and its ``iteration``; S-JKO's adds the ``phase``.

Speed switches: ``--precision`` (bf16 autocast is CUDA only: on the CPU the trainer and this benchmark run fp32 and
say so) and the config's fields ``--set channels_last=true``, ``--set "compile=[map, potential]"`` and, changing
the algorithm, ``--set r1_every=K`` (lazy R1; see :func:`uotm.train.make_state`).

Counting network evaluations: :class:`ForwardCounter` counts the forward calls of the modules it is attached to.
The toy S-JKO trainer takes one (:func:`uotm.sjko.train_sjko_toy`, ``counter=``) and reports the map forwards of
each phase's iterations with it: the cost of the one-generator scheme against the naive one-map-per-step scheme.
"""

from __future__ import annotations

import dataclasses
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .presets import ImageConfig
from .train import TrainState, configure_backends, default_networks, make_state, train_step

# Dense (no sparsity) peaks in TFLOP/s from NVIDIA's data sheets: (bf16 tensor cores, tf32 tensor cores, fp32 without
# tensor cores). The first name that the device's name contains wins, so the specific models come first.
PEAKS: tuple[tuple[str, float, float, float], ...] = (
    ("H200 NVL", 835.0, 417.5, 60.0),
    ("H200", 989.4, 494.7, 66.9),
    ("H100 NVL", 835.0, 417.5, 60.0),
    ("H100 PCIe", 756.0, 378.0, 51.2),
    ("H100", 989.4, 494.7, 66.9),  # SXM5, e.g. "NVIDIA H100 80GB HBM3"
    ("A100", 312.0, 156.0, 19.5),
)


def device_peak(name: str, precision: str) -> tuple[float | None, str]:
    """The dense peak (TFLOP/s) of the device called ``name`` for ``precision`` and which peak it is; ``(None,
    "unknown")`` off the table. ``fp32`` on CUDA runs its convolutions and matrix products in TF32
    (:func:`uotm.train.configure_backends`), so its peak is the TF32 tensor-core peak."""
    for key, bf16, tf32, _fp32 in PEAKS:
        if key.lower() in name.lower():
            return (bf16, "bf16 dense tensor-core") if precision == "bf16" else (tf32, "tf32 dense tensor-core")
    return None, "unknown"


class _GlobalOnly:
    """A stand-in for ``FlopCounterMode``'s module tracker: everything is counted under "Global". The tracker's
    module hooks break ``autograd.grad(create_graph=True)``, which R1 needs (PyTorch 2.14: "A leaf node was passed
    to _will_engine_execute_node but we are currently running autograd.grad()")."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _cpu_attention_flops():
    """Formulas for the CPU's attention kernel, which the registry leaves out (it prices the CUDA kernels): the
    registry's own shape formulas for attention, forward and backward."""
    from torch.utils.flop_counter import sdpa_backward_flop_count, sdpa_flop_count

    aten = torch.ops.aten

    def forward(query, key, value, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(query, key, value)

    def backward(grad_out, query, key, value, *args, out_shape=None, **kwargs):
        return sdpa_backward_flop_count(grad_out, query, key, value)

    return {aten._scaled_dot_product_flash_attention_for_cpu: forward,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: backward}


def count_flops(fn: Callable[[], object]) -> int:
    """The FLOPs that ``torch.utils.flop_counter.FlopCounterMode`` counts while ``fn()`` runs (eagerly), the CPU's
    attention kernel included."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_cpu_attention_flops())
    counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    return counter.get_total_flops()


class ForwardCounter:
    """Counts the forward calls of every module it is attached to (a forward hook on each), in ``count``."""

    def __init__(self):
        self.count = 0

    def attach(self, module: nn.Module) -> nn.Module:
        """Count ``module``'s forward calls from now on; returns ``module``."""
        if not isinstance(module, nn.Module):
            raise ValueError(f"a ForwardCounter attaches to a torch.nn.Module, got {type(module).__name__}")
        module.register_forward_hook(self._hook)
        return module

    def _hook(self, module, inputs, output) -> None:
        self.count += 1


def step_flops(state: TrainState, y: torch.Tensor) -> int:
    """FLOPs of the trainer's iteration on ``state`` (eager: compiled callables set aside), averaged over a full
    lazy-R1 cycle (``r1_every`` iterations; one iteration by default). Advances ``state`` as the iterations do."""
    eager = dataclasses.replace(state, compiled={})
    total = 0
    for _ in range(state.cfg.r1_every):
        total += count_flops(lambda: train_step(eager, y))
        eager.step += 1
    state.step = eager.step
    return total // state.cfg.r1_every


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _peak_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # bytes on macOS, KiB on Linux


def free_memory(device: torch.device) -> int:
    """Bytes that ``device`` can still give: CUDA's free memory, or the CPU's ``MemAvailable``."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        s in text for s in ("out of memory", "can't allocate memory", "not enough memory", "failed to allocate"))


def memory_per_image(cfg: ImageConfig, device, build: Callable | None = None) -> int:
    """Bytes one image adds to an iteration: the growth, from 2 to 4 images, of the tensors autograd saves for
    the backward passes of :func:`uotm.train.train_step` (R1's double backward included), plus the image itself.
    A lower bound (temporaries are not counted), cheap to measure at any size; measured eagerly (R1 is applied at
    step 0 whatever ``cfg.r1_every`` is)."""
    device = torch.device(device)
    cfg = dataclasses.replace(cfg, compile=())
    saved = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for b in (2, 4):
            total = 0

            def pack(t):
                nonlocal total
                total += t.numel() * t.element_size()
                return t

            torch.manual_seed(cfg.seed)
            state = make_state(cfg, *(build or default_networks)(cfg), device)
            y = torch.zeros(b, cfg.channels, cfg.image_size, cfg.image_size, device=device)
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                train_step(state, y)
            saved.append(total)
            del state, y
    return max((saved[1] - saved[0]) // 2, 1) + cfg.channels * cfg.image_size**2 * 4


def run_bench(cfg: ImageConfig, *, batch: int | None = None, steps: int = 20, warmup: int = 5, device=None,
              flops: bool = True, build: Callable | None = None) -> dict:
    """Time ``steps`` calls of :func:`uotm.train.train_step` after ``warmup`` untimed ones and return the report
    (the fields of ``python -m uotm bench --json``). ``batch`` defaults to ``cfg.batch_size``; the precision is
    ``cfg.precision`` (bf16 autocast on CUDA, fp32 elsewhere), the speed-ups are ``cfg.channels_last`` and
    ``cfg.compile``, lazy R1 is ``cfg.r1_every``; ``flops=False`` skips the FLOP count.

    A batch too large for the device's memory is one sentence (``ValueError``) with a batch that fits by
    :func:`memory_per_image`'s estimate: checked up front for the images themselves, caught when an allocation
    fails later."""
    cfg = cfg.validate()
    batch = cfg.batch_size if batch is None else batch
    if batch < 1 or steps < 1 or warmup < 0:
        raise ValueError(f"need batch >= 1, steps >= 1, warmup >= 0; got {batch}, {steps}, {warmup}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    too_big = batch * cfg.channels * cfg.image_size**2 * 4 > free_memory(device)
    if not too_big:
        try:
            return _run_bench(cfg, batch, steps, warmup, device, flops, build)
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc):
                raise
        if device.type == "cuda":
            torch.cuda.empty_cache()
    free = free_memory(device)
    per_image = memory_per_image(cfg, device, build)
    fits = int(0.8 * free) // per_image
    advice = f"--batch {fits} fits (about {per_image / 2**20:.3g} MiB per image)" if fits >= 1 else \
        "not even one image fits"
    raise ValueError(f"--batch {batch} does not fit in the memory of {device} ({free / 2**30:.3g} GiB free); "
                     f"{advice}")


def _run_bench(cfg: ImageConfig, batch: int, steps: int, warmup: int, device: torch.device, flops: bool,
               build: Callable | None) -> dict:
    cuda = device.type == "cuda"
    precision = cfg.precision if cuda else "fp32"
    configure_backends(device)

    torch.manual_seed(cfg.seed)
    transport_map, potential = (build or default_networks)(cfg)
    params_map = sum(p.numel() for p in transport_map.parameters())
    params_potential = sum(p.numel() for p in potential.parameters())
    state = make_state(cfg, transport_map, potential, device)
    state.step = state.iteration.steady_step()  # S-JKO: phase 1, entered by the first iteration
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    y = torch.rand(batch, cfg.channels, cfg.image_size, cfg.image_size, generator=gen, device=device) * 2 - 1
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    def iteration():
        out = train_step(state, y)
        state.step += 1  # as the trainer does (lazy R1 reads it)
        return out

    t0 = time.perf_counter()
    for _ in range(warmup):
        iteration()
    _synchronize(device)
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        losses = iteration()
    _synchronize(device)
    seconds = (time.perf_counter() - t0) / steps

    if cuda:
        peak_bytes, peak_kind = torch.cuda.max_memory_allocated(device), "cuda max_memory_allocated"
    else:
        peak_bytes, peak_kind = _peak_rss_bytes(), "process peak RSS (getrusage)"
    losses = {k: float(v) for k, v in losses.items()}  # one host synchronisation, after the timed region

    name = _device_name(device)
    peak_tflops, peak_which = device_peak(name, precision) if cuda else (None, "unknown")
    flop_iter = step_flops(state, y) if flops else None
    gflop_iter = flop_iter / 1e9 if flops else None
    tflops = gflop_iter / seconds / 1e3 if gflop_iter is not None else None
    note = None
    if not cuda and cfg.precision == "bf16":
        note = "bf16 autocast is CUDA only: the CPU runs fp32, as the trainer does"
    return {
        "model": cfg.model, "iteration": state.iteration.name, **state.iteration.log_extras(state),
        "preset": cfg.preset, "device": name, "device_type": device.type, "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "precision": precision, "precision_requested": cfg.precision, "channels_last": state.channels_last,
        "compile": sorted(cfg.compile), "r1_every": cfg.r1_every,
        "batch": batch, "steps": steps, "warmup": warmup, "warmup_s": round(warmup_s, 3),
        "ms_per_iter": seconds * 1e3, "images_per_s": batch / seconds,
        "peak_memory_bytes": int(peak_bytes), "peak_memory_gib": peak_bytes / 2**30, "peak_memory_kind": peak_kind,
        "flop_per_iter": flop_iter, "gflop_per_iter": gflop_iter, "gflop_per_image_iter": gflop_iter / batch if gflop_iter is not None else None,
        "flop_counter": "torch.utils.flop_counter.FlopCounterMode over one train_step (eager)" if flops else None,
        "tflops": tflops, "peak_tflops": peak_tflops, "peak_kind": peak_which,
        "peak_share": tflops / peak_tflops if tflops is not None and peak_tflops else None,
        "params_map": params_map, "params_potential": params_potential,
        "losses": losses, "note": note,
    }


def format_report(r: dict) -> str:
    """The report as a few lines of text."""
    def num(v, fmt):
        return "unknown" if v is None else format(v, fmt)

    lines = [
        f"{r['iteration']} iteration ({r['preset']}" + (f", phase {r['phase']}" if "phase" in r else "") + ")"
        + f": train_step, batch {r['batch']}, {r['steps']} timed steps after {r['warmup']} warm-up",
        f"  device     {r['device']}; torch {r['torch']}" + (f", CUDA {r['cuda']}" if r["cuda"] else ""),
        f"  settings   precision {r['precision']}, channels_last {r['channels_last']}, "
        f"compile {','.join(r['compile']) or 'none'}, r1_every {r['r1_every']}",
        f"  speed      {r['images_per_s']:.1f} images/s, {r['ms_per_iter']:.1f} ms/iteration",
        f"  memory     {r['peak_memory_gib']:.2f} GiB ({r['peak_memory_kind']})",
        f"  work       {num(r['gflop_per_image_iter'], '.3f')} GFLOP per image-iteration; "
        f"{num(r['tflops'], '.3f')} TFLOP/s achieved",
        ("  peak       unknown for this device: share unknown" if r["peak_tflops"] is None else
         f"  peak       {r['peak_tflops']:.1f} TFLOP/s ({r['peak_kind']}); share "
         + ("unknown" if r["peak_share"] is None else f"{100 * r['peak_share']:.2f}%")),
        f"  parameters map {r['params_map']:,}, potential {r['params_potential']:,}",
    ]
    if r["note"]:
        lines.append(f"  note       {r['note']}")
    return "\n".join(lines)
