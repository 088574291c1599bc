r"""The convex conjugates :math:`\Psi^*` of the entropy functions of unbalanced OT.

An entropy function :math:`\Psi:[0,\infty)\to[0,\infty]` is convex with :math:`\Psi(1)=0`; it defines the
divergence :math:`D_\Psi(\pi_0|\mu)=\int\Psi(d\pi_0/d\mu)\,d\mu`. The semi-dual of UOT (Choi, Choi and Kang,
arXiv:2305.14777) only sees its convex conjugate :math:`\Psi^*(s)=\sup_{t\ge0}[st-\Psi(t)]`, which is convex and
non-decreasing, and whose derivative :math:`(\Psi^*)'(s)` is the density ratio of the optimal marginal: for an
optimal potential :math:`v^*`, :math:`d\tilde\mu/d\mu=(\Psi_1^*)'(-v^{*c})` and
:math:`d\tilde\nu/d\nu=(\Psi_2^*)'(-v^*)`.

=========  ==============================  ===============================================  ==================
name       :math:`\Psi^*(s)`               :math:`\Psi(t)`                                   divergence
=========  ==============================  ===============================================  ==================
linear     :math:`s`                       :math:`0` if :math:`t=1`, else :math:`+\infty`   none (balanced OT)
kl         :math:`e^s-1`                   :math:`t\log t-t+1`                              generalised KL
chi        :math:`y+y^2/4,\ y=\max(s,-2)`  :math:`(t-1)^2`                                  :math:`\chi^2`
softplus   :math:`\log(1+e^s)`             :math:`t\log t+(1-t)\log(1-t)`, :math:`t\le1`    JS-like
=========  ==============================  ===============================================  ==================

The public reference code uses :math:`e^s` for ``kl``; the constant changes no gradient, and :math:`e^s-1` is the
exact conjugate, so the semi-dual's value equals the primal's (the book checks it). For ``softplus``,
:math:`\Psi` is the negative binary entropy: it vanishes at 1 but is smallest at 1/2, so :math:`D_\Psi` can be
negative and the optimal marginals have density ratios in (0, 1).

S-JKO (Choi, Choi and Kang, arXiv:2402.05443) uses another softplus conjugate on its data side, :data:`SOFTPLUS_JKO`
(named ``softplus_jko``): :math:`\Psi^*(s)=2\log(1+e^s)-2\log2`, the conjugate of
:math:`\Psi(t)=t\log t+(2-t)\log(2-t)` on :math:`[0,2]`. It is normalised as a JKO step needs, :math:`\Psi^*(0)=0`
and :math:`(\Psi^*)'(0)=1`: its :math:`\Psi` is smallest, 0, at 1, so :math:`D_\Psi(\rho|\nu)\ge0` vanishes at
:math:`\rho=\nu` alone; UOTM's ``softplus`` has :math:`\Psi^*(0)=\log2` and :math:`(\Psi^*)'(0)=1/2`.
:data:`JKO_PSI` maps S-JKO's loss names (``kl``, ``chi``, ``softplus``) to their conjugates; the UOTM table above
(:data:`PSI`, :data:`PSI_NAMES`) does not hold ``softplus_jko``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _torch_fn(fn: Callable[[Tensor], Tensor]) -> Callable:
    """Let ``fn`` (written for tensors) take NumPy arrays or floats too, returning the same kind."""

    def wrapped(x):
        if isinstance(x, Tensor):
            return fn(x)
        out = fn(torch.as_tensor(np.asarray(x, dtype=np.float64)))
        arr = out.numpy()
        return arr if arr.ndim else float(arr)

    wrapped.__doc__ = fn.__doc__
    return wrapped


@dataclass(frozen=True)
class PsiConjugate:
    r"""One choice of :math:`\Psi`: its conjugate, the conjugate's derivative and :math:`\Psi` itself.

    Every method takes a tensor, a NumPy array or a float and returns the same kind.
    """

    name: str
    _star: Callable[[Tensor], Tensor]
    _ratio: Callable[[Tensor], Tensor]
    _psi: Callable[[Tensor], Tensor]

    def __call__(self, s):
        r""":math:`\Psi^*(s)`."""
        return self.star(s)

    def star(self, s):
        r""":math:`\Psi^*(s)`, convex and non-decreasing."""
        return _torch_fn(self._star)(s)

    def ratio(self, s):
        r""":math:`(\Psi^*)'(s)`: the density ratio of the optimal marginal at dual value ``s``."""
        return _torch_fn(self._ratio)(s)

    def psi(self, t):
        r""":math:`\Psi(t)` for :math:`t\ge0`; :math:`+\infty` outside its domain."""
        return _torch_fn(self._psi)(t)

    def divergence(self, pi_mass, mu_mass) -> float:
        r""":math:`D_\Psi(\pi|\mu)=\sum_i\mu_i\Psi(\pi_i/\mu_i)` for discrete measures with weights ``pi_mass``
        and ``mu_mass`` on the same support (``mu_mass`` positive)."""
        pi = np.asarray(pi_mass, dtype=np.float64)
        mu = np.asarray(mu_mass, dtype=np.float64)
        if pi.shape != mu.shape:
            raise ValueError(f"pi_mass has shape {pi.shape} but mu_mass has shape {mu.shape}; they must match")
        if np.any(mu <= 0) or np.any(pi < 0):
            raise ValueError("mu_mass must be positive and pi_mass non-negative")
        return float(np.sum(mu * self.psi(pi / mu)))


def _inf_like(t: Tensor) -> Tensor:
    return torch.full_like(t, float("inf"))


def _kl_psi(t: Tensor) -> Tensor:
    t = t.to(torch.float64) if not t.is_floating_point() else t
    return torch.where(t >= 0, torch.special.xlogy(t, t) - t + 1, _inf_like(t))


def _linear_psi(t: Tensor) -> Tensor:
    t = t.to(torch.float64) if not t.is_floating_point() else t
    return torch.where(torch.isclose(t, torch.ones_like(t)), torch.zeros_like(t), _inf_like(t))


def _chi_star(s: Tensor) -> Tensor:
    y = torch.clamp(s, min=-2.0)
    return y + 0.25 * y * y


def _chi_psi(t: Tensor) -> Tensor:
    t = t.to(torch.float64) if not t.is_floating_point() else t
    return torch.where(t >= 0, (t - 1) ** 2, _inf_like(t))


def _softplus_psi(t: Tensor) -> Tensor:
    t = t.to(torch.float64) if not t.is_floating_point() else t
    inside = (t >= 0) & (t <= 1)
    u = t.clamp(0, 1)
    return torch.where(inside, torch.special.xlogy(u, u) + torch.special.xlogy(1 - u, 1 - u), _inf_like(t))


PSI = {
    "linear": PsiConjugate("linear", lambda s: s, lambda s: torch.ones_like(s), _linear_psi),
    "kl": PsiConjugate("kl", lambda s: torch.expm1(s), torch.exp, _kl_psi),
    "chi": PsiConjugate("chi", _chi_star, lambda s: 1 + 0.5 * torch.clamp(s, min=-2.0), _chi_psi),
    "softplus": PsiConjugate("softplus", F.softplus, torch.sigmoid, _softplus_psi),
}
PSI_NAMES = tuple(PSI)


def get_psi(name: str | PsiConjugate) -> PsiConjugate:
    """The conjugate named ``name`` (one of :data:`PSI_NAMES`); a :class:`PsiConjugate` passes through."""
    if isinstance(name, PsiConjugate):
        return name
    try:
        return PSI[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown Psi* {name!r}: choose one of {', '.join(PSI_NAMES)}") from None


def _softplus_jko_psi(t: Tensor) -> Tensor:
    # the conjugate of 2 softplus(s) - 2 log 2: with u = t/2, 2[u log u + (1-u) log(1-u)] + 2 log 2 on [0, 2]
    t = t.to(torch.float64) if not t.is_floating_point() else t
    inside = (t >= 0) & (t <= 2)
    u = (t / 2).clamp(0, 1)
    val = 2 * (torch.special.xlogy(u, u) + torch.special.xlogy(1 - u, 1 - u)) + 2 * math.log(2.0)
    return torch.where(inside, val, _inf_like(t))


#: S-JKO's softplus conjugate :math:`\Psi^*(s)=2\,\mathrm{softplus}(s)-2\log2`, normalised so that
#: :math:`\Psi^*(0)=0` and :math:`(\Psi^*)'(0)=1` (its :math:`\Psi(t)=t\log t+(2-t)\log(2-t)` vanishes at 1, the
#: data themselves), unlike UOTM's ``softplus`` (:math:`\log(1+e^s)`, value :math:`\log2` and slope 1/2 at 0).
SOFTPLUS_JKO = PsiConjugate("softplus_jko", lambda s: 2 * F.softplus(s) - 2 * math.log(2.0),
                            lambda s: 2 * torch.sigmoid(s), _softplus_jko_psi)

#: The data-side conjugate of each S-JKO loss name (the authors' code): ``kl`` and ``chi`` are UOTM's, which are
#: already normalised (:math:`\Psi^*(0)=0`, :math:`(\Psi^*)'(0)=1`); ``softplus`` is :data:`SOFTPLUS_JKO`.
JKO_PSI: dict[str, PsiConjugate] = {"kl": PSI["kl"], "chi": PSI["chi"], "softplus": SOFTPLUS_JKO}
