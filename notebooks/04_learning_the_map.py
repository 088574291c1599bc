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
# # Learning the map (toy, 1-D)
#
# Chapters 2 and 3 solved unbalanced OT exactly on small discrete problems. This page trains the UOTM networks of
# {cite:t}`choi2023uotm` on a one-dimensional problem whose exact answer we can also compute, and puts the two side
# by side. The source is $\mu=p=\tfrac12N(1,0.5^2)+\tfrac12N(-1,0.5^2)$, the data
# $\nu=q=\tfrac23N(2,0.5^2)+\tfrac13N(-1,0.5^2)$, the divergences are KL on both sides and the cost is
# $c(x,y)=\tau\lvert x-y\rvert^2$: the "OT map" experiment of the reference code, whose `--tau 0.02` is
# $\tau=0.01$ here (see [Reproduction notes](../reproduction.md)).
#
# The page shows three things:
#
# 1. what the generator should learn: in 1-D, the monotone rearrangement between the *reweighted* measures
#    $\tilde\mu$ and $\tilde\nu$ of Theorem 3.3, which the exact unbalanced plan gives;
# 2. what it learns, at each $\tau$ of the parameter `taus`: the learned map averaged over the noise $z$, beside
#    the exact UOT map and beside the monotone rearrangement of $\mu$ onto $\nu$ (the balanced OT map, which OTM
#    {cite:p}`rout2022otm` would learn);
# 3. how far the generated law is from the data as $\tau$ varies: a bound derived from Theorem 3.3, checked on the
#    exact answer, and the network's distance beside it.
#
# ## What the generator should learn
#
# By Theorem 3.3 (chapter 3), an optimal plan $\pi^*$ of the unbalanced problem is a *balanced* optimal plan between
# its own marginals $\tilde\mu=\pi^*_0$ and $\tilde\nu=\pi^*_1$, which have the same mass $m$. In one dimension and
# for a convex cost such as $\tau\lvert x-y\rvert^2$, a balanced optimal plan is monotone: if it moves $x$ to $y$ and
# $x'>x$ to $y'$, then $y'\ge y$ (otherwise swapping the two destinations lowers the cost). So the map that the
# generator approximates is
#
# $$
# T^*=F_{\tilde\nu}^{-1}\circ F_{\tilde\mu},
# $$ (eq-map-monotone)
#
# with $F_{\tilde\mu}(x)=\tilde\mu((-\infty,x])/m$ the distribution function of the normalised marginal. Three
# differences from balanced OT follow.
#
# - **The map is not the balanced one.** Balanced OT would give $F_\nu^{-1}\circ F_\mu$, the *monotone
#   rearrangement* of $\mu$ onto $\nu$; the two coincide only if $\tilde\mu\propto\mu$ and $\tilde\nu\propto\nu$.
# - **The generator pushes $\mu$, not $\tilde\mu$.** It is fed every source sample, so the law it generates is
#   $T^*_\#\mu$, which is neither $\nu$ nor $\tilde\nu/m$. Because $T^*$ is monotone,
#   $T^*_\#\mu\big((-\infty,T^*(x)]\big)=F_\mu(x)$ while $(\tilde\nu/m)\big((-\infty,T^*(x)]\big)=F_{\tilde\mu}(x)$.
# - **On samples there is no map.** The exact plan between two clouds may split a point's mass. We compare the
#   network with the plan's *barycentric map* $\bar T(x_i)=\sum_j\pi(y_j\mid x_i)\,y_j$, and the network's map with
#   its average over $z$, $\bar T_\theta(x)=\mathbb E_z\,T_\theta(x,z)$ (`ToyRun.mean_map`).
#
# ## Why the generated law tends to the data as $\tau\to0$
#
# Theorem 3.3 bounds the reweighting:
# $D_{\mathrm{KL}}(\tilde\mu|\mu)+D_{\mathrm{KL}}(\tilde\nu|\nu)\le\tau W_2^2(\mu,\nu)$. Turning this into a distance
# between laws takes two steps.
#
# **Step 1 (mass and shape).** For a probability measure $\mu$ and a positive measure $\rho$ of mass $m$ with
# normalisation $\hat\rho=\rho/m$, write $r=d\rho/d\mu=m\,d\hat\rho/d\mu$ in the generalised KL of chapter 2:
#
# $$
# D_{\mathrm{KL}}(\rho\,|\,\mu)=\int(r\log r-r+1)\,d\mu=m\,\mathrm{KL}(\hat\rho\,\|\,\mu)+\big(m\log m-m+1\big),
# $$ (eq-map-kl-split)
#
# a sum of two non-negative terms: one for the shape, one for the mass. So
# $\mathrm{KL}(\hat\mu\|\mu)+\mathrm{KL}(\hat\nu\|\nu)\le\tau W_2^2(\mu,\nu)/m$, writing $\hat\mu=\tilde\mu/m$ and
# $\hat\nu=\tilde\nu/m$.
#
# **Step 2 (Pinsker and monotonicity).** Let $d_{KS}(\alpha,\beta)=\sup_t\lvert F_\alpha(t)-F_\beta(t)\rvert$ be the
# Kolmogorov–Smirnov distance. It is at most the total variation distance, which Pinsker's inequality bounds by
# $\sqrt{\mathrm{KL}/2}$; so $d_{KS}(\hat\nu,\nu)\le\sqrt{\mathrm{KL}(\hat\nu\|\nu)/2}$. And by the monotonicity remark
# above, $F_{T^*_\#\mu}$ and $F_{\hat\nu}$ differ at the point $T^*(x)$ by $F_\mu(x)-F_{\hat\mu}(x)$, so
# $d_{KS}(T^*_\#\mu,\hat\nu)\le d_{KS}(\mu,\hat\mu)$ (for a plan that splits points, the same holds because its
# conditional laws are ordered). With the triangle inequality and $\sqrt a+\sqrt b\le\sqrt{2(a+b)}$:
#
# $$
# d_{KS}\big(T^*_\#\mu,\ \nu\big)\ \le\ \sqrt{\tfrac12\mathrm{KL}(\hat\mu\|\mu)}
# +\sqrt{\tfrac12\mathrm{KL}(\hat\nu\|\nu)}
# \ \le\ \sqrt{\frac{\tau\,W_2^2(\mu,\nu)}{m}} .
# $$ (eq-map-ks-bound)
#
# As $\tau\to0$ the plan's mass $m$ tends to 1 (step 1 again) and the right-hand side vanishes like $\sqrt\tau$: the
# generated law of the exact UOT map tends to the data, and the map itself to the monotone rearrangement (where
# $\nu$ has a positive density, $F_\nu^{-1}$ is continuous). The bound is checked below on the exact answer for a
# range of $\tau$.
#
# ## The exact answer
#
# For the exact plan we summarise each training set by $n$ points of equal weight, the means of its empirical law
# over the $n$ quantile bins: $x_i=n\int_{(i-1)/n}^{i/n}F_{\mu_N}^{-1}(u)\,du$ (and the same for $\nu$;
# `uotm.exact.quantile_bin_means`). Among laws of $n$ equal atoms these are the closest to the sample in $W_2$: in
# 1-D, $W_2^2=\int_0^1(F^{-1}-G^{-1})^2du$, an $n$-atom law has a quantile function constant on each bin, and the
# constant closest in mean square to $F^{-1}$ on a bin is its mean there. (The points at the quantiles
# $F^{-1}((i-\tfrac12)/n)$ are the bins' medians: the closest in $W_1$, not in $W_2$.) Averaging both quantile
# functions over the same bins can only shrink their mean squared difference, so the $W_2$ between the two summaries,
# the one that enters the bound {eq}`eq-map-ks-bound` of the discrete problem, is at most that between the training
# sets (in this run $W_2^2$ is {glue:text}`w2_sq:.4f` against {glue:text}`w2_sq_data:.4f`). Their unbalanced plan
# is computed by `uotm.exact.solve_uot`, which maximises the semi-dual and certifies the result by its duality gap
# (chapter 2). POT's majorisation–minimisation solver is not used: it converges slowly for small $\tau$.

# %% tags=["parameters"]
seed = 0  # seed of the data, the networks and the noise
num_data = 4000  # points drawn from p and from q
taus = [0.01, 0.1, 1.0]  # values of tau at which the network is trained
epochs = 40  # training epochs per value of tau
lr = 0.0001  # Adam learning rate of both networks
batch_size = 256  # batch size
n_exact = 150  # points per law in the exact unbalanced problem (the law's means over its quantile bins)
taus_exact = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]  # values of tau for the exact answer alone
num_z = 64  # draws of z averaged in the learned mean map
jump_window = 0.3  # half-width around the exact map's jump left out of the second RMS
check_networks = True  # assert the claims about trained networks (they hold at these defaults for seeds 0-2)

# %% tags=["hide-input"]
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import ks_2samp

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice; no progress bars are drawn

from uotm.book import Claims, glue, show_table
from uotm.exact import monotone_rearrangement, quantile_bin_means, solve_uot, squared_distances
from uotm.psi import get_psi
from uotm.toy import ToyConfig, train_toy, training_data

claims = Claims(enabled=check_networks)
torch.set_num_threads(1)  # the toy networks are faster on one thread
kl = get_psi("kl")

# the training sets of the runs below (uotm.toy.training_data: the points train_toy draws for that config)
data_cfg = ToyConfig(source="p", target="q", batch_size=batch_size, num_data=num_data, seed=seed)
source, target = (s.astype(np.float64)[:, 0] for s in training_data(data_cfg))
xq, yq = quantile_bin_means(source, n_exact), quantile_bin_means(target, n_exact)  # sorted, equal weights
a = b = np.full(n_exact, 1.0 / n_exact)
C = squared_distances(xq, yq)
w2_sq = float(np.mean((xq - yq) ** 2))  # W2^2 between two sorted equal-weight clouds of the same size
w2_sq_data = float(np.mean((np.sort(source) - np.sort(target)) ** 2))  # the same between the training sets
assert w2_sq <= w2_sq_data + 1e-12, (w2_sq, w2_sq_data)  # averaging over the same bins only shrinks W2
glue("w2_sq", w2_sq)
glue("w2_sq_data", w2_sq_data)


def cdf_at(points, weights, t):
    """Distribution function of the discrete measure sum_k w_k delta_{p_k}, normalised, at the points t."""
    order = np.argsort(points)
    cum = np.concatenate([[0.0], np.cumsum(weights[order])]) / weights.sum()
    return cum[np.searchsorted(points[order], t, side="right")]


def ks(p1, w1, p2, w2):
    """Kolmogorov-Smirnov distance between two weighted discrete laws (each normalised)."""
    t = np.concatenate([p1, p2])
    return float(np.max(np.abs(cdf_at(p1, w1, t) - cdf_at(p2, w2, t))))


def w2_1d(p1, w1, p2, w2, grid=20_000):
    """W2 between two weighted 1-D laws, through their quantile functions on a fine grid of levels."""
    s = (np.arange(grid) + 0.5) / grid

    def quantile(p, w):
        order = np.argsort(p)
        cum = np.cumsum(w[order]) / w.sum()
        return p[order][np.minimum(np.searchsorted(cum, s), len(p) - 1)]

    return float(np.sqrt(np.mean((quantile(p1, w1) - quantile(p2, w2)) ** 2)))


def exact_answer(tau):
    """The exact KL/KL unbalanced plan between the two summaries, and what the page measures on it."""
    pl = solve_uot(a, b, tau * C, "kl", "kl", gap_tol=1e-6, x=xq, y=yq)
    mu_t, nu_t = pl.source_marginal, pl.target_marginal
    m = float(pl.plan.sum())
    generated = a @ pl.conditional()  # T*_# mu: where a uniformly drawn source point is sent
    bary = pl.barycentric_map()[:, 0]
    return dict(
        tau=tau, plan=pl, mass=m, gap=pl.gap, D_mu=kl.divergence(mu_t, a), D_nu=kl.divergence(nu_t, b),
        bound_D=tau * w2_sq, generated=generated, bary=bary, nu_tilde=nu_t,
        ks_generated=ks(yq, generated, yq, b), ks_nu_tilde=ks(yq, nu_t, yq, b),
        w2_generated=w2_1d(yq, generated, yq, b), ks_bound=np.sqrt(tau * w2_sq / m),
        jump=float(xq[np.argmax(bary > 0.5)]),  # where the map jumps from the mode at -1 to the mode at 2
        left_share_nu_tilde=float(nu_t[yq < 0.5].sum() / m),  # share of the mode at -1 in nu~/m
    )


tau_grid = sorted({float(t) for t in [*taus_exact, *taus]})  # parameter values: equal literals, equal floats
exact = {t: exact_answer(t) for t in tau_grid}
monotone = monotone_rearrangement(source, target, xq)  # balanced OT map of the full training sets
print(f"exact answers for {len(tau_grid)} values of tau on {n_exact} + {n_exact} points")
show_table(["τ", "mass m", "duality gap", "D(μ̃ ∣ μ)", "D(ν̃ ∣ ν)", "τ W₂²"],
           [[e["tau"], e["mass"], e["gap"], e["D_mu"], e["D_nu"], e["bound_D"]] for e in exact.values()],
           {0: ".3g", 1: ".3f", 2: ".1e", 3: ".2e", 4: ".2e", 5: ".3f"})
show_table(["τ", "KS(ν̃/m, ν)", "KS(T∗#μ, ν)", "bound", "W₂(T∗#μ, ν)", "jump at"],
           [[e["tau"], e["ks_nu_tilde"], e["ks_generated"], e["ks_bound"], e["w2_generated"], e["jump"]]
            for e in exact.values()],
           {0: ".3g", 1: ".4f", 2: ".4f", 3: ".3f", 4: ".4f", 5: ".3f"})

# %% [markdown]
# The checks on the exact answer: the solver's certificate, Theorem 3.3 up to that certificate, the split
# {eq}`eq-map-kl-split` of the generalised KL, the monotone support of the plan (no two transported pairs cross), the
# bound {eq}`eq-map-ks-bound`, and the trends it implies and the figure below shows: the generated law approaches
# $\nu$ as $\tau$ falls, and the jump of the map (where it crosses 0.5) and the share of the mode at $-1$ in
# $\tilde\nu/m$ grow with $\tau$.

# %%
for e in exact.values():
    pl, m = e["plan"], e["mass"]
    assert 0 <= e["gap"] < 1e-5, e["gap"]
    assert e["D_mu"] + e["D_nu"] <= e["bound_D"] + e["gap"] + 1e-12  # Theorem 3.3, claim 3
    # (eq-map-kl-split): D(nu~|nu) = m KL(nu^|nu) + (m log m - m + 1)
    nu_hat = e["nu_tilde"] / m
    kl_shape = float(np.sum(nu_hat * np.log(np.maximum(nu_hat, 1e-300) / b)))
    assert abs(e["D_nu"] - (m * kl_shape + m * np.log(m) - m + 1)) < 1e-9
    # monotone support: row i sends mass only to targets at or after where row i-1 stops
    support = pl.plan > 1e-9 * pl.plan.max()
    first = np.argmax(support, axis=1)
    last = support.shape[1] - 1 - np.argmax(support[:, ::-1], axis=1)
    sends = support.any(axis=1)
    assert np.all(first[sends][1:] >= last[sends][:-1]), f"crossing pairs at tau={e['tau']}"
    # the bound (eq-map-ks-bound) on the generated law, and Pinsker for nu^ alone
    assert e["ks_generated"] <= e["ks_bound"] + 1e-9, (e["tau"], e["ks_generated"], e["ks_bound"])
    assert e["ks_nu_tilde"] <= np.sqrt(e["bound_D"] / (2 * m)) + 1e-9, e["tau"]
ks_exact = np.array([e["ks_generated"] for e in exact.values()])
assert np.all(np.diff(ks_exact) >= -1e-9), ks_exact  # non-decreasing in tau
jumps = np.array([e["jump"] for e in exact.values()])
assert np.all(np.diff(jumps) >= -1e-9), jumps  # the jump moves right as tau grows
left = np.array([e["left_share_nu_tilde"] for e in exact.values()])
assert np.all(np.diff(left) >= -1e-9), left  # the mode at -1 weighs more in nu~/m as tau grows
bound_factor = min(e["ks_bound"] / e["ks_generated"] for e in exact.values())
glue("bound_factor", bound_factor)
print(f"all checks on the exact answer hold; the bound exceeds the KS distance by a factor {bound_factor:.2f} "
      "or more")


# where the bound reaches 1: tau W2^2 = m(tau), the mass of the exact plan at tau. m varies slowly with tau, so the
# fixed-point iteration tau <- m(tau) / W2^2 contracts fast; it starts where the grid's bound, interpolated in
# log-log, crosses 1.
log_bounds = np.log([e["ks_bound"] for e in exact.values()])
assert np.all(np.diff(log_bounds) > 0), log_bounds  # tau / m(tau) grows with tau: the bound crosses 1 once
below = [t for t, e in exact.items() if e["ks_bound"] < 1]
above = [t for t, e in exact.items() if e["ks_bound"] > 1]
tau_next = float(np.exp(np.interp(0.0, log_bounds, np.log(list(exact)))))
for _ in range(20):
    tau_at = tau_next
    plan_at = solve_uot(a, b, tau_at * C, "kl", "kl", gap_tol=1e-6)
    tau_next = float(plan_at.plan.sum()) / w2_sq
    if abs(tau_next - tau_at) < 1e-6 * tau_at:
        break
tau_cross = tau_at
bound_cross = np.sqrt(tau_cross * w2_sq / plan_at.plan.sum())  # the bound at tau_cross, from the exact plan there
assert plan_at.gap < 1e-5 and abs(bound_cross - 1) < 1e-5, (tau_cross, bound_cross, plan_at.gap)
assert max(below, default=0.0) < tau_cross < min(above, default=np.inf), (below, tau_cross, above)
glue("tau_cross", tau_cross)
print(f"the bound crosses 1 at tau = {tau_cross:.5f} (there it is {bound_cross:.7f}; mass of the plan "
      f"{plan_at.plan.sum():.4f})")

# %% [markdown]
# The figure shows the exact map for each $\tau$ (top) and both sides of {eq}`eq-map-ks-bound` (bottom). Every map
# crosses from the mode at $-1$ to the mode at $2$, sharply for small $\tau$ and more gradually for large $\tau$ (the
# tables call the point where it crosses 0.5 the *jump*); as $\tau$ grows that point moves right, because the
# unbalanced plan keeps more of the source's left half at the nearby mode at $-1$ (whose share in $\tilde\nu$ grows)
# instead of paying to move it to $2$. The bound is loose, by a factor of {glue:text}`bound_factor:.1f` or more on
# this grid, and from $\tau\approx${glue:text}`tau_cross:.2f` on (where $\tau W_2^2=m$, found by a fixed-point
# iteration in the cell above) it exceeds 1 and says nothing (a KS distance never does); but it has the right
# behaviour where it matters: the distance falls to 0 like $\sqrt\tau$ as $\tau\to0$.

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 1, figsize=(8, 9))
ax = axes[0]
cmap = plt.get_cmap("viridis")
for k, e in enumerate(exact.values()):
    ax.plot(xq, e["bary"], color=cmap(k / max(len(exact) - 1, 1)), lw=1.2, label=f"UOT, τ={e['tau']:.3g}")
ax.plot(xq, monotone, "k--", lw=1.5, label="balanced OT")
ax.set_xlabel("source point x")
ax.set_ylabel("destination (barycentric map)")
ax.set_title("exact maps p → q")
ax.legend(ncol=2, loc="upper left")
ax = axes[1]
tt = np.array(list(exact))
ax.plot(tt, ks_exact, "o-", label=r"$d_{KS}(T^*_\#\mu,\nu)$ (exact UOT)")
ax.plot(tt, [e["ks_nu_tilde"] for e in exact.values()], "s-", mfc="none", label=r"$d_{KS}(\tilde\nu/m,\nu)$")
ax.plot(tt, [e["ks_bound"] for e in exact.values()], "r--", label=r"the bound $\sqrt{\tau W_2^2(\mu,\nu)/m}$")
ax.axvline(tau_cross, color="0.5", ls=":", lw=1, label=f"bound = 1 at τ = {tau_cross:.2f}")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(r"cost scale $\tau$")
ax.set_ylabel("Kolmogorov–Smirnov distance to ν")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Training the network
#
# For each $\tau$ of the parameters the toy trainer (`uotm.toy.train_toy`) runs with the reference's networks
# (residual MLPs of width 128), KL on both sides, batch {glue:text}`batch_size`, five potential steps per map step,
# Adam with learning rate {glue:text}`lr:g` (the parameter `lr`) and no regulariser. This run's budget is
# {glue:text}`epochs` epochs of the {glue:text}`num_data:,` points (the parameter `epochs`), {glue:text}`iterations`
# iterations per $\tau$, {glue:text}`seconds_per_epoch:.1f` s per epoch here; the reference trains its OT-map run for
# 2 000 epochs at a learning rate of $10^{-5}$ ({glue:text}`reference_ratio:.0f` times this budget). The transported
# samples are the map applied to the {glue:text}`num_data:,` source points with one draw of $z$ each.

# %%
runs = {}
for tau in taus:
    cfg = ToyConfig(source="p", target="q", psi1="kl", psi2="kl", tau=float(tau), epochs=epochs, lr_map=lr,
                    lr_potential=lr, batch_size=batch_size, num_data=num_data, seed=seed, log_every=5)
    runs[float(tau)] = run = train_toy(cfg, progress=False)
    print(f"tau={tau}: {run.metrics[-1]['step']} iterations in {run.seconds:.0f} s")

# %% tags=["hide-input"]
# the page's exact answers were computed on the same training sets (drawn by the same code from the same seed)
first_run = runs[float(taus[0])]
assert np.allclose(first_run.target[:, 0], target, rtol=0, atol=1e-6)
assert np.allclose(first_run.source[:, 0], source, rtol=0, atol=1e-6)
for name, value in [("batch_size", batch_size), ("lr", lr), ("epochs", epochs), ("num_data", num_data),
                    ("iterations", first_run.metrics[-1]["step"]), ("reference_ratio", 2000 / epochs),
                    ("seconds_per_epoch", np.mean([r.seconds for r in runs.values()]) / epochs)]:
    glue(name, value)


def rms(d):
    return float(np.sqrt(np.mean(d ** 2)))


rows = []
for tau, run in runs.items():
    e = exact[tau]
    learned = run.mean_map(xq, num_z=num_z)[:, 0]
    away = np.abs(xq - e["jump"]) > jump_window
    generated = run.transported[:, 0].astype(np.float64)
    ones = np.ones(len(generated))
    rows.append(dict(
        tau=tau, learned=learned,
        rms_exact=rms(learned - e["bary"]), rms_exact_away=rms((learned - e["bary"])[away]),
        rms_monotone=rms(learned - monotone), rms_exact_to_monotone=rms(e["bary"] - monotone),
        jump=float(xq[np.argmax(learned > 0.5)]), jump_exact=e["jump"],
        ks_net=float(ks_2samp(generated, target).statistic), ks_net_to_exact=ks(generated, ones, yq, e["generated"]),
        ks_exact=e["ks_generated"], w2_net=w2_1d(generated, ones, target, np.ones(len(target))),
        w2_exact=e["w2_generated"], share_net=float(np.mean(generated < 0.5)),
        share_exact=float(e["generated"][yq < 0.5].sum()), share_nu=float(np.mean(target < 0.5)),
    ))
show_table(["τ", "RMS to exact", "(off jump)", "to balanced", "exact to balanced", "jump: net", "exact"],
           [[r["tau"], r["rms_exact"], r["rms_exact_away"], r["rms_monotone"], r["rms_exact_to_monotone"],
             r["jump"], r["jump_exact"]] for r in rows],
           {0: "g", 1: ".3f", 2: ".3f", 3: ".3f", 4: ".3f", 5: ".2f", 6: ".2f"})
show_table(["τ", "KS: net", "exact", "net to exact", "W₂: net", "exact", "share: net", "exact", "data"],
           [[r["tau"], r["ks_net"], r["ks_exact"], r["ks_net_to_exact"], r["w2_net"], r["w2_exact"],
             r["share_net"], r["share_exact"], r["share_nu"]] for r in rows],
           {0: "g", 1: ".3f", 2: ".3f", 3: ".3f", 4: ".3f", 5: ".3f", 6: ".3f", 7: ".3f", 8: ".3f"})

# %% [markdown]
# The first table compares the maps, the second the generated laws (the numbers are this page's, at its training
# budget):
#
# - **RMS to exact**: the root mean square, over $\mu$, of the gap between the learned mean map and the exact UOT
#   map; *off jump* leaves out the source points within `jump_window` of the exact jump, where a small shift of the
#   jump makes a difference of about 3 (the distance between the modes); *to monotone* is the distance to the balanced
#   map, and *exact to balanced* how far apart the two targets are.
# - **KS**: Kolmogorov–Smirnov distances of the generated law to the data (network: `scipy.stats.ks_2samp` on the
#   {glue:text}`num_data:,` samples, whose own sampling noise is about {glue:text}`ks_noise:.2f` at 95%) and to the
#   exact UOT law $T^*_\#\mu$.
# - **W₂**: the network's samples against the training set, and the exact $T^*_\#\mu$ against the summary of
#   $\nu$ it lives on.
# - **share**: the share of samples below 0.5, in the mode at $-1$; the data has one third there.
#
# The claims below are asserted at the default budget (they hold there at seeds 0, 1 and 2, measured by
# `python ci/seeds.py 04_learning_the_map`; with `check_networks = False` they are only measured). At the largest
# $\tau$ the network learns the *unbalanced* map: its mean map's RMS distance to the exact UOT map is less than half
# of that to the balanced one (the two targets are {glue:text}`big_exact_to_monotone:.2f` apart), and within 0.25 of
# the exact map away from the jump; its generated law is less than half as far (KS) from the exact $T^*_\#\mu$ as
# from the data, and it puts at least 0.1 more of its mass at $-1$ than the data does, as $T^*_\#\mu$ does. At the
# smallest $\tau$ the network is further from the data than the exact answer is, by more than 0.02 in KS: there the
# training budget, not the theorem, sets the distance. The page does not claim that the network's distance to the
# data grows with $\tau$, as the exact answer's does: at this budget that does not hold at every one of seeds 0–2,
# because the small-$\tau$ run sometimes ends far from the data.

# %%
by_tau = {r["tau"]: r for r in rows}
big, small = by_tau[max(by_tau)], by_tau[min(by_tau)]
glue("tau_big", big["tau"])
glue("tau_small", small["tau"])
for key in ("rms_exact", "rms_exact_away", "rms_monotone", "ks_net", "ks_exact", "ks_net_to_exact", "share_net",
            "share_exact", "jump", "jump_exact"):
    glue(f"big_{key}", big[key])
    glue(f"small_{key}", small[key])
glue("big_exact_to_monotone", big["rms_exact_to_monotone"])
glue("share_nu", big["share_nu"])
glue("ks_noise", 1.36 * np.sqrt(2 / num_data))
claims.below("big_map_ratio", big["rms_exact"] / big["rms_monotone"], 0.5,
             "at the largest tau, RMS to the exact UOT map below half the RMS to the balanced map")
claims.below("big_map_away", big["rms_exact_away"], 0.25,
             "at the largest tau, the mean map within 0.25 (RMS) of the exact UOT map off the jump")
claims.below("big_law_ratio", big["ks_net_to_exact"] / big["ks_net"], 0.5,
             "at the largest tau, the generated law's KS to T*_# mu below half its KS to the data")
claims.above("big_left_excess", big["share_net"] - big["share_nu"], 0.1,
             "at the largest tau, the generated share at -1 exceeds the data's by more than 0.1")
claims.above("small_ks_excess", small["ks_net"] - small["ks_exact"], 0.02,
             "at the smallest tau, the network's KS to the data exceeds the exact answer's by more than 0.02")
net_trend = [by_tau[t]["ks_net"] for t in sorted(by_tau)]
print("KS to the data in increasing tau: network", ", ".join(f"{v:.3f}" for v in net_trend), "| exact",
      ", ".join(f"{exact[t]['ks_generated']:.3f}" for t in sorted(by_tau)))

# %% [markdown]
# ## The maps and the generated laws
#
# One row per $\tau$. Left: the pairs $(x,T_\theta(x,z))$ (grey), the learned map averaged over $z$, the exact UOT
# map and the balanced map. Right: the data, the network's samples and the exact UOT law $T^*_\#\mu$. The tables
# above give the distances between them.

# %% tags=["hide-input"]
fig, axes = plt.subplots(len(runs), 2, figsize=(10, 3.8 * len(runs)), squeeze=False)
for k, (tau, run) in enumerate(runs.items()):
    e, r = exact[tau], by_tau[tau]
    ax = axes[k, 0]
    ax.scatter(run.source[:, 0], run.transported[:, 0], s=2, alpha=0.15, c="0.5", label="$(x, T_θ(x,z))$")
    ax.plot(xq, r["learned"], color="tab:blue", lw=2, label="network, mean over z")
    ax.plot(xq, e["bary"], color="tab:red", lw=1.5, label="exact UOT map")
    ax.plot(xq, monotone, "k--", lw=1.2, label="balanced OT map")
    ax.set_xlabel("source point x")
    ax.set_ylabel("destination")
    ax.set_title(f"τ = {tau:g}: the maps")
    if k == 0:
        ax.legend(markerscale=4, loc="upper left")
    ax = axes[k, 1]
    edges = np.linspace(-3, 4.5, 61)
    ax.hist(target, bins=edges, density=True, alpha=0.35, color="tab:orange", label="data ν")
    ax.hist(run.transported[:, 0], bins=edges, density=True, histtype="step", lw=1.8, color="tab:blue",
            label="network")
    ax.hist(yq, bins=edges, weights=e["generated"], density=True, histtype="step", lw=1.5, color="tab:red",
            label="exact UOT $T^*_\\#\\mu$")
    ax.set_xlabel("value")
    ax.set_ylabel("density")
    ax.set_title(f"τ = {tau:g}: the laws")
    if k == 0:
        ax.legend(loc="upper left")
fig.tight_layout()
plt.show()

# %% [markdown]
# Top: the distance to the data against $\tau$, for the exact answer (line), its bound {eq}`eq-map-ks-bound`
# (dashed) and the network (points). Bottom: the training curves of the runs.

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 1, figsize=(8, 9))
ax = axes[0]
ax.plot(tt, ks_exact, "o-", color="tab:red", label="exact UOT $T^*_\\#\\mu$")
ax.plot(tt, [e["ks_bound"] for e in exact.values()], "r--", lw=1, label="the bound on the exact UOT distance")
ax.plot(sorted(by_tau), net_trend, "D", ms=8, color="tab:blue", label="network")
ax.axhline(1.36 * np.sqrt(2 / num_data), color="0.5", ls=":", label="KS sampling noise (95%)")
ax.set_xscale("log")
ax.set_xlabel(r"cost scale $\tau$")
ax.set_ylabel("Kolmogorov–Smirnov distance to ν")
ax.legend(loc="upper left", bbox_to_anchor=(0, -0.2), ncol=2)
ax = axes[1]
for tau, run in runs.items():
    it = [m["step"] for m in run.metrics]
    ax.plot(it, [m["map_loss"] for m in run.metrics], label=f"map loss, τ={tau:g}")
ax.set_xlabel("iteration")
ax.set_ylabel("map loss $L_T$")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What the numbers say
#
# In this run ({glue:text}`epochs` epochs per $\tau$, learning rate {glue:text}`lr:g`; the tables above hold all its
# numbers):
#
# - **Large $\tau$ converges fast, to the unbalanced answer.** At $\tau=${glue:text}`tau_big:g` the mean map is
#   {glue:text}`big_rms_exact_away:.2f` (RMS, off the jump) from the exact UOT map and
#   {glue:text}`big_rms_monotone:.2f` from the balanced one, and the generated law is
#   {glue:text}`big_ks_net_to_exact:.3f` (KS) from the exact $T^*_\#\mu$ but {glue:text}`big_ks_net:.3f` from the
#   data: it puts {glue:text}`big_share_net:.1%` of its samples in the mode at $-1$ (exact
#   {glue:text}`big_share_exact:.1%`, data {glue:text}`share_nu:.1%`). That is the price Theorem 3.3 allows, not a
#   training failure.
# - **Small $\tau$ converges slowly.** At $\tau=${glue:text}`tau_small:g` the exact answer is close to the balanced
#   one ({glue:text}`small_ks_exact:.3f` (KS) from the data), but the network is still {glue:text}`small_ks_net:.3f`
#   from the data and its mean map {glue:text}`small_rms_exact:.2f` (RMS) from the exact map. The cost is then a
#   small part of the map's loss, so the map is pulled towards $\nu$ mainly by the potential. The exact answer's
#   distance to the data falls with $\tau$; the network's (here {glue:text}`small_ks_net:.3f` at the smallest $\tau$
#   against {glue:text}`big_ks_net:.3f` at the largest) does not follow it at every seed at this budget: at small
#   $\tau$ it is set by the training, not by the theorem.
# - **Matching the data is not finding the map.** In one dimension every non-decreasing map that pushes $\mu$ to a
#   law is that law's monotone rearrangement, but a map that is not monotone can push $\mu$ to the same law: the
#   adversarial game only sees the generated law, and the cost term, small when $\tau$ is small, is all that favours
#   the monotone map. So a small distance between the laws does not certify the map; this page measures both, and at
#   $\tau=${glue:text}`tau_small:g` this run's mean map jumps at $x=${glue:text}`small_jump:.2f` where the exact map
#   jumps at {glue:text}`small_jump_exact:.2f`.
#
# ## What to try
#
# - Raise `epochs` (the reference uses 2 000 at a learning rate of $10^{-5}$) and watch the small-$\tau$ column
#   of the table: both the distance to the data and the distance to the exact map, since the first can fall while
#   the second does not.
# - Add `"linear"` runs (`psi1 = psi2 = "linear"`, OTM): their target is the balanced map, the dashed line. Chapter 5
#   trains such runs on its outlier data, with and without a regulariser.
# - Replace KL by $\chi^2$ on the data side: `solve_uot(..., "kl", "chi")` gives the exact answer, and the bound
#   of step 1 changes with the divergence.
