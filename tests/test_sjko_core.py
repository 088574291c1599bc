"""S-JKO's shared pieces: losses, the cost conventions and the data-noise schedule (the conjugates are tested in
test_psi.py, the closed-form Gaussian iterates in test_exact.py)."""

import math

import pytest
import torch

from uotm import sjko
from uotm.losses import jko_step
from uotm.psi import JKO_PSI


def test_cost_conventions():
    a = torch.zeros(3, 4)
    b = torch.ones(3, 4)
    assert torch.allclose(jko_step("kl", 0.5).cost(a, b), torch.full((3,), 4.0))
    assert torch.allclose(jko_step("kl", 0.5, "per_coordinate", 4).cost(a, b), torch.full((3,), 1.0))
    with pytest.raises(ValueError, match="cost_scale"):
        jko_step("kl", 0.5, "pixels")
    with pytest.raises(ValueError, match="step size h"):
        jko_step("kl", 0.0)
    with pytest.raises(ValueError, match="dim"):
        jko_step("kl", 0.5, "per_coordinate")
    with pytest.raises(ValueError, match="dim=4"):
        jko_step("kl", 0.5, "per_coordinate", 4).cost(torch.zeros(3, 5), torch.zeros(3, 5))


def test_losses_by_hand():
    v_real = torch.tensor([0.0, 1.0])
    v_fake = torch.tensor([2.0, -1.0])
    x_old, x_new = torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    kl = jko_step("kl", 1.0).potential_loss(v_real, v_fake)  # no T_old: the cost term is a constant in v
    assert kl.item() == pytest.approx(((math.exp(0) - 1) + (math.exp(-1) - 1)) / 2 + 0.5)
    jsd = jko_step("jsd", 1.0).potential_loss(v_real, v_fake)
    sp = lambda u: math.log1p(math.exp(u))  # noqa: E731
    assert jsd.item() == pytest.approx((sp(0) + sp(-1)) / 2 + (sp(2) + sp(-1)) / 2)
    cost = torch.tensor([1.0, 4.0]) / 2.0  # h = 1, Euclidean
    kl_map = jko_step("kl", 1.0).map_loss(v_fake, x_old, x_new)
    assert kl_map.item() == pytest.approx((cost - v_fake).mean().item())
    expect = (cost + torch.nn.functional.softplus(-v_fake)).mean().item()
    assert jko_step("jsd", 1.0).map_loss(v_fake, x_old, x_new).item() == pytest.approx(expect)
    # S-JKO's softplus is its own conjugate, not UOTM's
    assert jko_step("softplus", 1.0).psi2 is JKO_PSI["softplus"]
    with pytest.raises(ValueError, match="unknown S-JKO loss"):
        jko_step("wasserstein", 1.0)


def test_data_noise_schedule():
    assert sjko.data_noise(0) == pytest.approx(1 / 32)
    assert sjko.data_noise(3) == pytest.approx(1 / 128)
    with pytest.raises(ValueError):
        sjko.data_noise(-1)
