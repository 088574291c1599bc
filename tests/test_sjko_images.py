"""S-JKO image training through the image trainer (``cfg.model == "sjko"``): config, phases, resume, DDP, CLI.

The tiny networks and data of ``tests/test_train.py`` stand in for the NCSN++ map and the potential.
"""

import json
import math
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml

import uotm.train as T
from uotm.bench import format_report
from uotm.cli import main
from uotm.data.images import TensorImages
from uotm.presets import ImageConfig, SJKOConfig, preset, preset_defaults
from uotm.presets import resolve
from uotm.train import make_state, read_metrics, save_config, train, train_step

from test_train import _free_port, build_tiny, losses_of, snapshot, tiny_data  # noqa: E402



def sjko_cfg(sjko=None, **kw):
    """Tiny S-JKO runs: 3 phases of 4, 3 and 3 iterations (10 in all) on batches of 16 (4 per epoch of tiny_data)."""
    values = dict(batch_size=16, log_every=1, snapshot_every=3, sample_every=5, steps=0, lr_map=1e-3,
                  lr_potential=1e-3, lr_floor=1e-5, ema_decay=0.9, r1_gamma=1.0)
    values.update(kw)
    blocks = dict(phases=3, first_phase_steps=4, phase_steps=3)
    blocks.update(sjko or {})
    return preset("digits", model="sjko", sjko=blocks, **values)


def state_of(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def same(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------------------------------------------
# the config


def test_sjko_presets_follow_the_authors_cifar10_code():
    cfg = preset("cifar10", model="sjko")
    assert cfg.model == "sjko" and cfg.preset == "cifar10"
    assert (cfg.batch_size, cfg.lr_map, cfg.lr_potential, cfg.r1_gamma, cfg.ema_decay, cfg.lr_floor) == (
        256, 2e-4, 1e-4, 0.2, 0.9999, 5e-5)
    assert cfg.sjko == SJKOConfig(h=0.1, cost_scale="per_coordinate", loss="kl", phases=100,
                                  first_phase_steps=10_000, phase_steps=2_000, noise_scale=1 / 32)
    assert cfg.sjko.total_steps == cfg.total_steps == 10_000 + 99 * 2_000
    assert preset("cifar10", model="sjko", steps=500).total_steps == 500
    assert cfg.net == preset("cifar10").net
    celeba = preset("celeba_256", model="sjko")
    assert celeba.r1_gamma == 20.0 and (celeba.batch_size, celeba.ema_decay, celeba.image_size) == (32, 0.999, 256)
    assert preset("cifar10+mnist", model="sjko").dataset == "cifar10+mnist"
    digits = preset("digits", model="sjko")
    assert digits.sjko.total_steps == 800 and digits.precision == "fp32" and digits.ema_decay == 0.99
    # UOTM's presets are unchanged, and preset_defaults hands out copies
    uotm = preset("cifar10")
    assert uotm.model == "uotm" and uotm.lr_map == 1.6e-4 and uotm.lr_floor == 1e-5
    base = preset_defaults("cifar10", "sjko")
    base.sjko.phases = 7
    base.net.base_channels = 1
    assert preset("cifar10", model="sjko").sjko.phases == 100 and preset("cifar10").net.base_channels == 128


def test_phases_and_their_iterations():
    sc = SJKOConfig(phases=3, first_phase_steps=4, phase_steps=3)
    assert sc.total_steps == 10
    assert [sc.phase_of(s) for s in range(12)] == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]
    assert [sc.phase_start(k) for k in range(3)] == [0, 4, 7]
    assert SJKOConfig(phases=1, first_phase_steps=5).phase_of(100) == 0


def test_config_yaml_round_trip_and_sparse_files(tmp_path):
    cfg = sjko_cfg(sjko=dict(loss="jsd", h=0.5, cost_scale="euclidean", noise_scale=0.0))
    save_config(cfg, tmp_path / "config.yaml")
    assert resolve(config=tmp_path / "config.yaml") == cfg
    assert ImageConfig.from_dict(cfg.to_dict()) == cfg
    assert ImageConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg
    # a file with a few keys: the rest are the preset's S-JKO defaults
    (tmp_path / "few.yaml").write_text("preset: cifar10\nmodel: sjko\nsjko:\n  phases: 50\n")
    few = resolve(config=tmp_path / "few.yaml")
    assert few == preset("cifar10", model="sjko", sjko=dict(phases=50))
    # an old UOTM config (no model, no sjko block) is still a UOTM config
    old = preset("digits").to_dict()
    del old["model"], old["sjko"]
    assert ImageConfig.from_dict(old) == preset("digits")


@pytest.mark.parametrize("change, words", [
    (dict(model="gan"), "model must be one of uotm, sjko"),
    (dict(sjko=dict(h=0.0)), "sjko.h"),
    (dict(sjko=dict(h=float("inf"))), "sjko.h"),
    (dict(sjko=dict(cost_scale="pixel")), "sjko.cost_scale"),
    (dict(sjko=dict(loss="wasserstein")), "sjko.loss: unknown S-JKO loss"),
    (dict(sjko=dict(phases=0)), "sjko.phases must be a positive integer"),
    (dict(sjko=dict(first_phase_steps=2.5)), "sjko.first_phase_steps"),
    (dict(sjko=dict(phase_steps=-1)), "sjko.phase_steps"),
    (dict(sjko=dict(noise_scale=-0.1)), "sjko.noise_scale"),
    (dict(sjko=dict(steps=3)), "unknown S-JKO fields"),
])
def test_invalid_sjko_configs_are_clear_errors(change, words):
    kw = {"model": "sjko", **change}
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        preset("digits", **kw)


def test_from_dict_rejects_unknown_sjko_keys():
    values = preset("digits", model="sjko").to_dict()
    values["sjko"]["step_size"] = 1
    with pytest.raises(ValueError, match=r"sjko\.step_size"):
        ImageConfig.from_dict(values)
    with pytest.raises(ValueError, match="sjko must be a mapping"):
        ImageConfig.from_dict({"sjko": 3})


# ----------------------------------------------------------------------------------------------------------------
# the iteration and its phases


def _spy(state, monkeypatch):
    """Record the map's inputs (its last call is the map step's), the old map's inputs and outputs, and the
    arguments of the S-JKO losses' map_loss (uotm.losses.JKOStep)."""
    rec = {"map": [], "old": [], "loss": []}
    state.transport_map.register_forward_hook(lambda m, args, out: rec["map"].append(args))
    state.old_map.register_forward_hook(lambda m, args, out: rec["old"].append((args, out)))
    losses = state.iteration.losses
    real = losses.map_loss

    def spy(v_fake, x_old, x_new):
        rec["loss"].append(dict(x_old=x_old.detach().clone(), x_new=x_new.detach().clone(), h=losses.h,
                                cost_scale=losses.cost_scale))
        return real(v_fake, x_old, x_new)

    monkeypatch.setattr(losses, "map_loss", spy)
    return rec


def test_phase_zero_is_the_identity_and_a_phase_boundary_freezes_the_map(monkeypatch):
    cfg = sjko_cfg(sjko=dict(first_phase_steps=2, phase_steps=2, phases=3))
    torch.manual_seed(0)
    state = make_state(cfg, *build_tiny(cfg))
    assert state.phase == 0 and all(not p.requires_grad for p in state.old_map.parameters())
    assert not state.old_map.training
    rec = _spy(state, monkeypatch)
    y = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def step():
        out = train_step(state, y)
        state.step += 1
        return out

    for _ in range(2):  # phase 0: T_old(x, z') = x
        out = step()
        assert set(out) == set(T.LOSS_KEYS) and all(torch.isfinite(v) for v in out.values())
        x_map, _ = rec["map"][-1]
        assert torch.equal(rec["loss"][-1]["x_old"], x_map)
        assert rec["loss"][-1]["h"] == 0.1 and rec["loss"][-1]["cost_scale"] == "per_coordinate"
        assert not rec["old"]  # the old map is not run in phase 0
        by_hand = (x_map - rec["loss"][-1]["x_new"]).square().flatten(1).mean(1) / (2 * 0.1)
        assert float(out["cost"]) == pytest.approx(float(by_hand.mean()), rel=1e-6)
    assert state.phase == 0

    at_boundary = state_of(state.transport_map)
    step()  # the first iteration of phase 1: the old map is the map of that moment
    assert state.phase == 1 and same(state_of(state.old_map), at_boundary)
    (x_old_in, z_old), t_old = rec["old"][-1]
    x_map, z_map = rec["map"][-1]
    assert torch.equal(x_old_in, x_map) and not torch.equal(z_old, z_map)  # same x, independent latents
    assert torch.equal(rec["loss"][-1]["x_old"], t_old) and not torch.equal(t_old, x_map)
    moved = state_of(state.transport_map)
    assert not same(moved, at_boundary)

    step()  # still phase 1: the old map stays frozen while the map moves on
    assert state.phase == 1 and same(state_of(state.old_map), at_boundary)
    assert not same(state_of(state.transport_map), moved)
    assert all(p.grad is None for p in state.old_map.parameters())

    at_second = state_of(state.transport_map)
    step()  # phase 2
    assert state.phase == 2 and same(state_of(state.old_map), at_second)


def test_data_noise_shrinks_with_the_phase(monkeypatch):
    cfg = sjko_cfg(sjko=dict(first_phase_steps=1, phase_steps=1, phases=4, noise_scale=0.5), r1_gamma=0.0)
    torch.manual_seed(0)
    state = make_state(cfg, *build_tiny(cfg))
    seen = []
    state.potential.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    y = torch.zeros(16, 1, 16, 16)
    for k in range(4):
        seen.clear()
        train_step(state, y)
        state.step += 1
        noisy = seen[0]  # the potential's first call in the iteration is on the (noisy) real images
        assert noisy.std().item() == pytest.approx(0.5 / (k + 1), rel=0.15)
    quiet = make_state(sjko_cfg(sjko=dict(noise_scale=0.0)), *build_tiny(cfg))
    seen.clear()
    quiet.potential.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    train_step(quiet, y)
    assert torch.equal(seen[0], y)


def test_the_cosine_spans_all_phases_stepped_every_iteration(tmp_path):
    cfg = sjko_cfg(sample_every=100)
    train(cfg, tmp_path / "run", build=build_tiny, dataset=tiny_data(), device="cpu", progress=False)
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 11))  # the phases' 10 iterations, whatever epochs says
    assert [r["phase"] for r in rows] == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    for r in rows:
        expect = 1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * r["step"] / 10)) / 2
        assert r["lr_map"] == pytest.approx(expect) and r["lr_potential"] == pytest.approx(expect)
    assert rows[-1]["lr_map"] == pytest.approx(1e-5)
    snap = snapshot(tmp_path / "run")
    assert snap["phase"] == 2 and "old_map" in snap and snap["step"] == 10
    # steps stops early; the schedule still spans all phases
    train(sjko_cfg(steps=3), tmp_path / "short", build=build_tiny, dataset=tiny_data(), device="cpu",
          progress=False)
    assert [r["lr_map"] for r in read_metrics(tmp_path / "short")] == [r["lr_map"] for r in rows[:3]]


def test_resume_across_a_phase_boundary_repeats_an_uninterrupted_run(tmp_path, monkeypatch):
    data = tiny_data()
    kw = dict(build=build_tiny, dataset=data, device="cpu", progress=False)
    train(sjko_cfg(), tmp_path / "whole", **kw)
    reference = losses_of(tmp_path / "whole")
    assert [r["step"] for r in reference] == list(range(1, 11))

    # stopped exactly at the end of phase 0 (the snapshot is still in phase 0), then continued
    train(sjko_cfg(steps=4), tmp_path / "boundary", **kw)
    assert snapshot(tmp_path / "boundary")["phase"] == 0
    train(sjko_cfg(), tmp_path / "boundary", resume=True, **kw)
    assert losses_of(tmp_path / "boundary") == reference

    # crashed during iteration 8 (phase 2's first): the snapshot of iteration 6 (phase 1, its old map) is resumed
    real_step = T.train_step

    def crash_at_8(state, y):
        if state.step == 7:
            raise RuntimeError("power cut")
        return real_step(state, y)

    monkeypatch.setattr(T, "train_step", crash_at_8)
    with pytest.raises(RuntimeError, match="power cut"):
        train(sjko_cfg(), tmp_path / "crash", **kw)
    snap = snapshot(tmp_path / "crash")
    assert (snap["step"], snap["phase"]) == (6, 1)
    monkeypatch.setattr(T, "train_step", real_step)
    train(sjko_cfg(), tmp_path / "crash", resume=True, **kw)
    assert losses_of(tmp_path / "crash") == reference
    a, b = snapshot(tmp_path / "whole"), snapshot(tmp_path / "crash")
    for key in ("transport_map", "potential", "ema", "old_map"):
        assert same(a[key], b[key]), key
    assert torch.equal(a["rng"]["noise"], b["rng"]["noise"]) and a["phase"] == b["phase"] == 2

    # the S-JKO block is part of the run: it may not change on resume
    with pytest.raises(ValueError, match="sjko"):
        train(sjko_cfg(sjko=dict(phases=4)), tmp_path / "crash", resume=True, **kw)


# ----------------------------------------------------------------------------------------------------------------
# several processes


def _ddp_worker(rank, world, port, cfg_dict, run_dir, images):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    state = train(ImageConfig.from_dict(cfg_dict), run_dir, build=build_tiny,
                  dataset=TensorImages(images, "digits-64", hflip=True), device="cpu", progress=False)
    torch.save({"old_map": state.old_map.state_dict(), "phase": state.phase}, os.path.join(run_dir, f"old-{rank}.pt"))


def test_two_gloo_processes_match_one_process_across_a_phase_boundary(tmp_path):
    cfg = sjko_cfg(sjko=dict(first_phase_steps=2, phase_steps=1, phases=3), snapshot_every=4)
    data = tiny_data()
    train(cfg, tmp_path / "one", build=build_tiny, dataset=data, device="cpu", progress=False)
    mp.spawn(_ddp_worker, args=(2, _free_port(), cfg.to_dict(), str(tmp_path / "two"), data.images), nprocs=2)
    one, two = snapshot(tmp_path / "one"), snapshot(tmp_path / "two")
    assert two["world_size"] == 2 and two["step"] == 4 and one["phase"] == two["phase"] == 2
    for key in ("transport_map", "potential", "ema", "old_map"):
        for name in one[key]:
            torch.testing.assert_close(two[key][name], one[key][name], rtol=1e-5, atol=1e-6)
    r0, r1 = (torch.load(tmp_path / "two" / f"old-{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["phase"] == r1["phase"] == 2 and same(r0["old_map"], r1["old_map"])  # every process has it
    rows_one, rows_two = losses_of(tmp_path / "one"), losses_of(tmp_path / "two")
    assert [r["phase"] for r in rows_two] == [0, 0, 1, 2]
    for a, b in zip(rows_one, rows_two):
        for k in T.LOSS_KEYS:
            assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# the command line


def test_dry_run_json_for_sjko(capsys):
    assert main(["train", "--preset", "digits", "--model", "sjko", "--dry-run", "--json", "--set", "sjko.phases=5",
                 "--set", "sjko.loss=jsd", "--steps", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    cfg = out["config"]
    assert cfg["model"] == "sjko" and cfg["preset"] == "digits" and cfg["lr_floor"] == 5e-5
    assert cfg["sjko"]["phases"] == 5 and cfg["sjko"]["loss"] == "jsd" and cfg["sjko"]["h"] == 0.1
    sch = out["sjko_schedule"]
    first, each = cfg["sjko"]["first_phase_steps"], cfg["sjko"]["phase_steps"]
    assert sch["total_steps"] == first + 4 * each and sch["steps_run"] == 100
    assert sch["euclidean_h"] == pytest.approx(0.1 * 256)
    assert out["run_dir"] == os.path.join("runs", "sjko-digits")
    assert set(out["parameters"]) == {"transport_map", "potential"} and min(out["parameters"].values()) > 0
    assert ImageConfig.from_dict(cfg) == preset("digits", model="sjko", steps=100,
                                                sjko=dict(phases=5, loss="jsd"))

    assert main(["train", "--preset", "cifar10", "--model", "sjko", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sjko_schedule"]["total_steps"] == 208_000 and out["config"]["lr_map"] == 2e-4
    assert main(["train", "--preset", "digits", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["model"] == "uotm" and "sjko_schedule" not in out

    assert main(["train", "--preset", "digits", "--model", "sjko", "--dry-run", "--epochs", "3"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["train", "--preset", "digits", "--model", "sjko", "--dry-run", "--set", "sjko.hh=1"]) == 2
    assert "unknown config key 'sjko.hh'" in capsys.readouterr().err
    assert main(["train", "--preset", "digits", "--model", "sjko", "--dry-run", "--set", "sjko.h=-1"]) == 2
    assert "sjko.h" in capsys.readouterr().err
    assert main(["train", "--preset", "digits", "--dry-run", "--set", "model=sjko"]) == 2
    assert "--model" in capsys.readouterr().err


SMALL_NETS = ["--set", "net.base_channels=8", "--set", "net.potential_channels=8", "--set", "net.z_emb_dim=16",
              "--set", "net.z_dim=8"]


def test_train_resume_sample_and_bench_sjko_from_the_command_line(tmp_path, capsys):
    run = str(tmp_path / "run")
    args = ["train", "--preset", "digits", "--model", "sjko", "--run-dir", run, "--batch-size", "8", "--device",
            "cpu", "--quiet", "--log-every", "1", "--set", "sjko.first_phase_steps=2", "--set", "sjko.phase_steps=1",
            "--set", "sjko.phases=3", *SMALL_NETS]
    assert main(args + ["--steps", "2"]) == 0
    # resumed from the run's own config.yaml: S-JKO, its phases, past the phase boundary
    assert main(["train", "--run-dir", run, "--resume", "--steps", "4", "--quiet", "--device", "cpu"]) == 0
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and [r["phase"] for r in rows] == [0, 0, 1, 2]
    whole = str(tmp_path / "whole")  # the real networks, uninterrupted: the same losses
    assert main([a if a != run else whole for a in args] + ["--steps", "4"]) == 0
    assert losses_of(whole) == losses_of(run)
    saved = yaml.safe_load(open(os.path.join(run, "config.yaml")))
    assert saved["model"] == "sjko" and saved["sjko"]["phases"] == 3 and saved["net"]["base_channels"] == 8
    out = str(tmp_path / "samples.npz")
    assert main(["sample", "--run", run, "-n", "5", "--batch", "2", "--out", out, "--quiet", "--device", "cpu"]) == 0
    with np.load(out) as f:
        images = f["arr_0"]
    assert images.shape == (5, 16, 16, 1) and images.dtype == np.uint8
    capsys.readouterr()

    bench = ["bench", "--preset", "digits", "--batch", "8", "--steps", "1", "--warmup", "0", "--json", *SMALL_NETS]
    assert main(bench + ["--model", "sjko"]) == 0
    sjko_report = json.loads(capsys.readouterr().out)
    assert sjko_report["model"] == "sjko" and sjko_report["phase"] == 1
    assert main(bench) == 0
    uotm_report = json.loads(capsys.readouterr().out)
    assert (uotm_report["model"], uotm_report["iteration"]) == ("uotm", "UOTM") and "phase" not in uotm_report
    # the S-JKO iteration of phase 1 runs the map once more, without gradients
    assert sjko_report["flop_per_iter"] > uotm_report["flop_per_iter"]
    assert format_report(sjko_report).startswith("S-JKO iteration (digits, phase 1): train_step, batch 8, 1 timed")
    assert format_report(uotm_report).startswith("UOTM iteration (digits): train_step, batch 8, 1 timed")
