import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml

from uotm.cli import main
from uotm.data.toy import TOY_NAMES, make_distribution, resolve_pair
from uotm.nets import ToyMap, ToyPotential
from uotm.toy import ToyConfig, train_toy, training_data

SMALL = ["--set", "epochs=2", "--set", "num_data=256", "--set", "batch_size=64", "--set", "log_every=2", "--quiet"]


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_toy_networks_have_the_reference_sizes():
    assert n_params(ToyMap(1)) == 182_273
    assert n_params(ToyPotential(1)) == 165_505
    assert ToyMap(2)(torch.zeros(5, 2)).shape == (5, 2)
    assert ToyPotential(2)(torch.zeros(5, 2)).shape == (5,)


@pytest.mark.parametrize("name", TOY_NAMES)
def test_every_distribution_samples_finite_points(name):
    dist = make_distribution(name)
    pts = dist.sample(300, torch.Generator().manual_seed(0))
    assert pts.shape == (300, dist.dim) and torch.isfinite(pts).all()


def test_outlier_law_has_exactly_the_asked_share_at_the_asked_place():
    pts = make_distribution("outlier", 1, 0.01, 8.0).sample(4000, torch.Generator().manual_seed(0))[:, 0]
    assert int((pts - 8.0).abs().lt(1.0).sum()) == 40
    assert float(pts[pts < 4].mean()) == pytest.approx(1.0, abs=0.01)


def test_mixtures_put_mass_where_the_spec_says():
    g = torch.Generator().manual_seed(0)
    q = make_distribution("q").sample(6000, g)[:, 0]
    assert float((q > 0.5).float().mean()) == pytest.approx(2 / 3, abs=0.01)
    circles = make_distribution("twocircles").sample(4000, g)
    radii = circles.norm(dim=1)
    assert float(((radii - 4).abs() < 1).float().mean()) == pytest.approx(0.5, abs=0.03)


def test_dimension_resolution_and_mismatch(tmp_path):
    src, tgt = resolve_pair("noise", "8gaussians")
    assert src.dim == tgt.dim == 2
    cloud = tmp_path / "c.npy"
    np.save(cloud, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="3-dimensional"):
        resolve_pair(f"npy:{cloud}", "moons")


def run_cli(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


def test_cli_run_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    code, err = run_cli(["toy", "--source", "p", "--target", "q", *SMALL, "--out", str(out)], capsys)
    assert code == 0, err
    for name in ("config.yaml", "metrics.jsonl", "source.npy", "transported.npy", "snapshot.pt", "joint.png",
                 "density.png", "losses.png"):
        assert (out / name).is_file(), name
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["dim"] == 1 and cfg["source"] == "p" and cfg["epochs"] == 2
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4  # 2 epochs x 4 batches / log every 2
    src, tr = np.load(out / "source.npy"), np.load(out / "transported.npy")
    assert src.shape == tr.shape == (256, 1)
    ckpt = torch.load(out / "snapshot.pt")
    tmap = ToyMap(1)
    tmap.load_state_dict(ckpt["transport_map"])


def test_cli_2d_run_writes_scatter(tmp_path, capsys):
    out = tmp_path / "run2d"
    code, err = run_cli(["toy", "--source", "noise", "--target", "8gaussians", *SMALL, "--out", str(out)], capsys)
    assert code == 0, err
    assert (out / "scatter.png").is_file()
    assert np.load(out / "transported.npy").shape == (256, 2)


def test_same_seed_gives_bit_identical_outputs(tmp_path, capsys):
    outs = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert run_cli(["toy", *SMALL, "--seed", seed, "--out", str(tmp_path / name)], capsys)[0] == 0
        outs.append(np.load(tmp_path / name / "transported.npy"))
    assert outs[0].tobytes() == outs[1].tobytes()
    assert not np.array_equal(outs[0], outs[2])


def test_mean_map_averages_over_noise():
    run = train_toy(ToyConfig(source="p", target="q", epochs=1, num_data=256, batch_size=64), progress=False)
    x = np.linspace(-2, 2, 7)[:, None]
    m1, m2 = run.mean_map(x, num_z=8, seed=0), run.mean_map(x, num_z=8, seed=0)
    assert m1.shape == (7, 1) and np.array_equal(m1, m2)


def bad_cloud(tmp_path, arr, name):
    path = tmp_path / name
    np.save(path, arr)
    return f"npy:{path}"


@pytest.mark.parametrize("case", ["unknown-name", "nan", "shape", "dim-mismatch", "tau", "epochs", "missing-file",
                                  "psi"])
def test_bad_input_exits_with_one_sentence_and_writes_nothing(tmp_path, capsys, case):
    args = {
        "unknown-name": ["--target", "spiral"],
        "nan": ["--target", bad_cloud(tmp_path, np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), "nan.npy")],
        "shape": ["--target", bad_cloud(tmp_path, np.zeros((4, 2, 2)), "cube.npy")],
        "dim-mismatch": ["--source", "moons", "--target", bad_cloud(tmp_path, np.zeros((300, 3)), "d3.npy")],
        "tau": ["--set", "tau=0"],
        "epochs": ["--set", "epochs=-1"],
        "missing-file": ["--target", f"npy:{tmp_path / 'nope.npy'}"],
        "psi": ["--set", "psi1=hellinger"],
    }[case]
    out = tmp_path / "out"
    code, err = run_cli(["toy", *args, "--out", str(out)], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_existing_run_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(["toy", *SMALL, "--out", str(out)], capsys)[0] == 0
    before = (out / "transported.npy").read_bytes()
    code, err = run_cli(["toy", *SMALL, "--seed", "9", "--out", str(out)], capsys)
    assert code == 2 and "--overwrite" in err
    assert (out / "transported.npy").read_bytes() == before
    assert run_cli(["toy", *SMALL, "--seed", "9", "--overwrite", "--out", str(out)], capsys)[0] == 0
    assert (out / "transported.npy").read_bytes() != before


def test_module_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "uotm", "toy", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--model {uotm,otm,sjko,wae}" in res.stdout


def test_a_prefix_of_a_mixture_sample_is_a_sample_of_the_mixture():
    pts = make_distribution("p").sample(4000, torch.Generator().manual_seed(0))[:400, 0]
    assert float((pts > 0).float().mean()) == pytest.approx(0.5, abs=0.1)


def test_training_data_is_the_data_train_toy_draws():
    cfg = ToyConfig(source="p", target="q", num_data=300, batch_size=100, epochs=1, hidden=8, seed=3)
    source, target = training_data(cfg)
    run = train_toy(cfg, progress=False)
    assert source.shape == target.shape == (300, 1)
    assert np.array_equal(source, run.source) and np.array_equal(target, run.target)
    other_source, _ = training_data(replace(cfg, seed=4))
    assert not np.array_equal(other_source, source)
