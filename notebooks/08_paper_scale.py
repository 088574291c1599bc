# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training at paper scale
#
# The previous chapter trained a sixteenth-width UOTM on 16×16 digits in minutes. The paper's results
# {cite:p}`choi2023uotm` come from the same algorithm at full size: CIFAR-10 at 32×32 with a 45-million-parameter
# map, and CelebA-HQ at 256×256, trained for hundreds of epochs on several GPUs. This page is the recipe: the
# paper's schedule and what it costs, the cell that launches multi-GPU training through `torchrun`, the cell that
# samples the trained map and computes the FID, and the same steps as terminal commands.
#
# **The published build of this book runs on a machine without a GPU, without CIFAR-10 or CelebA-HQ and without the
# Inception weights (nothing can be downloaded there).** Every cell checks what is available (the first cell prints
# it). Without CUDA the page runs a tiny stand-in instead of the paper's run: the `digits` preset, two CPU processes
# that talk through `gloo`, a few iterations, scored with the proxy FID of chapter 7. The numbers it prints are those
# of that stand-in, not of the paper's models. On a machine with GPUs and the data, the same cells run the chosen
# preset for real.
#
# ## How the work is split
#
# Training uses PyTorch's DistributedDataParallel (DDP): one process per GPU, each holding a copy of the map and of
# the potential. The preset's `batch_size` is the **global** batch, whatever the number of processes: with 4 GPUs
# and CIFAR-10's 256, each process takes 64 images of every batch. Every process draws the whole global batch of
# source noise and latents from the same seeded generator and keeps its slice, and the data order is a function of
# (seed, epoch) only, so $N$ processes compute the same gradients as one process with the global batch, up to
# rounding (checked at the end of this page). Gradients are averaged across processes by DDP in both steps, R1's
# included; process 0 alone writes the metrics, the sample grids and the snapshot.

# %% tags=["parameters"]
preset = "cifar10"  # cifar10, celeba_256 or digits: what runs on a machine with CUDA
nproc = 0  # processes, one per GPU; 0 means every visible GPU
epochs = 0  # passes over the data; 0 keeps the preset value
steps = 0  # stop after this many iterations; 0 runs every epoch
n_samples = 50000  # samples for the FID (the paper uses 50000)
cpu_steps = 20  # iterations of the tiny CPU run that stands in when there is no GPU
data_root = "../_build/uotm-data"  # data sets, cached FID statistics and the proxy classifier
runs_root = "../_build/runs/08_paper_scale"  # run folders (the CPU stand-in is replaced on every execution)

# %% tags=["hide-input"]
import json
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.linalg import LinAlgWarning

from uotm import metrics
from uotm import presets as uotm_presets
from uotm.book import glue, show_table
from uotm.data.images import make_dataset
from uotm.dist import launch, launch_command
from uotm.nets import build_networks
from uotm.train import read_metrics

torch.set_num_threads(1)  # the machines that build this book share their cores
warnings.filterwarnings("ignore", category=LinAlgWarning)  # sqrtm of a singular covariance: FID still computed
runs_root = Path(runs_root)
cuda = torch.cuda.is_available()
gpus = torch.cuda.device_count() if cuda else 0
print(f"CUDA available: {cuda}; GPUs visible: {gpus}; torch {torch.__version__}")


def uotm_cli(*args: str) -> str:
    """Run ``python -m uotm ARGS`` in a child process; return its standard output (fail loudly on an error)."""
    done = subprocess.run([sys.executable, "-m", "uotm", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"python -m uotm {' '.join(args)} exited with {done.returncode}:\n{done.stderr}")
    return done.stdout


# %% [markdown]
# ## The paper's runs
#
# The presets hold the paper's hyper-parameters, read from the paper and its reference code. `python -m uotm train
# --preset NAME --dry-run --json` resolves a configuration and counts the networks' parameters without touching any
# data; the counts are those of the reference networks less the time-embedding layers that the reference builds but
# never uses (3 283 200 of its 48 103 811 map parameters on CIFAR-10, 1 661 248 of 39 644 547 on CelebA-HQ).

# %% tags=["hide-input"]
reference_counts = {"cifar10": (44_820_611, 12_247_809), "celeba_256": (37_983_299, 26_881_537)}
dry = {name: json.loads(uotm_cli("train", "--preset", name, "--dry-run", "--json"))
       for name in ("cifar10", "celeba_256", "digits")}
print("$ python -m uotm train --preset cifar10 --dry-run --json")
print(json.dumps(dry["cifar10"])[:600] + " ...")
show_table(["preset", "images", "batch", "epochs", "lr, map", "lr, potential", "τ", "R1 γ", "EMA"],
           [[name, f"{c['image_size']}²×{c['channels']}", c["batch_size"], c["epochs"], f"{c['lr_map']:.1e}",
             f"{c['lr_potential']:.0e}", f"{c['tau']:.0e}", c["r1_gamma"], c["ema_decay"]]
            for name, c in ((name, r["config"]) for name, r in dry.items())])

# %% [markdown]
# The parameter counts, against the reference networks' (less their time embedding):

# %%
show_table(["preset", "map", "potential", "reference map", "reference potential"],
           [[name, r["parameters"]["transport_map"], r["parameters"]["potential"],
             *reference_counts.get(name, ("", ""))] for name, r in dry.items()], {1: ",", 2: ",", 3: ",", 4: ","})
for name, (n_map, n_pot) in reference_counts.items():
    got = dry[name]["parameters"]
    assert (got["transport_map"], got["potential"]) == (n_map, n_pot), (name, got)
print("parameter counts equal the reference networks' (less their unused time embedding)")

# %% [markdown]
# Both runs step a cosine learning-rate schedule once per epoch, with a period (`schedule_epochs`:
# {glue:text}`cifar10_schedule_epochs:,` for CIFAR-10, {glue:text}`celeba_256_schedule_epochs:,` for CelebA-HQ, the
# paper's values) longer than the run ({glue:text}`cifar10_epochs` and {glue:text}`celeba_256_epochs` epochs), so the
# rate never reaches its floor: the CIFAR-10 run ends at {glue:text}`cifar10_lr_end_ratio:.0%` of its initial rate,
# the CelebA-HQ run at {glue:text}`celeba_256_lr_end_ratio:.0%`. The figure is the schedule the trainer builds,
# computed here with the same scheduler.

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 3.2))
for name in ("cifar10", "celeba_256"):
    c = dry[name]["config"]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=c["lr_map"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c["schedule_epochs"], eta_min=c["lr_floor"])
    rates = []
    for _ in range(c["epochs"]):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ax.plot(np.arange(c["epochs"]), rates, label=f"{name}: map, T_max {c['schedule_epochs']} epochs")
    print(f"{name}: map learning rate {rates[0]:.2e} at the start, {rates[-1]:.2e} in the last epoch "
          f"({rates[-1] / rates[0]:.2f} of it)")
    glue(f"{name}_schedule_epochs", c["schedule_epochs"])
    glue(f"{name}_epochs", c["epochs"])
    glue(f"{name}_lr_end_ratio", rates[-1] / rates[0])
ax.set_xlabel("epoch")
ax.set_ylabel("learning rate of the map")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What it costs
#
# An iteration is one potential step (with R1's double backward) and one map step on a global batch. The paper
# trained CIFAR-10 on 4 V100 GPUs and CelebA-HQ on 8. The speed of the reference implementation is an input of this
# page, not something it measures: timed on one NVIDIA H100 80GB with PyTorch 2.11 and CUDA 13.0, at the paper's
# batch sizes, the reference's iteration ran at 550–573 images per second on CIFAR-10 at batch 256 and 25 on
# CelebA-HQ at batch 32 (`python scripts/bench_reference.py --reference PATH --only-reference --preset cifar10`, with
# a clone of the reference at PATH, measures it again on the GPU at hand); the cell below types
# in 565 and 25. An epoch is one pass over the training images (50 000 for CIFAR-10, about 30 000 for CelebA-HQ), so
# the cost of the paper's schedule at that speed is:

# %%
reference_speed = {"cifar10": 565.0, "celeba_256": 25.0}  # images/s, reference code, one H100 (see the text above)
train_images = {"cifar10": 50_000, "celeba_256": 30_000}
for name in ("cifar10", "celeba_256"):
    c = dry[name]["config"]
    image_iterations = c["epochs"] * train_images[name]
    hours = image_iterations / reference_speed[name] / 3600
    iterations = c["epochs"] * (train_images[name] // c["batch_size"])
    print(f"{name}: {c['epochs']} epochs x {train_images[name]:,} images = {image_iterations / 1e6:.1f} M "
          f"image-iterations ({iterations:,} iterations of {c['batch_size']}); at {reference_speed[name]:g} images/s "
          f"that is {hours:.0f} GPU-hours on one H100")
    glue(f"{name}_gpu_hours", hours)
cifar_hours = dry["cifar10"]["config"]["epochs"] * train_images["cifar10"] / reference_speed["cifar10"] / 3600
assert 14 < cifar_hours < 16, cifar_hours

# %% [markdown]
# That is {glue:text}`cifar10_gpu_hours:.0f` GPU-hours for CIFAR-10 and {glue:text}`celeba_256_gpu_hours:.0f` for
# CelebA-HQ.
#
# **This page does not give this package's own CUDA speed: the book is built on a machine without a GPU.** Its
# networks are pure PyTorch (no compiled CUDA kernels: the FIR filters run as pooling and depthwise convolutions),
# and it can train in bf16 autocast, which the reference cannot. The command that measures it times exactly the
# function the trainer calls for one iteration, on random images of the preset's shape:
#
# ```bash
# python -m uotm bench --preset cifar10 --batch 256 --precision bf16 --json
# python -m uotm bench --preset celeba_256 --batch 32 --precision bf16 --json
# ```
#
# It prints images/s, ms per iteration, peak memory and the FLOPs per image-iteration. The paper's cost in
# GPU-hours is the schedule's image-iterations divided by that speed. On this CPU-only machine the same command
# runs on the `digits` preset as a demonstration that it works; the number says nothing about a GPU.

# %% tags=["hide-input"]
bench_args = (["--preset", preset, "--precision", "bf16"] if cuda
              else ["--preset", "digits", "--device", "cpu", "--threads", "1", "--steps", "3", "--warmup", "1"])
bench = json.loads(uotm_cli("bench", *bench_args, "--json"))
print("$ python -m uotm bench " + " ".join(bench_args) + " --json")
show_table(["field", "value"],
           [[key, f"{bench.get(key):.4g}" if isinstance(bench.get(key), float) else bench.get(key)]
            for key in ("preset", "device", "precision", "batch", "ms_per_iter", "images_per_s",
                        "gflop_per_image_iter", "peak_memory_gib", "peak_memory_kind")])

# %% [markdown]
# ### What the fast path changes, and what it does not
#
# The speed-ups that keep the algorithm are on by default on CUDA: bf16 autocast for the networks with the cost,
# the $\Psi^*$ terms and R1's reductions in fp32; channels-last memory; fused Adam and a single foreach update for the
# EMA; no host synchronisation inside the loop (losses stay on the device and reach the log every `log_every`
# iterations). `torch.compile` of the map and of the potential's calls on generated images is a field of the
# config (`--set "compile=[map, potential]"`, for `train` and `bench` alike); R1 differentiates the
# potential twice on real images, and the compiled backward does not support that, so that call stays eager.
#
# One option changes the algorithm and is off in every preset: **lazy R1** (`--set r1_every=K`, from StyleGAN2's lazy
# regularisation). The penalty, multiplied by $K$, is added only on the iterations whose step is a multiple of $K$;
# the others skip the double backward. The expected penalty per iteration is unchanged, but its variance grows with
# $K$ and the potential sees the penalty in bursts, so a run with $K>1$ is not the paper's algorithm and its FID is
# not the paper's. The cell below checks the bookkeeping on the CPU: with $K=2$ the logged penalty is exactly zero on
# every other iteration (nothing is added there) and is computed on the others.

# %%
from uotm.train import make_state, train_step

lazy_cfg = uotm_presets.preset("digits", r1_every=2, batch_size=8)
torch.manual_seed(0)
lazy_state = make_state(lazy_cfg, *build_networks(lazy_cfg), "cpu")
digits_batch = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
lazy_r1 = []
for _ in range(4):
    lazy_r1.append(float(train_step(lazy_state, digits_batch)["r1"]))
    lazy_state.step += 1
print("R1 added at iterations 0-3 with r1_every=2:", [f"{v:.3g}" for v in lazy_r1])
assert lazy_r1[1] == 0 and lazy_r1[3] == 0  # skipped: exactly nothing added
assert min(lazy_r1[0], lazy_r1[2]) >= 0 and lazy_r1[2] > 0  # computed (tiny at the first step, where v is flat)

# %% [markdown]
# ## Launching the training from this page
#
# `uotm.dist.launch(cfg, nproc, run_dir)` writes the configuration to `run_dir/launch.yaml` and runs
# `python -m torch.distributed.run --standalone --nproc_per_node NPROC -m uotm train --config launch.yaml
# --run-dir RUN_DIR`, streaming the processes' output into the cell. Each process picks its GPU from
# `LOCAL_RANK` and joins an NCCL process group (gloo on the CPU).
#
# On a machine with CUDA, the next cell trains `preset` with `nproc` GPUs, resuming the run folder if it already holds
# a snapshot. The paper's CIFAR-10 schedule is about {glue:text}`cifar10_gpu_hours:.0f` GPU-hours even at the
# reference's H100 speed: start it from a terminal (the commands are below) or in a Jupyter session without a cell
# time limit, not from the book's build, whose cells stop after 10 minutes. **Without CUDA the cell runs the
# stand-in**: the `digits` preset (batch {glue:text}`stand_in_batch`, {glue:text}`stand_in_local_batch` per process),
# two gloo processes, `cpu_steps` iterations.

# %% tags=["hide-input"]
def data_available(cfg) -> tuple[bool, str]:
    try:
        make_dataset(cfg)
    except ValueError as missing:
        return False, str(missing)
    return True, ""


stand_in_batch = glue("stand_in_batch", uotm_presets.preset("digits").batch_size)
glue("stand_in_local_batch", stand_in_batch // 2)
overrides = {k: v for k, v in {"epochs": epochs, "steps": steps}.items() if v}
cfg = uotm_presets.preset(preset, data_root=data_root, **overrides)
have_data, missing = data_available(cfg)
if not have_data:
    print(f"The {preset} data are not here: {missing}")
paper_run = cuda and have_data
if paper_run:
    n_proc = nproc or gpus
    run_dir = runs_root / preset
    extra = ()
    print(f"training {preset} on {n_proc} GPU(s): global batch {cfg.batch_size}, {cfg.batch_size // n_proc} per GPU, "
          f"{cfg.epochs} epochs" + (f", at most {cfg.steps} iterations" if cfg.steps else ""))
else:
    why = "no CUDA device" if not cuda else f"no {preset} data"
    n_proc = 2
    cfg = uotm_presets.preset("digits", data_root=data_root, steps=cpu_steps, log_every=max(1, cpu_steps // 4),
                              sample_every=cpu_steps, snapshot_every=cpu_steps)
    run_dir = runs_root / "cpu-stand-in"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    extra = ("--device", "cpu")
    print(f"STAND-IN ({why}): the digits preset, {n_proc} gloo processes of {cfg.batch_size // n_proc} images, "
          f"{cpu_steps} iterations; not the paper's run")
resume = (run_dir / "snapshot.pt").is_file()
# one thread per process; and on the CPU, DDP warns at every backward that the gradient of a 1x1 convolution has a
# different memory layout from its communication bucket (a possible slow-down, not a wrong result): hidden here
child_env = {"OMP_NUM_THREADS": "1",
             "PYTHONWARNINGS": "ignore:Grad strides do not match bucket view strides:UserWarning"}

# %% [markdown]
# The launch itself; the processes' progress bar and log lines appear below it as they come:

# %%
print("$ " + " ".join(launch_command(run_dir / "launch.yaml", n_proc, run_dir, resume, extra, python="python")))
t0 = time.perf_counter()
launch(cfg, n_proc, run_dir, resume=resume, extra_args=extra, env=child_env)
train_seconds = time.perf_counter() - t0
rows = read_metrics(run_dir)
print(f"{train_seconds:.0f} s including the processes' start; {rows[-1]['step']} iterations; "
      f"{rows[-1]['sec_per_iter']:.2f} s per iteration at the end")
assert rows and rows[-1]["step"] == (cfg.steps or rows[-1]["step"])

# %% [markdown]
# The trainer writes `metrics.jsonl` (means over `log_every` iterations), `samples-*.png` (the EMA map on fixed
# noise), `config.yaml` and `snapshot.pt`, everything needed to resume exactly:

# %% tags=["hide-input"]
print(", ".join(sorted(p.name for p in run_dir.iterdir())))
logged = {"step": "step", "epoch": "epoch", "potential_loss": "L_v", "map_loss": "L_T", "cost": "cost", "r1": "R1",
          "sec_per_iter": "s per iteration"}
show_table(list(logged.values()), [[row[k] for k in logged] for row in rows],
           {1: ".3f", 2: ".4g", 3: ".4g", 4: ".4g", 5: ".3g", 6: ".2f"})
grid = sorted(run_dir.glob("samples-*.png"))[-1]
fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(plt.imread(grid), cmap="gray")
ax.set_title(f"{grid.name} ({'stand-in, ' if not paper_run else ''}{rows[-1]['step']} iterations)")
ax.axis("off")
plt.show()

# %% [markdown]
# ## Sampling and the FID
#
# The FID (Fréchet Inception distance, Heusel et al., 2017) compares Inception features of 50 000 samples with those
# of the training set (`uotm.metrics`, through pytorch-fid's network and weights). The training set's statistics are
# computed once and cached under `data_root/fid-stats/`. The Inception weights are looked up locally and never
# downloaded; where they are missing the cell says where to put them. For the `digits` stand-in the score is the proxy
# FID of chapter 7. Here the two steps run as the commands a user would type, `python -m uotm sample` and `python -m
# uotm fid`:

# %%
n = n_samples if paper_run else min(n_samples, 1000)
samples_path = run_dir / "samples.npz"
print("$ python -m uotm sample --run", run_dir, "-n", n, "--out", samples_path)
print(uotm_cli("sample", "--run", str(run_dir), "-n", str(n), "--out", str(samples_path), "--quiet").strip())
if cfg.dataset == "digits":
    print("$ python -m uotm fid --run", run_dir, "--samples", samples_path, "--json")
    score = json.loads(uotm_cli("fid", "--run", str(run_dir), "--samples", str(samples_path), "--json"))
    print(score)
    if not paper_run:
        print(f"(stand-in after {rows[-1]['step']} iterations: a large proxy FID is expected; chapter 7 trains the "
              "same preset long enough to make digits)")
else:
    try:
        metrics.fid_weights_path()
    except ValueError as missing:
        print(f"FID not computed: {missing}")
    else:
        score = json.loads(uotm_cli("fid", "--run", str(run_dir), "--samples", str(samples_path), "--json"))
        print(score)

# %% [markdown]
# The same from Python: `images = uotm.sample.sample(run_dir, 50_000)` returns uint8 images (N, H, W, C);
# `uotm.metrics.fid(images, uotm.metrics.reference_statistics(cfg))` scores them.
#
# ## The same from a terminal
#
# ```bash
# # one node, 4 GPUs: CIFAR-10 as in the paper (global batch 256, 64 per GPU)
# torchrun --nproc_per_node=4 -m uotm train --preset cifar10 \
#     --data-root /data --run-dir runs/cifar10
# # continue after an interruption (the run's own config.yaml is used)
# torchrun --nproc_per_node=4 -m uotm train --run-dir runs/cifar10 --resume
# # CelebA-HQ 256 on two nodes of 4 GPUs (global batch 32, 4 per GPU): the
# # same command on each node, NODE_RANK 0 and 1, HOST the first node's
# # address; the run folder must be on a shared file system
# torchrun --nnodes=2 --node_rank=NODE_RANK --nproc_per_node=4 \
#     --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 --rdzv_id=celeba \
#     -m uotm train --preset celeba_256 --data-root /data \
#     --run-dir /shared/runs/celeba
# # 50 000 samples of the EMA map, then the FID against the training set
# python -m uotm sample --run runs/cifar10 -n 50000 \
#     --out runs/cifar10/samples.npz
# python -m uotm fid --run runs/cifar10 --samples runs/cifar10/samples.npz
# ```
#
# Where the data and the weights go: CIFAR-10's python version extracted into `DATA_ROOT/cifar-10-batches-py`;
# CelebA-HQ at 256×256 in `DATA_ROOT/celeba-hq/celeba-256` with CelebA's partition file beside it; MNIST (for
# `cifar10+mnist`, the outlier experiment) in `DATA_ROOT/MNIST/raw`; the Inception weights
# `pt_inception-2015-12-05-6726825d.pth` in the torch hub cache or at `$UOTM_FID_WEIGHTS`. A missing piece stops the
# command with a message that says where to get it. `--set KEY=VALUE` changes any field of the configuration
# (`--set tau=2e-3`, `--set net.base_channels=64`); `--precision fp32` turns bf16 autocast off.
#
# ## One process or two: the same training
#
# The claim of the first section, checked on the stand-in: one process with the global batch of
# {glue:text}`stand_in_batch` and the run above with two processes of {glue:text}`stand_in_local_batch` should end
# with the same weights, up to the rounding of the gradient average (Adam divides each gradient by its running size,
# so a rounding difference in a tiny gradient can become a difference of a whole step in that weight). The measure is
# the distance between the two sets of final weights over the distance the training moved them, asserted below 5%; a
# split that fed the processes other images or other noise than the single process sees would send the two runs on
# different paths, far beyond that.

# %%
if not paper_run:
    single_dir = runs_root / "cpu-one-process"
    if single_dir.exists():
        shutil.rmtree(single_dir)
    launch(cfg, 1, single_dir, extra_args=extra + ("--quiet",), env=child_env)  # a check: no progress bar
    two = torch.load(run_dir / "snapshot.pt", map_location="cpu", weights_only=True)
    one = torch.load(single_dir / "snapshot.pt", map_location="cpu", weights_only=True)
    torch.manual_seed(cfg.seed)  # the trainer's initialisation, rebuilt: how far did training move the weights?
    init_map, init_potential = build_networks(cfg)
    start = {"transport_map": init_map.state_dict(), "potential": init_potential.state_dict(),
             "ema": init_map.state_dict()}

    def flat(state: dict) -> torch.Tensor:
        return torch.cat([t.float().flatten() for t in state.values()])

    split_ratios = {}
    for net in ("transport_map", "potential", "ema"):
        gap = (flat(one[net]) - flat(two[net])).norm().item()
        moved = (flat(one[net]) - flat(start[net])).norm().item()
        split_ratios[net] = gap / moved
        print(f"{net:>13}: |1 process - 2 processes| = {gap:.2e}, |trained - initial| = {moved:.2e}, "
              f"ratio {gap / moved:.4f}")
        assert gap < 0.05 * moved, (net, gap, moved)
    glue("split_ratio_max", f"{max(split_ratios.values()):.2%}")
    rows_one = read_metrics(single_dir)
    print(f"last logged losses, 1 process: potential {rows_one[-1]['potential_loss']:.5f}, map "
          f"{rows_one[-1]['map_loss']:.5f}; 2 processes: {rows[-1]['potential_loss']:.5f}, {rows[-1]['map_loss']:.5f}")
else:
    glue("split_ratio_max", "not measured (the check is skipped where CUDA is available)")
    print("skipped: this check runs on the CPU stand-in only")

# %% [markdown]
# In this run the largest of the three ratios is {glue:text}`split_ratio_max`.
