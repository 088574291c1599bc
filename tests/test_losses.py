import math

import pytest
import torch

from uotm.losses import map_loss, potential_loss, quadratic_cost, r1_penalty, source_gradient_penalty

D = torch.float64


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
