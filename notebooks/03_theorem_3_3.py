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
# # How far are the reweighted measures from the data?
#
# The map that a UOTM generator learns does not transport the source $\mu$ onto the data law $\nu$: it transports a
# *reweighted* source $\tilde\mu$ onto a *reweighted* data law $\tilde\nu$, the marginals of the optimal unbalanced
# plan. Theorem 3.3 of {cite:t}`choi2023uotm` says how far these can be from $\mu$ and $\nu$: no further, in
# divergence, than $\tau W_2^2(\mu,\nu)$. That is a bound on the distance between $\tilde\nu$ (or its
# normalisation $\tilde\nu/m$, where $m$ is the plan's mass) and $\nu$, not yet on what the generator produces: it
# is fed every source sample, so the law it generates is $T^*_\#\mu$, which is neither $\tilde\nu$ nor
# $\tilde\nu/m$. Chapter 4 takes that further step and, in one dimension, turns the bound into one on the distance
# between $T^*_\#\mu$ and $\nu$. This page states the theorem, proves it, and tests the bound on random discrete
# problems at values of $\tau$ from {glue:text}`tau_min:.0e` to {glue:text}`tau_max:.0e` (the parameters `tau_min`
# and `tau_max`).
#
# ## The theorem
#
# Let $\mu,\nu$ be probability densities on compact sets, $\Psi_1,\Psi_2$ entropy functions whose conjugates are
# continuously differentiable, and $c(x,y)=\tau\lVert x-y\rVert^2$. Suppose the semi-dual {eq}`eq-uot-semidual` has a
# maximiser $v^*$, and let
#
# $$
# \tilde\mu=(\Psi_1^*)'\big(-v^{*c}(x)\big)\,\mu,\qquad \tilde\nu=(\Psi_2^*)'\big(-v^*(y)\big)\,\nu .
# $$ (eq-thm-marginals)
#
# Then
# 1. $v^*$ also maximises the **balanced** semi-dual {eq}`eq-ot-semidual` between $\tilde\mu$ and $\tilde\nu$;
# 2. there is an optimal transport map $T^*$ from $\tilde\mu$ to $\tilde\nu$ with
#    $T^*(x)\in\arg\min_y\,[c(x,y)-v^*(y)]$, the map that UOTM's generator learns;
# 3. the reweighting is controlled by the balanced transport cost:
#
# $$
# D_{\Psi_1}(\tilde\mu\,\|\,\mu)+D_{\Psi_2}(\tilde\nu\,\|\,\nu)\ \le\ \tau\,W_2^2(\mu,\nu).
# $$ (eq-thm-bound)
#
# For KL, $\tilde\mu=e^{-v^{*c}}\mu$ and $\tilde\nu=e^{-v^*}\nu$. As $\tau\to0$ the right-hand side vanishes, so
# $\tilde\mu$ and $\tilde\nu$ tend to $\mu$ and $\nu$, and UOTM to OTM (for measures of equal mass, as here;
# chapter 2 derives the different limit for unequal masses); a larger $\tau$ buys robustness to outliers with a
# larger possible distortion of the target. The law that the generator produces, $T^*_\#\mu$, is neither
# $\tilde\nu$ nor $\tilde\nu/m$; chapter 4 derives from {eq}`eq-thm-bound` a bound on its distance to $\nu$ (in one
# dimension).
#
# ## Proof
#
# Let $\pi^*$ be an optimal plan of the primal {eq}`eq-uot-primal`; by step 4 of the previous chapter
# ({eq}`eq-uot-marginals`) its marginals are $\tilde\mu$ and $\tilde\nu$.
#
# *Claim 3.* Two comparisons with $C_{ub}=C_{ub}(\mu,\nu)$ suffice.
# - **Upper bound.** Any $\pi\ge0$ is admissible in {eq}`eq-uot-primal`, in particular a balanced optimal plan
#   $\pi_B\in\Pi(\mu,\nu)$ for $c$ (it exists because $\mu$ and $\nu$ have the same mass). Its marginals are $\mu$ and
#   $\nu$ themselves and $D_\Psi(\mu|\mu)=\Psi(1)\,\mu(\mathcal X)=0$, so
#   $C_{ub}\le\int c\,d\pi_B=\tau W_2^2(\mu,\nu)$.
# - **Lower bound.** $C_{ub}=\int c\,d\pi^*+D_{\Psi_1}(\tilde\mu|\mu)+D_{\Psi_2}(\tilde\nu|\nu)$ and $c\ge0$, so
#   $C_{ub}\ge D_{\Psi_1}(\tilde\mu|\mu)+D_{\Psi_2}(\tilde\nu|\nu)$.
#
# Chaining the two gives {eq}`eq-thm-bound`. The same argument with the empty plan $\pi=0$ (marginals $0$, and
# $D_\Psi(0|\mu)=\Psi(0)\,\mu(\mathcal X)$) gives a second bound, which does not grow with $\tau$:
#
# $$
# \begin{aligned}
# D_{\Psi_1}(\tilde\mu\,\|\,\mu)+D_{\Psi_2}(\tilde\nu\,\|\,\nu)\ &\le\ C_{ub}(\mu,\nu)\\
# &\le\ \min\big\{\tau W_2^2(\mu,\nu),\ \Psi_1(0)+\Psi_2(0)\big\},
# \end{aligned}
# $$ (eq-thm-both)
#
# which is 2 for KL and for $\chi^2$ ($\Psi(0)=1$).
#
# *Claims 1 and 2.* Optimality of $\pi^*$ and $v^*$ (step 2 of the previous chapter) forces $\pi^*$ to live on the
# set where $v^{*c}(x)+v^*(y)=c(x,y)$. Hence $\int v^{*c}\,d\tilde\mu+\int v^*\,d\tilde\nu=\int c\,d\pi^*$: the
# balanced semi-dual at $v^*$ reaches the cost of the plan $\pi^*\in\Pi(\tilde\mu,\tilde\nu)$, and weak duality
# makes both optimal, which is claim 1. For the quadratic cost and $\tilde\mu$ with a density, Brenier's theorem
# turns the optimal plan into a map, and its support condition is claim 2. On discrete measures there is no map,
# but claim 1 and the support condition remain and are checked below.
#
# ## Where the hypotheses enter
#
# The proof of {eq}`eq-thm-bound` uses only $c\ge0$, $\Psi_i(1)=0$ and $\mu(\mathcal X)=\nu(\mathcal Y)$ (a cost
# that is negative somewhere breaks it: the unit test of `uotm.exact.check_reweighting_bound` solves a problem with
# the cost $\tau\lVert x-y\rVert^2-1$ and sees the bound fail). What it says, however, depends on the divergences
# being non-negative, that is on $\Psi\ge0$. This holds for KL and
# $\chi^2$, and then each term is separately at most $\tau W_2^2$ and vanishes with $\tau$. It fails for the
# `softplus` conjugate of the reference code: its $\Psi(t)=t\log t+(1-t)\log(1-t)$ is $-\log 2$ at $t=1/2$, so
# $D_\Psi$ can be negative (down to $-\log 2$ for a probability measure), a small sum allows one large term
# ($D_{\Psi_2}(\tilde\nu|\nu)\le\tau W_2^2+\log 2$ only, which does not vanish with $\tau$), and since $\Psi$ is
# smallest at $1/2$, $D_\Psi(\tilde\nu|\nu)\approx0$ does not even mean $\tilde\nu\approx\nu$.
#
# ## Testing the bound
#
# On random pairs of uniform point clouds in the plane (probability measures), for KL on both sides. Each problem
# is solved exactly, and every answer is certified by its *duality gap*: for a plan $\hat\pi$ and any potential $v$,
# $g=\mathrm{value}(\hat\pi)-J(v)$ bounds the plan's excess $\mathrm{value}(\hat\pi)-C_{ub}$, because
# $J(v)\le C_{ub}$ (weak duality).
#
# - First by POT's majorisation–minimisation solver `mm_unbalanced` {cite:p}`chapel2021unbalanced,flamary2021pot`,
#   through `uotm.exact.kl_uot_plan` (the parameter `mm_iterations`), with the potential that
#   {eq}`eq-thm-marginals` suggests, $v=-\log(d\hat\pi_1/d\nu)$ (the ratio floored at some $\varepsilon$ where the
#   solver let a marginal underflow to 0; the best $\varepsilon$ of a grid).
# - Where that certificate is not good enough (next paragraph), again by `uotm.exact.solve_uot`, which maximises the
#   semi-dual {eq}`eq-uot-semidual` and returns its potential $v$ and the plan $\hat\pi$ that couples the measures
#   {eq}`eq-thm-marginals` of $v$ by exact balanced OT. This happens at small $\tau$: the multiplicative update of
#   `mm_unbalanced` moves by a factor of about $e^{-\tau C/2}$ per iteration, so it converges slowly there, while
#   the divergence to be measured is smallest there.
# - $D_{\mathrm{KL}}$ is `uotm.psi.get_psi("kl").divergence`, and $W_2^2$ is `ot.emd2`, through
#   `uotm.exact.w2_squared`.
#
# **What is asserted, and why it can fail.** It would be easy to write an assertion that cannot fail: every plan,
# optimal or not, has $D(\hat\pi)\le\mathrm{value}(\hat\pi)=J(v)+g\le C_{ub}+g\le\tau W_2^2+g$, so "the bound up
# to the tolerance $g$" holds whatever the solver returns. `uotm.exact.check_reweighting_bound` asserts two things
# instead, on every problem and every $\tau$:
#
# 1. the plan is optimal up to a certified gap: $g$ is below a tenth of the divergence $D$ that is being checked
#    (at small $\tau$, $D$ falls like $\tau^2$, see below, so a solver that stops early fails here);
# 2. the divergence of that plan's marginals is below both bounds of {eq}`eq-thm-both`, with no slack but a
#    relative rounding tolerance of $10^{-9}$.
#
# The cell tries the plan of `mm_unbalanced` first and, where the check fails, solves again with `solve_uot` and
# asserts the check on that plan. Its unit test (`tests/test_exact.py`) feeds the check plans that are not optimal
# (the balanced plan, twice the optimal plan), a potential that does not certify the plan, and a negative cost, and
# sees each fail. Claim 1 is tested, with claim 2, in the section *Claims 1 and 2 with an exact potential*.

# %% tags=["parameters"]
seed = 0  # random seed of the test problems
n_problems = 20  # random pairs of point clouds
n_min = 10  # fewest points in a cloud
n_max = 30  # most points in a cloud
n_tau = 6  # number of values of tau, log-spaced
tau_min = 1e-3  # smallest tau
tau_max = 10.0  # largest tau
mm_iterations = 20000  # iterations of POT's unbalanced solver, tried first on each problem
n_exact = 5  # problems on which claims 1 and 2 are checked with an exact potential
tau_exact = 0.1  # tau of those problems

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import ot

from uotm.book import glue, show_table
from uotm.exact import (c_transform, check_reweighting_bound, kl_uot_plan, maximise_semi_dual, semi_dual_value,
                        solve_uot, squared_distances, w2_squared)
from uotm.psi import get_psi

kl = get_psi("kl")
rng = np.random.default_rng(seed)
taus = np.logspace(np.log10(tau_min), np.log10(tau_max), n_tau)
glue("n_problems", n_problems)
glue("n_tau", n_tau)
glue("tau_min", tau_min)
tau_max = glue("tau_max", tau_max)


def certifying_potential(plan, a, b, cost):
    """A potential v for the certificate of a KL/KL plan: v = -log(max(pi1 / b, eps)) (the relation
    (eq-thm-marginals) read backwards), with the eps of a grid that gives the largest J(v).

    Every v gives a lower bound J(v) <= C_ub (weak duality), so any choice is valid; the floor eps guards against
    marginals that the solver has let underflow to 0, whose -log would be +inf."""
    ratio = plan.sum(0) / b
    with np.errstate(over="ignore", divide="ignore"):
        candidates = [-np.log(np.maximum(ratio, eps)) for eps in 10.0 ** -np.arange(0, 301, 5)]
        return max(candidates, key=lambda v: semi_dual_value(v, cost, a, b, kl, kl))


def random_clouds(rng):
    n, m = rng.integers(n_min, n_max + 1, size=2)
    x = rng.normal(size=(n, 2))
    y = rng.uniform(0.3, 1.0) * rng.normal(size=(m, 2)) + rng.normal(scale=1.5, size=2)
    return x, y


# %% [markdown]
# ## The bound over many problems and values of $\tau$

# %%
rows = []
for problem in range(n_problems):
    x, y = random_clouds(rng)
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    C = squared_distances(x, y)
    w2 = w2_squared(x, y)
    for tau in taus:
        plan = kl_uot_plan(x, y, tau, num_iter=mm_iterations).plan
        v = certifying_potential(plan, a, b, tau * C)
        solver = "mm"
        try:
            found = check_reweighting_bound(v, plan, tau * C, a, b,
                                            "kl", "kl", gap_share=0.1)
        except AssertionError:
            # not certified: solve again by the semi-dual, and assert the
            # check this time
            sol = solve_uot(a, b, tau * C, "kl", "kl", gap_tol=1e-9)
            v, plan = sol.potential, sol.plan
            found = check_reweighting_bound(v, plan, tau * C, a, b,
                                            "kl", "kl", gap_share=0.1)
            solver = "semi-dual"
        # the balanced cost is tau W2^2
        assert abs(found.bound - tau * w2) <= 1e-9 * tau * w2
        rows.append(dict(problem=problem, tau=tau, D=found.divergence,
                         bound=found.bound, value=found.value, gap=found.gap,
                         mass=plan.sum(), solver=solver))

# the identity behind the second bound of (eq-thm-both): D <= value, the
# transport term being >= 0
assert all(r["D"] <= r["value"] + 1e-12 for r in rows)

# %% tags=["hide-input"]
def per_case(key):
    """The values of rows[key] as an array of shape (n_problems, n_tau)."""
    return np.array([r[key] for r in rows]).reshape(n_problems, n_tau)


D, bound, gap, value, mass = (per_case(key) for key in ("D", "bound", "gap", "value", "mass"))
resolved = per_case("solver") == "semi-dual"
show_table(["$\\tau$", "largest $D/\\tau W_2^2$", "median $D/\\tau W_2^2$", "smallest $D$", "largest $D$",
            "largest gap$/D$", "mean mass", "re-solved"],
           [[tau, np.max(D[:, k] / bound[:, k]), np.median(D[:, k] / bound[:, k]), D[:, k].min(), D[:, k].max(),
             np.max(gap[:, k] / D[:, k]), mass[:, k].mean(), int(resolved[:, k].sum())]
            for k, tau in enumerate(taus)],
           {0: ".2g", 1: ".4f", 2: ".4f", 3: ".1e", 4: ".4f", 5: ".1e", 6: ".3f"})
glue("n_cases", D.size)
glue("max_ratio", np.max(D / bound))
glue("max_gap_share", np.max(gap / D))
glue("max_gap", gap.max())
glue("n_resolved", int(resolved.sum()))
glue("resolved_tau_max", float(taus[resolved.any(axis=0)].max()) if resolved.any() else 0.0)
glue("resolved_small_tau", int(resolved[:, 0].sum()))
glue("min_D_small_tau", D[:, 0].min())
max_D = glue("max_D", D.max())

# %% [markdown]
# The bound holds in all {glue:text}`n_cases` cases ({glue:text}`n_problems` problems, the parameter `n_problems`,
# times {glue:text}`n_tau` values of $\tau$): the largest ratio $D/\tau W_2^2$ is {glue:text}`max_ratio:.3f`, and
# the largest divergence {glue:text}`max_D:.3f`, below the second bound 2. Every plan is certified: the largest
# duality gap is {glue:text}`max_gap:.1e`, and the largest ratio of the gap to the divergence it certifies is
# {glue:text}`max_gap_share:.1e`, against the $0.1$ allowed. At $\tau=$ {glue:text}`tau_min:.0e` the divergences are
# as small as {glue:text}`min_D_small_tau:.1e`, and the certificate of `mm_unbalanced` failed on
# {glue:text}`resolved_small_tau` of the {glue:text}`n_problems` problems there; in all, {glue:text}`n_resolved` of
# the {glue:text}`n_cases` cases were solved again with `solve_uot` (column *re-solved*), none at $\tau$ above
# {glue:text}`resolved_tau_max:.2g`.
#
# ## What the bound looks like
#
# Top: both sides of {eq}`eq-thm-bound` against $\tau$ (the median over problems, and the range), with the
# plan's mass (dashed, right axis). Bottom: their ratio $D/\tau W_2^2$ for every problem, $D$ being the left-hand side
# of {eq}`eq-thm-bound`. The bound holds everywhere with room to spare, in two
# different ways. For small $\tau$ the divergences grow like $\tau^2$ (the density ratios deviate from 1 by
# $O(\tau)$, and a divergence is quadratic near 1; the log-log slope of the median divergence over the two
# smallest $\tau$ is {glue:text}`slope_small:.2f`, asserted between 1.7 and 2.3) while the bound grows like $\tau$,
# so the ratio falls to 0. For large $\tau$ the plan gives up most of its mass (its mean mass is
# {glue:text}`mass_large_tau:.3f` at $\tau=$ {glue:text}`tau_max:.0e`) and the divergences approach
# $\Psi_1(0)+\Psi_2(0)=2$, the second bound of {eq}`eq-thm-both`, so again the ratio falls.

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 1, figsize=(7.5, 8.4), sharex=True)
ax = axes[0]
for arr, label, color in [(bound, r"$\tau W_2^2(\mu,\nu)$ (bound)", "tab:red"),
                          (D, r"$D_{KL}(\tilde\mu\|\mu)+D_{KL}(\tilde\nu\|\nu)$", "tab:blue"),
                          (value, r"$C_{ub}(\mu,\nu)$", "tab:green")]:
    ax.plot(taus, np.median(arr, axis=0), "o-", color=color, label=label)
    ax.fill_between(taus, arr.min(axis=0), arr.max(axis=0), color=color, alpha=0.15)
ax.axhline(2.0, color="k", ls=":", lw=1, label=r"$\Psi_1(0)+\Psi_2(0)=2$")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_ylabel("median and range over problems")
ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), ncol=2, borderaxespad=0.0, frameon=False)
ax2 = ax.twinx()
ax2.plot(taus, mass.mean(axis=0), "k--", lw=1)
ax2.set_ylabel("mean mass of the plan (dashed)")
ax2.set_ylim(0, 1.05)

ax = axes[1]
for p in range(n_problems):
    ax.plot(taus, D[p] / bound[p], color="tab:blue", alpha=0.25, lw=1)
ax.plot(taus, np.median(D / bound, axis=0), "o-", color="navy", label="median over problems")
ax.axhline(1.0, color="tab:red", ls="--", label="the bound (ratio 1)")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(r"cost scale $\tau$")
ax.set_ylabel(r"ratio $D\,/\,\tau W_2^2(\mu,\nu)$")
ax.legend(loc="lower center")
fig.tight_layout()
plt.show()

# %%
# the shape described above: the divergence grows like tau^2 at small tau
# (log-log slope 2, up to the curvature between the two tau), and D / bound
# rises, then falls at large tau
median_D = np.median(D, axis=0)
slope_small = np.polyfit(np.log(taus[:2]), np.log(median_D[:2]), 1)[0]
assert 1.7 < slope_small < 2.3, slope_small
ratio = np.median(D / bound, axis=0)
assert ratio[-1] < ratio.max() and ratio[0] < ratio.max()

# %% tags=["hide-input"]
glue("slope_small", slope_small)
mass_large_tau = glue("mass_large_tau", mass[:, -1].mean())

# %% [markdown]
# ## Claims 1 and 2 with an exact potential
#
# For the first two claims we need $v^*$ itself. On a few problems we maximise the unbalanced dual
# {eq}`eq-uot-dual` to machine precision (SLSQP, `uotm.exact.maximise_semi_dual`, as in the previous chapter), build
# $\tilde\mu,\tilde\nu$ from
# {eq}`eq-thm-marginals`, and check that they have the same mass, that the *balanced* semi-dual at $v^*$ equals
# `ot.emd2` between them (claim 1), and that the balanced optimal plan between them only sends $x_i$ to points
# $y_j$ that minimise $c(x_i,y_j)-v^*_j$ (claim 2, the discrete form of $T^*(x)\in\arg\min_y[c(x,y)-v^*(y)]$).
# The tolerances are constants of the cell below: $v^*$ is computed, not exact, so the masses must agree to
# $10^{-6}$, the two values of claim 1 to $10^{-6}$ relative, and "minimise" means "within $10^{-6}$ of the minimum",
# with the mass sent elsewhere below $10^{-6}$ of the total (the plan's cost exceeds the balanced semi-dual by
# $\sum_{ij}\pi_{ij}\,[c(x_i,y_j)-v^{*c}(x_i)-v^*_j]$, so such mass can only come from the potential's error).
# Claim 3 is checked on the same plan by `check_reweighting_bound`, as above.
#
# The potential of `uotm.exact.solve_uot` serves claim 3 above, whose check needs values, but not these
# equalities: that solver certifies its potential by the duality gap, which is quadratic in the potential's error,
# so a gap $g$ leaves the potential, and the masses of the measures it predicts, wrong by up to about $\sqrt g$.
# SLSQP on the dual, with its $nm$ constraints, gives $v^*$ itself to near machine precision on problems of this
# size. The $c$-transform and $J$ are the package's (`uotm.exact.c_transform`, `uotm.exact.semi_dual_value`).

# %%
exact_rng = np.random.default_rng(seed + 1)
exact_rows = []
for _ in range(n_exact):
    x, y = random_clouds(exact_rng)
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    cost = tau_exact * squared_distances(x, y)
    v_star = maximise_semi_dual(a, b, cost, kl, kl)
    vc_star = c_transform(v_star, cost)
    mu_t = a * kl.ratio(-vc_star)
    nu_t = b * kl.ratio(-v_star)
    balanced_semi_dual = float(mu_t @ vc_star + nu_t @ v_star)
    plan_t = ot.emd(mu_t / mu_t.sum(), nu_t / nu_t.sum(), cost,
                    numItermax=10_000_000) * mu_t.sum()
    ot_value = float(np.sum(plan_t * cost))
    # the slack is >= 0, and zero on the argmin of c(x_i, .) - v*
    slack = cost - v_star[None, :] - vc_star[:, None]
    # the share of the mass that is not sent to an argmin
    off_argmin = plan_t[slack > 1e-6].sum() / plan_t.sum()
    # claim 3, certified (see above)
    found = check_reweighting_bound(v_star, plan_t, cost, a, b, "kl", "kl")
    assert abs(mu_t.sum() - nu_t.sum()) < 1e-6
    assert abs(balanced_semi_dual - ot_value) < 1e-6 * ot_value  # claim 1
    assert off_argmin < 1e-6  # claim 2
    exact_rows.append(dict(
        mass_diff=abs(mu_t.sum() - nu_t.sum()), off_argmin=off_argmin,
        claim1=abs(balanced_semi_dual - ot_value) / ot_value,
        ratio=found.ratio, D=found.divergence, bound=found.bound,
        gap=found.gap))

# %% tags=["hide-input"]
show_table(["#", "difference of the masses", "claim 1: relative difference", "claim 2: mass off the arg-min",
            "$D$", "$\\tau W_2^2$", "gap"],
           [[k, r["mass_diff"], r["claim1"], r["off_argmin"], r["D"], r["bound"], r["gap"]]
            for k, r in enumerate(exact_rows)],
           {1: ".1e", 2: ".1e", 3: ".1e", 4: ".4f", 5: ".4f", 6: ".1e"})
glue("n_exact", n_exact)
glue("tau_exact", tau_exact)
glue("exact_mass_diff", max(r["mass_diff"] for r in exact_rows))
glue("exact_claim1", max(r["claim1"] for r in exact_rows))
exact_off_argmin = glue("exact_off_argmin", max(r["off_argmin"] for r in exact_rows))

# %% [markdown]
# On the {glue:text}`n_exact` problems (the parameter `n_exact`), at $\tau=$ {glue:text}`tau_exact` (the parameter
# `tau_exact`), the masses of $\tilde\mu$ and $\tilde\nu$ agree to {glue:text}`exact_mass_diff:.1e`, the balanced
# semi-dual at $v^*$ equals `ot.emd2` to {glue:text}`exact_claim1:.1e` relative (claim 1), and the share of mass
# sent off the arg-min is at most {glue:text}`exact_off_argmin:.1e` (claim 2).

# %% [markdown]
# ## The softplus caveat, numerically
#
# The `softplus` divergence of a probability measure can be negative, so {eq}`eq-thm-bound` with `softplus`
# bounds a sum of terms that need not be small:

# %% tags=["hide-input"]
softplus, chi = get_psi("softplus"), get_psi("chi")
mu = np.full(10, 0.1)
show_table(["$\\Psi$", "$D_\\Psi(\\mu/2\\,\\vert\\,\\mu)$", "smallest $\\Psi(t)$, $0\\le t\\le3$"],
           [[f"`{name}`", psi.divergence(mu / 2, mu), np.nanmin(psi.psi(np.linspace(0, 3, 3001)))]
            for name, psi in [("kl", kl), ("chi", chi), ("softplus", softplus)]],
           {1: "+.4f", 2: "+.4f"})

# %%
# -log 2 < 0: the softplus divergence is negative
assert abs(softplus.divergence(mu / 2, mu) + np.log(2)) < 1e-12
assert kl.divergence(mu / 2, mu) > 0 and chi.divergence(mu / 2, mu) > 0

# %% [markdown]
# ## What to try
#
# - Replace KL by $\chi^2$ on one side (the primal then needs the L-BFGS-B solver of chapter 2): the second bound
#   is still $\Psi_1(0)+\Psi_2(0)=2$.
# - Put a few far outliers into $\nu$: $W_2^2(\mu,\nu)$ grows, the bound loosens, and $\tilde\nu$ drops the
#   outliers; the price is paid only in the divergence, never in the transport.
# - In the CIFAR-10 experiment, $\tau=10^{-3}$ and the cost sums over $3\times32\times32=3072$ pixels. The squared
#   norm of a Gaussian noise image alone is 3072 on average, so $W_2^2$ between noise and data is of order $10^3$ and
#   $\tau W_2^2$ of order 1, the same order as the second bound, 2: estimate it on a few thousand images with
#   `ot.emd2` to see how much room the theorem leaves there.
