import dataclasses
import json
import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml
from torch import nn

import uotm.train as T
from uotm.cli import main
from uotm.data.images import TensorImages, make_dataset
from uotm.presets import ImageConfig, preset
from uotm.presets import resolve
from uotm.train import make_state, read_metrics, train, train_step

TIMING = ("sec_per_iter", "seconds")



class TinyMap(nn.Module):
    """A stand-in for the NCSN++ map: T(x, z) = tanh(conv(silu(conv(x) + emb(z))))."""

    def __init__(self, channels, z_dim, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.emb = nn.Linear(z_dim, width)
        self.conv2 = nn.Conv2d(width, channels, 3, padding=1)
        self.register_buffer("kernel", torch.ones(2))  # a constant buffer, like the FIR kernels

    def forward(self, x, z):
        return torch.tanh(self.conv2(nn.functional.silu(self.conv1(x) + self.emb(z)[:, :, None, None])))


class TinyPotential(nn.Module):
    def __init__(self, channels, width=8):
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, padding=1, stride=2)
        self.head = nn.Linear(width, 1)

    def forward(self, y):
        return self.head(nn.functional.leaky_relu(self.conv(y), 0.2).sum(dim=(2, 3)))[:, 0]


def build_tiny(cfg):
    return TinyMap(cfg.channels, cfg.net.z_dim), TinyPotential(cfg.channels)


def tiny_data(n=64):
    """The first n digits, flippable (to exercise the flips)."""
    ds = make_dataset(preset("digits"))
    return TensorImages(ds.images[:n].clone(), "digits-64", hflip=True)


def tiny_cfg(**kw):
    values = dict(batch_size=16, log_every=1, snapshot_every=3, sample_every=5, steps=10, epochs=50,
                  schedule_epochs=3, lr_map=1e-3, lr_potential=1e-3, ema_decay=0.9, r1_gamma=1.0)
    values.update(kw)
    return preset("digits", **values)


def losses_of(run_dir):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in read_metrics(run_dir)]


def snapshot(run_dir):
    return torch.load(os.path.join(run_dir, "snapshot.pt"), weights_only=True)


def test_train_step_returns_device_losses_and_moves_the_ema():
    cfg = tiny_cfg()
    torch.manual_seed(0)
    state = make_state(cfg, *build_tiny(cfg))
    ema0 = [p.clone() for p in state.ema.parameters()]
    y = torch.rand(16, 1, 16, 16) * 2 - 1
    out = train_step(state, y)
    assert set(out) == set(T.LOSS_KEYS)
    assert all(v.dim() == 0 and torch.isfinite(v) and not v.requires_grad for v in out.values())
    assert float(out["r1"]) > 0
    for e0, e, p in zip(ema0, state.ema.parameters(), state.transport_map.parameters()):
        torch.testing.assert_close(e, 0.9 * e0 + 0.1 * p)
    no_r1 = make_state(preset("digits", r1_gamma=0.0), *build_tiny(cfg))
    assert float(train_step(no_r1, y)["r1"]) == 0.0


def test_a_run_writes_its_folder_and_the_config_round_trips(tmp_path):
    cfg = tiny_cfg(steps=6)
    state = train(cfg, tmp_path / "run", build=build_tiny, dataset=tiny_data(), device="cpu", progress=False)
    names = sorted(n for n in os.listdir(tmp_path / "run") if not n.startswith("events.out.tfevents"))
    assert names == ["config.yaml", "metrics.jsonl", "samples-0000005.png", "samples-0000006.png", "snapshot.pt"]
    assert resolve(config=tmp_path / "run" / "config.yaml") == cfg
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6] and all(math.isfinite(r["map_loss"]) for r in rows)
    assert rows[-1]["epoch"] == 1.5 and rows[-1]["kimg"] == 6 * 16 / 1000
    # the cosine schedule moved once, at the end of epoch 0 (4 batches of 16)
    assert rows[3]["lr_map"] == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi / 3)) / 2)
    snap = snapshot(tmp_path / "run")
    assert (snap["step"], snap["epoch"], snap["batch"]) == (6, 1, 2) == (state.step, state.epoch, state.batch)
    assert {"transport_map", "potential", "ema", "opt_map", "opt_potential", "sched_map", "sched_potential", "rng",
            "data", "config"} <= set(snap)
    assert ImageConfig.from_dict(snap["config"]) == cfg
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg, tmp_path / "run", build=build_tiny, dataset=tiny_data(), device="cpu", progress=False)
    with pytest.raises(ValueError, match="lr_map"):
        train(tiny_cfg(steps=8, lr_map=2e-3), tmp_path / "run", resume=True, build=build_tiny,
              dataset=tiny_data(), device="cpu", progress=False)
    with pytest.raises(ValueError, match="cannot resume"):
        train(cfg, tmp_path / "other", resume=True, build=build_tiny, dataset=tiny_data(), device="cpu")


def test_resume_repeats_an_uninterrupted_run_bit_for_bit(tmp_path, monkeypatch):
    data = tiny_data()
    kw = dict(build=build_tiny, dataset=data, device="cpu", progress=False)
    train(tiny_cfg(), tmp_path / "whole", **kw)
    reference = losses_of(tmp_path / "whole")
    assert [r["step"] for r in reference] == list(range(1, 11))

    # stopped cleanly at the end of epoch 0, then continued
    train(tiny_cfg(steps=4), tmp_path / "boundary", **kw)
    train(tiny_cfg(), tmp_path / "boundary", resume=True, **kw)
    assert losses_of(tmp_path / "boundary") == reference

    # crashed during iteration 8: the snapshot of iteration 6 (epoch 1, batch 2) is resumed, line 7 is dropped
    real_step = T.train_step

    def crash_at_8(state, y):
        if state.step == 7:
            raise RuntimeError("power cut")
        return real_step(state, y)

    monkeypatch.setattr(T, "train_step", crash_at_8)
    with pytest.raises(RuntimeError, match="power cut"):
        train(tiny_cfg(), tmp_path / "crash", **kw)
    assert [r["step"] for r in read_metrics(tmp_path / "crash")] == list(range(1, 8))
    assert (snapshot(tmp_path / "crash")["epoch"], snapshot(tmp_path / "crash")["batch"]) == (1, 2)
    monkeypatch.setattr(T, "train_step", real_step)
    train(tiny_cfg(), tmp_path / "crash", resume=True, **kw)
    assert losses_of(tmp_path / "crash") == reference
    a, b = snapshot(tmp_path / "whole"), snapshot(tmp_path / "crash")
    for key in ("transport_map", "potential", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert torch.equal(a["rng"]["noise"], b["rng"]["noise"])


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_snapshot(tmp_path, monkeypatch):
    real_step = T.train_step

    def poison_at_5(state, y):
        if state.step == 4:
            with torch.no_grad():
                for p in state.potential.parameters():
                    p.fill_(float("nan"))
        return real_step(state, y)

    monkeypatch.setattr(T, "train_step", poison_at_5)
    cfg = tiny_cfg(log_every=100, sample_every=100)
    with pytest.raises(FloatingPointError) as err:
        train(cfg, tmp_path / "run", build=build_tiny, dataset=tiny_data(), device="cpu", progress=False)
    message = str(err.value)
    assert "iteration 5" in message and "iteration 3" in message and "snapshot.pt" in message
    snap = snapshot(tmp_path / "run")
    assert snap["step"] == 3
    assert all(torch.isfinite(t).all() for t in snap["potential"].values())


# ----------------------------------------------------------------------------------------------------------------
# several processes


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, cfg_dict, run_dir, images):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train(ImageConfig.from_dict(cfg_dict), run_dir, build=build_tiny,
          dataset=TensorImages(images, "digits-64", hflip=True), device="cpu", progress=False)


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    cfg = tiny_cfg(steps=3, log_every=1, snapshot_every=3)
    data = tiny_data()
    train(cfg, tmp_path / "one", build=build_tiny, dataset=data, device="cpu", progress=False)
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg.to_dict(), str(tmp_path / "two"), data.images), nprocs=2)
    one, two = snapshot(tmp_path / "one"), snapshot(tmp_path / "two")
    assert two["world_size"] == 2 and two["step"] == 3
    for key in ("transport_map", "potential", "ema"):
        for name in one[key]:
            torch.testing.assert_close(two[key][name], one[key][name], rtol=1e-5, atol=1e-6)
    for r1, r2 in zip(losses_of(tmp_path / "one"), losses_of(tmp_path / "two")):
        for k in T.LOSS_KEYS:
            assert r2[k] == pytest.approx(r1[k], rel=1e-5, abs=1e-6)


def test_batch_must_divide_among_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert main(["train", "--preset", "digits", "--dry-run"]) == 2


# ----------------------------------------------------------------------------------------------------------------
# the command line with the real networks


def _real_networks_available():
    try:
        from uotm.nets import build_networks  # noqa: F401
    except ImportError:
        return False
    return True


needs_nets = pytest.mark.skipif(not _real_networks_available(), reason="uotm.nets.build_networks is not there yet")


def test_dry_run_prints_the_resolved_config(capsys):
    assert main(["train", "--preset", "digits", "--dry-run", "--json", "--set", "tau=2e-3", "--set",
                 "net.ch_mult=1,2", "--epochs", "7", "--run-dir", "somewhere"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["tau"] == 2e-3 and out["config"]["net"]["ch_mult"] == [1, 2] and out["config"]["epochs"] == 7
    assert out["run_dir"] == "somewhere" and out["world_size"] == 1 and out["batch_per_process"] == 64
    assert set(out["parameters"]) == {"transport_map", "potential"}
    assert main(["train", "--preset", "digits", "--dry-run", "--set", "nope=1"]) == 2
    assert "unknown config key 'nope'" in capsys.readouterr().err
    assert main(["train", "--preset", "digits", "--dry-run", "--set", "batch_size=1.5"]) == 2
    assert main(["train", "--dry-run"]) == 2
    assert "--preset" in capsys.readouterr().err


@needs_nets
@pytest.mark.parametrize("name, counts", [("cifar10", (44_820_611, 12_247_809)),
                                          ("celeba_256", (37_983_299, 26_881_537))])
def test_dry_run_counts_the_papers_parameters(capsys, name, counts):
    assert main(["train", "--preset", name, "--dry-run", "--json"]) == 0
    params = json.loads(capsys.readouterr().out)["parameters"]
    assert (params["transport_map"], params["potential"]) == counts


SMALL_NETS = ["--set", "net.base_channels=8", "--set", "net.potential_channels=8", "--set", "net.z_emb_dim=16",
              "--set", "net.z_dim=8"]


@needs_nets
def test_train_resume_and_sample_from_the_command_line(tmp_path, capsys):
    run = str(tmp_path / "run")
    args = ["train", "--preset", "digits", "--run-dir", run, "--batch-size", "8", "--device", "cpu", "--quiet",
            "--log-every", "1", *SMALL_NETS]
    assert main(args + ["--steps", "2"]) == 0
    assert main(["train", "--run-dir", run, "--resume", "--steps", "3", "--quiet", "--device", "cpu"]) == 0
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3]
    assert yaml.safe_load(open(os.path.join(run, "config.yaml")))["net"]["base_channels"] == 8
    out = str(tmp_path / "samples.npz")
    assert main(["sample", "--run", run, "-n", "5", "--batch", "2", "--out", out, "--quiet", "--device", "cpu"]) == 0
    with np.load(out) as f:
        images = f["arr_0"]
    assert images.shape == (5, 16, 16, 1) and images.dtype == np.uint8
    assert main(["sample", "--run", str(tmp_path / "none"), "-n", "5", "--out", out]) == 2
    capsys.readouterr()
    assert main(["fid", "--run", run, "--samples", out, "--data-root", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 5 and report["proxy_fid"] > 0


@needs_nets
def test_launch_runs_torchrun_and_streams_its_output(tmp_path, capfd):
    from uotm.dist import launch

    cfg = preset("digits", batch_size=8, steps=2, log_every=1,
                 net=dict(base_channels=8, potential_channels=8, z_emb_dim=16, z_dim=8))
    cfg = dataclasses.replace(cfg, snapshot_every=1)
    run = launch(cfg, 2, tmp_path / "run", extra_args=("--device", "cpu"), env={"OMP_NUM_THREADS": "1"})
    assert run == tmp_path / "run"
    out = capfd.readouterr().out
    assert "stopped after 2 iterations" in out
    # process 0's progress bar and its log lines reach the caller (a notebook cell), once: not one per process
    assert out.count("step 2/2: snapshot written; potential loss") == 1
    assert "UOTM digits" in out and "2/2" in out
    snap = snapshot(tmp_path / "run")
    assert snap["world_size"] == 2 and snap["step"] == 2
    with pytest.raises(RuntimeError, match="failed"):
        launch(cfg, 2, tmp_path / "run", extra_args=("--device", "cpu", "--quiet"))  # the run exists already
    with pytest.raises(ValueError, match="not divisible"):
        launch(cfg, 3, tmp_path / "x")


def test_lazy_r1_in_the_config_reaches_the_training_loop(tmp_path):
    """With ``r1_every = 2`` the logged R1 is zero on odd iterations and twice the penalty on even ones."""
    cfg = tiny_cfg(steps=4, r1_every=2, log_every=1)
    state = train(cfg, tmp_path / "run", build=build_tiny, dataset=tiny_data(), device="cpu", progress=False)
    assert state.cfg.r1_every == 2
    r1 = [row["r1"] for row in losses_of(tmp_path / "run")]
    assert len(r1) == 4 and r1[1] == 0 and r1[3] == 0 and r1[0] > 0 and r1[2] > 0


def test_a_run_writes_tensorboard_events_beside_its_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_cfg(steps=4, log_every=2)
    train(cfg, tmp_path / "run", build=build_tiny, dataset=tiny_data(), device="cpu", progress=False)
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    rows = read_metrics(tmp_path / "run")
    logged = events.Scalars("train/map_loss")
    assert [e.step for e in logged] == [r["step"] for r in rows] == [2, 4]
    assert [e.value for e in logged] == pytest.approx([r["map_loss"] for r in rows], rel=1e-6)
    assert "train/lr_potential" in events.Tags()["scalars"]
