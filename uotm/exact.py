r"""Exact answers on samples, to put beside what a network learns (SPEC §6).

* Balanced OT between two clouds: :func:`ot.emd` / :func:`ot.emd2` (network simplex).
* Unbalanced OT with generalised-KL marginal penalties and no entropy:
  :func:`ot.unbalanced.mm_unbalanced` solves

  .. math:: \min_{\pi\ge0}\ \langle\pi,\tau C\rangle + \mathrm{KL}(\pi\mathbf 1\,|\,a) + \mathrm{KL}(\pi^\top\mathbf 1\,|\,b),

  the discrete form of the primal of SPEC §1 with :math:`\Psi_1=\Psi_2=` KL and :math:`c=\tau\lVert x-y\rVert^2`.
* In 1-D, the balanced OT map is the monotone rearrangement :math:`F_\nu^{-1}\circ F_\mu`.

A plan tells where each source point's mass goes. A UOTM map moves *every* source sample, so the law of
:math:`T(x,z)` given :math:`x` is compared with the plan's conditional :math:`\pi(\cdot|x_i)=\pi_{i\cdot}/\pi_{i\cdot}\mathbf 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def source_marginal(self) -> np.ndarray:
        """:math:`\\pi\\mathbf 1`, the mass that leaves each source point (:math:`\\tilde\\mu`)."""
        return self.plan.sum(axis=1)

    @property
    def target_marginal(self) -> np.ndarray:
        """:math:`\\pi^\\top\\mathbf 1`, the mass that arrives at each target point (:math:`\\tilde\\nu`)."""
        return self.plan.sum(axis=0)

    def conditional(self) -> np.ndarray:
        """Row-normalised plan: row i is the law of the destination of source point i."""
        rows = self.source_marginal
        safe = np.where(rows > 0, rows, 1.0)
        out = self.plan / safe[:, None]
        out[rows <= 0] = 1.0 / self.plan.shape[1]  # a point that sends nothing: no information, spread evenly
        return out

    def barycentric_map(self) -> np.ndarray:
        """:math:`\\bar T(x_i)=\\sum_j\\pi(y_j|x_i)\\,y_j`, shape (n, d)."""
        return self.conditional() @ self.y

    def share_sent_to(self, target_mask) -> float:
        """Share of source points (each counted once, as a map moves every sample) whose destination lies in
        the target points selected by ``target_mask``: :math:`\\frac1n\\sum_i\\pi(\\text{mask}|x_i)`."""
        mask = np.asarray(target_mask, dtype=bool)
        if mask.shape != (self.y.shape[0],):
            raise ValueError(f"target_mask must have shape ({self.y.shape[0]},), got {mask.shape}")
        return float(self.conditional()[:, mask].sum(axis=1).mean())

    def mass_share_to(self, target_mask) -> float:
        """Share of the plan's total mass that arrives in the masked target points."""
        mask = np.asarray(target_mask, dtype=bool)
        return float(self.plan[:, mask].sum() / self.plan.sum())


def squared_distances(x, y) -> np.ndarray:
    """Matrix of :math:`\\lVert x_i-y_j\\rVert^2`."""
    return ot.dist(_cloud(x, "x"), _cloud(y, "y"), metric="sqeuclidean")


def balanced_plan(x, y) -> Plan:
    """Exact balanced OT plan for the cost :math:`\\lVert x-y\\rVert^2` between uniform clouds."""
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
