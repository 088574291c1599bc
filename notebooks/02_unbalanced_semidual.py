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
# # Unbalanced OT and its semi-dual
#
# Balanced optimal transport must move *all* of $\mu$ onto *all* of $\nu$, so a few outliers in the data force
# the map to send mass to them. Unbalanced optimal transport (UOT) {cite:p}`chizat2018kantorovich,liero2018entropy`
# replaces the two marginal constraints by penalties: the plan may create or destroy mass, at a price set by
# two divergences. This page defines the divergences through their *entropy functions*, derives the semi-dual of
# UOT that UOTM {cite:p}`choi2023uotm` trains step by step, and checks on random discrete measures that its
# maximum equals the primal value and that its maximiser gives the optimal marginals. It ends with the limit of a
# vanishing cost, which for measures of unequal masses is not balanced OT.
#
# ## Entropy functions, divergences and conjugates
#
# An **entropy function** is a convex, lower semi-continuous $\Psi:[0,\infty)\to[0,\infty]$ with $\Psi(1)=0$. It
# defines the divergence of a positive measure $\rho$ from $\mu$,
#
# $$
# D_\Psi(\rho\,|\,\mu)=\int\Psi\!\left(\frac{d\rho}{d\mu}\right)d\mu
# $$ (eq-uot-divergence)
#
# (for $\rho\ll\mu$; in general a term for the singular part of $\rho$ is added, which plays no role for the
# discrete measures on this page, whose marginals live on the support of $\mu$). Its **convex conjugate**
# $\Psi^*(s)=\sup_{t\ge0}\,[st-\Psi(t)]$ is convex, and non-decreasing because $t\ge0$; it satisfies
# $\Psi^*(s)\ge s$ (take $t=1$); and where it is differentiable, $(\Psi^*)'(s)$ is the $t$ that attains the
# supremum. Fenchel–Moreau gives back $\Psi(t)=\sup_s[st-\Psi^*(s)]$, so integrating over $\mu$:
#
# $$
# D_\Psi(\rho\,|\,\mu)=\sup_{u}\ \int u\,d\rho-\int\Psi^*(u)\,d\mu ,
# $$ (eq-uot-variational)
#
# the supremum being attained where $\frac{d\rho}{d\mu}=(\Psi^*)'(u)$.
#
# The package `uotm.psi` holds the four choices of the reference code; `get_psi(name)` returns $\Psi^*$ (`.star`),
# its derivative (`.ratio`), $\Psi$ (`.psi`) and $D_\Psi$ on discrete measures (`.divergence`). With `linear` there
# is no divergence but a constraint, the marginal is imposed (balanced OT); `kl` gives the generalised
# Kullback–Leibler divergence, `chi` Pearson's $\chi^2$, and `softplus` a divergence like Jensen–Shannon's.
#
# | name | $\Psi(t)$ | $\Psi^*(s)$ | $(\Psi^*)'(s)$ |
# |---|---|---|---|
# | `linear` | $0$ if $t=1$, else $+\infty$ | $s$ | $1$ |
# | `kl` | $t\log t-t+1$ | $e^s-1$ | $e^s$ |
# | `chi` | $(t-1)^2$ | $y+y^2/4$, where $y=\max(s,-2)$ | $\max(1+s/2,\,0)$ |
# | `softplus` | $t\log t+(1-t)\log(1-t)$ for $t\le1$, else $+\infty$ | $\log(1+e^s)$ | $\sigma(s)=\frac1{1+e^{-s}}$ |
#
# The reference code of UOTM uses $e^s$ for `kl`; the constant $-1$ changes no gradient but it does change the
# value, and only $e^s-1$ makes the semi-dual's value equal the primal's (checked below). The `softplus` entropy
# vanishes at $t=1$ but is smallest at $t=1/2$, where it is $-\log2$: it is not an entropy function in the sense
# above (it takes negative values), so its "divergence" can be negative. It still gives a valid UOT problem, but
# the bound of the next chapter says less about it.

# %% tags=["parameters"]
seed = 0  # random seed of the test problems
n_problems = 8  # random discrete problems per divergence
n_min = 8  # fewest support points of a measure
n_max = 25  # most support points of a measure
mass_min = 0.5  # smallest total mass of mu and nu (drawn in [mass_min, mass_max])
mass_max = 2.0  # largest total mass of mu and nu
rtol_value = 1e-3  # relative tolerance between the primal value and the maximised semi-dual
atol_marginal = 1e-3  # tolerance on the optimal marginals, relative to the total mass
grid_step = 1e-4  # step of the t-grid on which the conjugates are recomputed by brute force
n_limit = 3  # random problems (unequal masses) on which the limit tau -> 0 is checked
limit_taus = [1e-2, 1e-3, 1e-4]  # the values of tau of that check

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import ot
import torch
from scipy.optimize import minimize

from uotm.book import glue, show_table
from uotm.exact import c_transform, maximise_semi_dual, primal_value, solve_uot, squared_distances
from uotm.exact import semi_dual_value as semi_dual
from uotm.losses import SemiDual
from uotm.psi import PSI_NAMES, get_psi

rng = np.random.default_rng(seed)
glue("n_problems", n_problems)
glue("rtol_value", rtol_value)
atol_marginal = glue("atol_marginal", atol_marginal)

# %% [markdown]
# ## The four conjugates
#
# Each $\Psi^*$ of `uotm.psi` is recomputed by brute force, $\max_t[st-\Psi(t)]$ over a fine grid of $t$ (which
# contains $t=1$, the only point where the `linear` entropy is finite), and each derivative is compared with the
# maximiser $t$ on that grid.

# %%
t_grid = np.arange(0.0, 10.0 + grid_step / 2, grid_step)
s_grid = np.linspace(-4.0, 2.0, 121)
conjugate_rows = []
for name in PSI_NAMES:
    psi = get_psi(name)
    with np.errstate(invalid="ignore"):
        objective = s_grid[:, None] * t_grid - psi.psi(t_grid)[None, :]
    brute_star = objective.max(axis=1)
    brute_argmax = t_grid[objective.argmax(axis=1)]
    star = psi.star(s_grid)
    err_star = np.max(np.abs(brute_star - star))
    err_ratio = np.max(np.abs(brute_argmax - psi.ratio(s_grid)))
    assert err_star < 1e-6, (name, err_star)
    assert err_ratio < 1e-3, (name, err_ratio)
    # non-decreasing, and Psi*(s) >= s
    assert np.all(np.diff(star) >= -1e-12) and np.all(star >= s_grid - 1e-12)
    conjugate_rows.append([f"`{name}`", err_star, err_ratio])

# %% tags=["hide-input"]
show_table(["name", "largest error of $\\Psi^*$ (against the brute force)",
            "largest error of $(\\Psi^*)'$ (against the maximising $t$)"], conjugate_rows, {1: ".1e", 2: ".1e"})

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.8))
t_plot = np.linspace(0.0, 3.0, 601)
s_plot = np.linspace(-4.0, 2.0, 601)
for name, color in zip(PSI_NAMES, ["k", "tab:blue", "tab:orange", "tab:green"]):
    psi = get_psi(name)
    values = psi.psi(t_plot)
    if name == "linear":  # finite only at t = 1
        axes[0].plot([1.0], [0.0], "o", color=color, label=f"{name} (finite at t=1 only)")
    else:
        axes[0].plot(t_plot[np.isfinite(values)], values[np.isfinite(values)], color=color, label=name)
    axes[1].plot(s_plot, psi.star(s_plot), color=color, label=name)
axes[0].set_xlabel("density ratio $t = d\\rho/d\\mu$")
axes[0].set_ylabel(r"entropy $\Psi(t)$")
axes[0].set_ylim(-0.8, 3)
axes[0].axhline(0, color="0.8", lw=0.8)
axes[0].legend()
axes[1].set_xlabel("dual variable $s$")
axes[1].set_ylabel(r"conjugate $\Psi^*(s)$")
axes[1].set_ylim(-2, 7)
axes[1].axhline(0, color="0.8", lw=0.8)
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The primal
#
# For positive measures $\mu$ on $\mathcal X$ and $\nu$ on $\mathcal Y$ (any total masses), a cost $c\ge0$ and two
# entropy functions, the UOT problem minimises over all positive measures $\pi$ on $\mathcal X\times\mathcal Y$,
# with marginals $\pi_0$ and $\pi_1$:
#
# $$
# C_{ub}(\mu,\nu)=\inf_{\pi\ge0}\ \int c\,d\pi+D_{\Psi_1}(\pi_0\,|\,\mu)+D_{\Psi_2}(\pi_1\,|\,\nu).
# $$ (eq-uot-primal)
#
# With $\Psi_1=\Psi_2=$ `linear`, the divergences are the constraints $\pi_0=\mu$, $\pi_1=\nu$ and
# {eq}`eq-uot-primal` is Kantorovich's problem {eq}`eq-ot-kantorovich`.
#
# ## The semi-dual, step by step
#
# **Step 1** (each divergence as a supremum). Apply {eq}`eq-uot-variational` to both divergences, writing the
# dual variables as $-u$ and $-v$:
# $D_{\Psi_1}(\pi_0|\mu)=\sup_u\,-\!\int u\,d\pi_0-\int\Psi_1^*(-u)\,d\mu$ and the same with $v$, $\Psi_2$, $\pi_1$,
# $\nu$. Since $\int u\,d\pi_0=\int u(x)\,d\pi(x,y)$ and $\int v\,d\pi_1=\int v(y)\,d\pi(x,y)$,
#
# $$
# \begin{aligned}
# C_{ub}(\mu,\nu)=\inf_{\pi\ge0}\ \sup_{u,v}\ \Big[&\int\big[c(x,y)-u(x)-v(y)\big]\,d\pi(x,y)\\
# &-\int\Psi_1^*(-u)\,d\mu-\int\Psi_2^*(-v)\,d\nu\Big].
# \end{aligned}
# $$
#
# **Step 2** (exchange $\inf$ and $\sup$). The expression is linear in $\pi$ and concave in $(u,v)$; under mild
# conditions (a continuous cost on compact spaces, or any finite problem, as here) the exchange is allowed
# {cite:p}`liero2018entropy,chizat2018kantorovich`. For fixed $(u,v)$,
# $\inf_{\pi\ge0}\int(c-u\oplus v)\,d\pi$ is $0$ if $u(x)+v(y)\le c(x,y)$ everywhere and $-\infty$ otherwise
# (put a large mass where the integrand is negative). This gives the **dual**:
#
# $$
# C_{ub}(\mu,\nu)=\sup_{u(x)+v(y)\le c(x,y)}\ -\int\Psi_1^*(-u)\,d\mu-\int\Psi_2^*(-v)\,d\nu .
# $$ (eq-uot-dual)
#
# **Step 3** (the $c$-transform). $\Psi_1^*$ is non-decreasing, so $-\Psi_1^*(-u)$ is non-decreasing in $u$: for a
# fixed $v$ the best admissible $u$ is the largest one, $u=v^c$ of {eq}`eq-ot-ctransform`. This is the
# **semi-dual** of UOTM:
#
# $$
# \begin{aligned}
# C_{ub}(\mu,\nu)&=\sup_{v}\ J(v),\\
# J(v)&=-\int\Psi_1^*\big(-v^c(x)\big)\,d\mu(x)-\int\Psi_2^*\big(-v(y)\big)\,d\nu(y).
# \end{aligned}
# $$ (eq-uot-semidual)
#
# With $\Psi^*(s)=s$ it is the balanced semi-dual {eq}`eq-ot-semidual`.
#
# **Step 4** (optimal marginals). At an optimal $(\pi^*,v^*)$ the suprema of step 1 are attained, so by
# {eq}`eq-uot-variational` the marginals of the optimal plan are the data reweighted by the dual variables:
#
# $$
# \tilde\mu:=\pi_0^*=(\Psi_1^*)'\big(-v^{*c}\big)\,\mu,\qquad\tilde\nu:=\pi_1^*=(\Psi_2^*)'\big(-v^*\big)\,\nu .
# $$ (eq-uot-marginals)
#
# For KL the weights are $e^{-v^{*c}}$ and $e^{-v^*}$: mass is destroyed where the potential is high and created
# where it is low. And the exchange of step 2 is tight only if $\pi^*$ lives where $u+v=c$, that is, where
# $y\in\arg\min[c(x,\cdot)-v^*]$: $\pi^*$ is a balanced optimal plan between its own marginals (chapter 3).
#
# **The algorithm.** Write the infimum that defines $v^c(x)$ with a map, $y=T(x)$. Because $\Psi_1^*$ is
# non-decreasing, $\Psi_1^*(-v^c(x))=\sup_y\Psi_1^*\big(v(y)-c(x,y)\big)$, and {eq}`eq-uot-semidual` becomes a game
# between a potential and a map:
#
# $$
# \begin{aligned}
# C_{ub}(\mu,\nu)&=-\inf_v\ \sup_T\ L_v(v,T),\\
# L_v(v,T)&=\int\Psi_1^*\big(v(T(x))-c(x,T(x))\big)\,d\mu(x)+\int\Psi_2^*\big(-v(y)\big)\,d\nu(y).
# \end{aligned}
# $$
#
# UOTM minimises $L_v$ over the potential (`uotm.losses.SemiDual.potential_loss`). For the map it minimises
# $L_T=\int[c(x,T(x))-v(T(x))]\,d\mu(x)$ (`SemiDual.map_loss`) instead of maximising $L_v$: as $\Psi_1^*$ is
# non-decreasing, both are optimised by the same $T$, the pointwise minimiser of $c(x,\cdot)-v$, and $L_T$'s
# gradient is not scaled by $(\Psi_1^*)'$. A stochastic map $T(x,z)$ lets the generator split a point's mass as a
# plan does.
#
# ## Checking the semi-dual on discrete measures
#
# For $\mu=\sum_ia_i\delta_{x_i}$, $\nu=\sum_jb_j\delta_{y_j}$ and $C_{ij}=\lVert x_i-y_j\rVert^2$, we compute both
# sides of {eq}`eq-uot-semidual` independently.
#
# - **Primal, KL.** POT's `ot.unbalanced.mm_unbalanced(a, b, C, reg_m=1, div="kl")` {cite:p}`chapel2021unbalanced`
#   minimises exactly $\langle\pi,C\rangle+\mathrm{KL}(\pi\mathbf 1|a)+\mathrm{KL}(\pi^\top\mathbf 1|b)$ with the
#   generalised KL of the table, without the entropic term that the scaling algorithms of
#   {cite:t}`chizat2018scaling` add; we evaluate the objective at its plan ourselves.
# - **Primal, $\chi^2$.** POT's `div="l2"` penalises $\lVert\pi\mathbf 1-a\rVert^2$, which is not
#   $D_{\chi^2}(\pi_0|a)=\sum_ia_i(\pi_{0,i}/a_i-1)^2$, so we minimise the smooth convex objective
#   $\langle\pi,C\rangle+\sum_ia_i(\pi_{0,i}/a_i-1)^2+\sum_jb_j(\pi_{1,j}/b_j-1)^2$ over $\pi\ge0$ with L-BFGS-B.
# - **Semi-dual.** $J$ is concave but not smooth (a minimum over $j$). `uotm.exact.maximise_semi_dual` maximises
#   the dual {eq}`eq-uot-dual` instead, which is smooth in $(u,v)$ with $nm$ linear constraints (SLSQP), and returns
#   $v$, at which we evaluate $J(v)$: by step 3, $J(v)\ge$ the dual value at $(u,v)$, and by weak duality
#   $J(v)\le C_{ub}$, so $J(v)$ is a certified lower bound and the primal an upper bound; their gap bounds both
#   errors.
#
# $v^c$, $J$ and the primal objective are computed by `uotm.exact.c_transform`, `uotm.exact.semi_dual_value` and
# `uotm.exact.primal_value`, which implement {eq}`eq-ot-ctransform`, {eq}`eq-uot-semidual` and {eq}`eq-uot-primal` as
# written. The package's own maximiser, `uotm.exact.solve_uot`, is not used for this comparison: it builds its plan
# from its own potential (the marginals {eq}`eq-uot-marginals`, coupled by balanced OT), so its primal and its dual
# would not be independent computations. It serves below, for the limit $\tau\to0$.

# %% tags=["hide-input"]
def primal_kl(a, b, cost):
    """Exact KL-penalised UOT plan (no entropy) by POT's majorisation-minimisation solver."""
    return ot.unbalanced.mm_unbalanced(a, b, cost, reg_m=1.0, div="kl", numItermax=20_000, stopThr=1e-15)


def primal_chi(a, b, cost):
    """chi^2-penalised UOT plan: minimise the smooth convex primal over pi >= 0 with L-BFGS-B."""
    n, m = cost.shape

    def objective(flat):
        plan = flat.reshape(n, m)
        r0 = plan.sum(1) / a - 1.0
        r1 = plan.sum(0) / b - 1.0
        value = np.sum(plan * cost) + a @ r0**2 + b @ r1**2
        grad = cost + 2.0 * r0[:, None] + 2.0 * r1[None, :]
        return value, grad.ravel()

    res = minimize(objective, np.outer(a, b).ravel() / max(a.sum(), b.sum()), jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * (n * m),
                   options=dict(maxiter=50_000, maxfun=100_000, ftol=1e-15, gtol=1e-11, maxcor=30))
    return res.x.reshape(n, m)


def random_problem(rng):
    n, m = rng.integers(n_min, n_max + 1, size=2)
    x = rng.normal(size=(n, 2))
    y = 0.6 * rng.normal(size=(m, 2)) + rng.normal(size=2)
    a = rng.uniform(0.2, 1.0, n)
    b = rng.uniform(0.2, 1.0, m)
    a *= rng.uniform(mass_min, mass_max) / a.sum()
    b *= rng.uniform(mass_min, mass_max) / b.sum()
    return x, y, a, b, squared_distances(x, y)


solvers = {"kl": primal_kl, "chi": primal_chi}
results = []
for name, solve_primal in solvers.items():
    psi = get_psi(name)
    for k in range(n_problems):
        x, y, a, b, C = random_problem(rng)
        plan = solve_primal(a, b, C)
        v = maximise_semi_dual(a, b, C, psi, psi)
        primal = primal_value(plan, C, a, b, psi, psi)
        dual = semi_dual(v, C, a, b, psi, psi)
        # optimal marginals predicted by the potential, equation (eq-uot-marginals)
        mu_tilde = a * psi.ratio(-c_transform(v, C))
        nu_tilde = b * psi.ratio(-v)
        scale = a.sum() + b.sum()
        results.append(dict(
            psi=name, n=len(a), m=len(b), primal=primal, semi_dual=dual,
            rel_gap=(primal - dual) / abs(primal),
            err_mu=np.abs(mu_tilde - plan.sum(1)).max() / scale,
            err_nu=np.abs(nu_tilde - plan.sum(0)).max() / scale,
            mass_in=(a.sum(), b.sum()), mass_plan=plan.sum(),
        ))

show_table(["$\\Psi$", "$m(\\mu)$", "$m(\\nu)$", "$m(\\pi)$", "primal", "semi-dual", "relative gap",
            "error of $\\tilde\\mu,\\tilde\\nu$"],
           [[f"`{r['psi']}`", *r["mass_in"], r["mass_plan"], r["primal"], r["semi_dual"], r["rel_gap"],
             max(r["err_mu"], r["err_nu"])] for r in results],
           {1: ".3f", 2: ".3f", 3: ".3f", 4: ".6f", 5: ".6f", 6: ".1e", 7: ".1e"})

# %%
for r in results:
    # weak duality holds up to the primal solver's rounding (1e-9),
    # and the gap must be below rtol_value
    assert -1e-9 <= r["rel_gap"] < rtol_value, r
    assert r["err_mu"] < atol_marginal and r["err_nu"] < atol_marginal, r

# %% tags=["hide-input"]
glue("worst_rel_gap", max(abs(r["rel_gap"]) for r in results))
glue("worst_marginal_err", max(max(r["err_mu"], r["err_nu"]) for r in results))
n_results = glue("n_results", len(results))

# %% [markdown]
# On each of the {glue:text}`n_results` problems ({glue:text}`n_problems` per divergence, the parameter
# `n_problems`) the maximised semi-dual equals the primal value: the largest relative gap is
# {glue:text}`worst_rel_gap:.1e`, against the tolerance {glue:text}`rtol_value:.0e` that the cell asserts (the
# parameter `rtol_value`). And the marginals of the primal plan are the reweighted measures
# {eq}`eq-uot-marginals`, to {glue:text}`worst_marginal_err:.1e` of the total mass (asserted below
# {glue:text}`atol_marginal:.0e`, the parameter `atol_marginal`), although the two sides were computed by unrelated
# solvers. The total masses of $\mu$ and $\nu$ differ, and the plan's mass ($m(\pi)$
# above) differs from both: rather than moving every unit of mass, the plan pays the divergences to change the
# marginals, shrinking or growing each point's mass (the ratios in the figure below).
#
# ## The conjugate's constant, and the training loss
#
# Two consequences for code. First, the reference code's $\Psi^*(s)=e^s$ shifts $J$ by the total masses
# $\mu(\mathcal X)+\nu(\mathcal Y)$: same maximiser, wrong value. Second, with uniform weights and the map that
# attains the $c$-transform, $T(x_i)=y_{j(i)}$ with $j(i)\in\arg\min_j[C_{ij}-v_j]$, UOTM's potential loss
# `uotm.losses.SemiDual("kl", "kl", tau=1).potential_loss` is exactly $-J(v)$.

# %%
psi = get_psi("kl")
x, y, a, b, C = random_problem(rng)
v = maximise_semi_dual(a, b, C, psi, psi)
j_exp = float(-a @ np.exp(-c_transform(v, C)) - b @ np.exp(-v))  # with e^s
shift = semi_dual(v, C, a, b, psi, psi) - j_exp
print(f"J with e^s-1 minus J with e^s = {shift:.12f}; "
      f"m(mu) + m(nu) = {a.sum() + b.sum():.12f}")
assert abs(shift - (a.sum() + b.sum())) < 1e-12

# uniform weights: SemiDual.potential_loss is a mean over samples
n, m = C.shape
a_u, b_u = np.full(n, 1 / n), np.full(m, 1 / m)
v = maximise_semi_dual(a_u, b_u, C, psi, psi)
j_star = np.argmin(C - v[None, :], axis=1)  # the map giving the c-transform
loss = SemiDual(psi1="kl", psi2="kl", tau=1.0).potential_loss(
    v_real=torch.tensor(v), v_fake=torch.tensor(v[j_star]),
    x=torch.tensor(x), t_x=torch.tensor(y[j_star]),
).item()
J = semi_dual(v, C, a_u, b_u, psi, psi)
print(f"potential_loss = {loss:.10f}, -J(v) = {-J:.10f}")
assert abs(loss + J) < 1e-10

# %% [markdown]
# ## The optimal plans
#
# One problem for each divergence (KL in the top row, $\chi^2$ in the bottom one): the optimal plan (left; the
# title gives its mass and those of $\mu$ and $\nu$) and the density ratios of its marginals against the ones
# predicted by the potential (right; circles for the source points, squares for the target points, every point on
# the diagonal). Source points far from the data send
# little mass (small ratio $d\tilde\mu/d\mu$); under $\chi^2$ a ratio can be exactly zero (where $-v^c<-2$), under
# KL it is always positive.

# %% tags=["hide-input"]
fig, axes = plt.subplots(2, 2, figsize=(9, 8), gridspec_kw=dict(width_ratios=[1.25, 1]))
for row, (name, solve_primal) in enumerate(solvers.items()):
    psi = get_psi(name)
    x, y, a, b, C = random_problem(np.random.default_rng(seed + 10))
    plan = solve_primal(a, b, C)
    v = maximise_semi_dual(a, b, C, psi, psi)
    ax = axes[row, 0]
    for i, j in zip(*np.nonzero(plan > 1e-4 * plan.max())):
        ax.plot([x[i, 0], y[j, 0]], [x[i, 1], y[j, 1]], color="0.5", lw=25 * plan[i, j] / plan.max() ** 0.5,
                alpha=0.7, zorder=1)
    ratio0 = plan.sum(1) / a
    sc = ax.scatter(x[:, 0], x[:, 1], s=1200 * a, c=ratio0, cmap="viridis", vmin=0, vmax=max(1.5, ratio0.max()),
                    zorder=2)
    ax.scatter(y[:, 0], y[:, 1], s=1200 * b, c="tab:orange", marker="s", zorder=2)
    fig.colorbar(sc, ax=ax, label=r"source: $d\tilde\mu/d\mu$")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(f"{name}: plan of mass {plan.sum():.2f} ($\\mu$: {a.sum():.2f}, $\\nu$: {b.sum():.2f})")
    ax.set_aspect("equal")

    ax = axes[row, 1]
    pred0 = psi.ratio(-c_transform(v, C))
    pred1 = psi.ratio(-v)
    ax.plot(pred0, plan.sum(1) / a, "o", label="source")
    ax.plot(pred1, plan.sum(0) / b, "s", mfc="none", label="target")
    lim = [0, max(pred0.max(), pred1.max()) * 1.05]
    ax.plot(lim, lim, "k--", lw=1)
    ax.set_xlabel("ratio predicted by $v$")
    ax.set_ylabel("ratio of the plan's marginal")
    ax.set_title(f"{name}: marginals of the plan")
    ax.legend(loc="upper left")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The limit $\tau\to0$
#
# Scale the cost, $c=\tau\lVert x-y\rVert^2$. As $\tau\to0$ moving mass becomes free, and what is left of
# {eq}`eq-uot-primal` is the choice of the two marginals: any two measures of the same mass can be coupled, so
#
# $$
# C_{ub}(\mu,\nu)\ \xrightarrow[\tau\to0]{}\ \min_{\rho(\mathcal X)=\sigma(\mathcal Y)}\ D_{\Psi_1}(\rho\,|\,\mu)
# +D_{\Psi_2}(\sigma\,|\,\nu).
# $$
#
# If $\mu$ and $\nu$ have the same mass, $\rho=\mu$, $\sigma=\nu$ attains 0: the density ratios tend to 1 and UOT
# tends to balanced OT (chapter 3 bounds how fast, for probability measures). On this page the masses
# $A=\mu(\mathcal X)$ and $B=\nu(\mathcal Y)$ differ, and then the ratios do **not** tend to 1. For KL, fix the common
# mass $m$ of $\rho$ and $\sigma$. Writing $\rho=m\hat\rho\,$ and $\mu=A\hat\mu\,$ with $\hat\rho,\hat\mu\,$ probability
# measures, $D_{\mathrm{KL}}(\rho|\mu)=m\,\mathrm{KL}(\hat\rho\|\hat\mu)+m\log\frac mA-m+A$, so the best $\rho$ is
# $\frac mA\mu$ and the best $\sigma$ is $\frac mB\nu$, and it remains to minimise over $m$
#
# $$
# m\log\frac mA-m+A+m\log\frac mB-m+B,
# $$
#
# whose derivative $\log\frac{m^2}{AB}$ vanishes at $m=\sqrt{AB}$.
#
# So as $\tau\to0$ the KL/KL plan has the geometric mean $\sqrt{AB}$ as its mass, the density ratios tend to the
# constants $d\tilde\mu/d\mu\to\sqrt{B/A}$ and $d\tilde\nu/d\nu\to\sqrt{A/B}$ (the heavier side loses mass, the
# lighter one gains it), and $C_{ub}\to(\sqrt A-\sqrt B)^2$. In the semi-dual, $v^*$ tends to the constant
# $\frac12\log\frac BA$, whose $c$-transform at $\tau=0$ is $-v^*$, and {eq}`eq-uot-marginals` gives the same ratios.
#
# **How fast.** Let $M=\max_{ij}\lVert x_i-y_j\rVert^2$, so the cost lies in $[0,\tau M]$, and let $V=\max_jv^*_j$.
# Under KL every target point receives mass ($e^{-v^*_j}>0$), and only from a source $x_i$ for which $j$ attains
# $\min_k[\tau C_{ik}-v^*_k]$ (step 4); so $v^*_j\ge v^*_k-\tau C_{ik}\ge v^*_k-\tau M$ for all $k$, that is
# $v^*_j\in[V-\tau M,V]$, and then $v^{*c}_i\in[-V,\tau M-V]$. The log-ratios $-v^{*c}_i$ of the source lie in
# $[V-\tau M,V]$ and those of the target, $-v^*_j$, in $[-V,-V+\tau M]$. The two marginals have the same mass:
# $\sum_ia_ie^{-v^{*c}_i}=\sum_jb_je^{-v^*_j}$, which forces $Ae^{V-\tau M}\le Be^{-V+\tau M}$ and $Ae^V\ge Be^{-V}$,
# that is $\frac12\log\frac BA\le V\le\frac12\log\frac BA+\tau M$. Hence every log density ratio is within $\tau M$
# of its limit:
#
# $$
# \begin{aligned}
# \Big|\log\frac{d\tilde\mu}{d\mu}(x_i)-\tfrac12\log\tfrac BA\Big|&\le\tau M,\\
# \Big|\log\frac{d\tilde\nu}{d\nu}(y_j)-\tfrac12\log\tfrac AB\Big|&\le\tau M,
# \end{aligned}
# $$ (eq-uot-limit)
#
# and the plan's mass is within a factor $e^{\pm\tau M}$ of $\sqrt{AB}$. The cell below solves random problems with
# unequal masses at small $\tau$ (the parameters `n_limit` and `limit_taus`) with `uotm.exact.solve_uot`, and
# asserts {eq}`eq-uot-limit` with the tolerance $\tau M$ that it gives, for the ratios of the solver's plan.

# %% tags=["hide-input"]
limit_rows = []
limit_rng = np.random.default_rng(seed + 20)
for problem in range(n_limit):
    x, y, a, b, C = random_problem(limit_rng)
    A, B = a.sum(), b.sum()
    for tau in limit_taus:
        sol = solve_uot(a, b, tau * C, "kl", "kl")
        log_r0, log_r1 = np.log(sol.source_marginal / a), np.log(sol.target_marginal / b)
        limit_rows.append(dict(
            problem=problem, A=A, B=B, tau=tau, mass=sol.plan.sum(), gap=sol.gap, tol=tau * C.max(),
            dev_mu=np.abs(log_r0 - 0.5 * np.log(B / A)).max(), dev_nu=np.abs(log_r1 - 0.5 * np.log(A / B)).max(),
            dev_mass=abs(np.log(sol.plan.sum() / np.sqrt(A * B))),
            from_one=max(np.abs(log_r0).max(), np.abs(log_r1).max()),  # distance of the log-ratios from log 1
        ))

show_table(["$A$", "$B$", "$\\tau$", "$\\sqrt{AB}$", "$m(\\pi)$", "deviation", "$\\tau M$", "$\\lvert\\log r\\rvert$"],
           [[r["A"], r["B"], r["tau"], np.sqrt(r["A"] * r["B"]), r["mass"], max(r["dev_mu"], r["dev_nu"]), r["tol"],
             r["from_one"]] for r in limit_rows],
           {0: ".3f", 1: ".3f", 2: ".0g", 3: ".5f", 4: ".5f", 5: ".1e", 6: ".1e", 7: ".3f"})

# %%
for r in limit_rows:
    # (eq-uot-limit): every log density ratio within tau M = tau max C of
    # +-log(B/A)/2, and the log of the mass within tau M of log sqrt(AB)
    assert max(r["dev_mu"], r["dev_nu"], r["dev_mass"]) <= r["tol"], r

# %% tags=["hide-input"]
worst = max(limit_rows, key=lambda r: max(r["dev_mu"], r["dev_nu"]) / r["tol"])
smallest_tau = [r for r in limit_rows if r["tau"] == min(limit_taus)]
glue("limit_worst_share", max(worst["dev_mu"], worst["dev_nu"]) / worst["tol"])
glue("limit_tau_min", min(limit_taus))
glue("limit_tau_max", max(limit_taus))
glue("limit_from_one", min(r["from_one"] for r in smallest_tau))
glue("limit_worst_gap", max(r["gap"] for r in limit_rows))
limit_n = glue("limit_n", n_limit)

# %% [markdown]
# On every problem ({glue:text}`limit_n` here, the parameter `n_limit`) and every $\tau$ from
# {glue:text}`limit_tau_max:.0e` down to {glue:text}`limit_tau_min:.0e`, the deviations of the log-ratios from
# $\pm\frac12\log\frac BA$ shrink in proportion to $\tau$ and use at most {glue:text}`limit_worst_share:.0%` of
# the allowance $\tau M$ of {eq}`eq-uot-limit` (columns *deviation*, the larger of the two deviations, and
# *$\tau M$*; the solver's certified duality gap is at most {glue:text}`limit_worst_gap:.0e`). The ratios
# themselves stay away from 1: at $\tau=$ {glue:text}`limit_tau_min:.0e` the largest $\lvert\log$ ratio$\rvert$
# is still at least {glue:text}`limit_from_one:.3f` on every problem (column $\lvert\log r\rvert$), which is
# $\frac12\lvert\log\frac BA\rvert$ up to $\tau M$.
#
# ## What to try
#
# - Scale the cost up, $c=\tau\lVert x-y\rVert^2$ with a large $\tau$: the plan moves less and less mass, and
#   its mass falls towards 0. For probability measures ($A=B=1$), chapter 3 bounds how far the marginals are from
#   $\mu$ and $\nu$ at every $\tau$.
# - Mix the divergences ($\Psi_1=$ `kl`, $\Psi_2=$ `chi`): only the semi-dual needs changing, not the primal
#   solver (which would need a new objective).
# - Move one target point far away (an outlier): its ratio $d\tilde\nu/d\nu$ falls towards 0 under both
#   divergences, which is the robustness that UOTM exploits.
