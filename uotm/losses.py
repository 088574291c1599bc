r"""The semi-dual losses of UOTM (Choi, Choi and Kang, NeurIPS 2023, arXiv:2305.14777) and the regularisers that go
with them.

With a potential :math:`v` and a stochastic map :math:`T(x,z)`, one training iteration alternates

.. math::

    L_v = \mathbb E_{x,z}\,\Psi_1^*\big(v(T(x,z)) - c(x,T(x,z))\big) + \mathbb E_y\,\Psi_2^*\big(-v(y)\big)
    \qquad
    L_T = \mathbb E_{x,z}\big[c(x,T(x,z)) - v(T(x,z))\big],

with the quadratic cost :math:`c(x,y)=\tau\lVert x-y\rVert_2^2` summed over every non-batch dimension. Minimising
:math:`L_v` over :math:`v` maximises the semi-dual; minimising :math:`L_T` over :math:`T` computes the c-transform
:math:`v^c(x)=\inf_y[c(x,y)-v(y)]` at :math:`y=T(x,z)`.

All losses take per-sample tensors and return a scalar (the batch mean).
"""

from __future__ import annotations

import torch

from .psi import PsiConjugate, get_psi

Tensor = torch.Tensor


def _check_tau(tau: float) -> None:
    if not (isinstance(tau, (int, float)) and tau > 0 and tau == tau and tau != float("inf")):
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")


def quadratic_cost(x: Tensor, y: Tensor, tau: float) -> Tensor:
    r""":math:`c(x,y)=\tau\lVert x-y\rVert^2`, summed over every dimension but the first; shape ``(B,)``.

    ``x`` and ``y`` must have the same shape ``(B, ...)``.
    """
    _check_tau(tau)
    if x.shape != y.shape:
        raise ValueError(f"x has shape {tuple(x.shape)} but y has shape {tuple(y.shape)}; they must match")
    if x.dim() < 1:
        raise ValueError("x and y need a batch dimension")
    diff = (x - y).reshape(x.shape[0], -1)
    return tau * diff.square().sum(dim=1)


def _flat(v: Tensor, name: str) -> Tensor:
    """Potential values as shape (B,); accepts (B,) or (B, 1)."""
    if v.dim() == 2 and v.shape[1] == 1:
        return v[:, 0]
    if v.dim() != 1:
        raise ValueError(f"{name} must have shape (B,) or (B, 1), got {tuple(v.shape)}")
    return v


def potential_loss(
    v_real: Tensor,
    v_fake: Tensor,
    x: Tensor,
    t_x: Tensor,
    tau: float,
    psi1: str | PsiConjugate = "kl",
    psi2: str | PsiConjugate = "kl",
    reference_half_tau: bool = False,
) -> Tensor:
    r"""The potential's loss :math:`L_v=\mathbb E\,\Psi_1^*(v(T(x,z))-c(x,T(x,z)))+\mathbb E\,\Psi_2^*(-v(y))`.

    Args:
        v_real: :math:`v(y)` on a data batch, shape ``(B,)`` or ``(B, 1)``.
        v_fake: :math:`v(T(x,z))` on the transported batch, shape ``(B',)`` or ``(B', 1)``.
        x: the source batch, shape ``(B', ...)``.
        t_x: :math:`T(x,z)`, the same shape as ``x``.
        tau: the cost's scale :math:`\tau>0`.
        psi1, psi2: the conjugates on the source and data sides (names from :data:`uotm.psi.PSI_NAMES`).
        reference_half_tau: use :math:`\tau/2` in this loss, as the first public release of the reference image
            trainer did while its map loss used :math:`\tau` (a later commit uses :math:`\tau` in both). The two
            losses then optimise different problems; it is off by default and exists only to reproduce that code.
    """
    p1, p2 = get_psi(psi1), get_psi(psi2)
    cost = quadratic_cost(x, t_x, tau / 2 if reference_half_tau else tau)
    fake = _flat(v_fake, "v_fake")
    if fake.shape[0] != cost.shape[0]:
        raise ValueError(f"v_fake has {fake.shape[0]} values but x has {cost.shape[0]} samples")
    return p1.star(fake - cost).mean() + p2.star(-_flat(v_real, "v_real")).mean()


def map_loss(v_fake: Tensor, x: Tensor, t_x: Tensor, tau: float) -> Tensor:
    r"""The map's loss :math:`L_T=\mathbb E[c(x,T(x,z))-v(T(x,z))]`."""
    cost = quadratic_cost(x, t_x, tau)
    fake = _flat(v_fake, "v_fake")
    if fake.shape[0] != cost.shape[0]:
        raise ValueError(f"v_fake has {fake.shape[0]} values but x has {cost.shape[0]} samples")
    return (cost - fake).mean()


def _grad_sq_norm(outputs: Tensor, inputs: Tensor) -> Tensor:
    """Per-sample squared norm of d(sum outputs)/d inputs, kept in the graph (for a double backward)."""
    if not inputs.requires_grad:
        raise ValueError("the input must have requires_grad=True before the potential is evaluated on it")
    (g,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    g = g.reshape(g.shape[0], -1)
    if g.dtype in (torch.float16, torch.bfloat16):
        g = g.float()  # reduce in fp32 under mixed precision
    return g.square().sum(dim=1)


def r1_penalty(v_real: Tensor, y: Tensor, gamma: float) -> Tensor:
    r"""The R1 penalty :math:`\tfrac{\gamma}{2}\mathbb E_y\lVert\nabla_y v(y)\rVert^2` on real data.

    ``y`` must have ``requires_grad=True`` when ``v_real = v(y)`` is computed.
    """
    if gamma < 0:
        raise ValueError(f"gamma must be non-negative, got {gamma}")
    return 0.5 * gamma * _grad_sq_norm(v_real, y).mean()


def source_gradient_penalty(v_fake: Tensor, x: Tensor, lam: float) -> Tensor:
    r"""The toy trainer's regulariser :math:`\lambda\,\mathbb E\lVert\nabla_x v(T(x,z))\rVert^2`.

    The gradient is taken with respect to the *source* point ``x`` through the map, so it penalises both a
    steep potential and a steep map. ``x`` must have ``requires_grad=True`` when ``T(x, z)`` is computed.
    """
    if lam < 0:
        raise ValueError(f"lam must be non-negative, got {lam}")
    return lam * _grad_sq_norm(v_fake, x).mean()
