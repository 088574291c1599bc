r"""S-JKO: the JKO scheme of a Wasserstein gradient flow, one step at a time through the UOT semi-dual (SPEC §4).

One JKO step with step size :math:`h` moves :math:`\mu_k` towards the data :math:`\nu`:

.. math::

    \mu_{k+1} = \arg\min_\rho\ \tfrac1{2h}W_2^2(\rho,\mu_k) + D_\Psi(\rho|\nu).

It is the UOT problem of SPEC §1 with a *balanced* source side (:math:`\Psi_1^*(s)=s`, so the plan's first
marginal is :math:`\mu_k` exactly), the divergence :math:`\Psi` on the data side and the cost
:math:`c_h(x,y)=\lVert x-y\rVert^2/(2h)`; :math:`\mu_{k+1}` is the plan's second marginal. With the maps
reparametrised on the source :math:`\mu_0` (:math:`\mu_k=T_{k\#}\mu_0`), one iteration of phase :math:`k` is a
potential step then a map step on

.. math::

    L_v = \mathbb E_\nu\,\Psi^*\big(-v(y+\sigma_k\varepsilon)\big) + \mathbb E\,v(T(x,z))
          + \tfrac{\gamma}{2}\mathbb E\lVert\nabla_y v\rVert^2,
    \qquad
    L_T = \mathbb E\big[c_h(T_{old}(x,z'),T(x,z)) - v(T(x,z))\big],

with :math:`T_{old}` the map of the previous phase (the identity in phase 0) and independent latents
:math:`z, z'`. The authors' code averages the squared distance over the :math:`d` coordinates
(:math:`\lVert x-y\rVert^2/(2hd)`); this module's default is the Euclidean :math:`h` of the formula, and
``cost_scale="per_coordinate"`` gives the authors' convention (their :math:`h` is a Euclidean step of :math:`hd`).

This module holds what every S-JKO trainer shares: the conjugates, the two losses (and the JSD variant of the
authors' code), the data-noise schedule and the closed-form Gaussian iterates used to check a learned flow.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .losses import _flat
from .psi import PSI, PsiConjugate

Tensor = torch.Tensor

COST_SCALES = ("euclidean", "per_coordinate")
SJKO_LOSSES = ("kl", "chi", "softplus", "jsd")


def _softplus2_psi(t: Tensor) -> Tensor:
    # conjugate of 2 softplus(s) - 2 log 2: with u = t/2, 2[u log u + (1-u) log(1-u)] + 2 log 2 on [0, 2]
    t = t.to(torch.float64) if not t.is_floating_point() else t
    inside = (t >= 0) & (t <= 2)
    u = (t / 2).clamp(0, 1)
    val = 2 * (torch.special.xlogy(u, u) + torch.special.xlogy(1 - u, 1 - u)) + 2 * math.log(2.0)
    return torch.where(inside, val, torch.full_like(t, float("inf")))


#: The data-side conjugates of the authors' code. ``kl`` and ``chi`` are those of :mod:`uotm.psi`; S-JKO's
#: ``softplus`` is :math:`2\,\mathrm{softplus}(s)-2\log2`, normalised so that :math:`\Psi^*(0)=0` and
#: :math:`(\Psi^*)'(0)=1` (its :math:`\Psi` vanishes at 1, the data themselves), unlike UOTM's ``softplus``.
SJKO_PSI: dict[str, PsiConjugate] = {
    "kl": PSI["kl"],
    "chi": PSI["chi"],
    "softplus": PsiConjugate(
        "softplus", "S-JKO's JS-like: 2 softplus(s) - 2 log 2",
        lambda s: 2 * F.softplus(s) - 2 * math.log(2.0), lambda s: 2 * torch.sigmoid(s), _softplus2_psi,
    ),
}


def check_loss_name(name: str) -> str:
    if name not in SJKO_LOSSES:
        raise ValueError(f"unknown S-JKO loss {name!r}: choose one of {', '.join(SJKO_LOSSES)}")
    return name


def jko_cost(x_old: Tensor, x_new: Tensor, h: float, cost_scale: str = "euclidean") -> Tensor:
    r""":math:`\lVert x_{old}-x_{new}\rVert^2/(2h)` per sample, shape ``(B,)``; with ``cost_scale="per_coordinate"``
    the squared distance is averaged over the coordinates, :math:`\lVert\cdot\rVert^2/(2hd)` (the authors' code)."""
    if not (isinstance(h, (int, float)) and math.isfinite(h) and h > 0):
        raise ValueError(f"the step size h must be a positive finite number, got {h!r}")
    if cost_scale not in COST_SCALES:
        raise ValueError(f"cost_scale must be one of {COST_SCALES}, got {cost_scale!r}")
    if x_old.shape != x_new.shape or x_old.dim() < 1:
        raise ValueError(f"x_old {tuple(x_old.shape)} and x_new {tuple(x_new.shape)} must have one shape (B, ...)")
    sq = (x_old - x_new).reshape(x_old.shape[0], -1).square()
    sq = sq.mean(dim=1) if cost_scale == "per_coordinate" else sq.sum(dim=1)
    return sq / (2 * h)


def potential_loss(v_real: Tensor, v_fake: Tensor, loss: str = "kl") -> Tensor:
    r"""The potential's loss of one JKO step (R1 not included): :math:`\mathbb E\,\Psi^*(-v(y))+\mathbb E\,v(T)`;
    for ``loss="jsd"``, :math:`\mathbb E\,\mathrm{softplus}(-v(y))+\mathbb E\,\mathrm{softplus}(v(T))`."""
    check_loss_name(loss)
    real, fake = _flat(v_real, "v_real"), _flat(v_fake, "v_fake")
    if loss == "jsd":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    return SJKO_PSI[loss].star(-real).mean() + fake.mean()


def map_loss(v_fake: Tensor, x_old: Tensor, x_new: Tensor, h: float, cost_scale: str = "euclidean",
             loss: str = "kl") -> Tensor:
    r"""The map's loss :math:`\mathbb E[c_h(T_{old},T)-v(T)]`; for ``loss="jsd"``,
    :math:`\mathbb E[c_h(T_{old},T)+\mathrm{softplus}(-v(T))]`."""
    check_loss_name(loss)
    cost = jko_cost(x_old, x_new, h, cost_scale)
    fake = _flat(v_fake, "v_fake")
    if fake.shape[0] != cost.shape[0]:
        raise ValueError(f"v_fake has {fake.shape[0]} values but the batch has {cost.shape[0]} samples")
    if loss == "jsd":
        return (cost + F.softplus(-fake)).mean()
    return (cost - fake).mean()


def data_noise(phase: int, scale: float = 1 / 32) -> float:
    r"""The authors' noise on the data in phase ``phase`` (from 0): :math:`\sigma_k=\mathrm{scale}/(k+1)`."""
    if not isinstance(phase, int) or phase < 0:
        raise ValueError(f"phase must be a non-negative integer, got {phase!r}")
    return scale / (phase + 1)


def gaussian_jko_iterates(m0, s0, b, sigma, h: float, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    r"""The exact KL-JKO iterates from :math:`N(m_0,S_0)` towards :math:`\nu=N(b,\Sigma)` with Euclidean step
    :math:`h` (SPEC §4): returns means ``(num_steps + 1, d)`` and covariances ``(num_steps + 1, d, d)``, index 0
    being the start. :math:`S_0` must commute with :math:`\Sigma` (e.g. a multiple of the identity)."""
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
