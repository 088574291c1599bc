import numpy as np
import pytest

from uotm.exact import (balanced_plan, kl_uot_plan, monotone_rearrangement, primal_value, semi_dual_value, solve_uot,
                        squared_distances, w2_squared)


def test_balanced_plan_in_1d_is_the_sorted_matching():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=40), rng.normal(2, 0.5, size=40)
    plan = balanced_plan(x, y)
    mapped = plan.barycentric_map()[:, 0]
    np.testing.assert_allclose(np.sort(mapped), np.sort(y))
    np.testing.assert_allclose(mapped, monotone_rearrangement(x, y, x), atol=1e-12)
    assert w2_squared(x, y) == pytest.approx(np.mean((np.sort(x) - np.sort(y)) ** 2), rel=1e-10)


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
    v, plan, gap = solve_uot(a, b, cost, "chi", "kl")
    assert semi_dual_value(np.zeros(30), cost, a, b, "chi", "kl") <= semi_dual_value(v, cost, a, b, "chi", "kl")
    assert primal_value(plan, cost, a, b, "chi", "kl") - semi_dual_value(v, cost, a, b, "chi", "kl") == \
        pytest.approx(gap, abs=1e-12)
    assert gap < 1e-6
    with pytest.raises(ValueError, match="balanced"):
        solve_uot(a, b, cost, "kl", "linear")


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
        v, plan, gap = solve_uot(a, b, cost, "chi", "chi")
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
    v_semi, plan, _ = solve_uot(a, b, cost, psi, psi, gap_tol=1e-12)
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
        v, plan, gap = solve_uot(a, b, cost, "kl", "kl", gap_tol=1e-12)
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
    v, plan, gap = solve_uot(a, b, cost, "kl", "kl", gap_tol=1e-12)
    with pytest.raises(AssertionError, match="claim 3 fails"):
        check_reweighting_bound(v, plan, cost, a, b)
    with pytest.raises(ValueError, match="equal mass"):
        check_reweighting_bound(v, plan, cost, a, 2 * b)
