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

Each algorithm's iteration is one small object holding its :math:`\Psi^*`'s and its cost and exposing the
potential step's and the map step's losses: :class:`SemiDual` (UOTM; OTM with linear :math:`\Psi^*`'s),
:class:`JKOStep` (one step of S-JKO: the same losses with a balanced source side and :math:`\tau=1/(2h)`) and its
variant :class:`JKOStepJSD`, :class:`WAEMMD` and :class:`WAEGAN` (the Wasserstein auto-encoder's penalised objective,
with the MMD of :func:`mmd_imq` or a latent discriminator); the trainers choose one and call it. All losses take
per-sample tensors and return a scalar (the batch mean).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .presets import COST_SCALES, check_loss_name
from .psi import JKO_PSI, PsiConjugate, get_psi

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


class SemiDual:
    r"""UOTM's iteration (the UOTM paper, Algorithm 1): the potential's and the map's losses of the semi-dual,

    .. math::

        L_v = \mathbb E_{x,z}\,\Psi_1^*\big(v(T(x,z)) - c(x,T(x,z))\big) + \mathbb E_y\,\Psi_2^*\big(-v(y)\big),
        \qquad L_T = \mathbb E_{x,z}\big[c(x,T(x,z)) - v(T(x,z))\big],

    with :math:`c(x,y)=\tau\lVert x-y\rVert^2` (:func:`quadratic_cost`). OTM (balanced optimal transport) is
    ``psi1 = psi2 = "linear"``: :math:`L_v=\mathbb E[v(T)-c(x,T)]-\mathbb E\,v(y)`.

    Args:
        psi1, psi2: the conjugates on the source and data sides (names from :data:`uotm.psi.PSI_NAMES`, or
            :class:`~uotm.psi.PsiConjugate` objects).
        tau: the cost's scale :math:`\tau>0`.
        reference_half_tau: use :math:`\tau/2` in the potential's loss, as the first public release of the
            reference image trainer did while its map loss used :math:`\tau` (a later commit uses :math:`\tau` in
            both). The two losses then optimise different problems; it is off by default and exists only to
            reproduce that code.

    A variant overrides what differs: :meth:`source_term` (the source side of :math:`L_v`), :meth:`data_term`
    (its data side), :meth:`map_loss`. Every loss takes per-sample tensors and returns a scalar (the batch mean).
    """

    def __init__(self, psi1: str | PsiConjugate, psi2: str | PsiConjugate, tau: float,
                 reference_half_tau: bool = False):
        _check_tau(tau)
        if not isinstance(reference_half_tau, bool):
            raise ValueError(f"reference_half_tau must be True or False, got {reference_half_tau!r}")
        self.psi1, self.psi2, self.tau = get_psi(psi1), get_psi(psi2), tau
        self.reference_half_tau = reference_half_tau

    def __repr__(self) -> str:
        half = ", reference_half_tau=True" if self.reference_half_tau else ""
        return f"{type(self).__name__}(psi1={self.psi1.name!r}, psi2={self.psi2.name!r}, tau={self.tau!r}{half})"

    def cost(self, x: Tensor, y: Tensor) -> Tensor:
        r"""The cost :math:`c(x,y)` per sample, shape ``(B,)``."""
        return quadratic_cost(x, y, self.tau)

    def source_term(self, v_fake: Tensor, x: Tensor | None = None, t_x: Tensor | None = None) -> Tensor:
        r""":math:`\mathbb E\,\Psi_1^*(v(T(x,z))-c(x,T(x,z)))` from ``v_fake`` :math:`=v(T(x,z))` (shape ``(B,)`` or
        ``(B, 1)``), the source batch ``x`` ``(B, ...)`` and ``t_x`` :math:`=T(x,z)` of the same shape."""
        if x is None or t_x is None:
            raise ValueError("the semi-dual's potential loss needs the source batch x and t_x = T(x, z)")
        cost = quadratic_cost(x, t_x, self.tau / 2 if self.reference_half_tau else self.tau)
        return self.psi1.star(_values(v_fake, cost)).mean()

    def data_term(self, v_real: Tensor) -> Tensor:
        r""":math:`\mathbb E_y\,\Psi_2^*(-v(y))` from ``v_real`` :math:`=v(y)`, shape ``(B,)`` or ``(B, 1)``."""
        return self.psi2.star(-_flat(v_real, "v_real")).mean()

    def potential_loss(self, v_real: Tensor, v_fake: Tensor, x: Tensor | None = None,
                       t_x: Tensor | None = None) -> Tensor:
        r"""The potential's loss :math:`L_v` (:meth:`source_term` plus :meth:`data_term`): ``v_real`` :math:`=v(y)`
        on a data batch, ``v_fake`` :math:`=v(T(x,z))` on the transported batch, ``x`` the source batch and ``t_x``
        :math:`=T(x,z)` (the map's output, a constant in this step)."""
        return self.source_term(v_fake, x, t_x) + self.data_term(v_real)

    def map_loss(self, v_fake: Tensor, x: Tensor, t_x: Tensor) -> Tensor:
        r"""The map's loss :math:`L_T=\mathbb E[c(x,T(x,z))-v(T(x,z))]`, ``v_fake`` :math:`=v(T(x,z))`."""
        cost = self.cost(x, t_x)
        return (cost - _values(v_fake, cost, subtract=False)).mean()


def _values(v_fake: Tensor, cost: Tensor, subtract: bool = True) -> Tensor:
    """``v_fake`` as shape (B,) (minus ``cost`` if ``subtract``), checked against the cost's batch."""
    fake = _flat(v_fake, "v_fake")
    if fake.shape[0] != cost.shape[0]:
        raise ValueError(f"v_fake has {fake.shape[0]} values but the batch has {cost.shape[0]} samples")
    return fake - cost if subtract else fake


def jko_tau(h: float, cost_scale: str = "euclidean", dim: int | None = None) -> float:
    r"""The :math:`\tau` of one JKO step of size :math:`h`: :math:`c_h(x,y)=\lVert x-y\rVert^2/(2h)` is
    :func:`quadratic_cost` with :math:`\tau=1/(2h)`; with ``cost_scale="per_coordinate"`` (the S-JKO authors' code)
    the squared distance is averaged over the ``dim`` coordinates, :math:`\tau=1/(2hd)`."""
    if not (isinstance(h, (int, float)) and not isinstance(h, bool) and math.isfinite(h) and h > 0):
        raise ValueError(f"the step size h must be a positive finite number, got {h!r}")
    if cost_scale not in COST_SCALES:
        raise ValueError(f"cost_scale must be one of {COST_SCALES}, got {cost_scale!r}")
    if cost_scale == "euclidean":
        return 1 / (2 * h)
    if not (isinstance(dim, int) and not isinstance(dim, bool) and dim >= 1):
        raise ValueError(f"cost_scale='per_coordinate' needs the data's dimension dim (a positive integer), "
                         f"got {dim!r}")
    return 1 / (2 * h * dim)


class JKOStep(SemiDual):
    r"""One step of S-JKO (Choi, Choi and Kang, arXiv:2402.05443): the JKO step
    :math:`\mu_{k+1}=\arg\min_\rho \tfrac1{2h}W_2^2(\rho,\mu_k)+D_\Psi(\rho|\nu)` is the UOT problem with a balanced
    source side (:math:`\Psi_1^*(s)=s`, so the plan's first marginal is :math:`\mu_k` exactly), the divergence
    :math:`\Psi` on the data side and the cost :math:`c_h(x,y)=\lVert x-y\rVert^2/(2h)`, i.e. :math:`\tau=1/(2h)`
    (:func:`jko_tau`; :math:`1/(2hd)` for ``cost_scale="per_coordinate"``). So its losses are :class:`SemiDual`'s,

    .. math::

        L_v = \mathbb E\,v(T(x,z)) + \mathbb E_y\,\Psi^*\big(-v(y)\big),\qquad
        L_T = \mathbb E\big[c_h(T_{old}(x,z'),T(x,z)) - v(T(x,z))\big],

    with one difference: as :math:`\Psi_1^*` is linear, the source side of :math:`L_v` is
    :math:`\mathbb E[v(T)]-\mathbb E[c_h(T_{old},T)]`, whose second term is a constant in :math:`v`; it is left
    out, so the potential's step needs neither :math:`T_{old}` nor the cost (its ``x`` and ``t_x`` are not read),
    and :math:`L_v` differs from the semi-dual's by that constant (the gradients are the same). The map's loss is
    the semi-dual's with :math:`x` the point :math:`T_{old}(x,z')` of :math:`\mu_k`.

    ``psi2`` is a :class:`~uotm.psi.PsiConjugate` (S-JKO's by name are :data:`uotm.psi.JKO_PSI`, whose
    ``softplus`` is not UOTM's: :func:`jko_step` picks by name); ``dim`` (the data's dimension) is
    needed with ``cost_scale="per_coordinate"`` only."""

    def __init__(self, psi2: PsiConjugate, h: float, cost_scale: str = "euclidean", dim: int | None = None):
        if not isinstance(psi2, PsiConjugate):
            raise ValueError(f"psi2 must be a PsiConjugate (S-JKO's by name: uotm.psi.JKO_PSI, or use jko_step), got {psi2!r}")
        super().__init__("linear", psi2, jko_tau(h, cost_scale, dim))
        self.h, self.cost_scale = h, cost_scale
        self.dim = dim if cost_scale == "per_coordinate" else None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(psi2={self.psi2.name!r}, h={self.h!r}, cost_scale={self.cost_scale!r}, "
                f"dim={self.dim!r})")

    def cost(self, x: Tensor, y: Tensor) -> Tensor:
        r""":math:`c_h(x,y)` per sample, shape ``(B,)``: :func:`quadratic_cost` with :math:`\tau` of :func:`jko_tau`."""
        if self.dim is not None and math.prod(x.shape[1:]) != self.dim:
            raise ValueError(f"this step averages the cost over dim={self.dim} coordinates, but the samples have "
                             f"{math.prod(x.shape[1:])}")
        return super().cost(x, y)

    def source_term(self, v_fake: Tensor, x: Tensor | None = None, t_x: Tensor | None = None) -> Tensor:
        r""":math:`\mathbb E\,v(T(x,z))`: the balanced source side without its constant :math:`-\mathbb E\,c_h`
        (``x`` and ``t_x`` are not read)."""
        return _flat(v_fake, "v_fake").mean()


class JKOStepJSD(JKOStep):
    r"""The ``jsd`` variant of the S-JKO authors' code, a GAN-style step that is not a semi-dual:

    .. math::

        L_v = \mathbb E\,\mathrm{softplus}(v(T)) + \mathbb E_y\,\mathrm{softplus}(-v(y)),\qquad
        L_T = \mathbb E\big[c_h(T_{old},T) + \mathrm{softplus}(-v(T))\big].

    Its data side is :class:`SemiDual`'s with :math:`\Psi_2^*` UOTM's ``softplus`` (:math:`\log(1+e^s)` at
    :math:`s=-v(y)`); it overrides the source side (:meth:`source_term`) and the map's loss (:meth:`map_loss`)."""

    def __init__(self, h: float, cost_scale: str = "euclidean", dim: int | None = None):
        super().__init__(get_psi("softplus"), h, cost_scale, dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(h={self.h!r}, cost_scale={self.cost_scale!r}, dim={self.dim!r})"

    def source_term(self, v_fake: Tensor, x: Tensor | None = None, t_x: Tensor | None = None) -> Tensor:
        r""":math:`\mathbb E\,\mathrm{softplus}(v(T(x,z)))` (``x`` and ``t_x`` are not read)."""
        return F.softplus(_flat(v_fake, "v_fake")).mean()

    def map_loss(self, v_fake: Tensor, x: Tensor, t_x: Tensor) -> Tensor:
        r""":math:`\mathbb E[c_h(x,T)+\mathrm{softplus}(-v(T))]`, ``x`` the points :math:`T_{old}(x,z')`."""
        cost = self.cost(x, t_x)
        return (cost + F.softplus(-_values(v_fake, cost, subtract=False))).mean()


# ----------------------------------------------------------------------------------------------------------------
# Wasserstein auto-encoders


WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the WAE paper's multipliers of the kernel's base constant


def imq_kernel(x: Tensor, y: Tensor, sigma2: float = 1.0, scales=WAE_SCALES) -> Tensor:
    r"""The inverse multiquadric kernel matrix :math:`K_{ij}=\sum_s C_s/(C_s+\lVert x_i-y_j\rVert^2)`,
    :math:`C_s=2d\sigma^2 s`, for points ``x`` (n, d) and ``y`` (m, d); shape (n, m)."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be (n, d) and (m, d) with the same d, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if not (isinstance(sigma2, (int, float)) and math.isfinite(sigma2) and sigma2 > 0):
        raise ValueError(f"sigma2 must be a positive finite number, got {sigma2!r}")
    scales = tuple(scales)
    if not scales or any(not (math.isfinite(s) and s > 0) for s in scales):
        raise ValueError(f"scales must be positive finite numbers, got {scales!r}")
    d2 = (x.unsqueeze(1) - y.unsqueeze(0)).square().sum(-1)
    base = 2.0 * x.shape[1] * sigma2
    return sum(base * s / (base * s + d2) for s in scales)


def mmd_imq(x: Tensor, y: Tensor, sigma2: float = 1.0, scales=WAE_SCALES) -> Tensor:
    r"""The unbiased estimate of :math:`\mathrm{MMD}^2` between the laws of samples ``x`` (n, d) and ``y`` (m, d)
    with :func:`imq_kernel`:

    .. math::

        \frac{1}{n(n-1)}\sum_{i\ne j}k(x_i,x_j)+\frac{1}{m(m-1)}\sum_{i\ne j}k(y_i,y_j)
        -\frac{2}{nm}\sum_{i,j}k(x_i,y_j).

    Its expectation is the squared MMD (0 for equal laws), so it can be slightly negative. Needs n, m ≥ 2."""
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"the unbiased MMD needs two samples (n, d), (m, d) with n, m >= 2, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    n, m = x.shape[0], y.shape[0]
    kxx = imq_kernel(x, x, sigma2, scales)
    kyy = imq_kernel(y, y, sigma2, scales)
    kxy = imq_kernel(x, y, sigma2, scales)
    # the diagonal of k(x, x) is the number of scales exactly (distance 0)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sxx + syy - 2.0 * kxy.mean()


class WAEMMD:
    r"""WAE-MMD's iteration (Tolstikhin et al., "Wasserstein Auto-Encoders", ICLR 2018): the encoder/decoder step's
    loss, the penalised form of :math:`W_c(P_X,G_\#P_Z)=\inf_{Q(Z|X):Q_Z=P_Z}\mathbb E\,c(X,G(Z))` (the VEGAN
    theorem of Bousquet et al., arXiv:1705.07642),

    .. math::

        L = \mathbb E_{P_X}\mathbb E_{Q(Z|X)}\,c\big(X,G(Z)\big) + \lambda\,D(Q_Z,P_Z),

    with :math:`c(x,y)=\lVert x-y\rVert^2` (:func:`quadratic_cost` with :math:`\tau=1`, summed over the
    coordinates or pixels) and :math:`D` the squared MMD with the inverse multiquadric kernel (:func:`mmd_imq`)
    between the codes and prior samples, :math:`P_Z=N(0,\sigma_z^2I)` (``prior_sigma2`` :math:`=\sigma_z^2`).
    :class:`WAEGAN` overrides the penalty."""

    def __init__(self, lam: float, prior_sigma2: float = 1.0):
        if not (isinstance(lam, (int, float)) and not isinstance(lam, bool) and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam (the penalty's weight) must be a non-negative finite number, got {lam!r}")
        if not (isinstance(prior_sigma2, (int, float)) and math.isfinite(prior_sigma2) and prior_sigma2 > 0):
            raise ValueError(f"prior_sigma2 must be a positive finite number, got {prior_sigma2!r}")
        self.lam, self.prior_sigma2 = lam, prior_sigma2

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lam={self.lam!r}, prior_sigma2={self.prior_sigma2!r})"

    def cost(self, x: Tensor, x_rec: Tensor) -> Tensor:
        r"""The reconstruction cost :math:`c(x,G(z))=\lVert x-G(z)\rVert^2` per sample, shape ``(B,)``."""
        return quadratic_cost(x, x_rec, 1.0)

    def penalty(self, codes: Tensor, prior: Tensor, discriminator=None) -> Tensor:
        r""":math:`D(Q_Z,P_Z)` on a batch: the unbiased MMD estimate between the ``codes`` (B, d_z) and ``prior``
        samples (B', d_z) (``discriminator`` is not read)."""
        return mmd_imq(codes, prior, self.prior_sigma2)

    def map_loss(self, x: Tensor, x_rec: Tensor, penalty: Tensor) -> tuple[Tensor, Tensor]:
        r"""The encoder/decoder step's loss :math:`\mathbb E\,c(x,G(z))+\lambda\,D` from the data ``x``, their
        reconstructions ``x_rec`` :math:`=G(z)` and the ``penalty`` :math:`D` (:meth:`penalty`); returns the loss
        and its reconstruction term."""
        recon = self.cost(x, x_rec).mean()
        return recon + self.lam * penalty, recon


class WAEGAN(WAEMMD):
    r"""WAE-GAN's iteration: :class:`WAEMMD`'s loss with :math:`D` the Jensen–Shannon divergence estimated by a
    latent discriminator :math:`d` (logits), trained by its own step (:meth:`discriminator_loss`, the potential's
    step of this algorithm):

    .. math::

        L_d = \mathbb E_{P_Z}\,\mathrm{softplus}(-d(z)) + \mathbb E_{Q_Z}\,\mathrm{softplus}(d(\tilde z)),

    the binary cross-entropy of telling prior samples (label 1) from codes (label 0); at the optimal :math:`d`,
    :math:`\log2-\tfrac12L_d` is the Jensen–Shannon divergence (:meth:`js_estimate`). The encoder's penalty is the
    non-saturating :math:`-\log\sigma(d(\tilde z))` (:meth:`penalty`). With :math:`c=\lVert\cdot\rVert^2` the
    objective is the adversarial auto-encoder's."""

    def discriminator_loss(self, discriminator, codes: Tensor, prior: Tensor) -> Tensor:
        r""":math:`L_d` for the ``discriminator`` (a module giving one logit per point, shape (B,)) on ``prior``
        samples and the ``codes`` (detached: this step moves the discriminator only)."""
        d_prior = discriminator(prior)
        loss = F.binary_cross_entropy_with_logits(d_prior, torch.ones_like(d_prior))
        d_codes = discriminator(codes.detach())
        return loss + F.binary_cross_entropy_with_logits(d_codes, torch.zeros_like(d_codes))

    def penalty(self, codes: Tensor, prior: Tensor, discriminator=None) -> Tensor:
        r"""The non-saturating :math:`\mathbb E\,[-\log\sigma(d(\tilde z))]` on the ``codes`` (``prior`` is not
        read)."""
        if discriminator is None:
            raise ValueError("WAE-GAN's penalty needs the latent discriminator")
        d_codes = discriminator(codes)
        return F.binary_cross_entropy_with_logits(d_codes, torch.ones_like(d_codes))

    @staticmethod
    def js_estimate(loss_d: Tensor) -> float:
        r"""The discriminator's estimate :math:`\log2-\tfrac12L_d` of the Jensen–Shannon divergence."""
        return math.log(2.0) - 0.5 * float(loss_d.detach())


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


def jko_step(loss: str, h: float, cost_scale: str = "euclidean", dim: int | None = None) -> JKOStep:
    r"""The losses of one JKO step by S-JKO's names: :class:`JKOStep` with the data-side conjugate
    :data:`uotm.psi.JKO_PSI` ``[loss]`` (``kl``, ``chi``, ``softplus``), or :class:`JKOStepJSD` for ``jsd``; the
    cost is :math:`\lVert x-y\rVert^2/(2h)` (over ``dim`` coordinates averaged with ``cost_scale="per_coordinate"``)."""
    check_loss_name(loss)
    if loss == "jsd":
        return JKOStepJSD(h, cost_scale, dim)
    return JKOStep(JKO_PSI[loss], h, cost_scale, dim)
