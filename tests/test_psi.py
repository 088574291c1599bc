import numpy as np
import pytest
import torch
from scipy.special import xlogy

from uotm.psi import JKO_PSI, PSI, PSI_NAMES, SOFTPLUS_JKO, get_psi

S = np.linspace(-6.0, 3.0, 901)

CLOSED_FORMS = {
    "linear": lambda s: s,
    "kl": lambda s: np.exp(s) - 1.0,
    "chi": lambda s: np.maximum(s, -2.0) + 0.25 * np.maximum(s, -2.0) ** 2,
    "softplus": lambda s: np.log1p(np.exp(s)),
}


def test_names_are_the_four_of_the_paper():
    assert set(PSI_NAMES) == {"linear", "kl", "chi", "softplus"}


@pytest.mark.parametrize("name", PSI_NAMES)
def test_star_matches_closed_form(name):
    np.testing.assert_allclose(get_psi(name).star(S), CLOSED_FORMS[name](S), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", PSI_NAMES)
def test_star_is_convex_and_non_decreasing(name):
    f = get_psi(name).star(S)
    assert np.all(np.diff(f) >= -1e-12)
    assert np.all(np.diff(f, 2) >= -1e-10)


@pytest.mark.parametrize("name", PSI_NAMES)
def test_ratio_is_the_derivative_of_star(name):
    s = torch.tensor(S[S != -2.0], dtype=torch.float64, requires_grad=True)  # chi has a kink at -2
    psi = get_psi(name)
    (grad,) = torch.autograd.grad(psi.star(s).sum(), s)
    np.testing.assert_allclose(psi.ratio(s.detach()).numpy(), grad.numpy(), rtol=1e-12, atol=1e-12)
    assert np.all(psi.ratio(S) >= 0)  # a density ratio


@pytest.mark.parametrize("name", ["kl", "chi", "softplus"])
def test_star_is_the_fenchel_conjugate_of_psi(name):
    psi = get_psi(name)
    t = np.linspace(0.0, 1.0 if name == "softplus" else 30.0, 300_001)
    s = np.linspace(-4.0, 2.5, 27)
    sup = np.max(s[:, None] * t[None, :] - psi.psi(t)[None, :], axis=1)
    np.testing.assert_allclose(sup, psi.star(s), atol=1e-6)


@pytest.mark.parametrize("name", PSI_NAMES)
def test_psi_vanishes_at_one(name):
    assert get_psi(name).psi(1.0) == pytest.approx(0.0, abs=1e-15)


def test_divergences_of_discrete_measures():
    mu = np.array([0.2, 0.3, 0.5])
    pi = np.array([0.1, 0.3, 0.6])
    kl = np.sum(pi * np.log(pi / mu) - pi + mu)
    assert get_psi("kl").divergence(pi, mu) == pytest.approx(kl, rel=1e-12)
    assert get_psi("chi").divergence(pi, mu) == pytest.approx(np.sum((pi - mu) ** 2 / mu), rel=1e-12)
    assert get_psi("linear").divergence(mu, mu) == 0.0
    assert get_psi("linear").divergence(pi, mu) == np.inf
    with pytest.raises(ValueError, match="shape"):
        get_psi("kl").divergence(pi[:2], mu)


def test_tensor_in_tensor_out_and_float_in_float_out():
    psi = get_psi("kl")
    assert isinstance(psi.star(torch.zeros(3)), torch.Tensor)
    assert isinstance(psi.star(0.5), float)
    assert psi(0.0) == 0.0


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_psi("hellinger")
    for name in PSI_NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", sorted(JKO_PSI))
def test_jko_conjugate_matches_numerical_fenchel(name):
    p = JKO_PSI[name]
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


def test_the_two_softplus_conjugates_are_apart():
    """S-JKO's softplus is its own conjugate, named apart, out of the UOTM table; UOTM's is not normalised."""
    assert JKO_PSI["softplus"] is SOFTPLUS_JKO and SOFTPLUS_JKO.name == "softplus_jko"
    assert "softplus_jko" not in PSI and SOFTPLUS_JKO not in PSI.values()
    assert JKO_PSI["kl"] is PSI["kl"] and JKO_PSI["chi"] is PSI["chi"]
    uotm = get_psi("softplus")
    assert uotm.star(0.0) == pytest.approx(np.log(2.0)) and uotm.ratio(0.0) == pytest.approx(0.5)
    assert SOFTPLUS_JKO.star(0.0) == pytest.approx(0.0, abs=1e-15) and SOFTPLUS_JKO.ratio(0.0) == pytest.approx(1.0)
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(SOFTPLUS_JKO.psi(t), xlogy(t, t) + xlogy(2 - t, 2 - t), atol=1e-12)
