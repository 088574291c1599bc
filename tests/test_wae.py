import math

import numpy as np
import pytest
import torch

from uotm.losses import WAE_SCALES, imq_kernel, mmd_imq
from uotm.wae import (MERGE_RTOL, ConvDecoder, ConvEncoder, WAEConfig, merge_margins, pushforward,
                      random_vegan_problem, train_wae, vegan_sides)


def _normal(n, d, seed, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


# ---------------------------------------------------------------------------------------------------------------
# MMD


def test_imq_kernel_by_hand():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    # one scale s = 1, d = 1, sigma2 = 1: C = 2, k = 2 / (2 + r^2)
    k = imq_kernel(x, y, 1.0, scales=(1.0,))
    assert torch.allclose(k, torch.tensor([[1.0, 1 / 3], [2 / 3, 2 / 3]], dtype=torch.float64))
    # all seven scales: the diagonal of k(x, x) is 7, and k is their sum
    kk = imq_kernel(x, x)
    assert torch.allclose(kk.diagonal(), torch.full((2,), 7.0, dtype=torch.float64))
    assert kk[0, 1].item() == pytest.approx(sum(2 * s / (2 * s + 1) for s in WAE_SCALES))


def test_unbiased_mmd_by_hand_can_be_negative():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    # off-diagonal means: k(0,1) = 2/3 and k(0,2) = 1/3; cross mean (1 + 1/3 + 2/3 + 2/3) / 4 = 2/3
    assert mmd_imq(x, y, scales=(1.0,)).item() == pytest.approx(2 / 3 + 1 / 3 - 2 * 2 / 3)


def test_unbiased_mmd_against_a_loop():
    x, y = _normal(7, 3, 0), _normal(5, 3, 1, 0.5)

    def k(u, v):
        c = 2 * 3 * 2.0
        return sum(c * s / (c * s + float(((u - v) ** 2).sum())) for s in WAE_SCALES)

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    assert mmd_imq(x, y, sigma2=2.0).item() == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_mmd_near_zero_for_one_law_and_grows_with_a_shift():
    same = [mmd_imq(_normal(200, 2, 2 * k), _normal(200, 2, 2 * k + 1)).item() for k in range(20)]
    # unbiased: the estimates straddle 0 and their mean is within a few standard errors of 0
    assert min(same) < 0 < max(same)
    assert abs(np.mean(same)) < 3 * np.std(same) / math.sqrt(len(same)) + 1e-4
    shifted = [mmd_imq(_normal(200, 2, 0), _normal(200, 2, 1, s)).item() for s in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(shifted, shifted[1:]))
    assert shifted[0] > max(same)


def test_mmd_rejects_bad_input():
    with pytest.raises(ValueError, match="n, m >= 2"):
        mmd_imq(torch.zeros(1, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="same d"):
        mmd_imq(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="sigma2"):
        mmd_imq(torch.zeros(3, 2), torch.zeros(3, 2), sigma2=0.0)
    with pytest.raises(ValueError, match="scales"):
        mmd_imq(torch.zeros(3, 2), torch.zeros(3, 2), scales=(1.0, -1.0))


# ---------------------------------------------------------------------------------------------------------------
# VEGAN


@pytest.mark.parametrize("collapse", [0, 3, 10])
def test_vegan_sides_agree_on_random_problems(collapse):
    for seed in range(15):
        x, z, a, b, g = random_vegan_problem(12 + seed, 20, seed, collapse=collapse)
        check = vegan_sides(x, z, g, a, b)
        assert check.relative_error < 1e-6, (seed, check.w_data, check.w_latent)
        assert check.n_pushed_atoms == 20 - collapse and check.injective == (collapse == 0)
        # the latent plan is a Q(Z|X) with Q_Z = P_Z
        assert np.allclose(check.plan_latent.sum(0), b) and np.allclose(check.plan_latent.sum(1), a)


def test_dropping_the_constraint_goes_below_wc():
    x, z, a, b, g = random_vegan_problem(30, 30, 0)
    check = vegan_sides(x, z, g, a, b)
    nearest = (a * check.cost.min(1)).sum()  # Q(Z|x) = the atom whose image is nearest: Q_Z != P_Z
    independent = a @ check.cost @ b  # Q(Z|x) = P_Z: a coupling that keeps the constraint
    assert nearest < check.w_data - 1e-3
    assert independent >= check.w_latent - 1e-12


def test_vegan_takes_a_module_or_the_pushed_points():
    x, z, a, b, _ = random_vegan_problem(8, 6, 1)
    net = torch.nn.Linear(2, 2).double()
    gz = net(torch.as_tensor(z)).detach().numpy()
    one, two = vegan_sides(x, z, net, a, b), vegan_sides(x, z, gz, a, b)
    assert one.w_data == pytest.approx(two.w_data) and one.relative_error < 1e-6


def test_pushforward_merges_equal_points():
    points, weights, index = pushforward(np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0]]), np.array([0.2, 0.3, 0.5]))
    assert len(points) == 2 and np.allclose(weights.sum(), 1.0)
    assert weights[index[0]] == pytest.approx(0.7) and index[0] == index[2]
    assert np.array_equal(points, [[1.0, 0.0], [2.0, 0.0]])  # in the order of first appearance


def test_pushforward_merges_to_a_relative_tolerance():
    base = np.array([[0.7, -1.3], [2.1, 0.4], [-0.9, 1.8]])
    b = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
    # rounding-level differences (as two rows of a matrix product can give): merged
    close = np.vstack([base, base[0] + [1e-15, -2e-15], base[2] + [0.0, 5.6e-16]])
    assert not np.array_equal(close[3], close[0]) and len(np.unique(close, axis=0)) == 5  # bit equality fails
    points, weights, index = pushforward(close, b)
    assert len(points) == 3 and list(index) == [0, 1, 2, 0, 2]
    assert weights == pytest.approx([0.25, 0.2, 0.55])
    # differences above the tolerance (1e-9 times the scale 2.1): kept apart, however small
    for gap in (1e-7, 1e-8, 1e-3):
        apart = np.vstack([base, base[0] + [gap, 0.0], base[2] - [0.0, gap]])
        assert len(pushforward(apart, b)[0]) == 5, gap
    # the tolerance is relative: the same rounding-level offsets on points a million times larger are merged, and
    # an offset of 1e-7 is merged there (below 1e-9 * 2.1e6) but not at scale 1 (above)
    big = 1e6 * base
    assert len(pushforward(np.vstack([big, big[0] + [1e-9, 0.0], big[2] + [0.0, 1e-7]]), b)[0]) == 3
    # rtol = 0 is bit equality, and a looser rtol merges more
    assert len(pushforward(close, b, rtol=0.0)[0]) == 5
    assert len(pushforward(np.vstack([base, base[0] + [1e-7, 0.0]]), b[:4], rtol=1e-6)[0]) == 3


def test_pushforward_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        pushforward(np.zeros((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        pushforward(np.array([[0.0, np.nan]]), np.ones(1))
    with pytest.raises(ValueError, match="rtol"):
        pushforward(np.zeros((2, 2)), np.ones(2), rtol=-1e-9)


def test_merge_margins_tell_a_clear_merge_from_a_close_call():
    base = np.array([[0.5, -1.0], [2.0, 0.25], [-1.5, 1.0]])  # scale 2
    close = np.vstack([base, base[0] + [1e-15, 0.0]])
    spread, separation = merge_margins(close)
    assert 0 < spread < 1e-15 and separation == pytest.approx(1.5 / 2)  # rows 0 and 1, max-norm
    # the chapter's check (spread far below the tolerance, separation far above) passes here ...
    assert spread < 1e-3 * MERGE_RTOL and separation > 1e3 * MERGE_RTOL
    # ... and fails for a merge that decided something close: an offset of 1e-10 merged at rtol 1e-9 ...
    spread, _ = merge_margins(np.vstack([base, base[0] + [2e-10, 0.0]]))
    assert spread == pytest.approx(1e-10) and not spread < 1e-3 * MERGE_RTOL
    # ... or distinct points within a hair of the threshold
    _, separation = merge_margins(np.vstack([base, base[0] + [4e-9, 0.0]]))
    assert separation == pytest.approx(2e-9) and not separation > 1e3 * MERGE_RTOL
    # nothing merged, one point
    assert merge_margins(base)[0] == 0.0 and merge_margins(base[:1])[1] == math.inf


def test_vegan_counts_a_collapse_despite_rounding():
    """The chapter's count of non-injective decoders: images of mirrored atoms that differ by rounding only are one
    atom of G#P_Z, and the VEGAN sides still agree; with an offset above the tolerance they are two atoms."""
    x, z, a, b, g = random_vegan_problem(15, 12, 3, collapse=4)
    gz = g(z)
    noisy = gz.copy()
    noisy[8:] += 1e-15 * np.sign(noisy[8:])  # one ulp or so on the collapsed copies
    assert len(np.unique(noisy, axis=0)) == 12
    check = vegan_sides(x, z, noisy, a, b)
    assert check.n_pushed_atoms == 8 and not check.injective and check.relative_error < 1e-6
    apart = gz.copy()
    apart[8:] += 1e-6
    assert vegan_sides(x, z, apart, a, b).injective
    assert vegan_sides(x, z, g, a, b).n_pushed_atoms == 8


def test_vegan_rejects_bad_input():
    x, z, a, b, g = random_vegan_problem(5, 4, 0)
    with pytest.raises(ValueError, match="shape"):
        vegan_sides(x, z, g, a[:3], b)
    with pytest.raises(ValueError, match="non-negative"):
        vegan_sides(x, z, g, -a, b)
    with pytest.raises(ValueError, match="NaN"):
        vegan_sides(np.full((3, 2), np.nan), z, g)
    with pytest.raises(ValueError, match="one point of R"):
        vegan_sides(x, z, lambda u: u[:, :1])
    with pytest.raises(ValueError, match="decoder must be"):
        vegan_sides(x, z, 3)
    with pytest.raises(ValueError, match="collapse"):
        random_vegan_problem(5, 4, 0, collapse=3)


# ---------------------------------------------------------------------------------------------------------------
# training


SMALL = dict(data="8gaussians", num_data=512, batch_size=64, steps=150, hidden=32, num_blocks=1, log_every=10)


def test_short_2d_run_reduces_the_loss():
    run = train_wae(WAEConfig(**SMALL, lam=10.0), progress=False)
    first, last = run.metrics[0], run.metrics[-1]
    assert last["loss"] < 0.5 * first["loss"] and last["recon"] < first["recon"]
    assert run.sample(7).shape == (7, 2) and run.reconstruct(run.data[:5]).shape == (5, 2)


def test_runs_repeat_with_a_seed_and_leave_the_global_state_alone():
    cfg = WAEConfig(**dict(SMALL, steps=20), encoder="gaussian")
    state = torch.get_rng_state()
    one, two = train_wae(cfg, progress=False), train_wae(cfg, progress=False)
    assert torch.equal(state, torch.get_rng_state())
    assert one.metrics == [dict(r, seconds=s["seconds"]) for r, s in zip(two.metrics, one.metrics)]
    assert torch.equal(one.sample(50, seed=3), two.sample(50, seed=3))
    other = train_wae(WAEConfig(**dict(SMALL, steps=20, seed=1), encoder="gaussian"), progress=False)
    assert not torch.equal(one.sample(50, seed=3), other.sample(50, seed=3))


def test_wae_gan_with_a_gaussian_encoder_runs():
    run = train_wae(WAEConfig(**dict(SMALL, steps=20), penalty="gan", encoder="gaussian"), progress=False)
    assert run.discriminator is not None and {"recon", "penalty", "mmd", "loss"} <= set(run.metrics[-1])
    assert all(math.isfinite(r["loss"]) for r in run.metrics)


def test_conv_networks_and_a_digits_step(tmp_path):
    enc, dec = ConvEncoder(8, 8, stochastic=True), ConvDecoder(8, 8)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert enc(x).shape == (3, 8) and dec(enc(x)).shape == (3, 1, 16, 16)
    assert dec(enc(x)).abs().max() <= 1
    run = train_wae(WAEConfig(data="digits", z_dim=4, width=4, steps=3, batch_size=16, log_every=1,
                              data_root=str(tmp_path)), progress=False)
    assert run.data.shape == (1500, 1, 16, 16) and run.sample(2).shape == (2, 1, 16, 16)


@pytest.mark.parametrize("change, message", [
    (dict(encoder="vae"), "unknown encoder"),
    (dict(penalty="kl"), "unknown penalty"),
    (dict(lam=-1.0), "lam"),
    (dict(lam=float("nan")), "lam"),
    (dict(batch_size=1), "at least 2"),
    (dict(steps=0), "steps"),
    (dict(lr_map=0.0), "lr_map"),
    (dict(prior_sigma2=-1.0), "prior_sigma2"),
    (dict(data="spiral"), "unknown distribution"),
    (dict(data="noise"), "prior itself"),
    (dict(num_data=32), "fewer than the batch size"),
    (dict(data="digits", batch_size=2000), "1500 images"),
])
def test_config_errors(change, message):
    with pytest.raises(ValueError, match=message):
        WAEConfig(**dict(SMALL, **change)).validate()


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown WAE config keys"):
        WAEConfig.from_dict({"lambda": 1.0})
