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
# # Comparison
#
# The previous chapters each looked at one method: balanced OTM {cite:p}`rout2022otm` and UOTM
# {cite:p}`choi2023uotm` with several $\Psi$ (chapters 4–7), its gradient-flow sequel S-JKO {cite:p}`choi2024sjko`
# (chapter 9) and the Wasserstein auto-encoder of the penalised-OT view {cite:p}`bousquet2017vegan,tolstikhin2018wae`
# (chapter 10). This page puts them side by side on the same three problems and scores them with the same
# measurements:
#
# - **ring**: eight Gaussians on the circle of radius 2 (`8gaussians`), source $N(0,I_2)$;
# - **ring + outliers**: the same with a share `outlier_fraction` (1%) of the points moved to a tight cluster
#   $N((d,0),0.1^2I)$ at the distance $d=$ `outlier_distance` (4.5), chapter 5's 2-D outlier problem;
# - **digits**: the 16×16 digits of chapter 7 (1 500 training images, 297 held out).
#
# The models: **OTM** (`linear`/`linear`), **UOTM** with $\Psi^*$ = `kl`, `chi` and `softplus` on both sides (the
# same trainer, only $\Psi^*$ changes), **S-JKO** (KL, a few JKO steps through one generator) and **WAE-MMD**
# (deterministic encoder, IMQ-kernel MMD). The measurements:
#
# - $W_2$ between generated samples and a fresh data sample, exact for the two clouds (`ot.emd2`, through
#   `uotm.exact.w2`), beside the floor that two data samples set and the trivial yardstick of the source
#   $N(0,I_2)$ itself;
# - the **outlier share**: the fraction of generated samples within distance 1 of the cluster's centre, beside the
#   data's share and, for OTM and UOTM, the share that the exact discrete UOT (or OT) plan sends there;
# - the **proxy FID** on digits (chapter 7's classifier features), beside the held-out digits (what a perfect model
#   could reach) and a Gaussian fitted to the pixels (a model that knows only the pixels' means and covariances);
# - **wall time** of training on this machine (one CPU thread).
#
# **Budget.** Every model gets the *same number of iterations* on a problem, an iteration being one update of the
# generator (map, or encoder and decoder) and at most one update of its critic (potential); the UOTM trainers here
# make one potential step per map step (the reference toy trainer makes five). Iterations are not equally
# expensive: a WAE iteration has no critic, S-JKO's runs one more generator forward (the frozen old map), and the
# time columns say what each one cost. The budget is small (the banner above gives this page's run time): the numbers
# compare models *at this budget*, not at convergence, and the last section says what that means.

# %% tags=["parameters"]
seed = 0  # seed of the data, the networks and the noise of every run
num_data = 4000  # 2-D training points per problem
outlier_fraction = 0.01  # share of the 2-D data moved to the outlier cluster
outlier_distance = 4.5  # distance of the cluster centre from the origin (the 2-D problem of chapter 5)
trial_fraction = 0.05  # a third 2-D problem with this share in the cluster, for OTM and UOTM (kl) only
tau = 0.3  # cost scale of OTM and UOTM in 2-D, as in chapter 5
psis = ["kl", "chi", "softplus"]  # conjugates of UOTM (OTM, linear, is always trained)
toy_iterations = 600  # iterations of every 2-D run (rounded up to whole epochs of the toy trainer)
toy_batch = 256  # batch of every 2-D run
toy_lr = 3e-4  # Adam learning rate of both networks of the adversarial 2-D runs
reg_lambda = 0.01  # source-gradient regulariser of OTM and UOTM in 2-D (as in chapter 5)
sjko_phases = 5  # JKO steps of S-JKO (2-D and digits use their own counts below)
sjko_h = 1.0  # S-JKO step h; cost: squared distance over 2 h d (per coordinate, as the authors)
wae_lam = 10.0  # lambda of the 2-D WAE
n_w2 = 1000  # points per cloud in the W2 distances
n_share = 4000  # generated points per model for the outlier share
radius = 1.0  # a point this close to the cluster centre counts as an outlier
n_grid = 13  # grid points per axis of the source in the exact problem
n_per_mode = 8  # data points per ring mode in the exact problem
n_exact_outliers = 8  # data points of the cluster in the exact problem
digits_iterations = 250  # iterations of every digits run
digits_batch = 8  # images per iteration of the image trainer (as in chapter 7)
lr_map = 6e-4  # Adam learning rate of the image map (chapter 7)
lr_potential = 2e-4  # Adam learning rate of the image potential (chapter 7)
ema_decay = 0.99  # EMA of the weights of the image map (chapter 7)
digits_phases = 3  # S-JKO phases on the digits
wae_digits_batch = 64  # images per WAE iteration on the digits (as in chapter 10)
digits_lam = 100.0  # lambda of the digits WAE (chapter 10)
digits_z_dim = 8  # latent size of the digits WAE (chapter 10)
n_eval = 500  # samples per proxy FID
check_networks = True  # assert the claims about trained networks (they hold at these defaults for seeds 0-2)
data_root = "../_build/uotm-data"  # cache of the digits classifier (shared with chapters 7 and 10)
runs_root = "../_build/runs/11_comparison"  # where each execution puts the image trainer's runs (removed at the end)

# %% tags=["hide-input"]
import math
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import ot
import torch
from scipy.linalg import LinAlgWarning

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice; no progress bars are drawn
warnings.filterwarnings("ignore", category=LinAlgWarning)  # a singular covariance in a Fréchet distance

from uotm import metrics
from uotm.book import Claims, glue, show_table, wilson
from uotm.data.images import make_dataset, pixel_gaussian
from uotm.data.toy import make_distribution
from uotm.exact import Plan, solve_uot, squared_distances, w2
from uotm.plots import image_grid
from uotm.presets import preset
from uotm.sample import generate
from uotm.sjko import SJKOToyConfig, sample as sjko_sample, train_sjko_toy
from uotm.toy import ToyConfig, train_toy
from uotm.train import train
from uotm.wae import WAEConfig, train_wae

torch.set_num_threads(1)  # the machines that build this book share their cores
claims = Claims(enabled=check_networks)
runs_root = Path(runs_root)
runs_root.mkdir(parents=True, exist_ok=True)
run_folder = Path(tempfile.mkdtemp(prefix=f"seed{seed}-", dir=runs_root))  # this execution's own: runs may overlap
workdir = Path(tempfile.mkdtemp(prefix="uotm-compare-"))
MODELS = ["OTM"] + [f"UOTM ({p})" for p in psis] + ["S-JKO (kl)", "WAE-MMD"]


def slug(model: str) -> str:
    """A model's name as part of a glue or claim name: "UOTM (kl)" -> "uotm_kl"."""
    return re.sub(r"\W+", "_", model.lower()).strip("_")


# %% [markdown]
# ## The 2-D problems
#
# Both data sets are drawn once and saved as point clouds, so that the three trainers (`uotm.toy.train_toy`,
# `uotm.sjko.train_sjko_toy`, `uotm.wae.train_wae`) see the same points. The settings (numbers in parentheses are
# the parameters' defaults):
#
# - OTM and UOTM: cost $c(x,y)=\tau\lVert x-y\rVert^2$ with $\tau=$ `tau` (0.3), a stochastic map $T(x,z)$, Adam at
#   the same learning rate for both networks, and chapter 5's regulariser
#   $\lambda\,\mathbb E\lVert\nabla_xv(T(x,z))\rVert^2$ with $\lambda=$ `reg_lambda` (0.01), which damps the
#   balanced potential; it is given to all four, so that only $\Psi^*$ differs, and a section below trains OTM on the
#   ring without it;
# - S-JKO: `sjko_phases` JKO steps of $h=$ `sjko_h` (1) with the authors' per-coordinate cost
#   $\lVert x-y\rVert^2/(2hd)$ (in 2-D and with $h=1$ this is $0.25\lVert x-y\rVert^2$ per step, close to UOTM's
#   $\tau$), KL on the data side, a balanced source side, data noise $1/(32(k+1))$; the iterations are split evenly
#   over the phases; the same learning rate as UOTM (the authors' 1e-4 / 2e-5 are made for 50 000 iterations);
# - WAE-MMD: a 2-D latent, $\lambda=$ `wae_lam` (10), the WAE trainer's own learning rate (1e-3, cosine-annealed),
#   chapter 10's 2-D settings.

# %% tags=["hide-input"]
angles = np.arange(8) * np.pi / 4
ring_centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
centre = np.array([outlier_distance, 0.0])


def ring_data(n: int, fraction: float, draw_seed: int) -> np.ndarray:
    """``n`` points of the ring, of which ``int(n * fraction)`` are moved to the outlier cluster (rows shuffled)."""
    n_out = int(n * fraction)
    main = make_distribution("8gaussians").sample(n - n_out, torch.Generator().manual_seed(draw_seed)).numpy()
    rng = np.random.default_rng(draw_seed)
    pts = np.concatenate([main, centre + 0.1 * rng.normal(size=(n_out, 2))]).astype(np.float32)
    return pts[rng.permutation(n)]


problems = {"ring": 0.0, "ring + outliers": outlier_fraction}
train_data, test_data, data_files = {}, {}, {}
for k, (problem, fraction) in enumerate(problems.items()):
    train_data[problem] = ring_data(num_data, fraction, seed + 10 * k)
    test_data[problem] = ring_data(n_w2, fraction, seed + 10 * k + 1).astype(np.float64)
    data_files[problem] = workdir / f"problem{k}.npy"
    np.save(data_files[problem], train_data[problem])


def in_cluster(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points - centre, axis=1) < radius




data_share = float(in_cluster(train_data["ring + outliers"]).mean())
print(f"outlier share of the training data: {100 * data_share:.2f}%; of the clean ring: "
      f"{100 * in_cluster(train_data['ring']).mean():.2f}%")
assert abs(data_share - outlier_fraction) < 1e-9 and not in_cluster(train_data["ring"]).any()

batches_per_epoch = num_data // toy_batch
toy_epochs = math.ceil(toy_iterations / batches_per_epoch)
n_iter = toy_epochs * batches_per_epoch  # the iterations every 2-D model gets
per_phase = max(1, n_iter // sjko_phases)
first_phase = n_iter - (sjko_phases - 1) * per_phase
assert first_phase >= 1 and first_phase + (sjko_phases - 1) * per_phase == n_iter
print(f"every 2-D model: {n_iter} iterations of batch {toy_batch}; S-JKO: {first_phase} + "
      f"{sjko_phases - 1} x {per_phase}")


potential_peak = {}  # OTM and UOTM: the largest |potential loss| among the logged iterations of each run


def train_2d(model: str, problem: str, reg: float = reg_lambda) -> tuple[np.ndarray, float]:
    """Train ``model`` on ``problem``; return ``n_share`` generated points and the training time in seconds. ``reg``
    is the source-gradient regulariser's lambda of OTM and UOTM."""
    target = f"npy:{data_files[problem]}"
    if model == "S-JKO (kl)":
        cfg = SJKOToyConfig(target=target, loss="kl", h=sjko_h, cost_scale="per_coordinate", phases=sjko_phases,
                            phase_steps=per_phase, first_phase_steps=first_phase, batch_size=toy_batch,
                            lr_map=toy_lr, lr_potential=toy_lr, seed=seed, eval_samples=1000, keep_points=100,
                            sample_repeats=1, log_every=max(1, n_iter // 10))
        run = train_sjko_toy(cfg, progress=False)
        return sjko_sample(run, n_share, seed=seed + 5).astype(np.float64), run.seconds
    if model == "WAE-MMD":
        cfg = WAEConfig(data="8gaussians", z_dim=2, lam=wae_lam, steps=n_iter, batch_size=toy_batch,
                        num_data=num_data, seed=seed, log_every=max(1, n_iter // 10))
        run = train_wae(cfg, data=torch.as_tensor(train_data[problem]), progress=False)
        return run.sample(n_share, seed=seed + 5).double().numpy(), run.seconds
    phi = "linear" if model == "OTM" else model[6:-1]
    cfg = ToyConfig(source="noise", target=target, psi1=phi, psi2=phi, tau=tau, epochs=toy_epochs,
                    batch_size=toy_batch, lr_map=toy_lr, lr_potential=toy_lr, potential_steps=1, reg_lambda=reg,
                    num_data=num_data, seed=seed, log_every=max(1, n_iter // 10))
    run = train_toy(cfg, progress=False)
    potential_peak[problem, model, reg] = max(abs(r["potential_loss"]) for r in run.metrics)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 5)
        x = torch.randn(n_share, 2, generator=g)
        points = run.transport_map(x, torch.randn(n_share, run.transport_map.z_dim, generator=g))
    return points.double().numpy(), run.seconds


samples_2d, seconds_2d = {}, {}
for problem in problems:
    for model in MODELS:
        samples_2d[problem, model], seconds_2d[problem, model] = train_2d(model, problem)

# %% [markdown]
# ## The exact answers to the outlier question
#
# Which share of the samples *should* land in the cluster? For OTM, exactly the data's: a balanced plan moves every
# source point and must fill every data point's mass. For UOTM, the optimal unbalanced plan $\pi^*$ between the
# source and the data decides, and its map sends the share $\int\pi^*(\text{cluster}\,|\,x)\,d\mu(x)$ of the samples
# there (chapters 5 and 6). It is computed on a small discrete version of the problem, as in chapter 6: the source
# on an `n_grid`² grid weighted by the Gaussian density, each ring mode summarised by `n_per_mode` points and the
# cluster by `n_exact_outliers`, each group weighted by its share of the data; `uotm.exact.solve_uot` with the
# model's $\Psi$ on both sides (certified by its duality gap), `ot.emd` for OTM. S-JKO's exact answer would be a
# chain of unbalanced problems whose limit is the data itself, and the WAE keeps the data side as a hard constraint
# (its target is the data's share); neither is computed here.

# %% tags=["hide-input"]
g = np.linspace(-4.0, 4.0, n_grid)
x_src = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
a = np.exp(-0.5 * (x_src ** 2).sum(axis=1))
a /= a.sum()


def summary(data: np.ndarray, draw_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The discrete data of the exact problem: ``n_per_mode`` points per ring mode and ``n_exact_outliers`` of the
    cluster, drawn from ``data``, each group weighted by its share of the data; and the mask of the cluster's."""
    rng = np.random.default_rng(draw_seed)
    data = data.astype(np.float64)
    is_out = in_cluster(data)
    mode = np.argmin(((data[:, None, :] - ring_centres[None]) ** 2).sum(axis=-1), axis=1)
    pts, wts = [], []
    for k in range(8):
        members = data[(mode == k) & ~is_out]
        pts.append(members[rng.choice(len(members), n_per_mode, replace=False)])
        wts.append(np.full(n_per_mode, len(members) / len(data) / n_per_mode))
    members = data[is_out]
    pts.append(members[rng.choice(len(members), n_exact_outliers, replace=False)])
    wts.append(np.full(n_exact_outliers, is_out.mean() / n_exact_outliers))
    mask = np.r_[np.zeros(8 * n_per_mode, bool), np.ones(n_exact_outliers, bool)]
    return np.concatenate(pts), np.concatenate(wts), mask


def exact_cluster_share(model: str, y_sum: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """The share of the optimal plan's generated mass in the cluster for OTM or UOTM (``model``), and the solver's
    duality gap (0 for the balanced solver)."""
    phi = "linear" if model == "OTM" else model[6:-1]
    cost = tau * squared_distances(x_src, y_sum)
    if phi == "linear":
        plan = ot.emd(a, b, cost, numItermax=10_000_000)
        pl = Plan(x_src, y_sum, plan, float(np.sum(plan * cost)))
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            pl = solve_uot(a, b, cost, phi, phi, x=x_src, y=y_sum)
    generated = a @ pl.conditional()  # T*_# mu on the summary points
    return float(generated[mask].sum()), pl.gap


# %%
y_sum, b, mask = summary(train_data["ring + outliers"], seed)
exact_share, exact_gap = {}, {}
for model in MODELS[:1 + len(psis)]:
    exact_share[model], exact_gap[model] = exact_cluster_share(model, y_sum, b, mask)
    glue(f"exact_share_{slug(model)}", 100 * exact_share[model])
print(f"exact problems of {len(a)} x {len(b)} points; largest duality gap {max(exact_gap.values()):.1e}")
assert abs(exact_share["OTM"] - data_share) < 1e-9  # a balanced plan fills the cluster's mass exactly
for model, share in exact_share.items():
    if model != "OTM":
        assert share < data_share and exact_gap[model] < 1e-5, (model, share)  # UOT discounts the far cluster

# %% [markdown]
# ## Two more 2-D runs
#
# Two questions that the main runs leave open get runs of their own, at the same budget:
#
# - **OTM without the regulariser**, on the clean ring ($\lambda=0$, everything else as above): what the
#   regulariser that every OTM and UOTM run above receives is for;
# - **a heavier cluster**: OTM and UOTM (kl) on the ring with `trial_fraction` of the data in the cluster instead of
#   `outlier_fraction`, with the exact answers of that problem. A mode of 1% may simply be too rare for a few hundred
#   iterations to find; a heavier one says whether the networks can find the cluster at all at this budget.

# %% tags=["hide-input"]
trial_problem = "ring + heavier cluster"
train_data[trial_problem] = ring_data(num_data, trial_fraction, seed + 20)
data_files[trial_problem] = workdir / "problem_trial.npy"
np.save(data_files[trial_problem], train_data[trial_problem])
trial_share = glue("trial_data_pct", 100 * float(in_cluster(train_data[trial_problem]).mean())) / 100
assert abs(trial_share - trial_fraction) < 1e-9
y_trial, b_trial, mask_trial = summary(train_data[trial_problem], seed + 20)
trial_rows = {}
for model in ("OTM", "UOTM (kl)"):
    points, _ = train_2d(model, trial_problem)
    k = int(in_cluster(points).sum())
    share, gap = exact_cluster_share(model, y_trial, b_trial, mask_trial)
    assert gap < 1e-5 and (abs(share - trial_share) < 1e-9 if model == "OTM" else share < trial_share), (model, share)
    trial_rows[model] = (100 * k / len(points), [100 * v for v in wilson(k, len(points))], 100 * share)
    glue(f"trial_share_{slug(model)}", 100 * k / len(points))
    glue(f"trial_hi_{slug(model)}", 100 * wilson(k, len(points))[1])
    glue(f"trial_exact_{slug(model)}", 100 * share)
show_table([f"heavier cluster ({100 * trial_share:.0f}% of the data)", "generated share %", "95% interval %",
            "exact share %"],
           [[m, r[0], f"{r[1][0]:.2f}-{r[1][1]:.2f}", r[2]] for m, r in trial_rows.items()], {1: ".2f", 3: ".2f"})

unreg, _ = train_2d("OTM", "ring", reg=0.0)
w2_unreg = w2(unreg[:n_w2], test_data["ring"])
peak_reg, peak_unreg = potential_peak["ring", "OTM", reg_lambda], potential_peak["ring", "OTM", 0.0]
for key, value in {"unreg_w2": w2_unreg, "unreg_peak": peak_unreg, "reg_peak": peak_reg}.items():
    glue(key, value)
print(f"OTM on the ring: largest |potential loss| at the logged iterations {peak_reg:.3g} with the regulariser, "
      f"{peak_unreg:.3g} without; W2 to the data without it {w2_unreg:.3f}")

# %% [markdown]
# ## The digits
#
# All the maps on the digits are trained by the image trainer `uotm.train.train` (the `digits` preset's networks,
# chapter 7's batch, learning rates and EMA for every model); S-JKO is the same trainer with `model="sjko"` and
# `digits_phases` phases of the preset's $h$ (0.1 per pixel) and noise, the first phase twice as long as the others
# (the preset gives its first phase three times the others); OTM and UOTM use the preset's $\tau=10^{-3}$ and R1.
# The WAE is chapter 10's convolutional WAE-MMD, at its own batch of `wae_digits_batch` (64): a WAE iteration is so
# much cheaper that at batch 8 it would get a fraction of the others' compute. Each model's proxy FID is computed on
# `n_eval` samples (of the EMA map for the image trainer's models), and so is the pixel Gaussian's
# (`uotm.data.images.pixel_gaussian`, chapter 7's yardstick).

# %% tags=["hide-input"]
classifier, accuracy, _ = metrics.digits_classifier(data_root)
base = preset("digits", data_root=data_root)
digits = make_dataset(base, train=True)
held_out = make_dataset(base, train=False)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


fid_held_out = metrics.proxy_fid(held_out.images, data_root)
fid_gaussian = metrics.proxy_fid(pixel_gaussian(digits, n_eval, seed), data_root)
print(f"proxy classifier accuracy {accuracy:.3f}; proxy FID of held-out digits {fid_held_out:.1f}, "
      f"of the pixel Gaussian (n={n_eval}) {fid_gaussian:.1f}")

d_per_phase = max(1, digits_iterations // (digits_phases + 1))
d_first = digits_iterations - (digits_phases - 1) * d_per_phase
epochs = max(1, math.ceil(digits_iterations * digits_batch / len(digits)))
common = dict(data_root=data_root, batch_size=digits_batch, lr_map=lr_map, lr_potential=lr_potential,
              ema_decay=ema_decay, epochs=epochs, schedule_epochs=epochs, seed=seed, steps=digits_iterations,
              log_every=max(1, digits_iterations // 10), sample_every=10 ** 9, snapshot_every=10 ** 9)
digit_samples, fid_digits, seconds_digits = {}, {}, {}
for model in MODELS:
    t0 = time.perf_counter()
    if model == "WAE-MMD":
        cfg = WAEConfig(data="digits", z_dim=digits_z_dim, width=32, steps=digits_iterations, lam=digits_lam,
                        batch_size=wae_digits_batch, data_root=data_root, seed=seed,
                        log_every=max(1, digits_iterations // 10))
        wae_run = train_wae(cfg, progress=False)
        seconds_digits[model] = time.perf_counter() - t0
        images = as_uint8(wae_run.sample(n_eval, seed=seed + 5))
    else:
        if model == "S-JKO (kl)":
            cfg = preset("digits", model="sjko", sjko=dict(phases=digits_phases, first_phase_steps=d_first,
                                                           phase_steps=d_per_phase), **common)
        else:
            phi = "linear" if model == "OTM" else model[6:-1]
            cfg = preset("digits", psi1=phi, psi2=phi, **common)
        state = train(cfg, run_folder / f"model{MODELS.index(model)}", progress=False)
        assert state.step == digits_iterations, (model, state.step)
        seconds_digits[model] = time.perf_counter() - t0
        images = generate(state.ema, cfg, n_eval, 250, seed=seed + 5)
    digit_samples[model] = images
    fid_digits[model] = metrics.proxy_fid(images, data_root)
shutil.rmtree(run_folder)  # the snapshots are not used again

# %% [markdown]
# ## The tables
#
# One row per model, then the yardsticks. $W_2$ is the exact distance between `n_w2` generated points and a fresh
# data sample of the same size (never the training points); the row "data (fresh sample)" is the floor that two data
# samples set. The outlier share counts `n_share` generated points of the outlier problem; its 95% interval is
# Wilson's (`uotm.book.wilson`), and "exact %" is the share that the exact plan of the previous section sends there.
# Proxy FIDs use `n_eval` samples (the held-out row: all its images). Times are training only (2-D: the two problems
# together), on one thread of this machine, whose other jobs make them vary by tens of percent from one execution to
# the next.

# %% tags=["hide-input"]
rows, upper = {}, {}
for model in MODELS:
    out = samples_2d["ring + outliers", model]
    k = int(in_cluster(out).sum())
    lo, hi = wilson(k, len(out))
    upper[model] = 100 * hi
    rows[model] = {
        "W2 ring": w2(samples_2d["ring", model][:n_w2], test_data["ring"]),
        "W2 ring+outliers": w2(out[:n_w2], test_data["ring + outliers"]),
        "outlier share %": 100 * k / len(out),
        "95% interval": f"{100 * lo:.2f}-{100 * hi:.2f}",
        "exact share %": 100 * exact_share[model] if model in exact_share else np.nan,
        "proxy FID digits": fid_digits[model],
        "train s 2-D": seconds_2d["ring", model] + seconds_2d["ring + outliers", model],
        "train s digits": seconds_digits[model],
    }
source_pts = {p: np.random.default_rng(seed + 7).normal(size=(n_w2, 2)) for p in problems}
floor_pts = {p: ring_data(n_w2, fr, seed + 99).astype(np.float64) for p, fr in problems.items()}
rows["data (fresh sample)"] = {"W2 ring": w2(floor_pts["ring"], test_data["ring"]),
                               "W2 ring+outliers": w2(floor_pts["ring + outliers"], test_data["ring + outliers"]),
                               "outlier share %": 100 * data_share, "proxy FID digits": fid_held_out}
rows["source N(0,I) / pixel Gaussian"] = {
    "W2 ring": w2(source_pts["ring"], test_data["ring"]),
    "W2 ring+outliers": w2(source_pts["ring + outliers"], test_data["ring + outliers"]),
    "outlier share %": 100 * float(in_cluster(source_pts["ring"]).mean()), "proxy FID digits": fid_gaussian}
COLUMNS = ["W2 ring", "W2 ring+outliers", "outlier share %", "95% interval", "exact share %", "proxy FID digits",
           "train s 2-D", "train s digits"]
table = {name: {col: row.get(col) for col in COLUMNS} for name, row in rows.items()}


def cells(name: str, columns: list[str]) -> list:
    """One row of a displayed table: the model's name, then its values (blank where there is none)."""
    values = [table[name][c] for c in columns]
    return [name] + ["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


yardsticks_2d = {"data (fresh sample)": "data (fresh sample)", "source N(0,I) / pixel Gaussian": "source N(0,I)"}
show_table(["2-D, " + f"{n_iter} iterations", "W2 ring", "W2 outliers", "share %", "95% interval", "exact %"],
           [cells(m, COLUMNS[:5]) for m in MODELS]
           + [[label] + cells(name, COLUMNS[:3])[1:] + ["", ""] for name, label in yardsticks_2d.items()],
           {1: ".3f", 2: ".3f", 3: ".2f", 5: ".2f"})
yardsticks_digits = {"data (fresh sample)": f"held-out digits ({len(held_out)})",
                     "source N(0,I) / pixel Gaussian": "pixel Gaussian"}
show_table([f"digits, {digits_iterations} iterations", "proxy FID", "train s 2-D", "train s digits"],
           [cells(m, COLUMNS[5:]) for m in MODELS]
           + [[label, table[name]["proxy FID digits"], "", ""] for name, label in yardsticks_digits.items()],
           {1: ".1f", 2: ".0f", 3: ".0f"})
src, floor = table["source N(0,I) / pixel Gaussian"], table["data (fresh sample)"]
for name, key in [(m, slug(m)) for m in MODELS] + [("data (fresh sample)", "floor"),
                                                   ("source N(0,I) / pixel Gaussian", "source")]:
    glue(f"w2_ring_{key}", table[name]["W2 ring"])
    glue(f"w2_out_{key}", table[name]["W2 ring+outliers"])
for model in MODELS:
    glue(f"share_{slug(model)}", table[model]["outlier share %"])
    glue(f"fid_{slug(model)}", fid_digits[model])
    glue(f"time2d_{slug(model)}", table[model]["train s 2-D"])
    glue(f"timedigits_{slug(model)}", table[model]["train s digits"])
uotms = [f"UOTM ({p})" for p in psis]
for col, key in (("W2 ring", "ring"), ("W2 ring+outliers", "out")):
    glue(f"uotm_w2_{key}_lo", min(table[m][col] for m in uotms))
    glue(f"uotm_w2_{key}_hi", max(table[m][col] for m in uotms))
glue("uotm_fid_lo", min(fid_digits[m] for m in uotms))
glue("uotm_fid_hi", max(fid_digits[m] for m in uotms))
glue("fid_gaussian", fid_gaussian)
glue("fid_held_out", fid_held_out)
for col, key in (("train s 2-D", "2d"), ("train s digits", "digits")):
    uotm_time = np.mean([table[m][col] for m in uotms])
    glue(f"time_wae_over_uotm_{key}", table["WAE-MMD"][col] / uotm_time)
    glue(f"time_sjko_over_uotm_{key}", table["S-JKO (kl)"][col] / uotm_time)
glue("wae_batch_ratio", wae_digits_batch // digits_batch if wae_digits_batch % digits_batch == 0
     else round(wae_digits_batch / digits_batch, 1))
glue("data_share_pct", 100 * data_share)
glue("n_share", n_share)
_ = glue("n_iter", n_iter)

# %% [markdown]
# ## The figures
#
# Samples of every model, one figure per problem: the data in the first panel, then one panel per model. In 2-D the
# generated points (blue) are drawn over the data (orange), with the outlier cluster circled; each panel's title
# gives its $W_2$ (and, with the outliers, its share in the cluster). On the digits, 24 samples of each model (the
# first panel: training digits) with its proxy FID.

# %% tags=["hide-input"]
for r, problem in enumerate(problems):
    fig, axes = plt.subplots(2, 4, figsize=(10, 5.8), layout="constrained")
    axes = axes.ravel()
    axes[0].scatter(*test_data[problem].T, s=2, c="tab:orange")
    axes[0].set_title("data")
    for ax, model in zip(axes[1:], MODELS):
        ax.scatter(*test_data[problem].T, s=2, c="tab:orange", alpha=0.3)
        ax.scatter(*samples_2d[problem, model][:n_w2].T, s=2, c="tab:blue", alpha=0.5)
        title = f"{model}\nW2 {table[model]['W2 ring' if r == 0 else 'W2 ring+outliers']:.2f}"
        if r == 1:
            title += f", {table[model]['outlier share %']:.2f}%"
        ax.set_title(title)
    for ax in axes[:len(MODELS) + 1]:
        ax.add_patch(plt.Circle(centre, radius, fill=False, color="k", ls="--", lw=0.8))
        ax.set_xlim(-3.5, 6.0)
        ax.set_ylim(-4.0, 4.0)
        ax.set_aspect("equal")
        ax.set_xticks([-2, 0, 2, 4])
    for ax in axes[len(MODELS) + 1:]:
        ax.axis("off")
    fig.suptitle(f"{problem}: samples after {n_iter} iterations")
    plt.show()

fig, axes = plt.subplots(2, 4, figsize=(10, 5.2), layout="constrained")
axes = axes.ravel()
axes[0].imshow(image_grid(digits.images[:24], nrow=6), cmap="gray", vmin=0, vmax=255)
axes[0].set_title(f"training digits\n(held-out: {fid_held_out:.1f})")
for ax, model in zip(axes[1:], MODELS):
    ax.imshow(image_grid(digit_samples[model][:24], nrow=6), cmap="gray", vmin=0, vmax=255)
    ax.set_title(f"{model}\nproxy FID {fid_digits[model]:.1f}")
for ax in axes:
    ax.axis("off")
fig.suptitle(f"digits: samples after {digits_iterations} iterations")
plt.show()

# %% [markdown]
# ## Checks
#
# The exact answers are asserted where they are computed: the balanced plan puts exactly the data's share in the
# cluster and every unbalanced plan less, each certified by its duality gap. What the *trained networks* do is stated
# as claims (`check_networks`): each is one number against a bound, asserted at the default parameters, and every
# bound is one that holds at seeds 0, 1 and 2 with some margin (`python ci/seeds.py 11_comparison` measures them).
# Networks trained for a few hundred iterations are not bit-reproducible across CPUs and library versions, and where
# two models are within a few percent of each other a single run does not rank them; this page does not either.
#
# - **2-D**: UOTM (every $\Psi^*$) and S-JKO end under three quarters of the source's own $W_2$ to the data on both
#   problems (the larger of the two ratios is the number claimed), and the UOTM variants within 0.15 of each other on
#   each problem; OTM, on one of the two problems at least, ends at more than 1.5 times the worst UOTM variant's
#   $W_2$, and the WAE at more than 1.25 times it on each problem;
# - **outliers**: every model *under*-represents the cluster: the upper end of its 95% interval is below the data's
#   share, and no model puts a quarter of that share of its samples there; for OTM and UOTM (kl) on the heavier
#   cluster as well (upper ends below that cluster's share);
# - **the regulariser**: without it, OTM's potential loss reaches at least ten times its regularised size, and its
#   samples end further from the ring than the source;
# - **digits**: the yardsticks are in order (held-out digits under three quarters of the pixel Gaussian's proxy FID),
#   no model gets below the pixel Gaussian at this budget, OTM is behind UOTM (kl), and S-JKO and the WAE are each
#   under three quarters of the best UOTM variant's proxy FID. Proxy FIDs depend on the classifier, which is trained
#   on the machine that builds the book, so the claims compare models within one run (as ratios), never with a
#   number typed here.
#
# Not claimed, because they do not hold at every one of the seeds 0–2 (or hold by a few percent only): which of
# S-JKO and the WAE has the lower proxy FID, that OTM's proxy FID is the largest of all (only UOTM (kl)'s is claimed
# below it), the order within the UOTM family, on which of the two 2-D problems OTM falls behind, and whether the
# WAE ends inside the source's $W_2$. The bounds 1.5 (OTM) and 1.25 (WAE) are what holds at the three seeds with a
# margin, not a measurement of how far behind they are.

# %%
assert all(math.isfinite(fid_digits[m]) for m in MODELS)
w2_ratio = {m: max(table[m]["W2 ring"] / src["W2 ring"], table[m]["W2 ring+outliers"] / src["W2 ring+outliers"])
            for m in MODELS}
for m in uotms + ["S-JKO (kl)"]:
    claims.below(f"w2_over_source_{slug(m)}", w2_ratio[m], 0.75,
                 f"{m}'s W2 to the data is under 3/4 of the source's, on both 2-D problems")
claims.below("uotm_w2_spread", max(max(table[m][c] for m in uotms) - min(table[m][c] for m in uotms)
                                   for c in ("W2 ring", "W2 ring+outliers")), 0.15,
             "the UOTM variants' W2 are within this of each other on each 2-D problem")
claims.above("w2_otm_over_uotm", max(table["OTM"][c] / max(table[m][c] for m in uotms)
                                     for c in ("W2 ring", "W2 ring+outliers")), 1.5,
             "on one 2-D problem at least, OTM's W2 is over 1.5 times the worst UOTM variant's")
claims.above("w2_wae_over_uotm", min(table["WAE-MMD"][c] / max(table[m][c] for m in uotms)
                                     for c in ("W2 ring", "W2 ring+outliers")), 1.25,
             "the WAE's W2 is well above every UOTM variant's on both 2-D problems")
claims.below("outlier_upper_max", max(upper.values()), 100 * data_share,
             "every model under-represents the cluster: its 95% upper end is below the data's share")
claims.below("outlier_share_max", max(table[m]["outlier share %"] for m in MODELS), 25 * data_share,
             "no model puts more than a quarter of the data's share (in %) of its samples in the cluster")
claims.below("fid_held_out_over_gaussian", fid_held_out / fid_gaussian, 0.75,
             "the yardsticks are in order: held-out digits well below the pixel Gaussian")
claims.above("fid_best_over_gaussian", min(fid_digits.values()) / fid_gaussian, 1.0,
             "no model gets below the pixel Gaussian's proxy FID at this budget")
if "kl" in psis:
    claims.above("fid_otm_over_uotm_kl", fid_digits["OTM"] / fid_digits["UOTM (kl)"], 1.0,
                 "OTM's proxy FID is above UOTM (kl)'s")
claims.below("fid_sjko_over_uotm", fid_digits["S-JKO (kl)"] / min(fid_digits[m] for m in uotms), 0.75,
             "S-JKO's proxy FID is well below every UOTM variant's")
claims.below("fid_wae_over_uotm", fid_digits["WAE-MMD"] / min(fid_digits[m] for m in uotms), 0.75,
             "the WAE's proxy FID is well below every UOTM variant's")
claims.above("unreg_peak_over_reg", peak_unreg / peak_reg, 10.0,
             "without the regulariser OTM's potential loss grows far larger than with it")
claims.above("unreg_w2_over_source", w2_unreg / src["W2 ring"], 1.0,
             "without the regulariser OTM ends further from the ring than the source")
for model in trial_rows:
    claims.below(f"trial_upper_{slug(model)}", trial_rows[model][1][1], 100 * trial_share,
                 f"{model} under-represents the heavier cluster too")

# %% [markdown]
# ## What the tables show
#
# The numbers below are this run's ({glue:text}`n_iter` iterations per 2-D model, `digits_iterations` per digits
# model); the statements that compare models are the claims above, which hold at seeds 0, 1 and 2.
#
# **$W_2$ on the 2-D problems.** The three UOTM variants land together,
# {glue:text}`uotm_w2_ring_lo:.2f`–{glue:text}`uotm_w2_ring_hi:.2f` on the ring and
# {glue:text}`uotm_w2_out_lo:.2f`–{glue:text}`uotm_w2_out_hi:.2f` with the outliers, against a floor of
# {glue:text}`w2_ring_floor:.2f` and {glue:text}`w2_out_floor:.2f` (two data samples of `n_w2` points) and
# {glue:text}`w2_ring_source:.2f` and {glue:text}`w2_out_source:.2f` for the source itself. In this run's figures
# their samples cover the circle through the modes, with part of the mass between them: a continuous map from
# $N(0,I_2)$ has to cross the gaps, and a few hundred iterations do not make it steep there. At this budget the choice
# of $\Psi^*$ does not separate them: the claim is only that they stay within 0.15 of each other
# ({glue:text}`uotm_w2_spread:.2f` in this run), not an order. S-JKO also ends under three quarters of the source's
# distance ({glue:text}`w2_ring_s_jko_kl:.2f` and {glue:text}`w2_out_s_jko_kl:.2f`).
#
# **OTM falls behind.** On one of the two problems at least, its samples end much further from the data than every
# UOTM variant's (here $W_2$ {glue:text}`w2_ring_otm:.2f` on the ring and {glue:text}`w2_out_otm:.2f` with the
# outliers: {glue:text}`w2_otm_over_uotm:.1f` times the worst UOTM variant's on the worse of the two), with the
# regulariser, and with the same networks, data, seed and learning rate as UOTM. Which problem it falls behind on,
# and how (a collapse to a streak, or a distorted ring), is not claimed; that it falls behind on one is. This is
# what the instability of the balanced potential, which the paper gives as a reason for UOTM (its Theorem 3.4: the
# unbalanced semi-dual controls more of the potential's error than the balanced one), would produce. Without the
# regulariser OTM does worse: its potential loss on the ring reached {glue:text}`unreg_peak:.3g` in size at the
# logged iterations (with it: {glue:text}`reg_peak:.3g`), and its samples ended at $W_2$ {glue:text}`unreg_w2:.2f`
# from the data, further than the source; that is why every OTM and UOTM run above has it.
#
# **The WAE**, after as many steps, ends at {glue:text}`w2_ring_wae_mmd:.2f` and {glue:text}`w2_out_wae_mmd:.2f`
# (the source: {glue:text}`w2_ring_source:.2f` and {glue:text}`w2_out_source:.2f`), well above every UOTM variant
# (at least 1.25 times the worst of them on each problem: {glue:text}`w2_wae_over_uotm:.1f` here); in this run's
# figures its samples form a diffuse cloud around the modes. Chapter 10 trains the same WAE for longer on the same
# ring: this equal-*iteration* budget is short for the WAE, although its iterations are the cheapest (no critic).
#
# **The outlier share.** In this run the models put at most {glue:text}`outlier_share_max:.2f`% of their
# {glue:text}`n_share` samples of the outlier problem in the cluster (the largest upper end of a 95% interval is
# {glue:text}`outlier_upper_max:.2f`%), OTM included, whose exact answer is the data's
# {glue:text}`data_share_pct:.0f`%; the exact unbalanced plans keep {glue:text}`exact_share_uotm_kl:.2f`% (KL),
# {glue:text}`exact_share_uotm_chi:.2f`% ($\chi^2$) and {glue:text}`exact_share_uotm_softplus:.2f`% (softplus), so
# unbalanced transport *should* discount the far cluster, and a well-trained OTM should not. At this budget that
# difference is invisible: every model under-represents the rare mode (the claims), as in chapter 5, for the same
# reason that a GAN drops rare modes early. The heavier cluster does not change that: with
# {glue:text}`trial_data_pct:.0f`% of the data there, OTM generated {glue:text}`trial_share_otm:.2f`% of its samples
# in it and UOTM (kl) {glue:text}`trial_share_uotm_kl:.2f`%, where the exact plans ask for
# {glue:text}`trial_exact_otm:.0f`% and {glue:text}`trial_exact_uotm_kl:.2f`%; both fall short of the cluster's
# share (the claim). The outlier question needs the longer runs of chapter 5, or many seeds; this page cannot say
# that UOTM is more robust, only that nothing here contradicts the exact answers.
#
# **Digits.** After `digits_iterations` iterations of batch `digits_batch`, no model is near the pixel Gaussian's
# proxy FID ({glue:text}`fid_gaussian:.1f`; held-out digits {glue:text}`fid_held_out:.1f`). S-JKO
# ({glue:text}`fid_s_jko_kl:.1f`) and the WAE ({glue:text}`fid_wae_mmd:.1f`, at its own batch) are each under three
# quarters of the best UOTM variant's proxy FID (the UOTM family:
# {glue:text}`uotm_fid_lo:.1f`–{glue:text}`uotm_fid_hi:.1f` here), and OTM ({glue:text}`fid_otm:.1f`) is behind UOTM
# (kl) ({glue:text}`fid_uotm_kl:.1f`). How OTM compares with the other two variants, and S-JKO with the WAE, is what
# this run measured, not a claim. Why S-JKO is ahead of UOTM this early is not measured here, nor whether the lead
# lasts (chapter 9 trains it longer). So **UOTM does not beat the others on this page**: its variants do not separate
# in 2-D, it is steadier than OTM there, it is ahead of OTM on the digits with KL, and it is behind S-JKO and the WAE
# on the digits at this budget.
#
# **Budget.** Equal iterations is not equal compute. In this run the WAE's 2-D iterations took
# {glue:text}`time_wae_over_uotm_2d:.0%` of UOTM's time (the mean of its variants) and its digits iterations
# {glue:text}`time_wae_over_uotm_digits:.0%` (with {glue:text}`wae_batch_ratio` times the batch); S-JKO's took
# {glue:text}`time_sjko_over_uotm_2d:.0%` of UOTM's time in 2-D (a second, gradient-free forward of the frozen map,
# but no source-gradient regulariser) and {glue:text}`time_sjko_over_uotm_digits:.0%` on the digits. Times are wall
# times on a machine shared with other jobs, so these ratios move from one run to the next. The paper's claims are
# about long runs (hundreds of epochs on GPUs, chapter 8); what this page shows is the first minutes of each method
# on one CPU thread.
