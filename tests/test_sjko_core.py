"""S-JKO's shared pieces: conjugates, losses, the cost conventions and the closed-form Gaussian iterates."""

import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from uotm import sjko


@pytest.mark.parametrize("name", sorted(sjko.SJKO_PSI))
def test_conjugate_matches_numerical_fenchel(name):
    p = sjko.SJKO_PSI[name]
    t = torch.linspace(0, 6, 60001, dtype=torch.float64)
    psi = p.psi(t)
    ok = torch.isfinite(psi)
    for s in (-3.0, -1.0, 0.0, 0.5, 1.5):
        numeric = (s * t[ok] - psi[ok]).max().item()
        assert p.star(torch.tensor(s, dtype=torch.float64)).item() == pytest.approx(numeric, abs=2e-4)
    s = torch.linspace(-3, 2, 11, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(p.star(s).sum(), s)
    assert torch.allclose(g, p.ratio(s.detach()))
    # normalised: Psi*(0) = 0 and (Psi*)'(0) = 1, so nu itself is optimal when v = 0
    assert p.star(torch.zeros((), dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)
    assert p.ratio(torch.zeros((), dtype=torch.float64)).item() == pytest.approx(1.0)


def test_cost_conventions():
    a = torch.zeros(3, 4)
    b = torch.ones(3, 4)
    assert torch.allclose(sjko.jko_step("kl", 0.5).cost(a, b), torch.full((3,), 4.0))
    assert torch.allclose(sjko.jko_step("kl", 0.5, "per_coordinate", 4).cost(a, b), torch.full((3,), 1.0))
    with pytest.raises(ValueError, match="cost_scale"):
        sjko.jko_step("kl", 0.5, "pixels")
    with pytest.raises(ValueError, match="step size h"):
        sjko.jko_step("kl", 0.0)
    with pytest.raises(ValueError, match="dim"):
        sjko.jko_step("kl", 0.5, "per_coordinate")
    with pytest.raises(ValueError, match="dim=4"):
        sjko.jko_step("kl", 0.5, "per_coordinate", 4).cost(torch.zeros(3, 5), torch.zeros(3, 5))


def test_losses_by_hand():
    v_real = torch.tensor([0.0, 1.0])
    v_fake = torch.tensor([2.0, -1.0])
    x_old, x_new = torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    kl = sjko.jko_step("kl", 1.0).potential_loss(v_real, v_fake)  # no T_old: the cost term is a constant in v
    assert kl.item() == pytest.approx(((math.exp(0) - 1) + (math.exp(-1) - 1)) / 2 + 0.5)
    jsd = sjko.jko_step("jsd", 1.0).potential_loss(v_real, v_fake)
    sp = lambda u: math.log1p(math.exp(u))  # noqa: E731
    assert jsd.item() == pytest.approx((sp(0) + sp(-1)) / 2 + (sp(2) + sp(-1)) / 2)
    cost = torch.tensor([1.0, 4.0]) / 2.0  # h = 1, Euclidean
    kl_map = sjko.jko_step("kl", 1.0).map_loss(v_fake, x_old, x_new)
    assert kl_map.item() == pytest.approx((cost - v_fake).mean().item())
    expect = (cost + torch.nn.functional.softplus(-v_fake)).mean().item()
    assert sjko.jko_step("jsd", 1.0).map_loss(v_fake, x_old, x_new).item() == pytest.approx(expect)
    # S-JKO's softplus is its own conjugate, not UOTM's
    assert sjko.jko_step("softplus", 1.0).psi2 is sjko.SJKO_PSI["softplus"]
    with pytest.raises(ValueError, match="unknown S-JKO loss"):
        sjko.jko_step("wasserstein", 1.0)


def test_data_noise_schedule():
    assert sjko.data_noise(0) == pytest.approx(1 / 32)
    assert sjko.data_noise(3) == pytest.approx(1 / 128)
    with pytest.raises(ValueError):
        sjko.data_noise(-1)


def _one_step_by_minimisation(m, s, b, lam, h):
    """1-D KL-JKO step over Gaussians N(m', s'): minimise W2^2/(2h) + KL(N(m',s') | N(b, lam)) numerically."""
    from scipy.optimize import minimize

    def objective(p):
        m2, r2 = p
        s2 = r2 * r2
        w2 = (m2 - m) ** 2 + (r2 - math.sqrt(s)) ** 2
        kl = 0.5 * (s2 / lam + (m2 - b) ** 2 / lam - 1 + math.log(lam / s2))
        return w2 / (2 * h) + kl

    res = minimize(objective, [m, math.sqrt(s)], method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-14})
    return res.x[0], res.x[1] ** 2


def test_gaussian_iterates_one_step_is_the_minimiser():
    means, covs = sjko.gaussian_jko_iterates([0.5], [[2.0]], [2.0], [[0.7]], 0.3, 1)
    m1, s1 = _one_step_by_minimisation(0.5, 2.0, 2.0, 0.7, 0.3)
    assert means[1, 0] == pytest.approx(m1, abs=1e-5)
    assert covs[1, 0, 0] == pytest.approx(s1, abs=1e-5)


def test_gaussian_iterates_converge_and_approach_the_ou_flow():
    b = np.array([2.0, -1.0])
    sigma = np.array([[1.0, 0.6], [0.6, 0.8]])
    means, covs = sjko.gaussian_jko_iterates(np.zeros(2), np.eye(2), b, sigma, 1.0, 60)
    assert np.allclose(means[-1], b, atol=1e-6) and np.allclose(covs[-1], sigma, atol=1e-6)
    h, t = 1e-3, 1.0
    means, covs = sjko.gaussian_jko_iterates(np.zeros(2), np.eye(2), b, sigma, h, int(t / h))
    e = expm(-np.linalg.inv(sigma) * t)
    assert np.allclose(means[-1], b + e @ (np.zeros(2) - b), atol=5e-3)
    assert np.allclose(covs[-1], e @ e.T + sigma - e @ sigma @ e.T, atol=5e-3)
    with pytest.raises(ValueError, match="commute"):
        sjko.gaussian_jko_iterates(np.zeros(2), np.diag([1.0, 2.0]), b, sigma, 1.0, 1)


def _gaussian_flow(K=8, h=1.0):
    b = np.array([2.0, -1.0])
    sigma = np.array([[1.0, 0.6], [0.6, 0.8]])
    means, covs = sjko.gaussian_jko_iterates(np.zeros(2), np.eye(2), b, sigma, h, K)
    return b, sigma, means[1:], covs[1:]


def test_flow_tracking_passes_the_exact_iterates_and_fails_a_jump_to_the_target():
    b, sigma, em, ec = _gaussian_flow()
    n = 10000
    exact = sjko.flow_tracking_errors(em, ec, em, ec, b, sigma, n)
    assert exact.tracks and exact.mean_score == 0 and exact.cov_score == 0
    # a map that jumps straight to nu: its iterates equal nu from step 1 on
    K = len(em)
    jump = sjko.flow_tracking_errors(np.tile(b, (K, 1)), np.tile(sigma, (K, 1, 1)), em, ec, b, sigma, n)
    assert not jump.tracks
    assert jump.mean_ratio[0] > 1 and jump.cov_ratio[0] > 1  # caught at the first step already
    assert jump.mean_score == pytest.approx(1 / jump.fraction)  # error = distance, bound = half of it
    # with the chapter's wider floor of six sampling errors the jump still fails, at the first four steps for the mean
    wide = sjko.flow_tracking_errors(np.tile(b, (K, 1)), np.tile(sigma, (K, 1, 1)), em, ec, b, sigma, n,
                                     noise_multiple=6.0)
    assert not wide.tracks and wide.cov_ratio[0] > 1
    assert np.array_equal(wide.mean_ratio > 1, np.arange(K) < 4)
    # a map that does not move (stays at mu_0 = N(0, I)) fails too
    stuck = sjko.flow_tracking_errors(np.zeros((K, 2)), np.tile(np.eye(2), (K, 1, 1)), em, ec, b, sigma, n)
    assert not stuck.tracks
    # the exact iterates with sampling noise of n points pass
    rng = np.random.default_rng(0)
    noisy_m, noisy_c = [], []
    for m, c in zip(em, ec):
        x = rng.multivariate_normal(m, c, size=n)
        noisy_m.append(x.mean(axis=0))
        noisy_c.append(np.cov(x, rowvar=False))
    noisy = sjko.flow_tracking_errors(noisy_m, noisy_c, em, ec, b, sigma, n)
    assert noisy.tracks, (noisy.mean_ratio, noisy.cov_ratio)
    # a map one step behind the flow (mu_(k-1) at step k) fails at the first steps, where the flow moves most
    lag_m = np.concatenate([np.zeros((1, 2)), em[:-1]])
    lag_c = np.concatenate([np.eye(2)[None], ec[:-1]])
    assert not sjko.flow_tracking_errors(lag_m, lag_c, em, ec, b, sigma, n).tracks


def test_flow_tracking_rejects_bad_input():
    b, sigma, em, ec = _gaussian_flow(K=3)
    with pytest.raises(ValueError, match="learned_means"):
        sjko.flow_tracking_errors(em[:2], ec, em, ec, b, sigma, 100)
    with pytest.raises(ValueError, match="non-finite"):
        sjko.flow_tracking_errors(np.full_like(em, np.nan), ec, em, ec, b, sigma, 100)
    with pytest.raises(ValueError, match="fraction"):
        sjko.flow_tracking_errors(em, ec, em, ec, b, sigma, 100, fraction=1.0)
    with pytest.raises(ValueError, match="n_samples"):
        sjko.flow_tracking_errors(em, ec, em, ec, b, sigma, 1)
    with pytest.raises(ValueError, match="noise_multiple"):
        sjko.flow_tracking_errors(em, ec, em, ec, b, sigma, 100, noise_multiple=-1.0)
