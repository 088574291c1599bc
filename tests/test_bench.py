"""The benchmark of the trainer's iteration, and the fast path against the plain eager one.

``torch.compile`` is not in the fast path tested by default: on the shared 2-core test machine, compiling the
digits potential's forward and backward alone took minutes. ``UOTM_TEST_COMPILE=1`` runs that test too.
"""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

import uotm.train as T
from uotm.bench import count_flops, device_peak
from uotm.cli import main
from uotm.nets import build_networks
from uotm.presets import preset
from uotm.train import make_state, train_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = {"model", "iteration", "preset", "device", "device_type", "torch", "cuda", "precision", "precision_requested",
          "channels_last", "compile", "r1_every", "batch", "steps", "warmup", "warmup_s", "ms_per_iter", "images_per_s",
          "peak_memory_bytes", "peak_memory_gib", "peak_memory_kind", "flop_per_iter", "gflop_per_iter",
          "gflop_per_image_iter", "flop_counter", "tflops", "peak_tflops", "peak_kind", "peak_share", "params_map",
          "params_potential", "losses", "note"}
SMALL = dict(base_channels=8, potential_channels=8, z_emb_dim=16, z_dim=8)



class MatmulConvFlops(TorchDispatchMode):
    """An independent count: every aten op that reaches the dispatcher, priced by the flop registry's formulas."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def test_bench_command_prints_every_field_with_sane_values():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "uotm", "bench", "--preset", "digits", "--steps", "2", "--warmup",
                           "1", "--json", "--threads", "1"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == FIELDS
    cfg = preset("digits")
    assert (report["preset"], report["batch"], report["steps"], report["warmup"]) == ("digits", 64, 2, 1)
    assert report["device_type"] == "cpu" and report["torch"] == torch.__version__ and report["precision"] == "fp32"
    assert report["compile"] == [] and report["r1_every"] == 1 and report["channels_last"] is False
    assert report["images_per_s"] > 0 and report["ms_per_iter"] > 0
    assert report["images_per_s"] * report["ms_per_iter"] / 1000 == pytest.approx(64)
    assert report["peak_memory_bytes"] > 0 and report["peak_memory_kind"].startswith("process peak RSS")
    assert report["gflop_per_image_iter"] > 0 and report["tflops"] > 0
    assert report["peak_tflops"] is None and report["peak_share"] is None and report["peak_kind"] == "unknown"
    assert all(isinstance(v, float) for v in report["losses"].values()) and report["losses"]["r1"] > 0

    # the FLOP count equals that of one train_step counted independently (shapes alone decide it)
    torch.manual_seed(0)
    state = make_state(cfg, *build_networks(cfg))
    counter = MatmulConvFlops()
    with counter:
        train_step(state, torch.rand(64, 1, 16, 16) * 2 - 1)
    assert report["flop_per_iter"] == counter.total
    assert report["gflop_per_image_iter"] == pytest.approx(counter.total / 64 / 1e9)
    assert (report["params_map"], report["params_potential"]) == (
        sum(p.numel() for p in state.transport_map.parameters()), sum(p.numel() for p in state.potential.parameters()))


def test_bench_text_output_and_bf16_on_the_cpu(capsys):
    args = ["bench", "--preset", "digits", "--batch", "8", "--steps", "1", "--warmup", "0", "--no-flops",
            "--precision", "bf16", *[a for k, v in SMALL.items() for a in ("--set", f"net.{k}={v}")]]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "images/s" in out and "ms/iteration" in out and "precision fp32" in out
    assert "bf16 autocast is CUDA only" in out
    assert main(["bench", "--preset", "digits", "--set", "compile=[mapp]"]) == 2
    assert "compile[0] must be one of map, potential" in capsys.readouterr().err


def test_device_peaks():
    assert device_peak("NVIDIA H100 80GB HBM3", "bf16") == (989.4, "bf16 dense tensor-core")
    assert device_peak("NVIDIA H100 PCIe", "fp32") == (378.0, "tf32 dense tensor-core")
    assert device_peak("NVIDIA H200", "bf16")[0] == 989.4 and device_peak("NVIDIA H200 NVL", "bf16")[0] == 835.0
    assert device_peak("NVIDIA A100-SXM4-80GB", "bf16")[0] == 312.0
    assert device_peak("Tesla V100-SXM2-32GB", "bf16") == (None, "unknown")


def test_count_flops_prices_attention_on_the_cpu_and_r1s_double_backward():
    q = torch.randn(2, 1, 64, 8, requires_grad=True)
    attention = torch.nn.functional.scaled_dot_product_attention
    assert count_flops(lambda: attention(q, q, q)) == 2 * (2 * 64 * 64 * 8) * 2  # Q K^T and A V, batch 2
    w = torch.randn(5, 3, requires_grad=True)
    y = torch.randn(4, 5, requires_grad=True)

    def r1_like():
        (g,) = torch.autograd.grad((y @ w).square().sum(), y, create_graph=True)
        g.square().sum().backward()

    assert count_flops(r1_like) > count_flops(lambda: (y @ w).square().sum().backward()) > 0


# ----------------------------------------------------------------------------------------------------------------
# the fast path gives the plain eager path's parameters


def _plain_ema(state):
    """The EMA one parameter at a time."""
    with torch.no_grad():
        for e, p in zip(state.ema.parameters(), state.transport_map.parameters()):
            e.mul_(state.cfg.ema_decay).add_((1 - state.cfg.ema_decay) * p)
        for e, b in zip(state.ema.buffers(), state.transport_map.buffers()):
            e.copy_(b)


def _adam(params, lr, cfg, **kw):
    return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.betas), **kw)


def _run(cfg, y, steps=3, plain=False, fused=False, **fields):
    torch.manual_seed(cfg.seed)
    cfg = dataclasses.replace(cfg, **fields)
    state = make_state(cfg, *build_networks(cfg))
    if plain or fused:  # plain: one parameter at a time; fused: the fused kernels CUDA uses, here on the CPU
        kw = {"foreach": False} if plain else {"fused": True}
        state.opt_map = _adam(state.transport_map.parameters(), cfg.lr_map, cfg, **kw)
        state.opt_potential = _adam(state.potential.parameters(), cfg.lr_potential, cfg, **kw)
    losses = []
    for _ in range(steps):
        losses.append(train_step(state, y))
        state.step += 1
    return state, losses


def _assert_same(fast, plain, rtol=1e-4, atol=1e-5):
    for name in ("transport_map", "potential", "ema"):
        a, b = getattr(fast, name).state_dict(), getattr(plain, name).state_dict()
        for key in b:
            torch.testing.assert_close(a[key], b[key], rtol=rtol, atol=atol, msg=lambda m: f"{name}.{key}: {m}")


@pytest.fixture
def float64():
    """Both paths in float64: Adam divides by the root of the squared gradients, so where a gradient is near zero
    it turns float32 rounding (channels-last convolutions sum in another order) into differences of a good part of
    a step; in float64 the two paths agree to ~1e-12."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(dtype)


@pytest.mark.parametrize("optimiser", ["foreach", "fused"])
def test_three_fast_steps_give_the_plain_eager_parameters(monkeypatch, float64, optimiser):
    cfg = preset("digits", batch_size=16, lr_map=1e-3, lr_potential=1e-3, ema_decay=0.9, r1_gamma=1.0)
    y = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    fast, fast_losses = _run(cfg, y, channels_last=True, fused=optimiser == "fused")
    assert fast.transport_map.stem.weight.dtype == torch.float64 and fast.channels_last and fast.transport_map.stem.weight.is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(T, "update_ema", _plain_ema)
    plain, plain_losses = _run(cfg, y, plain=True, channels_last=False)
    assert plain.opt_map.defaults["foreach"] is False and not plain.channels_last
    _assert_same(fast, plain, rtol=1e-9, atol=1e-10)
    for a, b in zip(fast_losses, plain_losses):
        for k in T.LOSS_KEYS:
            torch.testing.assert_close(a[k], b[k], rtol=1e-9, atol=1e-12)
    # and the networks did move
    torch.manual_seed(cfg.seed)
    initial = build_networks(cfg)[0].state_dict()
    assert any(not torch.allclose(initial[k], v) for k, v in plain.transport_map.state_dict().items())


@pytest.mark.skipif(not os.environ.get("UOTM_TEST_COMPILE"), reason="torch.compile takes minutes on this machine; "
                                                                    "set UOTM_TEST_COMPILE=1")
def test_three_compiled_steps_give_the_eager_parameters():
    cfg = preset("digits", batch_size=16, lr_map=1e-3, lr_potential=1e-3, ema_decay=0.9, r1_gamma=1.0,
                 net=SMALL)
    y = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    fast, fast_losses = _run(cfg, y, compile=("map", "potential"))
    eager, eager_losses = _run(cfg, y)
    assert set(fast.compiled) == {"map", "map_ddp", "potential", "potential_ddp"} and not eager.compiled
    _assert_same(fast, eager)
    assert float(fast_losses[-1]["r1"]) > 0


def test_lazy_r1_applies_k_times_the_penalty_every_k_steps():
    cfg = preset("digits", batch_size=8, r1_gamma=1.0, net=SMALL)
    y = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    _, every = _run(cfg, y, steps=1)
    lazy, lazy_losses = _run(cfg, y, steps=3, r1_every=2)
    assert lazy.cfg.r1_every == 2
    torch.testing.assert_close(lazy_losses[0]["r1"], 2 * every[0]["r1"])  # step 0: applied, doubled
    assert float(lazy_losses[1]["r1"]) == 0.0 and float(lazy_losses[2]["r1"]) > 0
    with pytest.raises(ValueError, match="r1_every"):
        make_state(dataclasses.replace(cfg, r1_every=0), *build_networks(cfg))
    with pytest.raises(ValueError, match="compile"):
        make_state(dataclasses.replace(cfg, compile=("generator",)), *build_networks(cfg))


def test_lazy_r1_from_the_config_reaches_the_bench():
    """``r1_every`` in the config (``--set r1_every=K``) reaches the bench."""
    from uotm.bench import run_bench
    from uotm.presets import preset

    with pytest.raises(ValueError, match="r1_every"):
        preset("digits", r1_every=0)
    cfg = preset("digits", r1_every=3)
    assert run_bench(cfg, batch=2, steps=1, warmup=0, flops=False)["r1_every"] == 3
    assert run_bench(dataclasses.replace(cfg, r1_every=1), batch=2, steps=1, warmup=0, flops=False)["r1_every"] == 1
