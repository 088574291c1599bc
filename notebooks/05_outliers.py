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
# # Outliers
#
# Robustness to outliers is the first advantage that {cite:t}`choi2023uotm` claim for UOTM over its balanced
# ancestor OTM {cite:p}`rout2022otm`: a balanced map must send exactly 1% of the source to a 1% cluster of
# outliers, wherever it is, while the divergences of unbalanced OT let the plan leave some of that mass behind. The
# paper supports the claim with a 1-D toy figure (a generated density without the small mode) and with CIFAR-10
# plus 1% MNIST digits; robust OT {cite:p}`balaji2020robust` and earlier unbalanced GANs {cite:p}`yang2019scalable`
# make the same argument.
#
# This page asks *when* the claim holds, with the exact unbalanced plan as the referee:
#
# 1. an identity for KL that says how much of an outlier mode the exact UOT plan keeps, and what that depends on;
# 2. the exact answer for the reference's toy configuration, for a far outlier mode, and for a 2-D cluster;
# 3. the networks, OTM (`linear`/`linear`) and UOTM (`kl`/`kl`), trained on the same data, beside the exact
#    answers: the share of generated samples in the outlier mode, and the density ratio that the learned potential
#    assigns to the outliers.
#
# ## When does unbalanced OT drop an outlier?
#
# For KL on both sides, chapter 2 gave the optimal marginals as $\tilde\mu=e^{-v^{*c}}\mu$ and $\tilde\nu=e^{-v^*}\nu$,
# and the optimal plan lives where $v^{*c}(x)+v^*(y)=c(x,y)$. Multiplying the two density ratios gives, for every
# pair $(x,y)$ that the plan connects,
#
# $$
# \frac{d\tilde\mu}{d\mu}(x)\cdot\frac{d\tilde\nu}{d\nu}(y)=e^{-c(x,y)}=e^{-\tau\lVert x-y\rVert^2}.
# $$ (eq-out-product)
#
# Moving mass over a distance $d$ costs a factor $e^{-\tau d^2}$, shared between the two ends. How it is shared is
# decided globally, but a two-point problem shows the mechanism. For one source atom of mass $\alpha$ and one target
# atom of mass $\beta$ at squared distance $d^2$, the primal
# $\pi\tau d^2+\mathrm{KL}(\pi|\alpha)+\mathrm{KL}(\pi|\beta)$ is minimised where
# $\tau d^2+\log(\pi/\alpha)+\log(\pi/\beta)=0$:
#
# $$
# \pi^*=\sqrt{\alpha\beta}\,e^{-\tau d^2/2},\qquad \frac{\pi^*}{\beta}=\sqrt{\frac{\alpha}{\beta}}\;e^{-\tau d^2/2}.
# $$ (eq-out-two-atoms)
#
# So an outlier mode of mass $\beta=p$ (1%) that is served by source mass $\alpha$ at distance $d$ keeps the fraction
# $\sqrt{\alpha/p}\,e^{-\tau d^2/2}$ of its mass. Two consequences:
#
# - **Far outliers are dropped.** The ratio decays like $e^{-\tau d^2/2}$: an outlier mode is ignored only when
#   $\tau d^2$ is large, that is when it lies further than a few $1/\sqrt\tau$ from the source mass that would serve
#   it ($1/\sqrt\tau\approx4.5$ for $\tau=0.05$).
# - **Near outliers can be up-weighted.** When much source mass sits near a small mode ($\alpha\gg p$), the factor
#   $\sqrt{\alpha/p}$ exceeds 1: the plan sends *more* than 1% of the source there, because those source points would
#   otherwise pay to travel to the main mode.
#
# The reference's toy configuration is of the second kind: the source is $N(0,1)$, the main mode is at $+1$ and the
# outliers at $-1$, in the middle of the source's left half. The generator moves every source sample, so the share
# of *generated* samples that land in the outlier mode is $T^*_\#\mu(\text{outliers})$: the mean over source points of
# the mass that the plan's conditional law puts there (chapter 4), which the tables call the exact share.
#
# ## The exact answers
#
# The source $N(0,1)$ is discretised on a grid with its density as weights, fine enough to resolve its tails; each
# mode of the data is summarised by points at its empirical quantiles, weighted by the mode's share. The unbalanced
# plan is `uotm.exact.solve_uot` (certified by its duality gap), the balanced plan `ot.emd`.

# %% tags=["parameters"]
seed = 0  # seed of the data, the networks and the noise
num_data = 4000  # data points per run, of which outlier_fraction are outliers
outlier_fraction = 0.01  # share of the data in the outlier mode
epochs = 40  # training epochs of every run
lr = 0.0003  # Adam learning rate of both networks
potential_steps = 1  # potential steps per map step (the reference toy trainer takes 5)
reg_lambda = 0.01  # lambda of the source-gradient regulariser in the regularised runs
tau_ref = 0.05  # the reference outlier run, its --tau 0.1 in this project's convention
loc_ref = -1.0  # outlier mode of the reference run
tau_far = 0.3  # tau of the far configuration
loc_far = 8.0  # outlier mode of the far configuration
tau_2d = 0.3  # tau of the 2-D configuration
dist_2d = 4.5  # distance of the 2-D outlier cluster from the centre of the ring
sweep_locs = [-1.0, 2.0, 4.0, 6.0, 8.0]  # outlier locations of the exact 1-D sweep
n_grid_1d = 161  # grid points for the 1-D source in the exact problems
n_grid_2d = 19  # grid points per axis for the 2-D source in the exact problem
n_main = 120  # quantile points for the main mode of the data
n_outlier = 20  # quantile points for the outlier mode
radius = 1.0  # a generated sample this close to the outlier centre counts as an outlier
check_networks = True  # assert the claims about trained networks (they hold at these defaults for seeds 0-2)

# %% tags=["hide-input"]
import tempfile
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import ot
import torch

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice; no progress bars are drawn

from uotm.book import Claims, glue, show_table
from uotm.data.toy import make_distribution
from uotm.exact import solve_uot, squared_distances
from uotm.psi import get_psi
from uotm.toy import ToyConfig, train_toy, training_data

claims = Claims(enabled=check_networks)
torch.set_num_threads(1)  # the toy networks are faster on one thread
f = outlier_fraction

# the 1-D source N(0, 1) on a grid, weighted by its density
x_grid = np.linspace(-5.0, 5.0, n_grid_1d)
a_1d = np.exp(-0.5 * x_grid**2)
a_1d /= a_1d.sum()


def quantile_points(samples, n):
    """n points at the empirical quantiles (i - 1/2)/n of a 1-D sample."""
    return np.quantile(samples, (np.arange(n) + 0.5) / n)


def summarise_1d(data, loc):
    """The 1-D data as weighted points: quantiles of each mode, weighted by the mode's share."""
    is_out = np.abs(data - loc) < 0.5
    y = np.concatenate([quantile_points(data[~is_out], n_main), quantile_points(data[is_out], n_outlier)])
    b = np.concatenate([np.full(n_main, (~is_out).mean() / n_main), np.full(n_outlier, is_out.mean() / n_outlier)])
    return y[:, None], b, np.r_[np.zeros(n_main, bool), np.ones(n_outlier, bool)]


def exact_outliers(x, a, y, b, mask, tau):
    """Exact KL/KL UOT and balanced OT between weighted points; shares and ratios on the masked target points."""
    cost = tau * squared_distances(x, y)
    pl = solve_uot(a, b, cost, "kl", "kl", gap_tol=1e-6, x=x, y=y)
    balanced = ot.emd(a, b, squared_distances(x, y), numItermax=10_000_000)
    cond_bal = balanced / balanced.sum(axis=1, keepdims=True)
    return dict(
        plan=pl, cost=cost, gap=pl.gap, mass=float(pl.plan.sum()),
        share_uot=float(a @ pl.conditional()[:, mask].sum(axis=1)),  # T*_# mu (outliers)
        share_balanced=float(a @ cond_bal[:, mask].sum(axis=1)),
        ratio_out=float(pl.target_marginal[mask].sum() / b[mask].sum()),  # nu~ / nu on the outliers
        ratio_main=float(pl.target_marginal[~mask].sum() / b[~mask].sum()),
        generated=a @ pl.conditional(),  # the law T*_# mu on the target points
    )


def outlier_data_1d(loc, n=num_data):
    """The training data of a 1-D run (uotm.toy.training_data: the points train_toy draws for that config)."""
    cfg = ToyConfig(source="noise", target="outlier", dim=1, outlier_fraction=f, outlier_loc=loc, num_data=n,
                    seed=seed)
    return training_data(cfg)[1].astype(np.float64)[:, 0]


# %% [markdown]
# First the two identities: {eq}`eq-out-two-atoms` on a one-point problem, and {eq}`eq-out-product` on the support
# of an exact plan (the reference configuration).

# %%
kl = get_psi("kl")
for alpha, beta, d2 in [(1.0, 0.01, 4.0), (0.3, 0.01, 25.0), (0.02, 0.5, 1.0)]:
    plan = solve_uot(np.array([alpha]), np.array([beta]), np.array([[tau_ref * d2]]), "kl", "kl").plan
    formula = np.sqrt(alpha * beta) * np.exp(-tau_ref * d2 / 2)
    print(f"alpha={alpha}, beta={beta}, d^2={d2}: solver {plan[0, 0]:.8f}, formula {formula:.8f}")
    assert abs(plan[0, 0] - formula) < 1e-6 * formula

data_ref = outlier_data_1d(loc_ref)
y_ref, b_ref, mask_ref = summarise_1d(data_ref, loc_ref)
ex = exact_outliers(x_grid[:, None], a_1d, y_ref, b_ref, mask_ref, tau_ref)
pl = ex["plan"]
r_src, r_tgt = pl.source_marginal / a_1d, pl.target_marginal / b_ref
i, j = np.nonzero(pl.plan > 0)
log_err = np.abs(np.log(r_src[i] * r_tgt[j]) + ex["cost"][i, j])
w = pl.plan[i, j] / pl.plan[i, j].sum()
heavy = pl.plan[i, j] > 1e-4 * pl.plan.max()
print(f"(eq-out-product) on the {len(i)} pairs of the plan's support, |log(ratio x ratio) + c| is\n"
      f"  {w @ log_err:.1e} on average over the plan's mass,\n"
      f"  at most {log_err[heavy].max():.1e} on the {heavy.sum()} pairs that carry 1e-4 of the largest entry or more,\n"
      f"  at most {log_err.max():.1e} on all pairs (duality gap {ex['gap']:.1e})")
glue("ref_share_uot", ex["share_uot"])
glue("ref_share_factor", ex["share_uot"] / f)
glue("ref_ratio_exact", ex["ratio_out"])
glue("outlier_fraction", f)
assert w @ log_err < 1e-4 and log_err[heavy].max() < 1e-3

# %% [markdown]
# Then the exact answer as the outlier mode moves away from the source, for the reference's $\tau$ and the far
# configuration's: the density ratio $d\tilde\nu/d\nu$ on the outliers (top) and the share of generated samples
# they receive (bottom). Balanced OT keeps the ratio at 1 and the share at 1% wherever the mode is.

# %% tags=["hide-input"]
t0 = time.perf_counter()
sweep = {}
for tau in (tau_ref, tau_far):
    for loc in sweep_locs:
        data = outlier_data_1d(loc)
        y, b, mask = summarise_1d(data, loc)
        sweep[tau, loc] = exact_outliers(x_grid[:, None], a_1d, y, b, mask, tau)
print(f"exact sweep: {len(sweep)} problems in {time.perf_counter() - t0:.1f} s")
show_table(["τ", "outlier mode at", "ratio on outliers", "share: UOT", "balanced", "mass", "duality gap"],
           [[tau, loc, e["ratio_out"], e["share_uot"], e["share_balanced"], e["mass"], e["gap"]]
            for (tau, loc), e in sweep.items()],
           {0: "g", 1: "+.1f", 2: ".4f", 3: ".4%", 4: ".4%", 5: ".3f", 6: ".1e"})

# %%
for e in sweep.values():
    assert abs(e["share_balanced"] - f) < 1e-9  # a balanced map sends exactly the outlier share
    assert 0 <= e["gap"] < 1e-5
for tau in (tau_ref, tau_far):  # the ratio falls as the mode moves right, away from the source's mass
    right = [sweep[tau, loc]["ratio_out"] for loc in sorted(sweep_locs) if loc >= 0]
    assert np.all(np.diff(right) < 0), right

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
for tau, marker in ((tau_ref, "o"), (tau_far, "s")):
    locs = sorted(sweep_locs)
    axes[0].plot(locs, [sweep[tau, loc]["ratio_out"] for loc in locs], marker + "-", label=f"exact UOT, τ={tau}")
    axes[1].plot(locs, [100 * sweep[tau, loc]["share_uot"] for loc in locs], marker + "-", label=f"exact UOT, τ={tau}")
axes[0].axhline(1.0, color="k", ls="--", lw=1, label="balanced OT")
axes[1].axhline(100 * f, color="k", ls="--", lw=1, label="balanced OT")
axes[0].set_yscale("log")
axes[0].set_ylabel(r"density ratio $d\tilde\nu/d\nu$ on outliers")
axes[1].set_yscale("log")
axes[1].set_ylabel("generated outliers (%)")
axes[1].set_xlabel("location of the outlier mode (source N(0,1), main mode at +1)")
for ax in axes:
    ax.legend(loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# The reference configuration (outliers at $-1$, $\tau=0.05$) is on the wrong side of the argument: the exact
# unbalanced plan *up-weights* the outlier mode (density ratio {glue:text}`ref_ratio_exact:.2f`) and sends
# {glue:text}`ref_share_uot:.2%` of the source there, {glue:text}`ref_share_factor:.1f` times the balanced share. The
# ratio falls below 1 only once the mode lies beyond the source's bulk, and the far configuration ($+8$, $\tau=0.3$)
# is where the exact plan really ignores the outliers.
#
# ## The networks
#
# Seven runs of the toy trainer, all with the reference's networks, batch 256 and the data above (and an eighth,
# further down, to show what the regulariser does):
#
# | configuration | data | $\tau$ | runs |
# |---|---|---|---|
# | reference | $N(1,0.1^2)$ with 1% at $-1$ | 0.05 | `kl` without and with the regulariser; `linear` with it |
# | far | $N(1,0.1^2)$ with 1% at $+8$ | 0.3 | `kl` and `linear`, both with the regulariser |
# | 2-D | eight Gaussians on a circle of radius 2, 1% at distance 4.5 | 0.3 | `kl` and `linear`, both regularised |
#
# The regulariser is the reference's $\lambda\,\mathbb E\lVert\nabla_xv(T(x,z))\rVert^2$ with $\lambda=0.01$ (the
# parameter `reg_lambda`), which the reference's outlier run uses; the `linear` runs all use it, and the section
# *Without the regulariser* below trains the 2-D `linear` run without it to show why.
#
# **The schedule is not the reference's.** The reference toy trainer takes five potential steps per map step at a
# learning rate of $10^{-4}$ for 400 epochs; this page takes {glue:text}`potential_steps` potential step(s) per map
# step at a learning rate of {glue:text}`lr:g` (the parameters `potential_steps` and `lr`; one step, as the image
# trainer takes), for {glue:text}`epochs` epochs of the {glue:text}`num_data:,` points (the parameter `epochs`),
# {glue:text}`iterations` iterations per run. The parameters `potential_steps`, `lr` and `epochs` bring the
# reference schedule back.
#
# A generated sample counts as an outlier if it lies within `radius` of the outlier centre. The learned density ratio
# on the outliers is $(\Psi_2^*)'(-v(y))$, the potential's own estimate of $d\tilde\nu/d\nu$ (chapter 2), averaged
# over the outlier points of the data; for `linear` it is 1 by construction. The potential's estimate of the plan's
# mass is the same ratio averaged over all the data.

# %% tags=["hide-input"]
ang = np.arange(8) * np.pi / 4
ring_centres = 2.0 * np.stack([np.cos(ang), np.sin(ang)], axis=1)
centre_2d = np.array([dist_2d, 0.0])

# the 2-D data: 8gaussians with a cluster N(centre_2d, 0.1^2 I) replacing outlier_fraction of the points
rng = np.random.default_rng(seed)
n_out_2d = int(num_data * f)
main_2d = make_distribution("8gaussians").sample(num_data - n_out_2d, torch.Generator().manual_seed(seed)).numpy()
data_2d = np.concatenate([main_2d, centre_2d + 0.1 * rng.normal(size=(n_out_2d, 2))]).astype(np.float32)
workdir = Path(tempfile.mkdtemp(prefix="uotm-outliers-"))
np.save(workdir / "ring_with_cluster.npy", data_2d)

# %%
configs = {  # name: (target, outlier centre, tau, Psi, lambda)
    "reference, kl": ("outlier", loc_ref, tau_ref, "kl", 0.0),
    "reference, kl + reg": ("outlier", loc_ref, tau_ref, "kl", reg_lambda),
    "reference, linear + reg": ("outlier", loc_ref, tau_ref, "linear", reg_lambda),
    "far, kl + reg": ("outlier", loc_far, tau_far, "kl", reg_lambda),
    "far, linear + reg": ("outlier", loc_far, tau_far, "linear", reg_lambda),
    "2-D, kl + reg": (f"npy:{workdir / 'ring_with_cluster.npy'}", centre_2d, tau_2d, "kl", reg_lambda),
    "2-D, linear + reg": (f"npy:{workdir / 'ring_with_cluster.npy'}", centre_2d, tau_2d, "linear", reg_lambda),
}


def toy_config(target, centre, tau, phi, lam):
    """The trainer's configuration of one run of this page."""
    return ToyConfig(source="noise", target=target, dim=1 if target == "outlier" else None, outlier_fraction=f,
                     outlier_loc=float(np.atleast_1d(centre)[0]), psi1=phi, psi2=phi, tau=tau, reg_lambda=lam,
                     epochs=epochs, lr_map=lr, lr_potential=lr, potential_steps=potential_steps, num_data=num_data,
                     seed=seed, log_every=5)


runs = {}
for name, spec in configs.items():
    runs[name] = train_toy(toy_config(*spec), progress=False)
    print(f"{name:24s} {runs[name].metrics[-1]['step']} iterations in {runs[name].seconds:5.1f} s, "
          f"final map loss {runs[name].metrics[-1]['map_loss']:.3g}")
for key, value in [("potential_steps", potential_steps), ("lr", lr), ("epochs", epochs), ("num_data", num_data),
                   ("iterations", runs["reference, kl"].metrics[-1]["step"]), ("n_out_2d", n_out_2d)]:
    glue(key, value)

# %% [markdown]
# The exact answers for the same data: the 1-D runs as above, the 2-D run with the source $N(0,I_2)$ on a grid and
# each of the nine modes of the data summarised by its points (the {glue:text}`n_out_2d` outliers, and 15 points
# per main mode chosen at random, weighted by the mode's share).

# %% tags=["hide-input"]
t0 = time.perf_counter()
exact = {}
for name, (target, centre, tau, phi, lam) in configs.items():
    run = runs[name]
    if target == "outlier":
        assert np.array_equal(run.target[:, 0].astype(np.float64), outlier_data_1d(float(centre)))
        key = (tau, float(centre))
        if key not in sweep:
            y, b, mask = summarise_1d(run.target[:, 0].astype(np.float64), float(centre))
            sweep[key] = exact_outliers(x_grid[:, None], a_1d, y, b, mask, tau)
        exact[name] = sweep[key]
print(f"1-D exact answers ready in {time.perf_counter() - t0:.1f} s")

t0 = time.perf_counter()
g2 = np.linspace(-4.0, 4.0, n_grid_2d)
x_2d = np.stack(np.meshgrid(g2, g2), axis=-1).reshape(-1, 2)
a_2d = np.exp(-0.5 * (x_2d**2).sum(axis=1))
a_2d /= a_2d.sum()
target_2d = runs["2-D, kl + reg"].target.astype(np.float64)
is_out_2d = np.linalg.norm(target_2d - centre_2d, axis=1) < radius
assert is_out_2d.sum() == n_out_2d  # the cluster's points, and no point of the ring, lie within radius of it
mode = np.argmin(((target_2d[:, None, :] - ring_centres[None]) ** 2).sum(axis=-1), axis=1)
pts, wts = [], []
for k in range(8):
    members = target_2d[(mode == k) & ~is_out_2d]
    pick = members[rng.choice(len(members), size=min(15, len(members)), replace=False)]
    pts.append(pick)
    wts.append(np.full(len(pick), len(members) / len(target_2d) / len(pick)))
pts.append(target_2d[is_out_2d])
wts.append(np.full(is_out_2d.sum(), 1.0 / len(target_2d)))
y_2d, b_2d = np.concatenate(pts), np.concatenate(wts)
mask_2d = np.r_[np.zeros(len(y_2d) - is_out_2d.sum(), bool), np.ones(is_out_2d.sum(), bool)]
exact["2-D, kl + reg"] = exact["2-D, linear + reg"] = exact_outliers(x_2d, a_2d, y_2d, b_2d, mask_2d, tau_2d)
print(f"2-D exact answer ({len(x_2d)} x {len(y_2d)} points) in {time.perf_counter() - t0:.1f} s")


# %% tags=["hide-input"]
@torch.no_grad()
def measure(name):
    run = runs[name]
    target, centre, tau, phi, lam = configs[name]
    centre = np.atleast_1d(np.asarray(centre, dtype=np.float64))
    gen = run.transported.astype(np.float64)
    out_pts = np.linalg.norm(run.target - centre, axis=1) < radius
    psi = get_psi(phi)
    ratio = psi.ratio(-run.potential(torch.as_tensor(run.target)).double()).numpy()
    e = exact[name]
    row = dict(name=name, phi=phi, lam=lam, tau=tau,
               share_net=float(np.mean(np.linalg.norm(gen - centre, axis=1) < radius)),
               share_uot=e["share_uot"], share_balanced=e["share_balanced"],
               ratio_net=float(ratio[out_pts].mean()), ratio_exact=e["ratio_out"],
               ratio_net_main=float(ratio[~out_pts].mean()), ratio_exact_main=e["ratio_main"],
               mass_net=float(ratio.mean()), mass_exact=e["mass"])
    if gen.shape[1] == 1:  # the main mode N(1, 0.1^2): did it survive?
        main = gen[np.abs(gen[:, 0] - 1.0) < 1.0, 0]
        row.update(main_mean=float(main.mean()), main_std=float(main.std()))
    row["max_potential_loss"] = max(abs(m["potential_loss"]) for m in run.metrics)
    row["max_map_loss"] = max(abs(m["map_loss"]) for m in run.metrics)
    return row


rows = {name: measure(name) for name in runs}
show_table(["run", "network", "exact UOT", "balanced"],
           [[r["name"], r["share_net"], r["share_uot"], r["share_balanced"]] for r in rows.values()],
           {1: ".3%", 2: ".3%", 3: ".3%"})
show_table(["run", "outliers: net", "exact", "main: net", "exact", "mass: net", "exact"],
           [[r["name"], r["ratio_net"], r["ratio_exact"], r["ratio_net_main"], r["ratio_exact_main"], r["mass_net"],
             r["mass_exact"]] for r in rows.values()],
           {k: ".3f" for k in range(1, 7)})
show_table(["run", "main: mean", "std", "largest ∣L_v∣", "largest ∣L_T∣"],
           [[r["name"], r.get("main_mean", "–"), r.get("main_std", "–"), r["max_potential_loss"], r["max_map_loss"]]
            for r in rows.values()],
           {1: ".3f", 2: ".3f", 3: ".3g", 4: ".3g"})
slugs = {"reference, kl": "ref_kl", "reference, kl + reg": "ref_kl_reg", "reference, linear + reg": "ref_linear",
         "far, kl + reg": "far_kl", "far, linear + reg": "far_linear", "2-D, kl + reg": "twod_kl",
         "2-D, linear + reg": "twod_linear"}
for name, r in rows.items():
    for key in ("share_net", "share_uot", "ratio_net", "ratio_exact", "mass_net", "mass_exact", "main_mean",
                "main_std", "max_potential_loss"):
        if key in r:
            glue(f"{slugs[name]}_{key}", r[key])

# %% [markdown]
# The three tables give, for every run: the share of generated samples within `radius` of the outlier centre (the
# network's, the exact UOT law's and balanced OT's); the density ratio $d\tilde\nu/d\nu$ on the outliers and on the
# main mode, and the plan's mass (for the network, the potential's estimates); and, for the 1-D runs, the mean and
# standard deviation of the generated main mode (data: 1 and 0.1), with the largest losses logged in training.
#
# The claims that the tables support. Those about the exact answers are asserted in every run. Those about the
# networks are checked at the default budget, where they hold at seeds 0, 1 and 2 (measured by
# `python ci/seeds.py 05_outliers`), and asserted when `check_networks = True`, the default; with smaller parameters
# they are only measured.
#
# - **Reference configuration**: the exact UOT plan up-weights the outliers (ratio above 1, share above 1%). The
#   `kl` potentials keep the near outliers: their ratio there is more than 100 times their ratio on the far
#   configuration's outliers. Whether they also *up-weight* them, as the exact plan does (ratio
#   {glue:text}`ref_kl_ratio_exact:.2f`), is not claimed: their ratio is above 1 at some of seeds 0–2 and below 1
#   at others (measured with `ci/seeds.py`); in this run it is {glue:text}`ref_kl_ratio_net:.2f` without the
#   regulariser and {glue:text}`ref_kl_reg_ratio_net:.2f` with it.
#   The maps do not follow the potentials in any case: the `kl` networks generate less than half of the exact UOT
#   share there. If such a network looks robust, it is not because it solves the UOT problem.
# - **Far configuration**: the exact UOT plan drops nearly all of the outliers (ratio below 0.05), and the `kl`
#   potential agrees (ratio below 0.1); but neither network generates even half of the balanced share there,
#   `linear` included: the network misses a far, small mode whatever $\Psi$ is, so the `kl` result alone is no
#   evidence for the divergence.
# - **2-D**: the exact plan keeps part of the cluster (ratio between 0.05 and 1), the `kl` potential a smaller
#   part; no network generates half of the exact share there.
# - **Mass**: each `kl` potential's estimate of the plan's mass is within 0.1 of the exact mass (0.1 rather than a
#   tighter bound: the errors reach about half of it at seeds 0–2).
# - **The `kl` networks do not generate the outliers**: the largest share of generated samples in an outlier mode,
#   over the four `kl` runs, is below a quarter of the balanced share.
# - **The balanced game is unstable even with the regulariser**: at the reference configuration, the largest
#   potential loss $\lvert L_v\rvert$ of the `linear` run exceeds 100 times that of the regularised `kl` run.

# %%
ref, far, two_d = rows["reference, kl"], rows["far, kl + reg"], rows["2-D, kl + reg"]
kl_runs = [r for r in rows.values() if r["phi"] == "kl"]
# the exact answers
assert ref["ratio_exact"] > 1 and ref["share_uot"] > f, ref
assert far["ratio_exact"] < 0.05, far
assert 0.05 < two_d["ratio_exact"] < 1, two_d
print("asserted claims on the exact answers hold")
# the networks
claims.above("near_vs_far_ratio", min(rows[n]["ratio_net"] for n in ("reference, kl", "reference, kl + reg"))
             / far["ratio_net"], 100.0, "the kl potentials' ratio on the near outliers over 100 times the far one")
for name in ("reference, kl", "reference, kl + reg"):
    claims.below(f"{slugs[name]}_share_vs_exact", rows[name]["share_net"] / rows[name]["share_uot"], 0.5,
                 f"{name}: the map generates less than half of the exact UOT share of outliers")
claims.below("far_kl_ratio_small", far["ratio_net"], 0.1, "far, kl: the potential's ratio on the outliers below 0.1")
for name in ("far, kl + reg", "far, linear + reg"):
    claims.below(f"{slugs[name]}_share_vs_balanced", rows[name]["share_net"] / f, 0.5,
                 f"{name}: less than half of the balanced share generated in the far mode")
claims.below("twod_ratio_vs_exact", two_d["ratio_net"] - two_d["ratio_exact"], 0.0,
             "2-D, kl: the potential keeps less of the cluster than the exact plan")
for name in ("2-D, kl + reg", "2-D, linear + reg"):
    claims.below(f"{slugs[name]}_share_vs_exact", rows[name]["share_net"] / two_d["share_uot"], 0.5,
                 f"{name}: less than half of the exact UOT share generated in the cluster")
claims.below("kl_mass_error", max(abs(r["mass_net"] - r["mass_exact"]) for r in kl_runs), 0.1,
             "every kl potential's mass within 0.1 of the exact plan's")
claims.below("kl_largest_share_vs_balanced", max(r["share_net"] for r in kl_runs) / f, 0.25,
             "no kl run generates a quarter of the balanced share of outliers")
claims.above("ref_linear_vs_kl_loss", rows["reference, linear + reg"]["max_potential_loss"]
             / rows["reference, kl + reg"]["max_potential_loss"], 100.0,
             "reference: the linear run's largest |L_v| over 100 times the regularised kl run's")
n_none = sum(r["share_net"] == 0 for r in rows.values())  # a count of samples: zero is exact
glue("n_runs_none", n_none)
glue("n_runs", len(rows))
glue("reg_ratio_change", abs(rows["reference, kl + reg"]["ratio_net"] - ref["ratio_net"]) / ref["ratio_net"])
print(f"{n_none} of {len(rows)} runs generated no sample in the outlier mode")

# %% [markdown]
# ### Without the regulariser
#
# The `linear` runs above all use the source-gradient regulariser. This cell trains the 2-D `linear` run once more
# with $\lambda=0$, everything else equal, and compares the largest map loss $\lvert L_T\rvert$ logged during
# training (every fifth iteration) with that of the regularised run. (Where a loss becomes infinite or NaN the
# trainer stops, and the largest loss counts as infinite.)

# %%
unreg_spec = configs["2-D, linear + reg"][:4] + (0.0,)
try:
    unreg = train_toy(toy_config(*unreg_spec), progress=False)
    unreg_max = max(abs(m["map_loss"]) for m in unreg.metrics)
    print(f"2-D, linear, no regulariser: {unreg.metrics[-1]['step']} iterations in {unreg.seconds:.1f} s")
except FloatingPointError as err:
    unreg, unreg_max = None, float("inf")
    print(f"2-D, linear, no regulariser: the trainer stopped: {err}")
reg_max = rows["2-D, linear + reg"]["max_map_loss"]
glue("unreg_max_map_loss", unreg_max)
glue("reg_max_map_loss", reg_max)
print(f"largest |L_T|: {unreg_max:.3g} without the regulariser, {reg_max:.3g} with it")
claims.above("unreg_loss_ratio", unreg_max / reg_max, 100.0,
             "2-D linear: the largest map loss without the regulariser is over 100 times that with it");

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8, 4))
for label, run in (("λ = 0", unreg), (f"λ = {reg_lambda}", runs["2-D, linear + reg"])):
    if run is not None:
        ax.plot([m["step"] for m in run.metrics], [m["map_loss"] for m in run.metrics], label=label, lw=1)
ax.set_yscale("symlog")
ax.set_xlabel("iteration")
ax.set_ylabel("map loss $L_T$ (symlog)")
ax.set_title("2-D, linear: the map loss with and without the regulariser")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# In this run the largest $\lvert L_T\rvert$ was {glue:text}`unreg_max_map_loss:.3g` without the regulariser
# and {glue:text}`reg_max_map_loss:.3g` with it. The claim asserted above is only that the first exceeds 100 times
# the second: how far the unregularised game runs away differs by orders of magnitude from seed to seed.

# %% [markdown]
# ## Figures
#
# The 1-D runs: the data, the network's samples and the exact UOT law $T^*_\#\mu$ on a logarithmic density axis, so
# that a 1% mode is visible; the grey band marks the outlier mode.

# %% tags=["hide-input"]
one_d = [n for n in runs if not n.startswith("2-D")]
fig, axes = plt.subplots(3, 2, figsize=(10, 11))
for ax, name in zip(axes.ravel(), one_d):
    run, r = runs[name], rows[name]
    target, centre, tau, phi, lam = configs[name]
    lo, hi = min(-2.5, centre - 1), max(3.0, centre + 1)
    edges = np.linspace(lo, hi, 121)
    ax.hist(run.target[:, 0], bins=edges, density=True, alpha=0.35, color="tab:orange", label="data")
    ax.hist(run.transported[:, 0], bins=edges, density=True, histtype="step", lw=1.8, color="tab:blue",
            label=f"network: {r['share_net']:.2%} here")
    e = exact[name]
    y_pts = e["plan"].y[:, 0]
    ax.hist(y_pts, bins=edges, weights=e["generated"], density=True, histtype="step", lw=1.4, color="tab:red",
            label=f"exact UOT: {r['share_uot']:.2%} here")
    ax.axvspan(centre - radius, centre + radius, color="0.85", zorder=0)
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1e3)  # room for the legend above the densities
    ax.set_xlabel("value")
    ax.set_ylabel("density (log scale)")
    ax.set_title(f"{name} (τ={tau})")
    ax.legend(loc="upper right")
ax = axes.ravel()[len(one_d)]
for name in one_d:
    it = [m["step"] for m in runs[name].metrics]
    ax.plot(it, [m["potential_loss"] for m in runs[name].metrics], label=name, lw=1)
ax.set_yscale("symlog")
ax.set_xlabel("iteration")
ax.set_ylabel("potential loss $L_v$ (symlog)")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# The 2-D runs: data (orange) and generated samples (blue), with the outlier cluster circled (the tables above give
# the exact UOT and balanced shares); then the share of each mode of the circle (numbered by angle) and of the
# cluster in the data, in the exact UOT law $T^*_\#\mu$ and in the two networks' samples (a sample is counted in the
# cluster if it is within `radius` of it, else in its nearest mode).

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
for ax, name in zip(axes, ["2-D, kl + reg", "2-D, linear + reg"]):
    run, r = runs[name], rows[name]
    ax.scatter(run.target[:, 0], run.target[:, 1], s=2, alpha=0.3, color="tab:orange", label="data")
    ax.scatter(run.transported[:, 0], run.transported[:, 1], s=2, alpha=0.3, color="tab:blue", label="generated")
    ax.add_patch(plt.Circle(centre_2d, radius, fill=False, color="k", ls="--"))
    ax.set_title(f"{name}:\n{r['share_net']:.2%} generated in the circle")
for ax in axes:
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(markerscale=3, loc="lower left")
fig.tight_layout()
plt.show()

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(9, 4.8))  # share of each ring mode and of the cluster: data, exact UOT, networks
e = exact["2-D, kl + reg"]
y_label = np.r_[np.argmin(((y_2d[:, None, :] - ring_centres[None]) ** 2).sum(axis=-1), axis=1)[~mask_2d],
                np.full(mask_2d.sum(), 8)]
groups = {"data": np.bincount(y_label, weights=b_2d, minlength=9),
          "exact UOT": np.bincount(y_label, weights=e["generated"], minlength=9)}
for name in ["2-D, kl + reg", "2-D, linear + reg"]:
    gen = runs[name].transported.astype(np.float64)
    in_cluster = np.linalg.norm(gen - centre_2d, axis=1) < radius
    nearest = np.argmin(((gen[:, None, :] - ring_centres[None]) ** 2).sum(axis=-1), axis=1)
    counts = np.r_[np.bincount(nearest[~in_cluster], minlength=8), in_cluster.sum()]
    groups["network, " + configs[name][3]] = counts / len(gen)
for k, (label, shares) in enumerate(groups.items()):
    ax.bar(np.arange(9) + (k - 1.5) * 0.2, np.maximum(100 * shares, 1e-3), 0.2, label=label)
ax.set_xticks(np.arange(9), [f"mode {k}" for k in range(8)] + ["cluster"], rotation=45)
ax.set_yscale("log")
ax.set_ylim(1e-2, 1e3)  # room for the legend above the bars
ax.set_ylabel("share of samples (%)")
ax.set_title(f"2-D, τ={tau_2d}: share of each mode (zero not drawn)")
ax.legend(ncol=2, loc="upper left")
fig.tight_layout()
plt.show()

# %% [markdown]
# Shares and density ratios side by side for every run.

# %% tags=["hide-input"]
names = list(rows)
pos = np.arange(len(names))
fig, axes = plt.subplots(2, 1, figsize=(9, 9.5), sharex=True)
ax = axes[0]
ax.bar(pos - 0.27, [100 * rows[n]["share_net"] for n in names], 0.27, label="network")
ax.bar(pos, [100 * rows[n]["share_uot"] for n in names], 0.27, label="exact UOT (KL)")
ax.bar(pos + 0.27, [100 * rows[n]["share_balanced"] for n in names], 0.27, label="exact balanced OT")
ax.set_ylabel("generated outliers (%)")
zero = [n for n in names if rows[n]["share_net"] == 0]
ax.set_title(f"{len(zero)} of {len(names)} networks generated no outlier (bar at zero)")
ax = axes[1]
ax.bar(pos - 0.2, [rows[n]["ratio_net"] for n in names], 0.4, label=r"learned $(\Psi_2^*)'(-v(y))$")
ax.bar(pos + 0.2, [rows[n]["ratio_exact"] if rows[n]["phi"] == "kl" else 1.0 for n in names], 0.4,
       label="exact (KL runs: UOT; linear runs: 1)")
ax.set_yscale("log")
ax.set_ylabel(r"density ratio $d\tilde\nu/d\nu$ on outliers")
ax.set_xticks(pos, names, rotation=30, ha="right")
for ax in axes:
    ax.legend(loc="upper right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## An honest account
#
# In this run ({glue:text}`epochs` epochs, {glue:text}`potential_steps` potential step(s) per map step; the numbers
# are in the tables above):
#
# - **Unbalanced OT ignores an outlier only if it is expensive to reach.** By {eq}`eq-out-product` the two density
#   ratios of a transported pair multiply to $e^{-\tau d^2}$. A 1% mode inside the source's bulk is cheap and can
#   even be up-weighted: the reference's toy configuration is such a case, and its exact UOT answer generates
#   {glue:text}`ref_share_factor:.1f` times as many outliers as balanced OT ({glue:text}`ref_share_uot:.2%` against
#   {glue:text}`outlier_fraction:.0%`). The far configuration is the regime of the claim: there the exact plan keeps
#   a fraction {glue:text}`far_kl_ratio_exact:.3f` of the outlier mass (its density ratio), and the generator should
#   put {glue:text}`far_kl_share_uot:.3%` of its samples there instead of {glue:text}`outlier_fraction:.0%`. The
#   2-D cluster is in between (ratio {glue:text}`twod_kl_ratio_exact:.2f`).
# - **The potentials learn part of what the divergence does.** Where the exact plan drops the outliers (far) or
#   keeps only part of them (2-D), the `kl` potentials drop them too or keep a smaller part (asserted above): their
#   ratio on the outliers is {glue:text}`far_kl_ratio_net:.4f` far away (exact {glue:text}`far_kl_ratio_exact:.3f`)
#   and {glue:text}`twod_kl_ratio_net:.2f` for the 2-D cluster (exact {glue:text}`twod_kl_ratio_exact:.2f`). At
#   the reference configuration it is {glue:text}`ref_kl_ratio_net:.2f` (exact {glue:text}`ref_kl_ratio_exact:.2f`):
#   the near outliers are kept, with a ratio
#   {glue:text}`near_vs_far_ratio:.0f` times the far one here (over 100 at every seed of 0–2), but whether they are
#   up-weighted, as the exact plan does, depends on the seed at this budget. The potentials' estimates of the plan's
#   mass are within {glue:text}`kl_mass_error:.3f` of the exact ones. At the reference configuration the regulariser
#   moves the ratio by {glue:text}`reg_ratio_change:.1%` in this run ({glue:text}`ref_kl_ratio_net:.2f` without it,
#   {glue:text}`ref_kl_reg_ratio_net:.2f` with it).
# - **The maps do not move the mass.** {glue:text}`n_runs_none` of the {glue:text}`n_runs` networks generated no
#   outlier at all in this run. No `kl` network generates a quarter of the balanced share (asserted): not where the
#   exact plan asks for *more* outliers (the reference configuration), and not where it asks for fewer. Nor do the
#   balanced networks of the far and 2-D configurations generate half of the 1% they must generate (asserted): a
#   small mode away from the source is missed whatever $\Psi$ is. (The balanced network of the reference
#   configuration, unstable as the next point says, generates {glue:text}`ref_linear_share_net:.2%` there in this
#   run.) The reference's toy figure (a UOTM density without the small mode at $-1$) matches what these networks
#   do, not what the UOT problem asks, and a `kl` network that generates no outliers is no evidence, by itself, of
#   the mechanism of {eq}`eq-out-two-atoms`. (The reference's toy loss also differs from the paper's, see
#   [Reproduction notes](../reproduction.md); this page uses the paper's.)
# - **The balanced baseline is unstable.** Without the regulariser the 2-D `linear` game runs away (the section
#   above). With it, at the reference configuration, the `linear` potential's loss still reaches over 100 times the
#   regularised `kl` one's (asserted; here {glue:text}`ref_linear_max_potential_loss:.3g` against
#   {glue:text}`ref_kl_reg_max_potential_loss:.3g`). In this run its generated main mode has mean
#   {glue:text}`ref_linear_main_mean:.2f` and standard deviation {glue:text}`ref_linear_main_std:.3f`, and that of
#   the far configuration's `linear` network {glue:text}`far_linear_main_mean:.2f` and
#   {glue:text}`far_linear_main_std:.3f` (data: 1 and 0.1), against {glue:text}`ref_kl_main_mean:.2f` and
#   {glue:text}`ref_kl_main_std:.3f` for the reference `kl` network. The comparison OTM versus UOTM on these toys is
#   therefore first a comparison of stability, which is the paper's other claim, and only then one of robustness.
#
# ## What to try
#
# - Raise `epochs` (the reference trains its outlier run for 400) and watch whether the networks' shares move
#   towards the exact ones, in particular whether the balanced network learns the far mode at all; or return to the
#   reference's schedule (`potential_steps = 5`, `lr = 0.0001`).
# - Move the 2-D cluster (`dist_2d`) from 2 to 8: the exact ratio goes from above 1 to near 0, as the sweep above
#   does in 1-D.
# - Replace KL by $\chi^2$ on the data side (`solve_uot(..., "kl", "chi")` for the exact answer): its ratio
#   $\max(1-v/2,0)$ can drop an outlier mode *exactly*, where KL only makes it exponentially small.
