"""S-JKO's shared pieces: losses, the cost conventions and the data-noise schedule (the conjugates are tested in
test_psi.py, the closed-form Gaussian iterates in test_exact.py)."""

import math

import pytest
import torch

from uotm import sjko


def test_cost_conventions():
    a = torch.zeros(3, 4)
    b = torch.ones(3, 4)
    assert torch.allclose(sjko.jko_cost(a, b, 0.5), torch.full((3,), 4.0))
    assert torch.allclose(sjko.jko_cost(a, b, 0.5, "per_coordinate"), torch.full((3,), 1.0))
    with pytest.raises(ValueError, match="cost_scale"):
        sjko.jko_cost(a, b, 0.5, "pixels")
    with pytest.raises(ValueError, match="step size h"):
        sjko.jko_cost(a, b, 0.0)


def test_losses_by_hand():
    v_real = torch.tensor([0.0, 1.0])
    v_fake = torch.tensor([2.0, -1.0])
    x_old, x_new = torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    kl = sjko.potential_loss(v_real, v_fake, "kl")
    assert kl.item() == pytest.approx(((math.exp(0) - 1) + (math.exp(-1) - 1)) / 2 + 0.5)
    jsd = sjko.potential_loss(v_real, v_fake, "jsd")
    sp = lambda u: math.log1p(math.exp(u))  # noqa: E731
    assert jsd.item() == pytest.approx((sp(0) + sp(-1)) / 2 + (sp(2) + sp(-1)) / 2)
    cost = torch.tensor([1.0, 4.0]) / 2.0  # h = 1, Euclidean
    assert sjko.map_loss(v_fake, x_old, x_new, 1.0).item() == pytest.approx((cost - v_fake).mean().item())
    expect = (cost + torch.nn.functional.softplus(-v_fake)).mean().item()
    assert sjko.map_loss(v_fake, x_old, x_new, 1.0, loss="jsd").item() == pytest.approx(expect)
    with pytest.raises(ValueError, match="unknown S-JKO loss"):
        sjko.potential_loss(v_real, v_fake, "wasserstein")


def test_data_noise_schedule():
    assert sjko.data_noise(0) == pytest.approx(1 / 32)
    assert sjko.data_noise(3) == pytest.approx(1 / 128)
    with pytest.raises(ValueError):
        sjko.data_noise(-1)
