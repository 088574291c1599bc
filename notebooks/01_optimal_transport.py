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
# # Optimal transport in one page
#
# This page collects the four facts about optimal transport (OT) that the rest of the book uses: the problems of
# Monge and Kantorovich, their duality, the $c$-transform, and the *semi-dual* that OTM {cite:p}`rout2022otm` and
# UOTM {cite:p}`choi2023uotm` train. Each is then checked on random discrete measures, where every quantity can
# be computed exactly. Longer treatments: {cite:t}`santambrogio2015optimal` (chapters 1 and 6),
# {cite:t}`villani2009optimal` (chapter 5) and {cite:t}`peyre2019computational` (chapters 2 and 3).
#
# ## Monge and Kantorovich
#
# Let $\mu$ be a probability measure on $\mathcal X$ (the source, Gaussian noise for a generative model), $\nu$ one
# on $\mathcal Y$ (the data), and $c(x,y)\ge0$ the cost of moving a unit of mass from $x$ to $y$. **Monge** asks for
# a map $T$ that pushes $\mu$ onto $\nu$ at least cost, $\inf\{\int c(x,T(x))\,d\mu(x) : T_\#\mu=\nu\}$. A map cannot
# split a point's mass, so the problem can have no solution (a Dirac mass cannot be sent onto two points).
# **Kantorovich** relaxes the map to a *plan* $\pi$, a measure on $\mathcal X\times\mathcal Y$ whose marginals are
# $\pi_0=\mu$ and $\pi_1=\nu$ (the set $\Pi(\mu,\nu)$), and $\pi(x,y)$ is the mass sent from $x$ to $y$:
#
# $$
# \mathrm{OT}_c(\mu,\nu)=\min_{\pi\in\Pi(\mu,\nu)}\int c(x,y)\,d\pi(x,y).
# $$ (eq-ot-kantorovich)
#
# For the squared distance $c(x,y)=\lVert x-y\rVert^2$, $W_2^2(\mu,\nu)=\mathrm{OT}_c(\mu,\nu)$ is the squared
# 2-Wasserstein distance; if $\mu$ has a density, Brenier's theorem says the optimal plan is carried by a map, so
# Monge's and Kantorovich's problems agree.
#
# ## Duality
#
# Kantorovich's problem is a linear programme; its dual maximises over two *potentials* $u$ on $\mathcal X$ and $v$
# on $\mathcal Y$ that never price a move above its cost:
#
# $$
# \mathrm{OT}_c(\mu,\nu)=\sup_{u(x)+v(y)\le c(x,y)}\ \int u\,d\mu+\int v\,d\nu .
# $$ (eq-ot-dual)
#
# One inequality is one line: for any admissible $(u,v)$ and any $\pi\in\Pi(\mu,\nu)$,
# $\int u\,d\mu+\int v\,d\nu=\int (u(x)+v(y))\,d\pi\le\int c\,d\pi$. Equality (strong duality) holds for a lower
# semi-continuous cost bounded below {cite:p}`villani2009optimal`; for discrete measures it is linear-programming
# duality. At the optimum, $u(x)+v(y)=c(x,y)$ wherever the optimal plan puts mass (complementary slackness).
#
# ## The $c$-transform and the semi-dual
#
# For a fixed $v$, the constraint of {eq}`eq-ot-dual` says $u(x)\le c(x,y)-v(y)$ for every $y$, and the objective
# increases with $u$, so the best $u$ is the **$c$-transform** of $v$:
#
# $$
# v^c(x)=\inf_{y\in\mathcal Y}\ \big[c(x,y)-v(y)\big].
# $$ (eq-ot-ctransform)
#
# Substituting it leaves a problem over one potential, the **semi-dual**:
#
# $$
# \mathrm{OT}_c(\mu,\nu)=\sup_{v}\ J(v),\qquad J(v)=\int v^c\,d\mu+\int v\,d\nu .
# $$ (eq-ot-semidual)
#
# $J$ is concave (a $c$-transform is an infimum of functions affine in $v$) but not smooth. Two readings of
# {eq}`eq-ot-semidual` drive the generative models of this book. First, complementary slackness says that the
# optimal plan only moves $x$ to points $y$ that attain the infimum in {eq}`eq-ot-ctransform`: the transport map is
# $T(x)\in\arg\min_y[c(x,y)-v(y)]$. Second, writing the infimum with a map gives the min–max problem
#
# $$
# \sup_v\ \inf_T\ \int\big[c(x,T(x))-v(T(x))\big]\,d\mu(x)+\int v\,d\nu ,
# $$
#
# in which a network $T$ (the generator) computes the $c$-transform and a network $v$ (the discriminator) is the
# potential. This is OTM {cite:p}`rout2022otm`; UOTM replaces the two linear terms by convex functions of the
# potentials (next chapter).
#
# ## Discrete measures
#
# For $\mu=\sum_i a_i\delta_{x_i}$ and $\nu=\sum_j b_j\delta_{y_j}$ with cost matrix $C_{ij}=c(x_i,y_j)$, the plan is
# a matrix $P\ge0$ with $P\mathbf 1=a$, $P^\top\mathbf 1=b$, the potentials are vectors, and the semi-dual reads
# $J(v)=\sum_i a_i\min_j(C_{ij}-v_j)+\sum_j b_jv_j$. The checks below compute, on many random problems:
#
# 1. the primal value {eq}`eq-ot-kantorovich` with POT's network simplex `ot.emd2` {cite:p}`flamary2021pot`;
# 2. the dual {eq}`eq-ot-dual`, solved as a linear programme with SciPy's HiGHS, and the semi-dual $J(v)$ at its
#    $v$; and $J$ at the potential $v$ that `ot.emd` returns;
# 3. weak duality for random potentials, $J(v)\le\mathrm{OT}_c$, and the improvement $u\le v^c$;
# 4. complementary slackness: $P_{ij}>0\Rightarrow j\in\arg\min_k(C_{ik}-v_k)$.

# %% tags=["parameters"]
seed = 0  # random seed of the test problems
n_problems = 40  # number of random discrete problems checked
n_min = 10  # fewest support points of a measure
n_max = 30  # most support points of a measure
dim = 2  # dimension of the points
n_random_potentials = 200  # random potentials per problem for the weak-duality check
rtol = 1e-6  # relative tolerance between the primal value and the semi-dual

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import ot
from scipy.optimize import linprog

from uotm.book import glue, show_table
from uotm.exact import squared_distances

rng = np.random.default_rng(seed)
glue("n_problems", n_problems)
glue("n_random_potentials", n_random_potentials)
rtol = glue("rtol", rtol)


# %% [markdown]
# The $c$-transform of a potential $v$ on the support of $\nu$, evaluated at the support of $\mu$, is a row-wise
# minimum; the semi-dual is then a weighted sum.

# %%
def c_transform(v, cost):
    """v^c(x_i) = min_j [C_ij - v_j], for a cost matrix C of shape (n, m)
    and a potential v of shape (m,)."""
    return np.min(cost - v[None, :], axis=1)


def semi_dual(v, cost, a, b):
    """J(v) = sum_i a_i v^c(x_i) + sum_j b_j v_j."""
    return float(a @ c_transform(v, cost) + b @ v)


# %% tags=["hide-input"]
def dual_lp(cost, a, b):
    """Solve max a.u + b.v subject to u_i + v_j <= C_ij exactly (HiGHS); returns (u, v, value)."""
    n, m = cost.shape
    rows = np.arange(n * m)
    i, j = np.divmod(rows, m)
    constraints = np.zeros((n * m, n + m))
    constraints[rows, i] = 1.0
    constraints[rows, n + j] = 1.0
    res = linprog(-np.concatenate([a, b]), A_ub=constraints, b_ub=cost.ravel(),
                  bounds=[(None, None)] * (n + m), method="highs")
    assert res.status == 0, res.message
    return res.x[:n], res.x[n:], -res.fun


def random_problem(rng):
    """Two random clouds with random positive weights summing to one, and their squared-distance cost."""
    n, m = rng.integers(n_min, n_max + 1, size=2)
    x = rng.normal(size=(n, dim))
    y = 0.7 * rng.normal(size=(m, dim)) + rng.normal(size=dim)
    a = rng.uniform(0.2, 1.0, n)
    b = rng.uniform(0.2, 1.0, m)
    return x, y, a / a.sum(), b / b.sum(), squared_distances(x, y)


# %% [markdown]
# ## The checks

# %%
errors = {"lp dual": [], "semi-dual (LP v)": [], "semi-dual (POT v)": []}
worst_weak_duality = -np.inf
for _ in range(n_problems):
    x, y, a, b, C = random_problem(rng)
    primal = ot.emd2(a, b, C)
    plan, log = ot.emd(a, b, C, log=True)

    u_lp, v_lp, dual_value = dual_lp(C, a, b)
    v_pot = log["v"]
    errors["lp dual"].append(abs(dual_value - primal) / primal)
    errors["semi-dual (LP v)"].append(
        abs(semi_dual(v_lp, C, a, b) - primal) / primal)
    errors["semi-dual (POT v)"].append(
        abs(semi_dual(v_pot, C, a, b) - primal) / primal)

    # u is admissible, so it lies below the c-transform of v:
    # replacing u by v^c never lowers the dual.
    assert np.all(u_lp <= c_transform(v_lp, C) + 1e-9)
    # Weak duality: every potential gives a lower bound.
    random_vs = rng.normal(scale=C.std(), size=(n_random_potentials, len(b)))
    for v in random_vs:
        worst_weak_duality = max(worst_weak_duality,
                                 semi_dual(v, C, a, b) - primal)
    # Complementary slackness: the plan only moves x_i to minimisers of
    # C_ij - v_j (the slack is >= 0, and zero on the argmin).
    slack = C - v_pot[None, :] - c_transform(v_pot, C)[:, None]
    assert np.all(slack[plan > 1e-12] < 1e-9), slack[plan > 1e-12].max()

for name, errs in errors.items():
    assert max(errs) < rtol, (name, max(errs))
assert worst_weak_duality <= 1e-12  # weak duality, up to rounding

# %% tags=["hide-input"]
show_table(["check", f"largest over the {n_problems} problems", "asserted"],
           [["dual (linear programme) vs ot.emd2, relative gap", max(errors["lp dual"]), f"< {rtol:.0e}"],
            ["semi-dual at the LP's $v$ vs ot.emd2, relative gap", max(errors["semi-dual (LP v)"]), f"< {rtol:.0e}"],
            ["semi-dual at POT's $v$ vs ot.emd2, relative gap", max(errors["semi-dual (POT v)"]), f"< {rtol:.0e}"],
            ["$J(v)-\\mathrm{OT}_c$ at random potentials", f"{worst_weak_duality:.3f}", "≤ 0"]],
           {1: ".1e"})
glue("gap_lp_dual", max(errors["lp dual"]))
glue("gap_semi_dual_lp", max(errors["semi-dual (LP v)"]))
glue("gap_semi_dual_pot", max(errors["semi-dual (POT v)"]))
worst_weak_duality = glue("worst_weak_duality", worst_weak_duality)

# %% [markdown]
# On each of the {glue:text}`n_problems` problems the three values agree with the network simplex to rounding
# error: the largest relative gaps to `ot.emd2` are {glue:text}`gap_lp_dual:.1e` for the linear programme's dual,
# {glue:text}`gap_semi_dual_lp:.1e` for the semi-dual at its $v$ and {glue:text}`gap_semi_dual_pot:.1e` for the
# semi-dual at POT's $v$, against the tolerance {glue:text}`rtol:.0e` that the cell asserts (the parameter `rtol`).
# The potential $v$ alone (through its $c$-transform) carries the whole value of the problem, which is what lets a
# generative model learn one potential and one map instead of two potentials. The
# {glue:text}`n_random_potentials` random potentials per problem (the parameter `n_random_potentials`) all give a
# semi-dual below the primal value, as weak duality requires: the largest $J(v)-\mathrm{OT}_c$ among them is
# {glue:text}`worst_weak_duality:.3f`.
#
# ## A plan, and the shape of the semi-dual
#
# On one problem, the optimal plan (first figure; a segment per pair $(x_i,y_j)$ with $P_{ij}>0$, its width
# proportional to the mass) and the semi-dual along one coordinate $v_j$ with the others held at the optimum (second
# figure). $J$ is concave and piecewise linear, its kinks are where the minimiser of $C_{ij}-v_j$ changes for some
# $x_i$, and it is maximal at the optimal $v_j$: moving $v_j$ up attracts more mass to $y_j$ than $b_j$, moving it
# down less.

# %%
x, y, a, b, C = random_problem(np.random.default_rng(seed + 1))
plan, log = ot.emd(a, b, C, log=True)
v_opt = log["v"]
primal = ot.emd2(a, b, C)

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6.5, 6.8))
for i, j in zip(*np.nonzero(plan > 1e-12)):
    ax.plot([x[i, 0], y[j, 0]], [x[i, 1], y[j, 1]], color="0.5", lw=40 * plan[i, j], zorder=1)
ax.scatter(x[:, 0], x[:, 1], s=2000 * a, c="tab:blue", label=r"source $\mu$ (area $\propto a_i$)", zorder=2)
ax.scatter(y[:, 0], y[:, 1], s=2000 * b, c="tab:orange", marker="s", label=r"target $\nu$ (area $\propto b_j$)",
           zorder=2)
ax.set_xlabel("$x_1$")
ax.set_ylabel("$x_2$")
ax.set_title(f"optimal plan: {np.count_nonzero(plan > 1e-12)} non-zero entries, n+m-1 = {C.shape[0] + C.shape[1] - 1}")
ax.set_aspect("equal")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, markerscale=0.5)
fig.tight_layout()
plt.show()

# %% tags=["hide-input"]
j = int(np.argmax(b))
shifts = np.linspace(-2, 2, 801)
values = []
for s in shifts:
    v = v_opt.copy()
    v[j] += s
    values.append(semi_dual(v, C, a, b))
values = np.array(values)

fig, ax = plt.subplots(figsize=(7, 4.2))
ax.plot(v_opt[j] + shifts, values, label=r"$J(v)$, all $v_k$ optimal but $v_j$")
ax.axhline(primal, color="k", ls="--", lw=1, label=r"$\mathrm{OT}_c(\mu,\nu)$ (ot.emd2)")
ax.axvline(v_opt[j], color="tab:red", ls=":", lw=1, label=r"optimal $v_j$")
ax.set_xlabel(f"$v_j$ (j = {j}, the heaviest target point)")
ax.set_ylabel("semi-dual value $J(v)$")
ax.legend(loc="lower center")
fig.tight_layout()
plt.show()

# %%
n, m = C.shape
nonzero = plan > 1e-12
# a vertex of the transport polytope: at most n + m - 1 non-zero entries
assert np.count_nonzero(nonzero) <= n + m - 1
# no v beats the primal value, and the optimal v attains it (up to rounding)
assert values.max() <= primal + 1e-12
assert abs(values[np.argmin(np.abs(shifts))] - primal) < rtol * primal
# concave: its second differences are non-positive (up to rounding)
assert np.all(np.diff(values, 2) <= 1e-12)

# %% tags=["hide-input"]
glue("plan_nonzero", int(np.count_nonzero(nonzero)))
glue("plan_n", n)
glue("plan_m", m)
glue("plan_vertex_bound", n + m - 1)
split_sources = glue("split_sources", int(np.sum(np.count_nonzero(nonzero, axis=1) > 1)))

# %% [markdown]
# The plan has at most $n+m-1$ non-zero entries (a vertex of the transport polytope; here
# {glue:text}`plan_nonzero` for $n+m-1=$ {glue:text}`plan_vertex_bound`, with $n=$ {glue:text}`plan_n` and
# $m=$ {glue:text}`plan_m`), and it splits points: {glue:text}`split_sources` of the {glue:text}`plan_n` source
# points send mass to more than one target. With weights in general position there is no map from $\mu$ to $\nu$,
# which is why the discrete problem needs Kantorovich's relaxation.
#
# ## What to try
#
# - Make the weights uniform and $n=m$: the plan becomes a permutation (Birkhoff's theorem), a Monge map.
# - Replace the cost by $\lVert x-y\rVert$ ($W_1$): then $v^c=-v$ for 1-Lipschitz $v$, and the semi-dual becomes the
#   Kantorovich–Rubinstein dual behind Wasserstein GANs.
