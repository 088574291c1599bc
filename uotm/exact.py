r"""Exact answers on samples, to put beside what a network learns.

* Balanced OT between two clouds: :func:`ot.emd` / :func:`ot.emd2` (network simplex).
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
  the duality gap (primal value of the plan minus :math:`J(v)`, non-negative by weak duality). POT's
  majorisation-minimisation solver converges slowly when :math:`\tau` is small (its multiplicative update moves by
  about :math:`e^{-\tau C/2}` per iteration); this solver does not.
* :func:`maximise_semi_dual` maximises the same semi-dual through the full dual over :math:`(u,v)` (SLSQP, :math:`nm`
  constraints): the reference that checks :func:`solve_uot` and the semi-dual at small sizes.
* In 1-D, the balanced OT map is the monotone rearrangement :math:`F_\nu^{-1}\circ F_\mu`.

A plan tells where each source point's mass goes. A UOTM map moves *every* source sample, so the law of
:math:`T(x,z)` given :math:`x` is compared with the plan's conditional :math:`\pi(\cdot|x_i)=\pi_{i\cdot}/\pi_{i\cdot}\mathbf 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.optimize import LinearConstraint, minimize
from scipy.special import logsumexp

from .psi import PsiConjugate, get_psi

import numpy as np
import ot


def _cloud(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be an (N, d) array of points, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


@dataclass(frozen=True)
class Plan:
    """A transport plan between two point clouds with uniform weights, and the clouds themselves."""

    x: np.ndarray  # (n, d) source points
    y: np.ndarray  # (m, d) target points
    plan: np.ndarray  # (n, m) mass moved from x_i to y_j
    cost: float  # the objective's value at the plan
    gap: float = 0.0  # a certified bound on cost - optimum (0 when the solver is exact by construction)

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
    xs, ys = _cloud(x, "x"), _cloud(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x is {xs.shape[1]}-dimensional but y is {ys.shape[1]}-dimensional")
    a = np.full(len(xs), 1.0 / len(xs))
    b = np.full(len(ys), 1.0 / len(ys))
    m = squared_distances(xs, ys)
    plan = ot.emd(a, b, m, numItermax=10_000_000)
    return Plan(xs, ys, plan, float(np.sum(plan * m)))


def kl_uot_plan(x, y, tau: float, num_iter: int = 5000, tol: float = 1e-12) -> Plan:
    r"""Exact KL-penalised unbalanced plan for the cost :math:`\tau\lVert x-y\rVert^2` between uniform clouds
    (total mass 1 each), by POT's majorisation-minimisation solver with no entropic term."""
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    xs, ys = _cloud(x, "x"), _cloud(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x is {xs.shape[1]}-dimensional but y is {ys.shape[1]}-dimensional")
    a = np.full(len(xs), 1.0 / len(xs))
    b = np.full(len(ys), 1.0 / len(ys))
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
    xs, ys = _cloud(x, "x"), _cloud(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x is {xs.shape[1]}-dimensional but y is {ys.shape[1]}-dimensional")
    return float(ot.emd2(np.full(len(xs), 1 / len(xs)), np.full(len(ys), 1 / len(ys)), squared_distances(xs, ys),
                         numItermax=10_000_000))


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
              gap_tol: float = 1e-7, max_rounds: int = 12) -> tuple[np.ndarray, np.ndarray, float]:
    """Unbalanced OT between discrete measures ``a`` (n,) and ``b`` (m,) with cost matrix ``cost`` (n, m), by its
    semi-dual. Returns ``(v, plan, gap)``: the potential on the target support, the optimal plan and the certified
    duality gap (primal value of ``plan`` minus :math:`J(v)`). ``psi1 = "linear"`` (a balanced source side) works;
    a balanced target side does not (use :func:`balanced_plan`)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if cost.shape != (len(a), len(b)) or np.any(a <= 0) or np.any(b <= 0):
        raise ValueError(f"need positive weights a (n,), b (m,) and a cost of shape (n, m); got {a.shape}, "
                         f"{b.shape}, {cost.shape}")
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
        gap = primal_value(plan, cost, a, b, p1, p2) - semi_dual_value(v, cost, a, b, p1, p2)
        if best is None or gap < best[2]:
            best = (v.copy(), plan, gap)
        if gap <= gap_tol * max(1.0, abs(semi_dual_value(v, cost, a, b, p1, p2))):
            break
        eps /= 10
    if best is None:
        raise RuntimeError(f"solve_uot found no potential whose two marginals can be coupled in {max_rounds} "
                           "rounds; raise max_rounds")
    return best


def uot_plan(x, y, tau: float, psi1: str | PsiConjugate = "kl", psi2: str | PsiConjugate = "kl") -> Plan:
    r"""Exact unbalanced plan for the cost :math:`\tau\lVert x-y\rVert^2` between uniform clouds of mass 1 each,
    by :func:`solve_uot`; ``Plan.gap`` is the certified distance of its value to the optimum."""
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    xs, ys = _cloud(x, "x"), _cloud(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x is {xs.shape[1]}-dimensional but y is {ys.shape[1]}-dimensional")
    a = np.full(len(xs), 1.0 / len(xs))
    b = np.full(len(ys), 1.0 / len(ys))
    cost = tau * squared_distances(xs, ys)
    _, plan, gap = solve_uot(a, b, cost, psi1, psi2)
    return Plan(xs, ys, plan, primal_value(plan, cost, a, b, psi1, psi2), gap)


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
