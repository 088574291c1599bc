"""The toy S-JKO trainer: forward counts of the two schemes, a Gaussian sanity run, the schemes' agreement at
phase 0, validation, repeatability and the run folder."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml

from uotm import sjko
from uotm.bench import ForwardCounter
from uotm.exact import gaussian_jko_iterates
from uotm.sjko import SJKOToyConfig, sample, train_sjko_toy

TINY = SJKOToyConfig(target="25gaussian", phases=3, phase_steps=3, batch_size=32, hidden=16, eval_samples=64,
                     keep_points=16, sample_repeats=1, log_every=2)


@pytest.mark.parametrize("scheme", sjko.SCHEMES)
def test_forward_counts(scheme):
    cfg = replace(TINY, phases=4, scheme=scheme, first_phase_steps=2)
    run = train_sjko_toy(cfg, progress=False, counter=ForwardCounter())
    counts = [p.forwards_per_iteration for p in run.phases]
    if scheme == "sjko":  # potential step, frozen copy, map step (no frozen copy in phase 0: T_old = identity)
        assert counts == [2, 3, 3, 3]
    else:  # k pushes, potential step, map step
        assert counts == [k + 2 for k in range(4)]
    assert run.forwards == counts[0] * 2 + sum(counts[1:]) * TINY.phase_steps
    assert [m["step"] for m in run.metrics if m["phase"] == 0][-1] == 2  # phase 0 ran 2 iterations
    assert all(p.train_seconds > 0 and p.train_cpu_seconds > 0 and p.sample_seconds > 0 for p in run.phases)
    assert len(run.maps) == (4 if scheme == "naive" else 0) and len(run.states) == (4 if scheme == "sjko" else 0)
    # without a counter nothing is counted, and nothing else changes
    plain = train_sjko_toy(cfg, progress=False)
    assert plain.forwards is None and all(p.forwards_per_iteration is None for p in plain.phases)
    np.testing.assert_array_equal(plain.means, run.means)
    with pytest.raises(ValueError, match="ForwardCounter"):
        train_sjko_toy(cfg, progress=False, counter=3)


def test_gaussian_run_moves_towards_the_target():
    b = np.array([3.0, -2.0])
    cfg = SJKOToyConfig(target="normal", target_mean=b.tolist(), target_cov=[[1.0, 0.0], [0.0, 1.0]],
                        ignore_z=True, noise_scale=0.0, phases=2, phase_steps=60, batch_size=128, hidden=32,
                        lr_map=3e-3, lr_potential=1e-3, eval_samples=2000, keep_points=10, sample_repeats=1)
    run = train_sjko_toy(cfg, progress=False)
    exact_means, _ = gaussian_jko_iterates(np.zeros(2), np.eye(2), b, np.eye(2), cfg.h, 2)
    dist = [np.linalg.norm(m - b) for m in run.means]
    assert dist[1] < dist[0] < 0.7 * np.linalg.norm(b), dist  # exact: 1/2 and 1/4 of |b|
    # a short run already follows the exact iterates (b/2, 3b/4) roughly
    assert np.abs(run.means - exact_means[1:]).max() < 0.4, (run.means, exact_means)


def test_schemes_agree_in_phase_zero_and_differ_after():
    runs = {s: train_sjko_toy(replace(TINY, phases=2, scheme=s), progress=False) for s in sjko.SCHEMES}
    first = [r.phases[0] for r in runs.values()]
    np.testing.assert_array_equal(first[0].points, first[1].points)
    np.testing.assert_array_equal(first[0].mean, first[1].mean)
    np.testing.assert_array_equal(sample(runs["sjko"], 50, phase=0), sample(runs["naive"], 50, phase=0))
    assert not np.array_equal(runs["sjko"].phases[1].points, runs["naive"].phases[1].points)


def test_same_seed_same_samples():
    a = train_sjko_toy(TINY, progress=False)
    b = train_sjko_toy(TINY, progress=False)
    np.testing.assert_array_equal(sample(a, 40), sample(b, 40))
    np.testing.assert_array_equal(sample(a, 40, phase=1, seed=3), sample(b, 40, phase=1, seed=3))
    assert [m["potential_loss"] for m in a.metrics] == [m["potential_loss"] for m in b.metrics]
    c = train_sjko_toy(replace(TINY, seed=1), progress=False)
    assert not np.array_equal(sample(a, 40), sample(c, 40))


@pytest.mark.parametrize("changes, match", [
    (dict(scheme="fast"), "scheme"),
    (dict(loss="hinge"), "unknown S-JKO loss"),
    (dict(h=0.0), "h must be"),
    (dict(h=float("nan")), "h must be"),
    (dict(cost_scale="pixels"), "cost_scale"),
    (dict(phases=0), "phases"),
    (dict(phase_steps=2.5), "phase_steps"),
    (dict(lr_map=-1e-4), "lr_map"),
    (dict(betas=(0.5, 1.0)), "betas"),
    (dict(r1_gamma=-1.0), "r1_gamma"),
    (dict(noise_scale="yes"), "noise_scale"),
    (dict(keep_points=100, eval_samples=50), "keep_points"),
    (dict(target="spiral"), "unknown target"),
    (dict(target="noise"), "cannot be 'noise'"),
    (dict(target="normal"), "needs target_mean"),
    (dict(target="normal", target_mean=[0.0, 0.0], target_cov=[[1.0, 2.0], [2.0, 1.0]]), "positive definite"),
    (dict(target="normal", target_mean=[0.0, 0.0], target_cov=[[1.0, 0.1], [0.0, 1.0]]), "symmetric"),
    (dict(target="normal", target_mean=[0.0, 0.0, 0.0], target_cov=[[1.0, 0.0], [0.0, 1.0]]), "shape"),
    (dict(target_mean=[1.0, 1.0]), "are for target='normal'"),
])
def test_validation_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        train_sjko_toy(replace(TINY, **changes), progress=False)


def test_presets_and_config_round_trip(tmp_path):
    for name, cfg in sjko.TOY_PRESETS.items():
        assert cfg.validate().dim == 2, name
        assert (cfg.phases, cfg.h, cfg.phase_steps, cfg.batch_size) == (10, 1.0, 5000, 400)
    with pytest.raises(ValueError, match="unknown S-JKO toy config keys"):
        SJKOToyConfig.from_dict({"phase": 3})
    run = train_sjko_toy(replace(TINY, loss="chi", r1_gamma=0.5), out_dir=tmp_path, progress=False)
    saved = SJKOToyConfig.from_dict(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert saved == run.config and saved.dim == 2
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(run.metrics) > 0
    assert len((tmp_path / "phases.jsonl").read_text().splitlines()) == TINY.phases
    with pytest.raises(ValueError, match="phase must be"):
        sample(run, 5, phase=TINY.phases)
    with pytest.raises(ValueError, match="not an existing folder"):
        train_sjko_toy(TINY, out_dir=tmp_path / "missing", progress=False)


@pytest.mark.parametrize("loss", ["softplus", "jsd"])
def test_other_losses_and_point_cloud_target(loss, tmp_path):
    pts = np.random.default_rng(0).normal(size=(50, 2)) + 4.0
    np.save(tmp_path / "cloud.npy", pts)
    run = train_sjko_toy(replace(TINY, target=f"npy:{tmp_path / 'cloud.npy'}", loss=loss, scheme="naive"),
                         progress=False)
    assert all(np.isfinite(p.mean).all() for p in run.phases)
    assert run.data.shape == (TINY.keep_points, 2)


def test_toy_command_runs_a_2d_sjko_preset(tmp_path, capsys):
    from uotm.cli import main

    run_dir = tmp_path / "run"
    args = ["toy", "--model", "sjko", "--preset", "gaussian2d", "--out", str(run_dir), "--quiet",
            "--set", "phases=2", "--set", "phase_steps=10", "--set", "eval_samples=500", "--set", "keep_points=100",
            "--set", "first_phase_steps=15", "--set", "batch_size=64"]
    assert main(args) == 0
    for name in ("config.yaml", "metrics.jsonl", "phases.jsonl", "samples.npy", "snapshot.pt", "flow.png"):
        assert (run_dir / name).exists(), name
    assert np.load(run_dir / "samples.npy").shape == (2000, 2)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["phases"] == 2 and saved["first_phase_steps"] == 15 and saved["batch_size"] == 64
    snap = torch.load(run_dir / "snapshot.pt", weights_only=True)
    assert len(snap["states"]) == 2 and snap["config"]["phases"] == 2
    assert main(args) == 2  # the folder holds a run now
    assert "already holds a run" in capsys.readouterr().err
    x = str(tmp_path / "x")
    assert main(["toy", "--preset", "gaussian2d", "--out", x, "--dry-run"]) == 2  # needs --model sjko
    assert "--model sjko" in capsys.readouterr().err
    assert main(["toy", "--model", "sjko", "--preset", "gaussian2d", "--out", x, "--set", "tau=0.1", "--dry-run"]) == 2
    assert main(["toy", "--model", "sjko", "--preset", "gaussian2d", "--out", x, "--set", "nope=1", "--dry-run"]) == 2
    with pytest.raises(SystemExit):  # an image preset only: argparse refuses it (exit 2)
        main(["train", "--model", "sjko", "--preset", "gaussian2d", "--dry-run"])
    capsys.readouterr()
    assert main(["toy", "--model", "sjko", "--preset", "twocircles", "--out", x, "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["iterations"] == 50_000 and report["config"]["cost_scale"] == "per_coordinate"
    assert not (tmp_path / "x").exists()
