import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from uotm.exact import (MERGE_RTOL, balanced_plan, flow_tracking_errors, gaussian_jko_iterates, kl_uot_plan,
                        merge_margins, monotone_rearrangement, primal_value, pushforward, random_vegan_problem,
                        semi_dual_value, solve_uot, squared_distances, vegan_sides, w2, w2_squared)


def test_balanced_plan_in_1d_is_the_sorted_matching():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(2, 0.5, size=40)
    plan = balanced_plan(x, y)
    mapped = plan.barycentric_map()[:, 0]
    np.testing.assert_allclose(np.sort(mapped), np.sort(y))
    np.testing.assert_allclose(mapped, monotone_rearrangement(x, y, x), atol=1e-12)
    assert w2_squared(x, y) == pytest.approx(np.mean((np.sort(x) - np.sort(y)) ** 2), rel=1e-10)
    assert w2(x, y) == np.sqrt(w2_squared(x, y))


def test_kl_uot_value_is_below_both_trivial_plans():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 2)), rng.normal(3, 1, size=(30, 2))
    for tau in (0.01, 0.3, 3.0):
        plan = kl_uot_plan(x, y, tau)
        assert plan.cost <= tau * w2_squared(x, y) + 1e-9  # the balanced plan is admissible
        assert plan.cost <= 2.0 + 1e-9  # the empty plan costs KL(0|a) + KL(0|b) = 2
    assert kl_uot_plan(x, y, 3.0).plan.sum() < kl_uot_plan(x, y, 0.01).plan.sum()


def test_shares():
    x = np.array([0.0, 1.0])
    y = np.array([0.0, 1.0])
    plan = balanced_plan(x, y)
    assert plan.share_sent_to([False, True]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="target_mask"):
        plan.share_sent_to([True])


def test_bad_clouds_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        w2_squared([0.0, np.nan], [0.0, 1.0])
    with pytest.raises(ValueError, match="dimensional"):
        w2_squared(np.zeros((3, 2)), np.zeros((3, 1)))


def test_semi_dual_solver_matches_pots_solver_where_that_converges_and_certifies_its_gap():
    from uotm.exact import primal_value, semi_dual_value, solve_uot, squared_distances, uot_plan

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(25, 2)), rng.normal(1, 1, size=(30, 2))
    tau = 1.0
    exact = uot_plan(x, y, tau)
    mm = kl_uot_plan(x, y, tau, num_iter=20000)
    assert exact.gap < 1e-6
    assert exact.cost == pytest.approx(mm.cost, rel=1e-5)
    np.testing.assert_allclose(exact.source_marginal, mm.source_marginal, atol=1e-5)
    # weak duality: any potential gives a lower bound, the solver's gives the value
    a, b = np.full(25, 1 / 25), np.full(30, 1 / 30)
    cost = tau * squared_distances(x, y)
    sol = solve_uot(a, b, cost, "chi", "kl")
    v, plan, gap = sol.potential, sol.plan, sol.gap
    assert sol.x is None and sol.y is None and v.shape == (30,)
    assert sol.cost == primal_value(plan, cost, a, b, "chi", "kl")
    assert semi_dual_value(np.zeros(30), cost, a, b, "chi", "kl") <= semi_dual_value(v, cost, a, b, "chi", "kl")
    assert primal_value(plan, cost, a, b, "chi", "kl") - semi_dual_value(v, cost, a, b, "chi", "kl") == \
        pytest.approx(gap, abs=1e-12)
    assert gap < 1e-6
    with pytest.raises(ValueError, match="balanced"):
        solve_uot(a, b, cost, "kl", "linear")


def test_solve_uot_returns_a_plan_with_its_points_and_potential():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 2)), rng.normal(1, 1, size=(9, 2))
    a, b = np.full(12, 1 / 12), np.full(9, 1 / 9)
    cost = 0.5 * squared_distances(x, y)
    sol = solve_uot(a, b, cost, "kl", "kl", x=x, y=y)
    same = solve_uot(a, b, cost, "kl", "kl")
    np.testing.assert_array_equal(sol.plan, same.plan)
    np.testing.assert_array_equal(sol.potential, same.potential)
    assert sol.gap == same.gap and sol.cost == same.cost
    np.testing.assert_array_equal(sol.x, x)
    np.testing.assert_allclose(sol.barycentric_map(), sol.conditional() @ y)
    # uot_plan is solve_uot on uniform weights and the cost tau |x - y|^2
    from uotm.exact import uot_plan

    wrapped = uot_plan(x, y, 0.5)
    np.testing.assert_array_equal(wrapped.plan, sol.plan)
    assert wrapped.cost == sol.cost and wrapped.gap == sol.gap
    with pytest.raises(ValueError, match="no target points"):
        same.barycentric_map()
    with pytest.raises(ValueError, match="one point per weight"):
        solve_uot(a, b, cost, x=x[:5])


def test_solve_uot_chi_survives_a_round_that_empties_one_marginal():
    """For chi at tau = 0.3 on a ring, the first (heavily smoothed) round ends where the source ratio vanishes
    everywhere; the solver must go on to sharper rounds and still certify its answer."""
    rng = np.random.default_rng(0)
    g = np.linspace(-4, 4, 13)
    x = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    a = np.exp(-0.5 * (x**2).sum(1))
    a /= a.sum()
    ang = np.arange(8) * np.pi / 4
    centres = np.stack([2 * np.cos(ang), 2 * np.sin(ang)], 1)
    ring = [c + 0.14 * rng.normal(size=(8, 2)) for c in centres]
    y = np.concatenate(ring + [[4.5, 0] + 0.1 * rng.normal(size=(4, 2))])
    b = np.full(len(y), 1.0 / len(y))
    cost = 0.3 * squared_distances(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        sol = solve_uot(a, b, cost, "chi", "chi")
    v, plan, gap = sol.potential, sol.plan, sol.gap
    assert 0 <= gap < 1e-6
    assert 0.5 < plan.sum() < 1.0
    assert np.isclose(primal_value(plan, cost, a, b, "chi", "chi") - semi_dual_value(v, cost, a, b, "chi", "chi"), gap)


@pytest.mark.parametrize("psi", ["kl", "chi", "softplus"])
def test_maximise_semi_dual_agrees_with_solve_uot(psi):
    """SLSQP on the full dual and solve_uot's annealed semi-dual reach the same value J(v) (to 1e-8, on values near
    2). The potentials themselves are compared only for KL, whose strictly convex conjugate makes the maximiser
    unique: chi's conjugate is flat below -2, so its maximisers may differ where a ratio vanishes."""
    from uotm.exact import maximise_semi_dual

    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(7, 2)), rng.normal(0.8, 0.7, size=(9, 2))
    a, b = rng.uniform(0.2, 1.0, 7), rng.uniform(0.2, 1.0, 9)
    b *= 1.5 / b.sum()  # unequal masses
    cost = squared_distances(x, y)
    v_dual = maximise_semi_dual(a, b, cost, psi, psi)
    sol = solve_uot(a, b, cost, psi, psi, gap_tol=1e-12)
    v_semi, plan = sol.potential, sol.plan
    j_dual = semi_dual_value(v_dual, cost, a, b, psi, psi)
    assert v_dual.shape == (9,)
    assert j_dual == pytest.approx(semi_dual_value(v_semi, cost, a, b, psi, psi), abs=1e-8)
    assert j_dual <= primal_value(plan, cost, a, b, psi, psi) + 1e-12  # weak duality
    if psi == "kl":
        np.testing.assert_allclose(v_dual, v_semi, atol=1e-4)


def test_maximise_semi_dual_refuses_bad_shapes_and_weights():
    from uotm.exact import maximise_semi_dual

    a, b, cost = np.full(3, 1 / 3), np.full(4, 1 / 4), np.ones((3, 4))
    with pytest.raises(ValueError, match="shape"):
        maximise_semi_dual(a, b, cost.T)
    with pytest.raises(ValueError, match="shape"):
        maximise_semi_dual(a[:, None], b, cost)
    for bad in (np.array([0.5, 0.0, 0.5]), np.array([0.5, -0.1, 0.6]), np.array([0.5, np.nan, 0.5])):
        with pytest.raises(ValueError, match="positive and finite"):
            maximise_semi_dual(bad, b, cost)
    with pytest.raises(ValueError, match="NaN or infinite"):
        maximise_semi_dual(a, b, np.where(np.eye(3, 4) > 0, np.inf, 1.0))
    with pytest.raises(ValueError, match="unknown Psi"):
        maximise_semi_dual(a, b, cost, "nope")


def test_quantile_bin_means_are_the_w2_best_equal_weight_points():
    from uotm.exact import quantile_bin_means

    rng = np.random.default_rng(5)
    s = rng.normal(size=600)
    srt = np.sort(s)
    # bins of whole points: the means of consecutive blocks of the sorted sample
    np.testing.assert_allclose(quantile_bin_means(s, 20), srt.reshape(20, 30).mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(quantile_bin_means(s, 600), srt, atol=1e-12)
    # bins that split points: the mean is kept, and the points are sorted
    m = quantile_bin_means(s, 7)
    assert m.shape == (7,) and np.all(np.diff(m) > 0)
    assert np.mean(m) == pytest.approx(np.mean(s), abs=1e-12)

    def w2_sq_to_sample(points):  # 600 = 20 * 30: each point stands for 30 consecutive sorted samples
        return float(np.mean((srt - np.repeat(points, 600 // len(points))) ** 2))

    best = w2_sq_to_sample(quantile_bin_means(s, 20))
    medians = np.quantile(s, (np.arange(20) + 0.5) / 20)  # the W1-best points, not the W2-best
    assert best < w2_sq_to_sample(medians)
    for _ in range(20):  # no perturbation of the bin means comes closer
        assert best <= w2_sq_to_sample(quantile_bin_means(s, 20) + 0.01 * rng.normal(size=20)) + 1e-15


def test_quantile_bin_means_refuses_bad_input():
    from uotm.exact import quantile_bin_means

    for bad_n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            quantile_bin_means([0.0, 1.0], bad_n)
    with pytest.raises(ValueError, match="empty"):
        quantile_bin_means([], 3)
    with pytest.raises(ValueError, match="NaN"):
        quantile_bin_means([0.0, np.nan, 1.0], 2)


def test_check_reweighting_bound_passes_the_optimum_and_fails_wrong_plans():
    """Claim 3 of Theorem 3.3 holds at the solver's optimum; a plan that is not the optimum (the balanced plan, the
    optimum doubled), a potential that does not certify it, or a cost that breaks the hypothesis c >= 0 fails."""
    import ot

    from uotm.exact import check_reweighting_bound

    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(12, 2)), rng.normal(1.5, 0.7, size=(15, 2))
    a, b = np.full(12, 1 / 12), np.full(15, 1 / 15)
    for tau in (1e-3, 0.1, 3.0):
        cost = tau * squared_distances(x, y)
        sol = solve_uot(a, b, cost, "kl", "kl", gap_tol=1e-12)
        v, plan, gap = sol.potential, sol.plan, sol.gap
        found = check_reweighting_bound(v, plan, cost, a, b)
        assert 0 < found.ratio < 1 and found.gap == pytest.approx(gap, abs=1e-12)
        balanced = ot.emd(a, b, cost)  # D = 0 <= the bound, but not the optimal plan: its gap is large
        with pytest.raises(AssertionError, match="not certified optimal"):
            check_reweighting_bound(v, balanced, cost, a, b)
        if tau > 0.1:
            continue  # at tau = 3 the optimal plan is nearly empty: doubling it, or moving v, costs little
        with pytest.raises(AssertionError, match="not certified optimal"):  # twice the optimal plan
            check_reweighting_bound(v, 2 * plan, cost, a, b)
        with pytest.raises(AssertionError, match="not certified optimal"):  # the right plan, a wrong potential
            check_reweighting_bound(v + 0.3 * rng.normal(size=15), plan, cost, a, b)
    # the theorem needs c >= 0: with the cost tau C - 1 the certified optimum grows its marginals and breaks the bound
    cost = 0.1 * squared_distances(x, y) - 1.0
    sol = solve_uot(a, b, cost, "kl", "kl", gap_tol=1e-12)
    v, plan = sol.potential, sol.plan
    with pytest.raises(AssertionError, match="claim 3 fails"):
        check_reweighting_bound(v, plan, cost, a, b)
    with pytest.raises(ValueError, match="equal mass"):
        check_reweighting_bound(v, plan, cost, a, 2 * b)


# ---------------------------------------------------------------------------------------------------------------
# The JKO flow between Gaussians


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
    means, covs = gaussian_jko_iterates([0.5], [[2.0]], [2.0], [[0.7]], 0.3, 1)
    m1, s1 = _one_step_by_minimisation(0.5, 2.0, 2.0, 0.7, 0.3)
    assert means[1, 0] == pytest.approx(m1, abs=1e-5)
    assert covs[1, 0, 0] == pytest.approx(s1, abs=1e-5)


def test_gaussian_iterates_converge_and_approach_the_ou_flow():
    b = np.array([2.0, -1.0])
    sigma = np.array([[1.0, 0.6], [0.6, 0.8]])
    means, covs = gaussian_jko_iterates(np.zeros(2), np.eye(2), b, sigma, 1.0, 60)
    assert np.allclose(means[-1], b, atol=1e-6) and np.allclose(covs[-1], sigma, atol=1e-6)
    h, t = 1e-3, 1.0
    means, covs = gaussian_jko_iterates(np.zeros(2), np.eye(2), b, sigma, h, int(t / h))
    e = expm(-np.linalg.inv(sigma) * t)
    assert np.allclose(means[-1], b + e @ (np.zeros(2) - b), atol=5e-3)
    assert np.allclose(covs[-1], e @ e.T + sigma - e @ sigma @ e.T, atol=5e-3)
    with pytest.raises(ValueError, match="commute"):
        gaussian_jko_iterates(np.zeros(2), np.diag([1.0, 2.0]), b, sigma, 1.0, 1)


def _gaussian_flow(K=8, h=1.0):
    b = np.array([2.0, -1.0])
    sigma = np.array([[1.0, 0.6], [0.6, 0.8]])
    means, covs = gaussian_jko_iterates(np.zeros(2), np.eye(2), b, sigma, h, K)
    return b, sigma, means[1:], covs[1:]


def test_flow_tracking_passes_the_exact_iterates_and_fails_a_jump_to_the_target():
    b, sigma, em, ec = _gaussian_flow()
    n = 10000
    exact = flow_tracking_errors(em, ec, em, ec, b, sigma, n)
    assert exact.tracks and exact.mean_score == 0 and exact.cov_score == 0
    # a map that jumps straight to nu: its iterates equal nu from step 1 on
    K = len(em)
    jump = flow_tracking_errors(np.tile(b, (K, 1)), np.tile(sigma, (K, 1, 1)), em, ec, b, sigma, n)
    assert not jump.tracks
    assert jump.mean_ratio[0] > 1 and jump.cov_ratio[0] > 1  # caught at the first step already
    assert jump.mean_score == pytest.approx(1 / jump.fraction)  # error = distance, bound = half of it
    # with the chapter's wider floor of six sampling errors the jump still fails, at the first four steps for the mean
    wide = flow_tracking_errors(np.tile(b, (K, 1)), np.tile(sigma, (K, 1, 1)), em, ec, b, sigma, n,
                                noise_multiple=6.0)
    assert not wide.tracks and wide.cov_ratio[0] > 1
    assert np.array_equal(wide.mean_ratio > 1, np.arange(K) < 4)
    # a map that does not move (stays at mu_0 = N(0, I)) fails too
    stuck = flow_tracking_errors(np.zeros((K, 2)), np.tile(np.eye(2), (K, 1, 1)), em, ec, b, sigma, n)
    assert not stuck.tracks
    # the exact iterates with sampling noise of n points pass
    rng = np.random.default_rng(0)
    noisy_m, noisy_c = [], []
    for m, c in zip(em, ec):
        x = rng.multivariate_normal(m, c, size=n)
        noisy_m.append(x.mean(axis=0))
        noisy_c.append(np.cov(x, rowvar=False))
    noisy = flow_tracking_errors(noisy_m, noisy_c, em, ec, b, sigma, n)
    assert noisy.tracks, (noisy.mean_ratio, noisy.cov_ratio)
    # a map one step behind the flow (mu_(k-1) at step k) fails at the first steps, where the flow moves most
    lag_m = np.concatenate([np.zeros((1, 2)), em[:-1]])
    lag_c = np.concatenate([np.eye(2)[None], ec[:-1]])
    assert not flow_tracking_errors(lag_m, lag_c, em, ec, b, sigma, n).tracks


def test_flow_tracking_rejects_bad_input():
    b, sigma, em, ec = _gaussian_flow(K=3)
    with pytest.raises(ValueError, match="learned_means"):
        flow_tracking_errors(em[:2], ec, em, ec, b, sigma, 100)
    with pytest.raises(ValueError, match="non-finite"):
        flow_tracking_errors(np.full_like(em, np.nan), ec, em, ec, b, sigma, 100)
    with pytest.raises(ValueError, match="fraction"):
        flow_tracking_errors(em, ec, em, ec, b, sigma, 100, fraction=1.0)
    with pytest.raises(ValueError, match="n_samples"):
        flow_tracking_errors(em, ec, em, ec, b, sigma, 1)
    with pytest.raises(ValueError, match="noise_multiple"):
        flow_tracking_errors(em, ec, em, ec, b, sigma, 100, noise_multiple=-1.0)


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
