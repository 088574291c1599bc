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
# - **ring + outliers**: the same with 1% of the points moved to a tight cluster $N((4.5,0),0.1^2I)$, chapter 5's
#   2-D outlier problem;
# - **digits**: the 16×16 digits of chapter 7 (1 500 training images, 297 held out).
#
# The models: **OTM** (`linear`/`linear`), **UOTM** with $\Psi^*$ = `kl`, `chi` and `softplus` on both sides (the
# same trainer, only $\Psi^*$ changes), **S-JKO** (KL, a few JKO steps through one generator) and **WAE-MMD**
# (deterministic encoder, IMQ-kernel MMD). The measurements:
#
# - $W_2$ between generated samples and a fresh data sample, exact for the two clouds (`ot.emd2`, through
#   `uotm.exact.w2_squared`), beside the floor that two data samples set and the trivial yardstick of the source
#   $N(0,I_2)$ itself;
# - the **outlier share**: the fraction of generated samples within distance 1 of the cluster's centre, beside the
#   data's share (1%) and, for OTM and UOTM, the share that the exact discrete UOT (or OT) plan sends there;
# - the **proxy FID** on digits (chapter 7's classifier features), beside the held-out digits (what a perfect model
#   could reach) and a Gaussian fitted to the pixels (a model that knows only the pixels' means and covariances);
# - **wall time** of training on this machine (one CPU thread).
#
# **Budget.** Every model gets the *same number of iterations* on a problem, an iteration being one update of the
# generator (map, or encoder and decoder) and at most one update of its critic (potential); the UOTM trainers here
# make one potential step per map step (the reference toy trainer makes five). Iterations are not equally
# expensive: a WAE iteration has no critic, S-JKO's runs one more generator forward (the frozen old map), and the
# time column says what each one cost. The budget is small, a few minutes for the whole page: the numbers compare
# models *at this budget*, not at convergence, and the last section says what that means.

# %% tags=["parameters"]
seed = 0  # seed of the data, the networks and the noise of every run
num_data = 4000  # 2-D training points per problem
outlier_fraction = 0.01  # share of the 2-D data moved to the outlier cluster
outlier_distance = 4.5  # distance of the cluster centre from the origin (the 2-D problem of chapter 5)
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
check_quality = True  # assert the claims about trained models, which hold at the default budget only
data_root = "../_build/uotm-data"  # cache of the digits classifier (shared with chapters 7 and 10)
runs_root = "../_build/runs/11_comparison"  # run folders of the image trainer, replaced on every execution

# %%
import math
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import ot
import torch
from IPython.display import Markdown, display
from scipy.linalg import LinAlgWarning

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice; no progress bars are drawn
warnings.filterwarnings("ignore", category=LinAlgWarning)  # a singular covariance in a Fréchet distance

from uotm import metrics
from uotm.data.images import make_dataset, to_signed
from uotm.data.toy import make_distribution
from uotm.exact import Plan, solve_uot, squared_distances, w2_squared
from uotm.plots import image_grid
from uotm.presets import preset
from uotm.sample import generate
from uotm.sjko import SJKOToyConfig, sample as sjko_sample, train_sjko_toy
from uotm.toy import ToyConfig, train_toy
from uotm.train import train
from uotm.wae import WAEConfig, train_wae

torch.set_num_threads(1)  # the machines that build this book share their cores
page_start = time.perf_counter()
runs_root = Path(runs_root)
if runs_root.exists():
    shutil.rmtree(runs_root)
runs_root.mkdir(parents=True)
workdir = Path(tempfile.mkdtemp(prefix="uotm-compare-"))
MODELS = ["OTM"] + [f"UOTM ({p})" for p in psis] + ["S-JKO (kl)", "WAE-MMD"]

# %% [markdown]
# ## The 2-D problems
#
# Both data sets are drawn once and saved as point clouds, so that the three trainers (`uotm.toy.train_toy`,
# `uotm.sjko.train_sjko_toy`, `uotm.wae.train_wae`) see the same points. The settings:
#
# - OTM and UOTM: cost $c(x,y)=\tau\lVert x-y\rVert^2$ with $\tau=0.3$, a stochastic map $T(x,z)$, Adam at the same
#   learning rate for both networks, and chapter 5's regulariser $\lambda\,\mathbb E\lVert\nabla_xv(T(x,z))\rVert^2$
#   with $\lambda=0.01$. Without it, OTM does not survive this learning rate: in a trial run on the ring (same
#   settings, another data seed) its potential's loss went from $-0.3$ to about $5\cdot10^5$ within 400 iterations
#   and its samples ended at $W_2\approx1.8$ from the data, worse than the source itself; with the regulariser that
#   trial ended at 0.6 with a loss that stayed below 1 in size. The regulariser is given to all four, so that only
#   $\Psi^*$ differs;
# - S-JKO: `sjko_phases` JKO steps of $h=1$ with the authors' per-coordinate cost $\lVert x-y\rVert^2/(2hd)$ (in 2-D
#   this is $0.25\lVert x-y\rVert^2$ per step, close to UOTM's $\tau$), KL on the data side, a balanced source side,
#   data noise $1/(32(k+1))$; the iterations are split evenly over the phases; the same learning rate as UOTM (the
#   authors' 1e-4 / 2e-5 are made for 50 000 iterations, and barely move the map in a few hundred);
# - WAE-MMD: a 2-D latent, $\lambda=10$, the WAE trainer's own learning rate (1e-3, cosine-annealed), chapter 10's
#   2-D settings.

# %%
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


def train_2d(model: str, problem: str) -> tuple[np.ndarray, float]:
    """Train ``model`` on ``problem``; return ``n_share`` generated points and the training time in seconds."""
    target = f"npy:{data_files[problem]}"
    if model == "S-JKO (kl)":
        cfg = SJKOToyConfig(target=target, loss="kl", h=sjko_h, cost_scale="per_coordinate", phases=sjko_phases,
                            iterations=per_phase, first_iterations=first_phase, batch_size=toy_batch,
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
    cfg = ToyConfig(source="noise", target=target, phi1=phi, phi2=phi, tau=tau, epochs=toy_epochs,
                    batch_size=toy_batch, lr=toy_lr, potential_steps=1, reg_lambda=reg_lambda, num_data=num_data,
                    seed=seed, log_every=max(1, n_iter // 10))
    run = train_toy(cfg, progress=False)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 5)
        x = torch.randn(n_share, 2, generator=g)
        points = run.transport_map(x, torch.randn(n_share, run.transport_map.z_dim, generator=g))
    return points.double().numpy(), run.seconds


samples_2d, seconds_2d = {}, {}
for problem in problems:
    for model in MODELS:
        samples_2d[problem, model], seconds_2d[problem, model] = train_2d(model, problem)
        print(f"{problem:>16} | {model:<16} {seconds_2d[problem, model]:6.1f} s", flush=True)

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

# %%
rng = np.random.default_rng(seed)
g = np.linspace(-4.0, 4.0, n_grid)
x_src = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
a = np.exp(-0.5 * (x_src ** 2).sum(axis=1))
a /= a.sum()
data_out = train_data["ring + outliers"].astype(np.float64)
is_out = in_cluster(data_out)
mode = np.argmin(((data_out[:, None, :] - ring_centres[None]) ** 2).sum(axis=-1), axis=1)
pts, wts = [], []
for k in range(8):
    members = data_out[(mode == k) & ~is_out]
    pts.append(members[rng.choice(len(members), n_per_mode, replace=False)])
    wts.append(np.full(n_per_mode, len(members) / len(data_out) / n_per_mode))
members = data_out[is_out]
pts.append(members[rng.choice(len(members), n_exact_outliers, replace=False)])
wts.append(np.full(n_exact_outliers, is_out.mean() / n_exact_outliers))
y_sum, b = np.concatenate(pts), np.concatenate(wts)
mask = np.r_[np.zeros(8 * n_per_mode, bool), np.ones(n_exact_outliers, bool)]
cost = tau * squared_distances(x_src, y_sum)

t0 = time.perf_counter()
exact_share, exact_gap = {}, {}
for model in MODELS[:1 + len(psis)]:
    phi = "linear" if model == "OTM" else model[6:-1]
    if phi == "linear":
        plan, gap = ot.emd(a, b, cost, numItermax=10_000_000), 0.0
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            _, plan, gap = solve_uot(a, b, cost, phi, phi)
    generated = a @ Plan(x_src, y_sum, plan, 0.0, gap).conditional()  # T*_# mu on the summary points
    exact_share[model], exact_gap[model] = float(generated[mask].sum()), gap
    print(f"{model:<16} exact share {100 * exact_share[model]:.2f}% (duality gap {gap:.1e})")
print(f"exact problems ({len(a)} x {len(b)} points) in {time.perf_counter() - t0:.1f} s")
assert abs(exact_share["OTM"] - data_share) < 1e-9  # a balanced plan fills the cluster's mass exactly
for model, share in exact_share.items():
    if model != "OTM":
        assert share < data_share and exact_gap[model] < 1e-5, (model, share)  # UOT discounts the far cluster

# %% [markdown]
# ## The digits
#
# All the maps on the digits are trained by the image trainer `uotm.train.train` (the `digits` preset's networks,
# chapter 7's batch, learning rates and EMA for every model); S-JKO is the same trainer with `model="sjko"` and
# `digits_phases` phases of the preset's $h$ (0.1 per pixel) and noise, the first phase twice as long as the others
# (the preset gives its first phase three times the others); OTM and UOTM use the preset's $\tau=10^{-3}$ and R1.
# The WAE is chapter 10's convolutional WAE-MMD, at its own batch of 64: a WAE iteration is so much cheaper that at
# batch 8 it would get a fraction of the others' compute. Each model's proxy FID is computed on `n_eval` samples (of the EMA
# map for the image trainer's models).

# %%
classifier, accuracy, _ = metrics.digits_classifier(data_root)
base = preset("digits", data_root=data_root)
digits = make_dataset(base, train=True)
held_out = make_dataset(base, train=False)


def pixel_gaussian(n: int, draw_seed: int) -> torch.Tensor:
    """``n`` samples of the Gaussian fitted to the training digits' pixels, as uint8 images."""
    pixels = to_signed(digits.images).flatten(1).double()
    mean, cov = pixels.mean(0), torch.cov(pixels.T)
    chol = torch.linalg.cholesky(cov + 1e-6 * torch.eye(cov.shape[0], dtype=cov.dtype))
    gen = torch.Generator().manual_seed(draw_seed)
    draws = mean + torch.randn(n, pixels.shape[1], generator=gen, dtype=torch.float64) @ chol.T
    return ((draws.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).view(n, *digits.image_shape)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


fid_held_out = metrics.proxy_fid(held_out.images, data_root)
fid_gaussian = metrics.proxy_fid(pixel_gaussian(n_eval, seed), data_root)
print(f"proxy classifier accuracy {accuracy:.3f}; proxy FID of held-out digits {fid_held_out:.1f}, "
      f"of the pixel Gaussian (n={n_eval}) {fid_gaussian:.1f}")

d_per_phase = max(1, digits_iterations // (digits_phases + 1))
d_first = digits_iterations - (digits_phases - 1) * d_per_phase
epochs = max(1, math.ceil(digits_iterations * digits_batch / len(digits)))
common = dict(data_root=data_root, batch_size=digits_batch, lr_map=lr_map, lr_potential=lr_potential,
              ema_decay=ema_decay, epochs=epochs, schedule_epochs=epochs, seed=seed, max_steps=digits_iterations,
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
            cfg = preset("digits", phi1=phi, phi2=phi, **common)
        state = train(cfg, runs_root / f"model{MODELS.index(model)}", progress=False)
        assert state.step == digits_iterations, (model, state.step)
        seconds_digits[model] = time.perf_counter() - t0
        images = generate(state.ema, cfg, n_eval, 250, seed=seed + 5)
    digit_samples[model] = images
    fid_digits[model] = metrics.proxy_fid(images, data_root)
    print(f"digits | {model:<16} {seconds_digits[model]:6.1f} s for {digits_iterations} iterations, "
          f"proxy FID {fid_digits[model]:.1f}", flush=True)

# %% [markdown]
# ## The table
#
# One row per model, then the yardsticks. $W_2$ is the exact distance between `n_w2` generated points and a fresh
# data sample of the same size (never the training points); the floor row compares two data samples. The outlier
# share counts `n_share` generated points of the outlier problem; its 95% interval is Wilson's. Times are training
# only (2-D: the two problems together), on one thread of this machine, whose other jobs make them vary by tens of
# percent from one execution to the next.

# %%
def w2(p: np.ndarray, q: np.ndarray) -> float:
    return math.sqrt(w2_squared(p, q))


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, c - half), min(1.0, c + half)


rows = {}
for model in MODELS:
    out = samples_2d["ring + outliers", model]
    k = int(in_cluster(out).sum())
    lo, hi = wilson(k, len(out))
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
COLUMNS = {"W2 ring": "{:.3f}", "W2 ring+outliers": "{:.3f}", "outlier share %": "{:.2f}", "95% interval": "{}",
           "exact share %": "{:.2f}", "proxy FID digits": "{:.1f}", "train s 2-D": "{:.0f}", "train s digits": "{:.0f}"}


def cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return fmt.format(value)


table = {name: {col: row.get(col) for col in COLUMNS} for name, row in rows.items()}
lines = ["| model | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
lines += [f"| {name} | " + " | ".join(cell(row[c], f) for c, f in COLUMNS.items()) + " |"
          for name, row in table.items()]
print(f"{n_iter} iterations per 2-D model, {digits_iterations} per digits model; digits proxy FID on {n_eval} "
      f"samples (held-out row: its {len(held_out)} images)")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## The figure
#
# Samples of every model on each problem: the data in the first column, then one column per model. In 2-D the
# generated points (blue) are drawn over the data (orange), with the outlier cluster circled; on the digits, 24
# samples of each model (the first column: training digits).

# %%
fig, axes = plt.subplots(3, len(MODELS) + 1, figsize=(2.6 * (len(MODELS) + 1), 8.4), layout="constrained")
for r, problem in enumerate(problems):
    ax = axes[r, 0]
    ax.scatter(*test_data[problem].T, s=2, c="tab:orange")
    ax.set_title(f"{problem}: data", fontsize=9)
    for c, model in enumerate(MODELS, start=1):
        ax = axes[r, c]
        ax.scatter(*test_data[problem].T, s=2, c="tab:orange", alpha=0.3)
        ax.scatter(*samples_2d[problem, model][:n_w2].T, s=2, c="tab:blue", alpha=0.5)
        title = f"{model}\nW2 {table[model]['W2 ring' if r == 0 else 'W2 ring+outliers']:.2f}"
        if r == 1:
            title += f", share {table[model]['outlier share %']:.2f}%"
        ax.set_title(title, fontsize=8)
    for ax in axes[r]:
        ax.add_patch(plt.Circle(centre, radius, fill=False, color="k", ls="--", lw=0.8))
        ax.set_xlim(-3.5, 6.0)
        ax.set_ylim(-4.0, 4.0)
        ax.set_aspect("equal")
        ax.set_xlabel("$y_1$", fontsize=8)
        ax.set_ylabel("$y_2$", fontsize=8)
        ax.tick_params(labelsize=7)




axes[2, 0].imshow(image_grid(digits.images[:24], nrow=4), cmap="gray", vmin=0, vmax=255)
axes[2, 0].set_title(f"digits: training images\n(held-out proxy FID {fid_held_out:.1f})", fontsize=8)
for c, model in enumerate(MODELS, start=1):
    axes[2, c].imshow(image_grid(digit_samples[model][:24], nrow=4), cmap="gray", vmin=0, vmax=255)
    axes[2, c].set_title(f"{model}\nproxy FID {fid_digits[model]:.1f}", fontsize=8)
for ax in axes[2]:
    ax.axis("off")
fig.suptitle(f"Samples of every model: 2-D after {n_iter} iterations, digits after {digits_iterations}",
             fontsize=11)
plt.show()

# %% [markdown]
# ## Checks
#
# What is asserted holds at the default budget with a margin; the rest is read off the table in the next section.
# Every run is repeatable bit for bit on the CPU (one seeded generator per trainer), so the margins are about other
# seeds and budgets, not about re-running the page.
#
# - UOTM (every $\Psi^*$) and S-JKO end well below the source's own $W_2$ to the data (under three quarters of it) on
#   both 2-D problems; OTM and the WAE are printed, not asserted (below);
# - every model *under*-represents the outlier cluster: the upper end of its 95% interval is below the data's 1%;
# - on the digits every proxy FID is finite, the yardsticks are in order (held-out digits below the pixel
#   Gaussian), no model gets below the pixel Gaussian at this budget, and OTM is behind UOTM (kl), as in chapter 7;
# - and the observations of this one run that the next section reads: OTM's collapse on the clean ring, the WAE just
#   under the source, no sample in the cluster, the order of the digits' proxy FIDs at both ends.

# %%
src = table["source N(0,I) / pixel Gaussian"]
assert all(math.isfinite(fid_digits[m]) for m in MODELS)
assert fid_held_out < fid_gaussian
best_fid = min(MODELS, key=lambda m: fid_digits[m])
best_w2 = min(MODELS, key=lambda m: table[m]["W2 ring"])
print(f"lowest proxy FID on digits: {best_fid} ({fid_digits[best_fid]:.1f}; pixel Gaussian {fid_gaussian:.1f}); "
      f"lowest W2 on the ring: {best_w2} ({table[best_w2]['W2 ring']:.3f})")
beat_gaussian = [m for m in MODELS if fid_digits[m] < fid_gaussian]
print(f"models below the pixel Gaussian's proxy FID: {beat_gaussian or 'none'}")
for m in ("OTM", "WAE-MMD"):
    print(f"{m}: W2 {table[m]['W2 ring']:.3f} (ring), {table[m]['W2 ring+outliers']:.3f} (ring + outliers); "
          f"source {src['W2 ring']:.3f}, {src['W2 ring+outliers']:.3f}")
if check_quality:
    for m in [f"UOTM ({p})" for p in psis] + ["S-JKO (kl)"]:
        for col in ("W2 ring", "W2 ring+outliers"):
            assert table[m][col] < 0.75 * src[col], (m, col, table[m][col], src[col])
    for m in MODELS:
        hi = float(table[m]["95% interval"].split("-")[1]) / 100
        assert hi < data_share, (m, table[m]["95% interval"])
    assert not beat_gaussian, beat_gaussian
    if "kl" in psis:
        assert fid_digits["OTM"] > fid_digits["UOTM (kl)"], fid_digits
    # the observations of this run (one seed) that the next section reads off the table
    assert max(MODELS, key=lambda m: fid_digits[m]) == "OTM" and best_fid == "S-JKO (kl)", fid_digits
    assert table["OTM"]["W2 ring"] > src["W2 ring"] > table["WAE-MMD"]["W2 ring"] > 0.9 * src["W2 ring"]
    assert table["OTM"]["W2 ring+outliers"] < 0.6 * src["W2 ring+outliers"]
    assert all(table[m]["outlier share %"] == 0 for m in MODELS)
    assert all(exact_share[m] < 0.5 * data_share for m in exact_share if m != "OTM"), exact_share
else:
    print("(check_quality is off: the claims about the trained models are not asserted for this short run)")

# %% [markdown]
# ## What the table shows
#
# With the default parameters (600 iterations per 2-D model, 250 per digits model; one seed):
#
# **$W_2$ on the 2-D problems.** The three UOTM variants land together, 0.36–0.39 on the ring and 0.42–0.49 with
# the outliers, against a floor of 0.31 and 0.23 (two data samples of 1 000 points) and 0.96–0.99 for the source
# itself. Their samples cover the circle through the modes, with part of the mass between them: a continuous map from
# $N(0,I_2)$ has to cross the gaps, and 600 iterations do not make it steep there. Which $\Psi^*$ comes first changes
# between the two problems (`chi` on the ring, `kl` with the outliers), by at most 0.07 with one seed: at this budget
# the choice of $\Psi^*$ does not separate them. S-JKO is close behind (0.56 on the ring, where
# its samples trace a tilted ellipse, 0.41 with the outliers, the best there). **OTM is the unstable one**: on the
# outlier problem it matches UOTM (0.51), but on the clean ring it collapsed to a streak of samples inside the ring
# ($W_2$ 1.56, worse than the source), even with the regulariser; UOTM with the same networks, data, seed and
# learning rate did not. This is one run, but it is the instability of the balanced potential that the paper gives
# as a reason for UOTM (its Theorem 3.4: the unbalanced semi-dual controls more of the potential's error than
# the balanced one) and that chapter 7 saw on images. The WAE, after 600 steps, has its
# samples in a diffuse cloud around the modes, at 0.92, barely under the source: chapter 10's WAE reached 0.40 on the
# same ring with 1 500 steps, so the WAE is the model that this equal-*iteration* budget hurts most, although its
# iterations are the cheapest (about a third of a UOTM iteration's time here, no critic).
#
# **The outlier share.** No model put a single sample of 4 000 in the cluster (interval 0–0.10%), OTM included,
# whose exact answer is the data's 1%; the exact unbalanced plans keep 0.24% (KL), 0.38% ($\chi^2$) and 0.44%
# (softplus), so
# unbalanced transport *should* discount the far cluster, and a well-trained OTM should not. At this budget that
# difference is invisible: the rare mode is missed by all, as the networks of chapter 5 (trained for the same 600
# iterations) missed it, for the same reason that a GAN drops rare modes early. A trial with 5% of the data in the
# cluster, run while writing this page, gave no sample there either, for OTM and UOTM (KL). The outlier question needs
# the longer runs of chapter 5, or several seeds; this page cannot say that UOTM is more robust, only that nothing
# here contradicts the exact answers.
#
# **Digits.** After 250 iterations of batch 8, the samples are blurred strokes, and no model is near the pixel
# Gaussian's proxy FID (18.3; held-out digits 6.2). S-JKO is ahead of the UOTM family (52.9, against 115–147 for
# UOTM and 195 for OTM), and the WAE (67.1 at batch 64) between them. Why S-JKO leads this early is not measured
# here, nor whether the lead lasts (chapter 9 trains it longer); its samples are the noisiest of the six, the WAE's
# the smoothest. OTM's proxy FID is the largest, as in chapter 7, where UOTM stayed ahead of OTM all through 1 200
# iterations. So **UOTM does not beat the others on this page**: it ties with itself across $\Psi^*$ in 2-D, is
# ahead of OTM on the clean ring (where OTM collapsed) and on the digits, and behind S-JKO and the WAE on the digits
# at this budget.
#
# **Budget.** Equal iterations is not equal compute. The WAE's 2-D iterations took about a third of UOTM's time and
# its digits iterations about a fifth (with eight times the batch); S-JKO's took about 70% of UOTM's time in 2-D (a
# second, gradient-free forward of the frozen map, but no source-gradient regulariser) and about the same on the
# digits. At equal *wall time* the WAE would get three to five times more iterations (chapter 10's WAE, with 1 500
# steps, reached $W_2$ 0.40 on the ring). The paper's claims are about long runs (hundreds of epochs on GPUs,
# chapter 8); what this page shows is the first few minutes of each method on one CPU thread.

# %%
print(f"page run time: {time.perf_counter() - page_start:.0f} s")
