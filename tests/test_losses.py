import math

import pytest
import torch

from uotm.losses import (WAEGAN, WAEMMD, JKOStep, JKOStepJSD, SemiDual, jko_tau, mmd_imq, quadratic_cost, r1_penalty,
                         source_gradient_penalty)
from uotm.psi import PSI
from uotm.losses import jko_step
from uotm.psi import JKO_PSI

D = torch.float64


def potential_loss(v_real, v_fake, x, t_x, tau, psi1="kl", psi2="kl", reference_half_tau=False):
    return SemiDual(psi1, psi2, tau, reference_half_tau).potential_loss(v_real, v_fake, x, t_x)


def map_loss(v_fake, x, t_x, tau):
    return SemiDual("linear", "linear", tau).map_loss(v_fake, x, t_x)


def test_cost_sums_every_non_batch_dimension():
    x = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=D)
    y = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=D)
    assert torch.equal(quadratic_cost(x, y, 0.5), torch.tensor([2.5, 1.0], dtype=D))
    img_x = torch.zeros(2, 3, 4, 4, dtype=D)
    img_y = torch.ones(2, 3, 4, 4, dtype=D)
    assert torch.equal(quadratic_cost(img_x, img_y, 2.0), torch.tensor([96.0, 96.0], dtype=D))


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf")])
def test_cost_rejects_bad_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        quadratic_cost(torch.zeros(2, 1), torch.zeros(2, 1), tau)


def test_cost_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        quadratic_cost(torch.zeros(2, 1), torch.zeros(2, 2), 1.0)


def test_potential_loss_by_hand():
    x = torch.tensor([[0.0], [1.0]], dtype=D)
    t_x = torch.tensor([[1.0], [1.0]], dtype=D)  # costs tau*[1, 0] = [0.5, 0]
    v_fake = torch.tensor([1.0, 0.0], dtype=D)
    v_real = torch.tensor([[0.0], [2.0]], dtype=D)  # (B, 1) is accepted
    tau = 0.5
    # kl/kl: mean(exp(v_fake - c) - 1) + mean(exp(-v_real) - 1)
    want = ((math.exp(0.5) - 1) + 0.0) / 2 + (0.0 + (math.exp(-2.0) - 1)) / 2
    got = potential_loss(v_real, v_fake, x, t_x, tau, "kl", "kl")
    assert got.item() == pytest.approx(want, rel=1e-14)
    # linear/chi: mean(v_fake - c) + mean(chi*(-v_real)), chi*(0)=0, chi*(-2)=-2+1=-1
    want = (0.5 + 0.0) / 2 + (0.0 - 1.0) / 2
    assert potential_loss(v_real, v_fake, x, t_x, tau, "linear", "chi").item() == pytest.approx(want, rel=1e-14)


def test_reference_half_tau_option_halves_the_cost_in_the_potential_loss_only():
    x = torch.tensor([[0.0]], dtype=D)
    t_x = torch.tensor([[2.0]], dtype=D)  # |x - T|^2 = 4
    v = torch.tensor([0.0], dtype=D)
    full = potential_loss(v, v, x, t_x, 1.0, "linear", "linear").item()
    half = potential_loss(v, v, x, t_x, 1.0, "linear", "linear", reference_half_tau=True).item()
    assert full == pytest.approx(-4.0) and half == pytest.approx(-2.0)


def test_map_loss_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=D)
    t_x = torch.tensor([[1.0, 1.0], [1.0, 3.0]], dtype=D)  # |.|^2 = 2, 4
    v = torch.tensor([0.5, -1.0], dtype=D)
    assert map_loss(v, x, t_x, 0.25).item() == pytest.approx(((0.5 - 0.5) + (1.0 + 1.0)) / 2)


def test_loss_checks_shapes():
    with pytest.raises(ValueError, match="v_fake"):
        map_loss(torch.zeros(3), torch.zeros(2, 1), torch.zeros(2, 1), 1.0)
    with pytest.raises(ValueError, match="v_real"):
        potential_loss(torch.zeros(2, 2), torch.zeros(2), torch.zeros(2, 1), torch.zeros(2, 1), 1.0)


def test_r1_penalty_by_hand():
    y = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=D, requires_grad=True)
    v = (3.0 * y.square()).sum(dim=1)  # grad = 6 y; |grad|^2 = 36 |y|^2 = [180, 36]
    assert r1_penalty(v, y, 0.2).item() == pytest.approx(0.1 * (180 + 36) / 2)


def test_source_gradient_penalty_by_hand():
    x = torch.tensor([[1.0], [2.0]], dtype=D, requires_grad=True)
    t_x = 2.0 * x
    v = (3.0 * t_x)[:, 0]  # dv/dx = 6
    assert source_gradient_penalty(v, x, 0.01).item() == pytest.approx(0.36)
    with pytest.raises(ValueError, match="requires_grad"):
        source_gradient_penalty(v, x.detach(), 0.01)


@pytest.mark.parametrize("pair", [("kl", "kl"), ("chi", "softplus"), ("linear", "kl")])
def test_potential_loss_gradcheck(pair):
    torch.manual_seed(0)
    args = [torch.randn(5, dtype=D, requires_grad=True), torch.randn(4, dtype=D, requires_grad=True),
            torch.randn(4, 3, dtype=D, requires_grad=True), torch.randn(4, 3, dtype=D, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda a, b, c, d: potential_loss(a, b, c, d, 0.3, *pair), args)


def test_map_loss_gradcheck():
    torch.manual_seed(1)
    args = [torch.randn(4, dtype=D, requires_grad=True), torch.randn(4, 2, 2, dtype=D, requires_grad=True),
            torch.randn(4, 2, 2, dtype=D, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda v, x, t: map_loss(v, x, t, 0.7), args)


def test_penalties_gradcheck_through_double_backward():
    torch.manual_seed(2)
    w = torch.randn(3, dtype=D, requires_grad=True)
    y = torch.randn(4, 3, dtype=D)

    def r1(weights):
        yy = y.clone().requires_grad_(True)
        return r1_penalty(torch.tanh(yy @ weights) ** 2, yy, 0.2)

    def src(weights):
        xx = y.clone().requires_grad_(True)
        t_x = torch.sin(xx) * weights
        return source_gradient_penalty((t_x.square() * weights).sum(dim=1), xx, 0.5)

    assert torch.autograd.gradcheck(r1, (w,))
    assert torch.autograd.gradcheck(src, (w,))


# ----------------------------------------------------------------------------------------------------------------
# the iteration objects


def _batch(seed, b=6, d=3):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=D) for shape in ((b,), (b,), (b, d), (b, d))]


def test_semi_dual_refuses_wrong_input():
    with pytest.raises(ValueError, match="Psi"):
        SemiDual("kl", "tv", 1.0)
    with pytest.raises(ValueError, match="tau"):
        SemiDual("kl", "kl", 0.0)
    with pytest.raises(ValueError, match="reference_half_tau"):
        SemiDual("kl", "kl", 1.0, reference_half_tau="yes")
    v_real, v_fake, x, t_x = _batch(0)
    with pytest.raises(ValueError, match="needs the source batch"):
        SemiDual("kl", "kl", 1.0).potential_loss(v_real, v_fake)
    with pytest.raises(ValueError, match="v_fake"):
        SemiDual("kl", "kl", 1.0).map_loss(v_fake[:4], x, t_x)


def test_semi_dual_with_linear_psi_is_otm():
    # OTM's losses (balanced semi-dual): L_v = E[v(T) - c(x, T)] - E v(y), L_T = E[c(x, T) - v(T)]
    v_real, v_fake, x, t_x = _batch(1)
    tau = 0.3
    otm = SemiDual("linear", "linear", tau)
    cost = tau * (x - t_x).square().sum(dim=1)
    assert otm.potential_loss(v_real, v_fake, x, t_x).item() == pytest.approx(
        ((v_fake - cost).mean() - v_real.mean()).item(), rel=1e-14)
    assert otm.map_loss(v_fake, x, t_x).item() == pytest.approx((cost - v_fake).mean().item(), rel=1e-14)
    assert torch.equal(otm.cost(x, t_x), quadratic_cost(x, t_x, tau))


def test_jko_step_is_the_semi_dual_with_a_balanced_source_up_to_the_constant_cost():
    v_real, v_fake, x_old, t_x = _batch(2)
    for name, h, scale, dim in (("kl", 0.7, "euclidean", None), ("chi", 0.1, "per_coordinate", 3),
                                ("softplus", 2.0, "euclidean", None)):
        step = jko_step(name, h, scale, dim)
        tau = 1 / (2 * h) if scale == "euclidean" else 1 / (2 * h * dim)
        assert step.tau == jko_tau(h, scale, dim) == pytest.approx(tau)
        semi = SemiDual("linear", JKO_PSI[name], tau)
        const = semi.cost(x_old, t_x).mean()  # the cost term: a constant in v
        assert step.potential_loss(v_real, v_fake).item() == pytest.approx(
            (semi.potential_loss(v_real, v_fake, x_old, t_x) + const).item(), rel=1e-12)
        assert torch.equal(step.map_loss(v_fake, x_old, t_x), semi.map_loss(v_fake, x_old, t_x))
        # the same gradients in v
        a = [v.clone().requires_grad_(True) for v in (v_real, v_fake)]
        b = [v.clone().requires_grad_(True) for v in (v_real, v_fake)]
        ga = torch.autograd.grad(step.potential_loss(*a), a)
        gb = torch.autograd.grad(semi.potential_loss(*b, x_old, t_x), b)
        assert all(torch.allclose(u, w, rtol=1e-14) for u, w in zip(ga, gb))


def test_jko_step_refuses_wrong_input_and_jsd_overrides_what_differs():
    with pytest.raises(ValueError, match="PsiConjugate"):
        JKOStep("kl", 1.0)
    with pytest.raises(ValueError, match="step size h"):
        JKOStep(PSI["kl"], float("nan"))
    with pytest.raises(ValueError, match="dim"):
        JKOStep(PSI["kl"], 1.0, "per_coordinate", 0)
    v_real, v_fake, x_old, t_x = _batch(3)
    jsd = JKOStepJSD(0.5)
    assert isinstance(jsd, JKOStep) and jsd.psi1.name == "linear" and jsd.psi2 is PSI["softplus"]
    sp = torch.nn.functional.softplus
    assert torch.equal(jsd.data_term(v_real), SemiDual("linear", "softplus", 1.0).data_term(v_real))
    assert jsd.potential_loss(v_real, v_fake).item() == pytest.approx(
        (sp(-v_real).mean() + sp(v_fake).mean()).item(), rel=1e-14)
    assert jsd.map_loss(v_fake, x_old, t_x).item() == pytest.approx(
        (jsd.cost(x_old, t_x) + sp(-v_fake)).mean().item(), rel=1e-14)


def test_wae_objects_by_hand_and_refuse_wrong_input():
    with pytest.raises(ValueError, match="lam"):
        WAEMMD(-1.0)
    with pytest.raises(ValueError, match="prior_sigma2"):
        WAEGAN(1.0, prior_sigma2=0.0)
    g = torch.Generator().manual_seed(4)
    x, x_rec = torch.randn(5, 1, 2, 2, generator=g, dtype=D), torch.randn(5, 1, 2, 2, generator=g, dtype=D)
    codes, prior = torch.randn(5, 2, generator=g, dtype=D), torch.randn(5, 2, generator=g, dtype=D)
    mmd = WAEMMD(3.0, prior_sigma2=2.0)
    assert torch.equal(mmd.penalty(codes, prior), mmd_imq(codes, prior, 2.0))
    loss, recon = mmd.map_loss(x, x_rec, torch.tensor(0.5, dtype=D))
    assert recon.item() == pytest.approx((x - x_rec).square().sum(dim=(1, 2, 3)).mean().item(), rel=1e-14)
    assert loss.item() == pytest.approx(recon.item() + 1.5, rel=1e-14)
    # WAE-GAN: the discriminator tells prior samples (1) from codes (0); the encoder's penalty is non-saturating
    disc = lambda z: z[:, 0] - z[:, 1]  # noqa: E731 - one logit per point
    gan = WAEGAN(3.0)
    sp = torch.nn.functional.softplus
    want = sp(-disc(prior)).mean() + sp(disc(codes)).mean()
    loss_d = gan.discriminator_loss(disc, codes, prior)
    assert loss_d.item() == pytest.approx(want.item(), rel=1e-12)
    assert gan.js_estimate(loss_d) == pytest.approx(math.log(2) - want.item() / 2)
    assert gan.penalty(codes, prior, disc).item() == pytest.approx(sp(-disc(codes)).mean().item(), rel=1e-12)
    with pytest.raises(ValueError, match="discriminator"):
        gan.penalty(codes, prior)
    assert torch.equal(gan.cost(x, x_rec), quadratic_cost(x, x_rec, 1.0))
