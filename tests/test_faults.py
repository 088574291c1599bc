"""Every fault of the command line, one row each: the command (run in-process through ``uotm.cli.main``), its exit
status, the key words of its one sentence, and the state it leaves (nothing written, an existing file or run
untouched and still resumable). Run-time faults (Ctrl-C, a NaN, torn or truncated files) are simulated here."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import uotm.data.toy as data_toy
import uotm.runs as runs
import uotm.toy as toy_mod
import uotm.train as T
from uotm.cli import main
from uotm.presets import resolve
from uotm.sjko import SJKOToyConfig
from uotm.toy import ToyConfig
from uotm.wae import WAEConfig

SMALL_NETS = ["--set", "net.base_channels=8", "--set", "net.potential_channels=8", "--set", "net.z_emb_dim=16",
              "--set", "net.z_dim=8"]
TOY = ["--set", "epochs=1", "--set", "num_data=128", "--set", "batch_size=64", "--set", "hidden=8", "--quiet"]
SJKO_TOY = ["toy", "--model", "sjko", "--preset", "gaussian2d", "--quiet", "--set", "phases=2", "--set",
            "phase_steps=3", "--set", "eval_samples=100", "--set", "keep_points=10", "--set", "hidden=8"]
WAE_TOY = ["toy", "--model", "wae", "--quiet", "--set", "steps=3", "--set", "hidden=8", "--set", "num_data=256"]


def image_args(run_dir, *extra):
    return ["train", "--preset", "digits", "--run-dir", str(run_dir), "--batch-size", "8", "--device", "cpu",
            "--quiet", "--log-every", "1", "--snapshot-every", "2", "--sample-every", "100", "--data-root",
            str(Path(run_dir).parent / "data"), *SMALL_NETS, *extra]


@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    """A finished 2-step image run (snapshot at step 2), copied by the rows that need one."""
    run = tmp_path_factory.mktemp("made") / "run"
    assert main(image_args(run, "--steps", "2")) == 0
    return run


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def resumable(run_dir: Path) -> bool:
    """The folder's snapshot loads and its config resolves: ``--resume`` would start."""
    runs.check_resume(run_dir)
    resolve(run_dir=run_dir, resume=True)
    return True


# ---------------------------------------------------------------------------------------------------------------
# the table: (id, setup(tmp, run) -> argv, exit status, key words, state afterwards)
#   state "nothing": the folder/file the command names was not created; "unchanged": the run or file it names is
#   byte for byte as before (and a run is still resumable); "resumable": it may have changed but resumes;
#   "restartable": no snapshot, and a new run may start there without --overwrite; "unchanged-toy": a toy run folder byte for byte as
#   before (a toy run is not resumed)


def _yaml(tmp, text):
    path = tmp / "cfg.yaml"
    path.write_text(text)
    return str(path)


def _copy(tmp, run):
    dest = tmp / "run"
    shutil.copytree(run, dest)
    return dest


def _truncate(tmp, run):
    dest = _copy(tmp, run)
    data = (dest / "snapshot.pt").read_bytes()
    (dest / "snapshot.pt").write_bytes(data[: len(data) // 2])
    return dest


def _empty(tmp, run):
    dest = _copy(tmp, run)
    (dest / "snapshot.pt").write_bytes(b"")
    return dest


def _garbage(tmp, run):
    dest = _copy(tmp, run)
    (dest / "snapshot.pt").write_bytes(b"not a snapshot at all" * 10)
    return dest


def _bad_config(tmp, run):
    dest = _copy(tmp, run)
    (dest / "config.yaml").write_text("preset: digits\nnet: [1, 2\n")
    return dest


def _npz(tmp, **arrays):
    path = tmp / "s.npz"
    np.savez(path, **arrays)
    return str(path)


def _a_file(tmp, name="file.txt"):
    (tmp / name).write_text("x")
    return tmp / name


CONFIG_ROWS = [
    # id, argv after the preset, key words
    ("r1_gamma=nan", ["--set", "r1_gamma=nan"], ["r1_gamma", "finite"]),
    ("lr_floor=inf", ["--model", "sjko", "--set", "lr_floor=inf"], ["lr_floor", "finite"]),
    ("ch_mult=[]", ["--set", "net.ch_mult=[]"], ["net.ch_mult", "at least 1"]),
    ("base_channels=0", ["--set", "net.base_channels=0"], ["net.base_channels", "positive integer"]),
    ("betas=0.5", ["--set", "betas=0.5"], ["betas", "2 values"]),
    ("seed=1e23", ["--set", "seed=1e23"], ["seed", "64 bits"]),
    ("seed=-1", ["--seed", "-1"], ["seed", "integer in [0"]),
    ("lr-map 1e39", ["--lr-map", "1e39"], ["lr_map", "float32"]),
    ("ema_decay=1", ["--ema-decay", "1"], ["ema_decay", "[0, 1)"]),
    ("steps=-1", ["--steps", "-1"], ["steps", "non-negative"]),
    ("channels_last=maybe", ["--set", "channels_last=maybe"], ["channels_last", "true or false"]),
    ("unknown --set", ["--set", "nope=1"], ["unknown config key", "nope"]),
    ("sjko.h=-1", ["--model", "sjko", "--set", "sjko.h=-1"], ["sjko.h", "positive"]),
    ("yaml syntax", lambda tmp: ["--config", _yaml(tmp, "tau: [1, 2\n")], ["not valid YAML", "line"]),
    ("yaml r1_gamma: x", lambda tmp: ["--config", _yaml(tmp, "r1_gamma: x\n")], ["r1_gamma", "'x'"]),
    ("yaml ch_mult: 3", lambda tmp: ["--config", _yaml(tmp, "net:\n  ch_mult: 3\n")], ["net.ch_mult", "list"]),
    ("yaml seed: 1.5", lambda tmp: ["--config", _yaml(tmp, "seed: 1.5\n")], ["seed", "1.5"]),
    ("yaml steps: 2.5", lambda tmp: ["--config", _yaml(tmp, "steps: 2.5\n")], ["steps", "2.5"]),
    ("yaml seed: 1e23", lambda tmp: ["--config", _yaml(tmp, "seed: 1.0e+23\n")], ["seed"]),
    ("yaml list", lambda tmp: ["--config", _yaml(tmp, "- 1\n- 2\n")], ["mapping"]),
    ("yaml unknown key", lambda tmp: ["--config", _yaml(tmp, "lr: 1\n")], ["unknown config keys", "lr"]),
    ("yaml net not a mapping", lambda tmp: ["--config", _yaml(tmp, "net: 3\n")], ["net", "mapping"]),
    ("yaml missing", lambda tmp: ["--config", str(tmp / "none.yaml")], ["does not exist"]),
]


def one_sentence(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("name, extra, words", CONFIG_ROWS, ids=[r[0] for r in CONFIG_ROWS])
def test_every_route_into_an_image_config_is_validated(tmp_path, capsys, name, extra, words):
    """Flags, --set and --config: exit 2, one sentence naming the key, and no run folder, with or without
    --dry-run (validation comes before anything else)."""
    extra = extra(tmp_path) if callable(extra) else extra
    run_dir = tmp_path / "run"
    for dry in (["--dry-run"], []):
        code = main(["train", "--preset", "digits", "--run-dir", str(run_dir), "--quiet", *extra, *dry])
        err = capsys.readouterr().err
        assert code == 2 and one_sentence(err), err
        assert all(w in err for w in words), err
        assert not run_dir.exists()


@pytest.mark.parametrize("make, words", [
    (lambda: ToyConfig(seed=1.5), "seed"),
    (lambda: ToyConfig(lr_map=1e39), "float32"),
    (lambda: ToyConfig(tau=math.nan), "tau"),
    (lambda: ToyConfig(outlier_fraction=1.0), "outlier_fraction"),
    (lambda: SJKOToyConfig(lr_map=math.inf), "lr_map"),
    (lambda: SJKOToyConfig(first_phase_steps=2.5), "first_phase_steps"),
    (lambda: WAEConfig(lam=math.nan), "lam"),
    (lambda: WAEConfig(seed=True), "seed"),
])
def test_the_other_configs_share_the_rules(make, words):
    with pytest.raises(ValueError, match=words):
        make().validate()


def _interrupt_at(step):
    real = T.train_step

    def step_fn(state, y):
        if state.step == step:
            raise KeyboardInterrupt
        return real(state, y)

    return step_fn


def _nan_lr_after(step):
    real = T.train_step

    def step_fn(state, y):
        out = real(state, y)
        if state.step == step:
            for group in state.opt_map.param_groups:
                group["lr"] = float("nan")
        return out

    return step_fn


def _nan_at_first(state, y):
    with torch.no_grad():
        for p in state.potential.parameters():
            p.fill_(float("nan"))
    return T.__dict__["_real_train_step"](state, y)


def _no_tmp(folder: Path) -> bool:
    return not any(".tmp" in p.name for p in folder.rglob("*"))


RUN_ROWS = [
    # id, setup(tmp, made_run, monkeypatch) -> (argv, folder to check), exit, key words, state
    ("run-dir under a file",
     lambda t, r, m: (image_args(_a_file(t) / "run", "--steps", "1"), t / "file.txt" / "run"),
     2, ["is a file"], "nothing"),
    ("run-dir not writable",
     lambda t, r, m: (m.setattr(runs.tempfile, "TemporaryFile", _denied),
                      (image_args(t / "ro" / "run", "--steps", "1"), t / "ro" / "run"))[1],
     2, ["not writable"], "nothing"),
    ("--device cuda without a GPU",
     lambda t, r, m: (m.setattr(torch.cuda, "is_available", lambda: False),
                      (image_args(t / "run", "--steps", "1") + ["--device", "cuda"], t / "run"))[1],
     2, ["no CUDA device"], "nothing"),
    ("a used folder without --overwrite",
     lambda t, r, m: (image_args(_copy(t, r), "--steps", "3"), t / "run"),
     2, ["already holds a run", "--overwrite"], "unchanged"),
    ("--resume where there is no run",
     lambda t, r, m: (["train", "--run-dir", str(t / "run"), "--resume", "--quiet"], t / "run"),
     2, ["there is no run", "does not exist"], "nothing"),
    ("--resume with a changed key",
     lambda t, r, m: (image_args(_copy(t, r), "--resume", "--steps", "3", "--set", "tau=0.5"), t / "run"),
     2, ["tau: 0.001 -> 0.5", "start a new run folder"], "unchanged"),
    ("--resume with a truncated snapshot",
     lambda t, r, m: (["train", "--run-dir", str(_truncate(t, r)), "--resume", "--quiet"], t / "run"),
     2, ["damaged", "restore it or start a new folder"], "unchanged-damaged"),
    ("--resume with an empty snapshot",
     lambda t, r, m: (["train", "--run-dir", str(_empty(t, r)), "--resume", "--quiet"], t / "run"),
     2, ["damaged", "restore it or start a new folder"], "unchanged-damaged"),
    ("--resume with a garbage snapshot",
     lambda t, r, m: (["train", "--run-dir", str(_garbage(t, r)), "--resume", "--quiet"], t / "run"),
     2, ["damaged", "restore it or start a new folder"], "unchanged-damaged"),
    ("--resume with a damaged config.yaml",
     lambda t, r, m: (["train", "--run-dir", str(_bad_config(t, r)), "--resume", "--quiet"], t / "run"),
     2, ["not valid YAML", "restore it or start a new folder"], "unchanged-damaged"),
    ("Ctrl-C during iteration 3 (snapshot at 2)",
     lambda t, r, m: (m.setattr(T, "train_step", _interrupt_at(2)),
                      (image_args(t / "run", "--steps", "4"), t / "run"))[1],
     130, ["interrupted at step 2", "--resume continues from step 2"], "resumable"),
    ("Ctrl-C before the first snapshot",
     lambda t, r, m: (m.setattr(T, "train_step", _interrupt_at(1)),
                      (image_args(t / "run", "--steps", "4"), t / "run"))[1],
     130, ["interrupted at step 1", "no snapshot"], "restartable"),
    ("NaN at iteration 1",
     lambda t, r, m: (m.setitem(T.__dict__, "_real_train_step", T.train_step),
                      m.setattr(T, "train_step", _nan_at_first),
                      (image_args(t / "run", "--steps", "4"), t / "run"))[2],
     2, ["NaN", "iteration 1", "no snapshot was written"], "restartable"),
    ("a learning rate turns NaN",
     lambda t, r, m: (m.setattr(T, "train_step", _nan_lr_after(3)),
                      (image_args(t / "run", "--steps", "4"), t / "run"))[1],
     2, ["learning rates", "iteration 4", "iteration 2"], "resumable"),
    ("sample --out a folder",
     lambda t, r, m: ((t / "out").mkdir(),
                      (["sample", "--run", str(r), "-n", "2", "--out", str(t / "out"), "--quiet", "--device", "cpu"],
                       t / "out"))[1],
     2, ["is a folder"], "unchanged"),
    ("sample --out an existing file",
     lambda t, r, m: (_a_file(t, "s.npz"),
                      (["sample", "--run", str(r), "-n", "2", "--out", str(t / "s.npz"), "--quiet", "--device",
                        "cpu"], t))[1],
     2, ["already exists", "--overwrite"], "unchanged"),
    ("sample --out under a file",
     lambda t, r, m: (["sample", "--run", str(r), "-n", "2", "--out", str(_a_file(t) / "s.npz"), "--quiet"], t),
     2, ["is a file"], "unchanged"),
    ("sample a damaged run",
     lambda t, r, m: (["sample", "--run", str(_truncate(t, r)), "-n", "2", "--out", str(t / "s.npz"), "--quiet",
                       "--device", "cpu"], t / "s.npz"),
     2, ["damaged", "restore it"], "nothing"),
    ("sample -n 0",
     lambda t, r, m: (["sample", "--run", str(r), "-n", "0", "--out", str(t / "s.npz"), "--quiet"], t / "s.npz"),
     2, ["positive"], "nothing"),
    ("fid on an npz without arr_0",
     lambda t, r, m: (["fid", "--run", str(r), "--samples", _npz(t, images=np.zeros((4, 16, 16, 1), np.uint8))], t),
     2, ["no arr_0", "images"], "unchanged"),
    ("fid on 2x2 images for a 16-pixel run",
     lambda t, r, m: (["fid", "--run", str(r), "--samples", _npz(t, arr_0=np.zeros((4, 2, 2, 1), np.uint8))], t),
     2, ["(4, 2, 2, 1)", "16, 16, 1", "nothing is resized"], "unchanged"),
    ("fid --run with a damaged config.yaml",
     lambda t, r, m: (["fid", "--run", str(_bad_config(t, r)), "--samples",
                       _npz(t, arr_0=np.zeros((4, 16, 16, 1), np.uint8))], t / "run"),
     2, ["not valid YAML", "restore it or start a new folder"], "unchanged-damaged"),
    ("fid --run where there is no run",
     lambda t, r, m: (["fid", "--run", str(t / "nothing"), "--samples", _npz(t, arr_0=np.zeros((4, 16, 16, 1),
                                                                                              np.uint8))], t),
     2, ["there is no run", "does not exist"], "unchanged"),
    ("fid on NaN samples",
     lambda t, r, m: (["fid", "--run", str(r), "--samples", _npz(t, arr_0=np.full((4, 16, 16, 1), np.nan))], t),
     2, ["NaN"], "unchanged"),
    ("fid on a file that is not an npz",
     lambda t, r, m: (["fid", "--run", str(r), "--samples", str(_a_file(t, "s.npz"))], t),
     2, ["cannot read"], "unchanged"),
    ("fid --weights on a wrong file",
     lambda t, r, m: (["fid", "--preset", "cifar10", "--weights", str(_a_file(t, "w.pth")), "--samples",
                       _npz(t, arr_0=np.zeros((4, 32, 32, 3), np.uint8))], t),
     2, ["not the FID Inception weights"], "unchanged"),
    ("bench --batch 1000000000",
     lambda t, r, m: (["bench", "--preset", "digits", "--batch", "1000000000", "--device", "cpu", "--steps", "1",
                       "--warmup", "0", "--no-flops", *SMALL_NETS], t),
     2, ["does not fit", "fits"], "unchanged"),
    ("bench --device cuda without a GPU",
     lambda t, r, m: (m.setattr(torch.cuda, "is_available", lambda: False),
                      (["bench", "--preset", "digits", "--device", "cuda"], t))[1],
     2, ["no CUDA device"], "unchanged"),
    ("toy: a point cloud over the limit",
     lambda t, r, m: (m.setattr(data_toy, "MAX_POINT_VALUES", 100), np.save(t / "c.npy", np.zeros((64, 2))),
                      (["toy", "--target", f"npy:{t / 'c.npy'}", "--out", str(t / "out"), *TOY], t / "out"))[2],
     2, ["128 numbers", "more than the 100"], "nothing"),
    ("toy: --num-data over the limit",
     lambda t, r, m: (["toy", "--out", str(t / "out"), *TOY, "--set", "num_data=20000000"], t / "out"),
     2, ["20,000,000 points", "10,000,000 numbers"], "nothing"),
    ("toy: --out under a file",
     lambda t, r, m: (["toy", "--out", str(_a_file(t) / "out"), *TOY], t / "file.txt" / "out"),
     2, ["is a file"], "nothing"),
    ("toy: Ctrl-C",
     lambda t, r, m: (m.setattr(toy_mod, "_iteration", _raise_interrupt),
                      (["toy", "--out", str(t / "out"), *TOY], t / "out"))[1],
     130, ["interrupted", "run the command again"], "toy-restartable"),
    ("toy --model sjko: --out under a file",
     lambda t, r, m: ([*SJKO_TOY, "--out", str(_a_file(t) / "r")], t / "file.txt" / "r"),
     2, ["is a file"], "nothing"),
    ("toy --model sjko: a used folder without --overwrite",
     lambda t, r, m: (main([*SJKO_TOY, "--out", str(t / "r")]), ([*SJKO_TOY, "--out", str(t / "r")], t / "r"))[1],
     2, ["already holds a run", "--overwrite"], "unchanged-toy"),
    ("toy: an S-JKO preset without --model sjko",
     lambda t, r, m: (["toy", "--preset", "gaussian2d", "--out", str(t / "r")], t / "r"),
     2, ["S-JKO toy preset", "--model sjko"], "nothing"),
    ("toy --model otm with another Psi*",
     lambda t, r, m: (["toy", "--model", "otm", "--set", "psi1=kl", "--out", str(t / "r"), *TOY], t / "r"),
     2, ["otm is UOTM", "linear", "--model uotm"], "nothing"),
    ("toy --model wae: lam=nan",
     lambda t, r, m: ([*WAE_TOY, "--set", "lam=nan", "--out", str(t / "r")], t / "r"),
     2, ["lam", "finite"], "nothing"),
    ("toy --model wae: a key of another model",
     lambda t, r, m: ([*WAE_TOY, "--target", "moons", "--out", str(t / "r")], t / "r"),
     2, ["unknown WAE config key 'target'", "data"], "nothing"),
    ("toy --config with a bad value",
     lambda t, r, m: (["toy", "--config", _yaml(t, "tau: x\n"), "--out", str(t / "r"), *TOY], t / "r"),
     2, ["tau", "'x'"], "nothing"),
]


def _denied(*args, **kwargs):
    raise PermissionError(13, "Permission denied")


def _raise_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("name, setup, code, words, state", RUN_ROWS, ids=[r[0] for r in RUN_ROWS])
def test_every_fault_is_one_sentence_and_leaves_the_folder_usable(tmp_path, capsys, monkeypatch, made_run, name,
                                                                   setup, code, words, state):
    made_before = files(made_run)
    argv, folder = setup(tmp_path, made_run, monkeypatch)
    before = files(folder) if folder.is_dir() else (folder.read_bytes() if folder.is_file() else None)
    got = main(argv)
    err = capsys.readouterr().err
    monkeypatch.undo()
    assert got == code and one_sentence(err), err
    assert all(w in err for w in words), err
    assert files(made_run) == made_before  # the shared run is never touched
    if state == "nothing":
        assert not folder.exists()
    elif state.startswith("unchanged"):
        after = files(folder) if folder.is_dir() else folder.read_bytes()
        assert after == before
        if folder.is_dir():
            assert _no_tmp(folder)
        if state == "unchanged" and (folder / "snapshot.pt").exists():
            assert resumable(folder)
    elif state == "resumable":
        assert resumable(folder) and _no_tmp(folder)
        snap = runs.load_snapshot_file(folder / "snapshot.pt")
        assert runs.is_finite(snap)
        assert main(["train", "--run-dir", str(folder), "--resume", "--quiet", "--device", "cpu"]) == 0
    elif state == "restartable":
        assert not (folder / "snapshot.pt").exists() and (folder / "config.yaml").exists()
        runs.check_new(folder)  # a new run may start there
        assert main(argv[:argv.index("--steps")] + ["--steps", "1"] + argv[argv.index("--steps") + 2:]) == 0
    elif state == "toy-restartable":
        assert main(argv) == 0 and (folder / "transported.npy").exists()
    else:
        raise AssertionError(state)


def test_a_torn_metrics_line_is_skipped_with_a_warning_naming_the_file(tmp_path, made_run, capsys):
    run = _copy(tmp_path, made_run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "potential_lo')  # killed while writing the next line
    with pytest.warns(UserWarning, match=r"metrics\.jsonl.*torn last line"):
        assert [r["step"] for r in runs.read_metrics(run)] == [1, 2]
    with pytest.warns(UserWarning, match="torn last line"):
        assert main(["train", "--run-dir", str(run), "--resume", "--steps", "3", "--quiet", "--device", "cpu"]) == 0
    assert [r["step"] for r in runs.read_metrics(run)] == [1, 2, 3]
    # a damaged line that is not the last is one sentence
    (run / "metrics.jsonl").write_text('{"step": 1}\nxx\n{"step": 2}\n')
    with pytest.raises(ValueError, match="damaged"):
        runs.read_metrics(run)


def test_interrupted_runs_resume_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys):
    """Ctrl-C at step 3 (snapshot at 2), then --resume: the same snapshot as a run that was never stopped."""
    assert main(image_args(tmp_path / "whole", "--steps", "4")) == 0
    monkeypatch.setattr(T, "train_step", _interrupt_at(3))
    assert main(image_args(tmp_path / "cut", "--steps", "4")) == 130
    assert "interrupted at step 3; --resume continues from step 2" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["train", "--run-dir", str(tmp_path / "cut"), "--resume", "--quiet", "--device", "cpu"]) == 0
    a = torch.load(tmp_path / "whole" / "snapshot.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "snapshot.pt", weights_only=True)
    for key in ("transport_map", "potential", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("sec_per_iter", "seconds")} for r in rows]  # noqa
    assert strip(runs.read_metrics(tmp_path / "whole")) == strip(runs.read_metrics(tmp_path / "cut"))


def test_overwrite_replaces_a_run_and_sample_overwrite_replaces_a_file(tmp_path, made_run, capsys):
    run = _copy(tmp_path, made_run)
    assert main(image_args(run, "--steps", "1", "--overwrite")) == 0
    assert [r["step"] for r in runs.read_metrics(run)] == [1]
    assert runs.load_snapshot_file(run / "snapshot.pt")["step"] == 1
    out = _a_file(tmp_path, "s.npz")
    assert main(["sample", "--run", str(run), "-n", "3", "--out", str(out), "--overwrite", "--quiet", "--device",
                 "cpu"]) == 0
    with np.load(out) as f:
        assert f["arr_0"].shape == (3, 16, 16, 1)
    assert _no_tmp(tmp_path)


def test_write_atomic_leaves_no_temporary_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "x.npz"
    target.write_bytes(b"old")

    def fail(path):
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        runs.write_atomic(target, fail)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_a_changed_nested_key_is_named():
    old = {"tau": 1, "net": {"z_dim": 8, "ch_mult": [1, 2]}}
    new = {"tau": 1, "net": {"z_dim": 9, "ch_mult": [1, 2]}}
    assert runs.changed_keys(old, new) == ["net.z_dim"]
    with pytest.raises(ValueError, match=r"net\.z_dim: 8 -> 9"):
        runs.check_same_config(old, new, "r", ("steps",))


def test_the_config_yaml_route_accepts_what_a_run_wrote(tmp_path, made_run):
    cfg = resolve(run_dir=made_run, resume=True)
    assert cfg.net.base_channels == 8 and cfg.steps == 2
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"preset": "digits", "lr_map": "2e-4"}))
    assert resolve(config=tmp_path / "c.yaml").lr_map == 2e-4  # YAML 1.1 reads 2e-4 as a string


# ---------------------------------------------------------------------------------------------------------------
# what works: each kind of command a user runs, one row: (id, setup(tmp, made_run) -> argv, check(tmp, stdout))
# (a fault above and a success here share the command line, the run folders and the writers)

def _out(tmp):
    return str(tmp / "s.npz")


def _made_samples(tmp, run):
    assert main(["sample", "--run", str(run), "-n", "4", "--out", _out(tmp), "--quiet", "--device", "cpu"]) == 0
    return _out(tmp)


WORK_ROWS = [
    ("--help", lambda t, r: ["--help"], None),
    ("train --dry-run writes nothing",
     lambda t, r: image_args(t / "run", "--dry-run"),
     lambda t, out: not (t / "run").exists() and "parameters: transport_map" in out),
    ("train --dry-run --json",
     lambda t, r: image_args(t / "run", "--dry-run", "--json"),
     lambda t, out: __import__("json").loads(out)["config"]["batch_size"] == 8),
    ("train a new run (config, metrics, snapshot)",
     lambda t, r: image_args(t / "run", "--steps", "2"),
     lambda t, out: runs.load_snapshot_file(t / "run" / "snapshot.pt")["step"] == 2 and _no_tmp(t / "run")),
    ("train --resume with more steps",
     lambda t, r: ["train", "--run-dir", str(_copy(t, r)), "--resume", "--steps", "3", "--quiet", "--device", "cpu"],
     lambda t, out: [m["step"] for m in runs.read_metrics(t / "run")] == [1, 2, 3]),
    ("train --resume changing what may change (log_every, data_root)",
     lambda t, r: ["train", "--run-dir", str(_copy(t, r)), "--resume", "--steps", "3", "--log-every", "5",
                   "--data-root", str(t / "d2"), "--quiet", "--device", "cpu"],
     lambda t, out: runs.load_snapshot_file(t / "run" / "snapshot.pt")["step"] == 3),
    ("train --overwrite a used folder",
     lambda t, r: image_args(_copy(t, r), "--steps", "1", "--overwrite"),
     lambda t, out: [m["step"] for m in runs.read_metrics(t / "run")] == [1]),
    ("train in a folder that stopped before its first snapshot",
     lambda t, r: ((t / "run").mkdir(), (t / "run" / "config.yaml").write_text("preset: digits\n"),
                   image_args(t / "run", "--steps", "1"))[2],
     lambda t, out: (t / "run" / "snapshot.pt").exists()),
    ("train --config a run's config.yaml",
     lambda t, r: ["train", "--config", str(r / "config.yaml"), "--run-dir", str(t / "run"), "--steps", "1",
                   "--quiet", "--device", "cpu"],
     lambda t, out: runs.load_snapshot_file(t / "run" / "snapshot.pt")["config"]["net"]["base_channels"] == 8),
    ("train --set of every kind (number, bool, list, null, nested)",
     lambda t, r: image_args(t / "run", "--dry-run", "--json", "--set", "tau=2e-3", "--set", "channels_last=null",
                             "--set", "betas=0.4,0.9", "--set", "compile=[map]", "--set", "net.ch_mult=[1, 2]",
                             "--set", "r1_every=2"),
     lambda t, out: __import__("json").loads(out)["config"]["net"]["ch_mult"] == [1, 2]),
    ("train --model sjko (image)",
     lambda t, r: image_args(t / "run", "--model", "sjko", "--steps", "2", "--set", "sjko.first_phase_steps=1",
                             "--set", "sjko.phase_steps=1"),
     lambda t, out: runs.load_snapshot_file(t / "run" / "snapshot.pt")["phase"] == 1),
    ("sample from a run",
     lambda t, r: ["sample", "--run", str(r), "-n", "3", "--out", _out(t), "--quiet", "--device", "cpu"],
     lambda t, out: np.load(_out(t))["arr_0"].shape == (3, 16, 16, 1) and _no_tmp(t)),
    ("sample --overwrite an existing file",
     lambda t, r: ["sample", "--run", str(r), "-n", "2", "--out", str(_a_file(t, "s.npz")), "--overwrite", "--quiet",
                   "--device", "cpu"],
     lambda t, out: np.load(_out(t))["arr_0"].shape == (2, 16, 16, 1)),
    ("fid --run on the run's samples (digits proxy)",
     lambda t, r: ["fid", "--run", str(r), "--samples", _made_samples(t, r), "--data-root", str(t / "data"),
                   "--json"],
     lambda t, out: __import__("json").loads(out)["proxy_fid"] > 0),
    ("bench on the CPU",
     lambda t, r: ["bench", "--preset", "digits", "--device", "cpu", "--batch", "2", "--steps", "1", "--warmup", "0",
                   "--no-flops", "--json", *SMALL_NETS],
     lambda t, out: __import__("json").loads(out)["images_per_s"] > 0),
    ("toy run",
     lambda t, r: ["toy", "--out", str(t / "out"), *TOY],
     lambda t, out: (t / "out" / "snapshot.pt").exists() and (t / "out" / "transported.npy").exists()),
    ("toy --overwrite",
     lambda t, r: (main(["toy", "--out", str(t / "out"), *TOY]), ["toy", "--out", str(t / "out"), *TOY,
                                                                   "--overwrite"])[1],
     lambda t, out: (t / "out" / "snapshot.pt").exists()),
    ("toy --dry-run --json writes nothing",
     lambda t, r: ["toy", "--out", str(t / "out"), *TOY, "--dry-run", "--json"],
     lambda t, out: not (t / "out").exists() and __import__("json").loads(out)["iterations"] == 2),
    ("toy --model otm (psi1 = psi2 = linear)",
     lambda t, r: ["toy", "--model", "otm", "--out", str(t / "out"), *TOY],
     lambda t, out: yaml.safe_load((t / "out" / "config.yaml").read_text())["psi2"] == "linear"
     and (t / "out" / "snapshot.pt").exists()),
    ("toy --config a toy run's config.yaml",
     lambda t, r: (main(["toy", "--out", str(t / "a"), *TOY, "--seed", "3"]),
                   ["toy", "--config", str(t / "a" / "config.yaml"), "--out", str(t / "out"), "--quiet"])[1],
     lambda t, out: np.array_equal(np.load(t / "a" / "transported.npy"), np.load(t / "out" / "transported.npy"))),
    ("toy --model sjko --dry-run",
     lambda t, r: ["toy", "--model", "sjko", "--preset", "gaussian2d", "--out", str(t / "r"), "--dry-run"],
     lambda t, out: not (t / "r").exists() and "phase_steps" in out),
    ("toy --model sjko run",
     lambda t, r: [*SJKO_TOY, "--out", str(t / "r")],
     lambda t, out: all((t / "r" / f).exists() for f in ("samples.npy", "flow.png", "snapshot.pt"))),
    ("toy --model sjko --overwrite",
     lambda t, r: (main([*SJKO_TOY, "--out", str(t / "r")]), [*SJKO_TOY, "--out", str(t / "r"), "--overwrite"])[1],
     lambda t, out: (t / "r" / "samples.npy").exists() and _no_tmp(t / "r")),
    ("toy --model wae run",
     lambda t, r: [*WAE_TOY, "--out", str(t / "w")],
     lambda t, out: [m["step"] for m in runs.read_metrics(t / "w")] == [3]
     and np.load(t / "w" / "samples.npy").shape == (2000, 2) and (t / "w" / "samples.png").exists()
     and set(runs.load_snapshot_file(t / "w" / "snapshot.pt", ("config", "encoder", "decoder"))) >= {"encoder"}),
]


@pytest.mark.parametrize("name, setup, check", WORK_ROWS, ids=[r[0] for r in WORK_ROWS])
def test_what_works_still_works(tmp_path, capsys, made_run, name, setup, check):
    made_before = files(made_run)
    argv = setup(tmp_path, made_run)
    capsys.readouterr()
    if argv == ["--help"]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0 and "train" in capsys.readouterr().out
        return
    got = main(argv)
    captured = capsys.readouterr()
    assert got == 0, captured.err
    assert check(tmp_path, captured.out), captured.out
    assert files(made_run) == made_before


def test_the_metrics_log_writes_lines_as_it_goes_and_refuses_nan(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with runs.MetricsLog(path) as log:
        log.write({"step": 1, "loss": 0.5})
        assert runs.read_metrics(path) == [{"step": 1, "loss": 0.5}]  # on disk before the log is closed
        with pytest.raises(ValueError):
            log.write({"step": 2, "loss": math.nan})  # NaN is not JSON
    with runs.MetricsLog(path, append=True) as log:
        log.write({"step": 2, "loss": 0.25})
    assert [r["step"] for r in runs.read_metrics(path)] == [1, 2]
    runs.MetricsLog(None).write({"step": 3})  # no folder: nothing is written
    assert [r["step"] for r in runs.read_metrics(path)] == [1, 2]
