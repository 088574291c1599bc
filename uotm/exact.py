r"""Exact answers on samples, to put beside what a network learns.

* Balanced OT between two clouds: :func:`ot.emd` / :func:`ot.emd2` (network simplex); the 2-Wasserstein distance
  between uniform clouds (:func:`w2_squared`, :func:`w2`).
* Unbalanced OT with generalised-KL marginal penalties and no entropy:
  :func:`ot.unbalanced.mm_unbalanced` solves

  .. math:: \min_{\pi\ge0}\ \langle\pi,\tau C\rangle + \mathrm{KL}(\pi\mathbf 1\,|\,a) + \mathrm{KL}(\pi^\top\mathbf 1\,|\,b),

  the discrete form of the UOT primal :math:`\inf_\pi\int c\,d\pi+D_{\Psi_1}(\pi_0|\mu)+D_{\Psi_2}(\pi_1|\nu)` with
  :math:`\Psi_1=\Psi_2=` KL and :math:`c=\tau\lVert x-y\rVert^2`.
* Unbalanced OT for any pair of conjugates of :mod:`uotm.psi`, through its semi-dual (the semi-dual theorem of
  the UOTM paper, arXiv:2305.14777):
  :func:`solve_uot` maximises :math:`J(v)=-\sum_i a_i\Psi_1^*(-v^c_i)-\sum_j b_j\Psi_2^*(-v_j)` over
  :math:`v\in\mathbb R^m` (smoothed c-transform, annealed to zero, L-BFGS), reweights the marginals by
  :math:`(\Psi^*)'` and couples them by exact balanced OT (Theorem 3.3 of the paper), and certifies the result by
  the duality gap (primal value of the plan minus :math:`J(v)`, non-negative by weak duality); it returns a
  :class:`Plan` holding the potential :math:`v` and the gap. POT's majorisation-minimisation solver converges
  slowly when :math:`\tau` is small (its multiplicative update moves by about :math:`e^{-\tau C/2}` per
  iteration); this solver does not.
* :func:`maximise_semi_dual` maximises the same semi-dual through the full dual over :math:`(u,v)` (SLSQP, :math:`nm`
  constraints): the reference that checks :func:`solve_uot` and the semi-dual at small sizes.
* In 1-D, the balanced OT map is the monotone rearrangement :math:`F_\nu^{-1}\circ F_\mu`.
* The JKO scheme of the KL divergence between Gaussians (S-JKO, arXiv:2402.05443): its iterates in closed form
  (:func:`gaussian_jko_iterates`), and how closely learned iterates follow them (:func:`flow_tracking_errors`).
* Both sides of the VEGAN theorem (Bousquet et al., arXiv:1705.07642) for discrete laws,
  :math:`W_c(P_X,G_\#P_Z)=\inf_{Q(Z|X):Q_Z=P_Z}\mathbb E\,c(X,G(Z))`, as two linear programs
  (:func:`vegan_sides`), the decoder's images of the latent atoms merged to a stated tolerance (:func:`pushforward`).

A plan tells where each source point's mass goes. A UOTM map moves *every* source sample, so the law of
:math:`T(x,z)` given :math:`x` is compared with the plan's conditional :math:`\pi(\cdot|x_i)=\pi_{i\cdot}/\pi_{i\cdot}\mathbf 1`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from scipy.optimize import LinearConstraint, minimize
from scipy.special import logsumexp

from .psi import PsiConjugate, get_psi

import numpy as np
import ot
import torch
from torch import nn


def _cloud(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be an (N, d) array of points with N, d >= 1, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def _uniform_clouds(x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, a, b)``: the two clouds as (N, d) arrays of one dimension, and their uniform weights of mass 1."""
    xs, ys = _cloud(x, "x"), _cloud(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x is {xs.shape[1]}-dimensional but y is {ys.shape[1]}-dimensional")
    return xs, ys, np.full(len(xs), 1.0 / len(xs)), np.full(len(ys), 1.0 / len(ys))


@dataclass(frozen=True)
class Plan:
    """A transport plan between two point clouds (the source's and the target's weights are the plan's problem's,
    uniform for :func:`balanced_plan`, :func:`kl_uot_plan` and :func:`uot_plan`), the clouds themselves and, from
    the semi-dual solver :func:`solve_uot`, the potential that certifies it."""

    x: np.ndarray | None  # (n, d) source points; None for a plan solved from a cost matrix alone
    y: np.ndarray | None  # (m, d) target points; None likewise
    plan: np.ndarray  # (n, m) mass moved from x_i to y_j
    cost: float  # the objective's value at the plan
    gap: float = 0.0  # a certified bound on cost - optimum (0 when the solver is exact by construction)
    potential: np.ndarray | None = None  # (m,) the semi-dual potential v on the target points (solve_uot only)

    @property
    def source_marginal(self) -> np.ndarray:
        r""":math:`\pi\mathbf 1`, the mass that leaves each source point (:math:`\tilde\mu`)."""
        return self.plan.sum(axis=1)

    @property
    def target_marginal(self) -> np.ndarray:
        r""":math:`\pi^\top\mathbf 1`, the mass that arrives at each target point (:math:`\tilde\nu`)."""
        return self.plan.sum(axis=0)

    def conditional(self) -> np.ndarray:
        """Row-normalised plan: row i is the law of the destination of source point i."""
        rows = self.source_marginal
        safe = np.where(rows > 0, rows, 1.0)
        out = self.plan / safe[:, None]
        out[rows <= 0] = 1.0 / self.plan.shape[1]  # a point that sends nothing: no information, spread evenly
        return out

    def barycentric_map(self) -> np.ndarray:
        r""":math:`\bar T(x_i)=\sum_j\pi(y_j|x_i)\,y_j`, shape (n, d)."""
        if self.y is None:
            raise ValueError("this plan has no target points: pass y to solve_uot for its barycentric map")
        return self.conditional() @ self.y

    def share_sent_to(self, target_mask) -> float:
        r"""Share of source points (each counted once, as a map moves every sample) whose destination lies in
        the target points selected by ``target_mask``: :math:`\frac1n\sum_i\pi(\text{mask}|x_i)`."""
        mask = np.asarray(target_mask, dtype=bool)
        if mask.shape != (self.y.shape[0],):
            raise ValueError(f"target_mask must have shape ({self.y.shape[0]},), got {mask.shape}")
        return float(self.conditional()[:, mask].sum(axis=1).mean())


def squared_distances(x, y) -> np.ndarray:
    r"""Matrix of :math:`\lVert x_i-y_j\rVert^2`."""
    return ot.dist(_cloud(x, "x"), _cloud(y, "y"), metric="sqeuclidean")


def balanced_plan(x, y) -> Plan:
    r"""Exact balanced OT plan for the cost :math:`\lVert x-y\rVert^2` between uniform clouds."""
    xs, ys, a, b = _uniform_clouds(x, y)
    m = squared_distances(xs, ys)
    plan = ot.emd(a, b, m, numItermax=10_000_000)
    return Plan(xs, ys, plan, float(np.sum(plan * m)))


def kl_uot_plan(x, y, tau: float, num_iter: int = 5000, tol: float = 1e-12) -> Plan:
    r"""Exact KL-penalised unbalanced plan for the cost :math:`\tau\lVert x-y\rVert^2` between uniform clouds
    (total mass 1 each), by POT's majorisation-minimisation solver with no entropic term."""
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    xs, ys, a, b = _uniform_clouds(x, y)
    m = tau * squared_distances(xs, ys)
    plan = ot.unbalanced.mm_unbalanced(a, b, m, reg_m=1.0, div="kl", numItermax=num_iter, stopThr=tol)
    pi0, pi1 = plan.sum(1), plan.sum(0)
    kl = lambda p, q: float(np.sum(p * np.log(np.where(p > 0, p / q, 1.0)) - p + q))  # noqa: E731
    return Plan(xs, ys, plan, float(np.sum(plan * m)) + kl(pi0, a) + kl(pi1, b))


def monotone_rearrangement(source, target, at) -> np.ndarray:
    r"""The 1-D OT map :math:`F_\nu^{-1}\circ F_\mu` between the empirical laws of ``source`` and ``target``,
    evaluated at the points ``at`` (all 1-D)."""
    src = np.sort(np.asarray(source, dtype=np.float64).ravel())
    tgt = np.sort(np.asarray(target, dtype=np.float64).ravel())
    pts = np.asarray(at, dtype=np.float64).ravel()
    u = np.searchsorted(src, pts, side="right") / len(src)  # F_mu(x), the empirical distribution function
    idx = np.clip(np.ceil(u * len(tgt)).astype(int) - 1, 0, len(tgt) - 1)  # F_nu^{-1}(u), its generalised inverse
    return tgt[idx]


def w2_squared(x, y) -> float:
    """Exact squared 2-Wasserstein distance between two uniform point clouds (``ot.emd2``)."""
    xs, ys, a, b = _uniform_clouds(x, y)
    return float(ot.emd2(a, b, squared_distances(xs, ys), numItermax=10_000_000))


def w2(x, y) -> float:
    """Exact 2-Wasserstein distance between two uniform point clouds: the square root of :func:`w2_squared`."""
    return math.sqrt(w2_squared(x, y))


def c_transform(v: np.ndarray, cost: np.ndarray) -> np.ndarray:
    r""":math:`v^c_i=\min_j[C_{ij}-v_j]`."""
    return np.min(cost - v[None, :], axis=1)


def semi_dual_value(v, cost, a, b, psi1: str | PsiConjugate = "kl", psi2: str | PsiConjugate = "kl") -> float:
    r"""The UOT semi-dual :math:`J(v)=-\sum_i a_i\Psi_1^*(-v^c_i)-\sum_j b_j\Psi_2^*(-v_j)`; a lower bound on the
    UOT value for every ``v`` (weak duality)."""
    v = np.asarray(v, dtype=np.float64)
    return float(-np.sum(a * get_psi(psi1).star(-c_transform(v, cost))) - np.sum(b * get_psi(psi2).star(-v)))


def primal_value(plan, cost, a, b, psi1: str | PsiConjugate = "kl", psi2: str | PsiConjugate = "kl") -> float:
    r""":math:`\langle\pi,C\rangle+D_{\Psi_1}(\pi\mathbf 1|a)+D_{\Psi_2}(\pi^\top\mathbf 1|b)`."""
    plan = np.asarray(plan, dtype=np.float64)
    return float(np.sum(plan * cost) + get_psi(psi1).divergence(plan.sum(1), a)
                 + get_psi(psi2).divergence(plan.sum(0), b))


def maximise_semi_dual(a, b, cost, psi1: str | PsiConjugate = "kl", psi2: str | PsiConjugate = "kl") -> np.ndarray:
    r"""A maximiser ``v`` (m,) of the UOT semi-dual, found through the full dual, for discrete measures ``a`` (n,)
    and ``b`` (m,) with positive weights and a cost matrix ``cost`` (n, m).

    The semi-dual :math:`J(v)=-\sum_i a_i\Psi_1^*(-v^c_i)-\sum_j b_j\Psi_2^*(-v_j)` is concave but not smooth (a
    minimum over :math:`j`). The dual it comes from (the UOTM paper, arXiv:2305.14777),

    .. math:: \max_{u\in\mathbb R^n,\,v\in\mathbb R^m}\ -\sum_i a_i\Psi_1^*(-u_i)-\sum_j b_j\Psi_2^*(-v_j)
              \quad\text{subject to}\quad u_i+v_j\le C_{ij}\ \text{for all } i,j,

    is smooth, with gradient :math:`(a_i(\Psi_1^*)'(-u_i),\,b_j(\Psi_2^*)'(-v_j))`, and SLSQP maximises it from the
    admissible start :math:`u_i=v_j=\min C/2`. Since :math:`\Psi_1^*` is non-decreasing, the best :math:`u` for a
    given :math:`v` is :math:`v^c`, so :math:`J(v)` is at least the dual value at :math:`(u,v)`; and :math:`J(v)` is
    a lower bound on the UOT value for every :math:`v` (weak duality), so a primal plan certifies it.

    This is the reference against which :func:`solve_uot` and the semi-dual are checked at small sizes: it gives
    :math:`v` to near machine precision, but its :math:`nm` linear constraints make it slow beyond a few dozen
    points a side. Nothing is certified here: the caller compares :math:`J(v)` with a primal value."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or cost.shape != (len(a), len(b)) or a.size == 0 or b.size == 0:
        raise ValueError(f"need weights a (n,), b (m,) and a cost of shape (n, m); got {a.shape}, {b.shape}, "
                         f"{cost.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(a > 0) and np.all(b > 0)):
        raise ValueError("the weights a and b must be positive and finite")
    if not np.all(np.isfinite(cost)):
        raise ValueError("the cost matrix holds NaN or infinite values; give a finite cost")
    p1, p2 = get_psi(psi1), get_psi(psi2)
    n, m = cost.shape
    rows = np.arange(n * m)
    i, j = np.divmod(rows, m)
    constraint = np.zeros((n * m, n + m))  # row (i, j) reads u_i + v_j
    constraint[rows, i] = 1.0
    constraint[rows, n + j] = 1.0

    def neg_dual(z):
        u, v = z[:n], z[n:]
        value = -a @ p1.star(-u) - b @ p2.star(-v)
        grad = np.concatenate([a * p1.ratio(-u), b * p2.ratio(-v)])
        return -value, -grad

    start = np.full(n + m, cost.min() / 2)  # admissible: u_i + v_j = min C <= C_ij
    res = minimize(neg_dual, start, jac=True, method="SLSQP",
                   constraints=[LinearConstraint(constraint, -np.inf, cost.ravel())],
                   options={"maxiter": 2000, "ftol": 1e-14})
    return res.x[n:]


def solve_uot(a, b, cost, psi1: str | PsiConjugate = "kl", psi2: str | PsiConjugate = "kl",
              gap_tol: float = 1e-7, max_rounds: int = 12, *, x=None, y=None) -> Plan:
    r"""Unbalanced OT between discrete measures ``a`` (n,) and ``b`` (m,) with cost matrix ``cost`` (n, m), by its
    semi-dual. Returns the optimal :class:`Plan`: its ``plan``, its primal value ``cost``, the certified duality gap
    ``gap`` (primal value minus :math:`J(v)`, an upper bound on the distance to the optimum by weak duality) and
    the ``potential`` :math:`v` on the target support; ``x`` (n, d) and ``y`` (m, d), the supports' points when
    given, are kept in the plan for its barycentric map. ``psi1 = "linear"`` (a balanced source side) works; a
    balanced target side does not (use :func:`balanced_plan`)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if cost.shape != (len(a), len(b)) or np.any(a <= 0) or np.any(b <= 0):
        raise ValueError(f"need positive weights a (n,), b (m,) and a cost of shape (n, m); got {a.shape}, "
                         f"{b.shape}, {cost.shape}")
    xs = None if x is None else _cloud(x, "x")
    ys = None if y is None else _cloud(y, "y")
    if (xs is not None and len(xs) != len(a)) or (ys is not None and len(ys) != len(b)):
        raise ValueError(f"x and y must hold one point per weight of a ({len(a)}) and of b ({len(b)}); got "
                         f"{None if xs is None else xs.shape} and {None if ys is None else ys.shape}")
    p1, p2 = get_psi(psi1), get_psi(psi2)
    if p2.name == "linear":
        raise ValueError("a balanced target side (psi2='linear') has no finite semi-dual solution here; "
                         "use balanced_plan")
    scale = float(np.max(cost) - np.min(cost)) or 1.0

    def neg_j(v, eps):
        z = (v[None, :] - cost) / eps
        vc = -eps * logsumexp(z, axis=1)  # smoothed c-transform
        w = np.exp(z + vc[:, None] / eps)  # rows sum to 1: the soft arg-min
        r1 = a * p1.ratio(-vc)
        value = -np.sum(a * p1.star(-vc)) - np.sum(b * p2.star(-v))
        grad = b * p2.ratio(-v) - r1 @ w
        return -value, -grad

    v = np.zeros(len(b))
    best = None
    eps = 0.1 * scale
    for _ in range(max_rounds):
        v = minimize(neg_j, v, args=(eps,), jac=True, method="L-BFGS-B",
                     options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12}).x
        vc = c_transform(v, cost)
        mu_t = a * p1.ratio(-vc)
        nu_t = b * p2.ratio(-v)
        if (mu_t.sum() > 0) != (nu_t.sum() > 0):
            # One marginal is empty and the other is not (e.g. chi, whose ratio vanishes below -2, after a heavily
            # smoothed round): no coupling exists; a sharper round will fix the potential.
            eps /= 10
            continue
        mass = 0.5 * (mu_t.sum() + nu_t.sum())
        if mass > 0:
            plan = ot.emd(mu_t / mu_t.sum(), nu_t / nu_t.sum(), cost, numItermax=10_000_000) * mass
        else:
            plan = np.zeros_like(cost)
        value = primal_value(plan, cost, a, b, p1, p2)
        lower = semi_dual_value(v, cost, a, b, p1, p2)
        gap = value - lower
        if best is None or gap < best.gap:
            best = Plan(xs, ys, plan, value, gap, v.copy())
        if gap <= gap_tol * max(1.0, abs(lower)):
            break
        eps /= 10
    if best is None:
        raise RuntimeError(f"solve_uot found no potential whose two marginals can be coupled in {max_rounds} "
                           "rounds; raise max_rounds")
    return best


def uot_plan(x, y, tau: float, psi1: str | PsiConjugate = "kl", psi2: str | PsiConjugate = "kl") -> Plan:
    r"""Exact unbalanced plan for the cost :math:`\tau\lVert x-y\rVert^2` between uniform clouds of mass 1 each:
    :func:`solve_uot` on those weights and that cost; ``Plan.gap`` is the certified distance of its value to the
    optimum."""
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    xs, ys, a, b = _uniform_clouds(x, y)
    return solve_uot(a, b, tau * squared_distances(xs, ys), psi1, psi2, x=xs, y=ys)


def quantile_bin_means(samples, n: int) -> np.ndarray:
    r"""The ``n`` equal-weight points closest in :math:`W_2` to the empirical law of a 1-D sample: the means of the
    law over its ``n`` quantile bins, :math:`x_i=n\int_{(i-1)/n}^{i/n}F^{-1}(u)\,du`, sorted, shape (n,).

    In 1-D, :math:`W_2^2` between two laws is :math:`\int_0^1(F^{-1}-G^{-1})^2du`, and an equal-weight n-point law
    has a quantile function constant on each bin; the constant closest in mean square to :math:`F^{-1}` on a bin is
    its mean there. (The points at the quantiles :math:`F^{-1}((i-\tfrac12)/n)`, the bins' medians, are the closest
    in :math:`W_1` instead.) Exact up to rounding: :math:`\int_0^uF^{-1}` is piecewise linear with knots at
    :math:`k/N`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    s = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    if s.size == 0:
        raise ValueError("samples is empty")
    if not np.all(np.isfinite(s)):
        raise ValueError("samples holds NaN or infinite values")
    big_n = s.size
    primitive = np.concatenate([[0.0], np.cumsum(s)]) / big_n  # int_0^{k/N} F^{-1}, k = 0..N
    at_edges = np.interp(np.arange(n + 1) / n, np.arange(big_n + 1) / big_n, primitive)
    return np.diff(at_edges) * n


@dataclass(frozen=True)
class ReweightingBound:
    r"""Claim 3 of Theorem 3.3 on one discrete problem, as :func:`check_reweighting_bound` measured it."""

    divergence: float  # D_{Psi_1}(pi_0 | a) + D_{Psi_2}(pi_1 | b) of the plan's marginals
    bound: float  # the balanced cost OT_c(a, b) (tau W_2^2 for c = tau |x - y|^2)
    empty: float  # the empty plan's value Psi_1(0) a.sum() + Psi_2(0) b.sum(), the second bound
    value: float  # the plan's primal value
    gap: float  # value - J(v): certified, by weak duality, to bound value - C_ub from above

    @property
    def ratio(self) -> float:
        """``divergence / bound``: at most 1 where the claim holds."""
        return self.divergence / self.bound


def check_reweighting_bound(v, plan, cost, a, b, psi1: str | PsiConjugate = "kl", psi2: str | PsiConjugate = "kl",
                            gap_share: float = 0.1, rtol: float = 1e-9) -> ReweightingBound:
    r"""Check claim 3 of Theorem 3.3 (UOTM) on a solved discrete problem; raise ``AssertionError`` where it fails.

    For discrete measures ``a`` (n,) and ``b`` (m,) of equal mass, a cost matrix ``cost`` (n, m), a plan (n, m)
    and a potential ``v`` (m,) that a solver returned, two conditions must both hold:

    1. *The plan is optimal, certified.* Its duality gap :math:`g=\mathrm{value}(\pi)-J(v)`, an upper bound on
       :math:`\mathrm{value}(\pi)-C_{ub}` by weak duality, is non-negative (up to rounding) and below
       ``gap_share`` times the divergence :math:`D` being checked.
    2. *The bound.* :math:`D=D_{\Psi_1}(\pi_0|a)+D_{\Psi_2}(\pi_1|b)\le\min\{\mathrm{OT}_c(a,b),\,
       \Psi_1(0)a(\mathcal X)+\Psi_2(0)b(\mathcal Y)\}`: the values of the balanced plan (``ot.emd2``) and of the
       empty plan, both admissible in the primal, up to a relative rounding tolerance ``rtol``.

    Condition 2 with the tolerance :math:`g` could not fail: every plan has :math:`D\le\mathrm{value}(\pi)
    =J(v)+g\le C_{ub}+g\le\mathrm{OT}_c(a,b)+g` (weak duality, and the balanced plan is admissible). And
    condition 2 alone holds for plans that are not the theorem's (the balanced plan has :math:`D=0`); condition 1
    makes the plan the optimal one. Returns the measured quantities."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    plan = np.asarray(plan, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if cost.shape != (len(a), len(b)) or plan.shape != cost.shape or v.shape != b.shape:
        raise ValueError(f"need a (n,), b (m,), cost and plan (n, m), v (m,); got {a.shape}, {b.shape}, "
                         f"{cost.shape}, {plan.shape}, {v.shape}")
    if np.any(a <= 0) or np.any(b <= 0) or np.any(plan < 0):
        raise ValueError("the weights must be positive and the plan non-negative")
    if not np.all(np.isfinite(plan)) or not np.all(np.isfinite(v)) or not np.all(np.isfinite(cost)):
        raise ValueError("the plan, the potential and the cost must be finite")
    if abs(a.sum() - b.sum()) > 1e-12 * a.sum():
        raise ValueError(f"Theorem 3.3 compares measures of equal mass; got {a.sum()} and {b.sum()}")
    if not (gap_share > 0 and rtol >= 0):
        raise ValueError(f"gap_share must be positive and rtol non-negative, got {gap_share}, {rtol}")
    p1, p2 = get_psi(psi1), get_psi(psi2)
    divergence = float(p1.divergence(plan.sum(1), a) + p2.divergence(plan.sum(0), b))
    value = primal_value(plan, cost, a, b, p1, p2)
    gap = value - semi_dual_value(v, cost, a, b, p1, p2)
    bound = float(ot.emd2(a, b, cost, numItermax=10_000_000))
    empty = float(p1.psi(np.zeros(1))[0] * a.sum() + p2.psi(np.zeros(1))[0] * b.sum())
    found = ReweightingBound(divergence, bound, empty, value, gap)
    if gap < -1e-12 * max(1.0, abs(value)):
        raise AssertionError(f"the duality gap {gap:.3g} is negative: the plan or the potential is not what the "
                             f"solver should return ({found})")
    if not gap < gap_share * divergence:
        raise AssertionError(f"the plan is not certified optimal: its duality gap {gap:.3g} is not below "
                             f"{gap_share} x the divergence {divergence:.3g} ({found})")
    limit = min(bound, empty)
    if not divergence <= limit + rtol * abs(limit):
        raise AssertionError(f"claim 3 fails: D = {divergence:.6g} > min(OT_c(a, b), empty plan) = {limit:.6g} "
                             f"({found})")
    return found


# ----------------------------------------------------------------------------------------------------------------
# The JKO flow between Gaussians, exactly, and how closely learned iterates follow it.
# ----------------------------------------------------------------------------------------------------------------


def gaussian_jko_iterates(m0, s0, b, sigma, h: float, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The exact KL-JKO iterates from :math:`N(m_0,S_0)` towards :math:`\nu=N(b,\Sigma)` with Euclidean step
    :math:`h`: returns means ``(num_steps + 1, d)`` and covariances ``(num_steps + 1, d, d)``, index 0
    being the start. :math:`S_0` must commute with :math:`\Sigma` (e.g. a multiple of the identity).

    Derived here (and checked against direct minimisation over Gaussians): the KL-JKO step keeps a Gaussian
    a Gaussian, with :math:`m_{k+1}=(I+h\Sigma^{-1})^{-1}(m_k+h\Sigma^{-1}b)` and, per eigenvalue :math:`\sigma^2`
    of :math:`\Sigma`,
    :math:`\sqrt{s_{k+1}}=\big(\sigma^2\sqrt{s_k}+\sqrt{\sigma^4s_k+4h\sigma^2(\sigma^2+h)}\big)/(2(\sigma^2+h))`
    (fixed point :math:`\sigma^2`)."""
    m0, b = np.atleast_1d(np.asarray(m0, float)), np.atleast_1d(np.asarray(b, float))
    s0, sigma = np.atleast_2d(np.asarray(s0, float)), np.atleast_2d(np.asarray(sigma, float))
    d = b.shape[0]
    if m0.shape != (d,) or s0.shape != (d, d) or sigma.shape != (d, d):
        raise ValueError(f"need m0 ({d},), s0 ({d},{d}), sigma ({d},{d}); got {m0.shape}, {s0.shape}, {sigma.shape}")
    if not (isinstance(h, (int, float)) and h > 0):
        raise ValueError(f"h must be positive, got {h!r}")
    if not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative integer, got {num_steps!r}")
    lam, u = np.linalg.eigh(sigma)
    if lam.min() <= 0:
        raise ValueError("sigma must be positive definite")
    s0_e = u.T @ s0 @ u
    if np.abs(s0_e - np.diag(np.diag(s0_e))).max() > 1e-9 * max(1.0, np.abs(s0_e).max()):
        raise ValueError("s0 must commute with sigma (share its eigenvectors) for the closed form")
    s = np.diag(s0_e).copy()
    if s.min() <= 0:
        raise ValueError("s0 must be positive definite")
    prec = np.linalg.inv(sigma)
    step = np.linalg.inv(np.eye(d) + h * prec)
    means, covs = [m0], [s0]
    m = m0
    for _ in range(num_steps):
        m = step @ (m + h * prec @ b)
        r = np.sqrt(s)
        r = (lam * r + np.sqrt(lam**2 * s + 4 * h * lam * (lam + h))) / (2 * (lam + h))
        s = r**2
        means.append(m)
        covs.append(u @ np.diag(s) @ u.T)
    return np.stack(means), np.stack(covs)


@dataclass(frozen=True)
class FlowTracking:
    r"""How closely learned iterates :math:`(\hat m_k,\hat C_k)` follow the exact ones :math:`(m_k,C_k)`, step by step
    (arrays of length :math:`K`, entry :math:`k-1` for step :math:`k`), measured against how far the exact iterate
    still is from the target :math:`\nu=N(b,\Sigma)`.

    At step :math:`k` the mean's *error* is :math:`\lVert\hat m_k-m_k\rVert`, its *distance* is
    :math:`\lVert m_k-b\rVert`, its *noise* the sampling error :math:`\sqrt{\operatorname{tr}C_k/n}` of a mean of
    :math:`n` exact samples, and its *bound* :math:`\max(\text{fraction}\cdot\text{distance},\
    \text{noise\_multiple}\cdot\text{noise})`; the covariance likewise in Frobenius norm, with noise
    :math:`\sqrt{(\lVert C_k\rVert_F^2+(\operatorname{tr}C_k)^2)/n}` (the root-mean-square Frobenius error of a
    sample covariance of :math:`n` Gaussian points). With ``fraction`` 1/2, an error under the distance term means
    the learned iterate is closer to the exact iterate than to :math:`\nu` (triangle inequality), so a map that jumps
    straight to :math:`\nu` fails wherever the exact flow is still more than the noise term away from it.
    """

    mean_error: np.ndarray
    mean_distance: np.ndarray
    mean_noise: np.ndarray
    mean_bound: np.ndarray
    cov_error: np.ndarray
    cov_distance: np.ndarray
    cov_noise: np.ndarray
    cov_bound: np.ndarray
    fraction: float
    noise_multiple: float

    @property
    def mean_ratio(self) -> np.ndarray:
        """Per step, the mean's error over its bound (< 1: within the bound)."""
        return self.mean_error / self.mean_bound

    @property
    def cov_ratio(self) -> np.ndarray:
        """Per step, the covariance's error over its bound (< 1: within the bound)."""
        return self.cov_error / self.cov_bound

    @property
    def mean_score(self) -> float:
        """The largest of :attr:`mean_ratio` over the steps: the means track the flow when it is below 1."""
        return float(self.mean_ratio.max())

    @property
    def cov_score(self) -> float:
        """The largest of :attr:`cov_ratio` over the steps: the covariances track the flow when it is below 1."""
        return float(self.cov_ratio.max())

    @property
    def tracks(self) -> bool:
        """Whether every step's mean and covariance are within their bounds."""
        return self.mean_score < 1 and self.cov_score < 1


def flow_tracking_errors(learned_means, learned_covs, exact_means, exact_covs, target_mean, target_cov,
                         n_samples: int, fraction: float = 0.5, noise_multiple: float = 3.0) -> FlowTracking:
    r"""Compare learned JKO iterates with the exact ones, each step's bound relative to the exact iterate's distance
    from the target :math:`N(b,\Sigma)` (see :class:`FlowTracking`).

    ``learned_means`` and ``exact_means`` are ``(K, d)`` and the covariances ``(K, d, d)``, row :math:`k-1` holding
    step :math:`k` (:math:`\mu_k`, the start :math:`\mu_0` left out: pass ``gaussian_jko_iterates(...)[0][1:]``);
    ``target_mean`` is :math:`b` ``(d,)``, ``target_cov`` :math:`\Sigma` ``(d, d)``; ``n_samples`` is the number of
    points each learned mean and covariance was estimated from. Raises ValueError on shapes, non-finite values or
    parameters out of range.
    """
    lm, em = np.asarray(learned_means, dtype=float), np.asarray(exact_means, dtype=float)
    lc, ec = np.asarray(learned_covs, dtype=float), np.asarray(exact_covs, dtype=float)
    b, sigma = np.atleast_1d(np.asarray(target_mean, dtype=float)), np.atleast_2d(np.asarray(target_cov, dtype=float))
    d = b.shape[0]
    if b.ndim != 1 or sigma.shape != (d, d):
        raise ValueError(f"target_mean must be (d,) and target_cov (d, d); got {b.shape} and {sigma.shape}")
    if em.ndim != 2 or em.shape[1] != d or em.shape[0] < 1:
        raise ValueError(f"exact_means must be (K, {d}) with K >= 1, got {em.shape}")
    K = em.shape[0]
    for name, arr, shape in (("learned_means", lm, (K, d)), ("learned_covs", lc, (K, d, d)),
                             ("exact_covs", ec, (K, d, d))):
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (one row per step, like exact_means), got {arr.shape}")
    for name, arr in (("learned_means", lm), ("learned_covs", lc), ("exact_means", em), ("exact_covs", ec),
                      ("target_mean", b), ("target_cov", sigma)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} has non-finite entries")
    if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    if not (isinstance(noise_multiple, (int, float)) and math.isfinite(noise_multiple) and noise_multiple >= 0):
        raise ValueError(f"noise_multiple must be a non-negative finite number, got {noise_multiple!r}")
    trace = np.trace(ec, axis1=1, axis2=2)
    mean_noise = np.sqrt(trace / n_samples)
    cov_noise = np.sqrt((np.sum(ec**2, axis=(1, 2)) + trace**2) / n_samples)
    mean_distance = np.linalg.norm(em - b, axis=1)
    cov_distance = np.linalg.norm(ec - sigma, axis=(1, 2))
    return FlowTracking(
        mean_error=np.linalg.norm(lm - em, axis=1), mean_distance=mean_distance, mean_noise=mean_noise,
        mean_bound=np.maximum(fraction * mean_distance, noise_multiple * mean_noise),
        cov_error=np.linalg.norm(lc - ec, axis=(1, 2)), cov_distance=cov_distance, cov_noise=cov_noise,
        cov_bound=np.maximum(fraction * cov_distance, noise_multiple * cov_noise),
        fraction=float(fraction), noise_multiple=float(noise_multiple))


# ----------------------------------------------------------------------------------------------------------------
# The VEGAN theorem on discrete laws: both sides exactly.
# ----------------------------------------------------------------------------------------------------------------


def _weights(w, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one weight per atom, got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero")
    return w / w.sum()


MERGE_RTOL = 1e-9  # pushed atoms closer than this, relative to the points' scale, are one atom of G#P_Z


def pushforward(gz, b, rtol: float = MERGE_RTOL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The discrete law :math:`G_\#P_Z` from the pushed atoms ``gz`` (m, d) = G(z_j) and their weights ``b`` (m,).
    Returns (distinct points (k, d), their weights (k,), the index (m,) of each z_j's point).

    Two atoms are merged when they agree to the tolerance ``rtol`` relative to the scale of the points:
    :math:`\max_l|G(z_i)_l-G(z_j)_l|\le \mathrm{rtol}\cdot s` with :math:`s=\max_{j,l}|G(z_j)_l|` (and merging
    is transitive: a chain of such pairs is one atom). Bit equality (``np.unique``) is not the test: a decoder that
    sends two latent atoms to one point computes the two images by different floating-point paths (another row of
    a matrix product, another SIMD lane), and they can differ by a few units in the last place (5.6e-16 was seen on
    one CPU). The default 1e-9 is far above such rounding and far below the distance between points that are meant
    to differ. Each merged atom is placed at the first of its members (in the order of ``gz``); the points come
    in the order of their first member."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    gz = np.asarray(gz, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if gz.ndim != 2 or len(gz) < 1:
        raise ValueError(f"gz must be an (m, d) array of pushed atoms with m >= 1, got shape {gz.shape}")
    if b.shape != (len(gz),):
        raise ValueError(f"b must have shape ({len(gz)},), one weight per pushed atom, got {b.shape}")
    if not np.all(np.isfinite(gz)):
        raise ValueError("the pushed atoms hold NaN or infinite values")
    if not (isinstance(rtol, (int, float)) and not isinstance(rtol, bool) and 0 <= rtol < 1):
        raise ValueError(f"rtol must be a number in [0, 1), got {rtol!r}")
    m = len(gz)
    tol = rtol * float(np.abs(gz).max())
    pairs = cKDTree(gz).query_pairs(tol, p=np.inf, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    _, label = connected_components(graph, directed=False)
    # number the groups by their first member, so that the points come in the order of gz
    _, first = np.unique(label, return_index=True)
    order = np.argsort(first)
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    inverse = inverse[label]
    points = gz[np.sort(first)]
    return points, np.bincount(inverse, weights=b, minlength=len(points)), inverse


def merge_margins(gz, rtol: float = MERGE_RTOL) -> tuple[float, float]:
    """How clear-cut :func:`pushforward`'s merging of the pushed atoms ``gz`` (m, d) is: ``(spread, separation)``,
    both in the max-norm and relative to the scale of the points (their largest coordinate in absolute value).
    ``spread`` is the largest distance between an atom and the point it was merged into (0 when nothing is
    merged), ``separation`` the smallest distance between two distinct points (inf when there is one). A merge
    that decides nothing close has ``spread`` far below ``rtol`` and ``separation`` far above it."""
    from scipy.spatial.distance import pdist

    gz = np.asarray(gz, dtype=np.float64)
    points, _, index = pushforward(gz, np.ones(len(gz)), rtol)
    scale = float(np.abs(gz).max()) or 1.0
    spread = float(np.abs(gz - points[index]).max()) / scale
    separation = float(pdist(points, "chebyshev").min()) / scale if len(points) > 1 else math.inf
    return spread, separation


@dataclass
class VeganCheck:
    """Both sides of the VEGAN theorem for one discrete problem, and the plans that attain them."""

    w_data: float  # W_c(P_X, G#P_Z): an OT problem in data space, between X and the distinct points G(z)
    w_latent: float  # inf over Q(Z|X) with Q_Z = P_Z of E c(X, G(Z)): an OT problem between X and Z
    plan_data: np.ndarray  # (n, k) optimal coupling of P_X and G#P_Z
    plan_latent: np.ndarray  # (n, m) optimal coupling of P_X and P_Z; Q(z_j | x_i) = plan_latent[i, j] / a_i
    cost: np.ndarray  # (n, m) M_ij = c(x_i, G(z_j))
    n_pushed_atoms: int  # k, the number of distinct points G(z_j) (< m when G is not injective on the atoms)

    @property
    def injective(self) -> bool:
        """Whether G sends the m latent atoms to m distinct points (then both sides are one linear program)."""
        return self.n_pushed_atoms == self.plan_latent.shape[1]

    @property
    def relative_error(self) -> float:
        return abs(self.w_data - self.w_latent) / max(abs(self.w_data), abs(self.w_latent), 1e-300)


def vegan_sides(x, z, decoder: Callable | np.ndarray, a=None, b=None, rtol: float = MERGE_RTOL) -> VeganCheck:
    r"""Both sides of :math:`W_c(P_X,G_\#P_Z)=\inf_{Q(Z|X):Q_Z=P_Z}\mathbb E\,c(X,G(Z))` exactly, with
    :math:`c=\lVert\cdot\rVert^2`, :math:`P_X=\sum_i a_i\delta_{x_i}` and :math:`P_Z=\sum_j b_j\delta_{z_j}`
    (uniform weights by default).

    ``decoder`` is the deterministic :math:`G`: a function (or ``torch.nn.Module``) from the (m, d_z) array of
    latent atoms to an (m, d) array, or the (m, d) array of the values :math:`G(z_j)` itself. The left side is
    ``ot.emd2`` between :math:`P_X` and the law :math:`G_\#P_Z`, whose atoms are the *distinct* points
    :math:`G(z_j)` with the summed weights (images that agree to the relative tolerance ``rtol`` are one point:
    see :func:`pushforward`); the right side is ``ot.emd2`` between :math:`P_X` and :math:`P_Z` with the cost
    :math:`M_{ij}=c(x_i,G(z_j))`, whose couplings are exactly the :math:`Q(Z|X)` with :math:`Q_Z=P_Z`.

    When :math:`G` is injective on the atoms the two programs are the same one (the same costs, the columns in
    another order), so their agreement only checks the solver; the theorem has content where :math:`G` is not
    injective (:attr:`VeganCheck.injective` is False)."""
    x = _cloud(x, "x")
    z = _cloud(z, "z")
    a = _weights(a, len(x), "a")
    b = _weights(b, len(z), "b")
    if isinstance(decoder, np.ndarray):
        gz = decoder
    elif isinstance(decoder, nn.Module):
        p = next(decoder.parameters(), None)
        dtype = p.dtype if p is not None else torch.float64
        with torch.no_grad():
            gz = decoder(torch.as_tensor(z, dtype=dtype)).double().numpy()
    elif callable(decoder):
        gz = decoder(z)
    else:
        raise ValueError(f"decoder must be a function of the latent atoms or the array of their images, "
                         f"got {type(decoder).__name__}")
    gz = np.asarray(gz, dtype=np.float64)
    if gz.ndim == 1 and x.shape[1] == 1:
        gz = gz[:, None]
    if gz.shape != (len(z), x.shape[1]):
        raise ValueError(f"the decoder must give one point of R^{x.shape[1]} per latent atom, shape "
                         f"({len(z)}, {x.shape[1]}); got {gz.shape}")
    if not np.all(np.isfinite(gz)):
        raise ValueError("the decoder gave NaN or infinite points")
    points, weights, _ = pushforward(gz, b, rtol)
    cost_data = ot.dist(x, points, metric="sqeuclidean")
    cost = ot.dist(x, gz, metric="sqeuclidean")
    plan_data = ot.emd(a, weights, cost_data, numItermax=10 ** 7)
    plan_latent = ot.emd(a, b, cost, numItermax=10 ** 7)
    return VeganCheck(float((plan_data * cost_data).sum()), float((plan_latent * cost).sum()), plan_data,
                      plan_latent, cost, len(points))


def random_vegan_problem(n: int, m: int, seed: int, d: int = 2, d_z: int = 2,
                         collapse: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Callable]:
    r"""A random discrete problem (x, z, a, b, G): ``n`` data atoms and ``m`` latent atoms with random weights, G a
    random two-layer tanh network :math:`R^{d_z}\to R^d`. With ``collapse`` = k > 0, G is made non-injective on the
    atoms: the last k latent atoms are copies of others reflected through the first coordinate, and G is made even
    in that coordinate (it reads :math:`|z_1|`), so each pair of atoms lands on one point."""
    if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in (n, m, d, d_z)):
        raise ValueError(f"n, m, d, d_z must be positive integers, got {n}, {m}, {d}, {d_z}")
    if not isinstance(collapse, int) or not 0 <= collapse <= m // 2:
        raise ValueError(f"collapse must be an integer in [0, m // 2] = [0, {m // 2}], got {collapse!r}")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0)
    z = rng.normal(size=(m, d_z))
    if collapse:
        z[:, 0] = np.abs(z[:, 0]) + 0.1  # the reflected copies must differ from the originals
        z[m - collapse:] = z[:collapse] * np.r_[-1.0, np.ones(d_z - 1)]
    a = rng.uniform(0.2, 1.0, n)
    b = rng.uniform(0.2, 1.0, m)
    w1, c1 = rng.normal(size=(d_z, 16)), rng.normal(size=16)
    w2 = rng.normal(size=(16, d)) * 1.5

    def decoder(latent: np.ndarray) -> np.ndarray:
        u = np.array(latent, dtype=np.float64)
        if collapse:
            u[:, 0] = np.abs(u[:, 0])
        return np.tanh(u @ w1 + c1) @ w2

    return x, z, a / a.sum(), b / b.sum(), decoder
