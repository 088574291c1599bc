"""uotm.book: claims about trained networks stop a page when they fail, are only measured when disabled, and are
recorded for ci/seeds.py; glue names are checked; Wilson's interval of a counted share."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from uotm.book import CLAIMS_LOG_ENV, CLAIMS_SOFT_ENV, Claims, glue, markdown_table, read_claims_log, wilson


@pytest.fixture(autouse=True)
def _no_claims_env(monkeypatch):
    monkeypatch.delenv(CLAIMS_LOG_ENV, raising=False)
    monkeypatch.delenv(CLAIMS_SOFT_ENV, raising=False)


def test_a_claim_that_holds_returns_its_value():
    claims = Claims()
    assert claims.below("err", np.float64(0.1), 0.25) == pytest.approx(0.1)
    assert claims.above("gain", torch.tensor(3.0), 1.0) == pytest.approx(3.0)
    assert [c.holds for c in claims.made] == [True, True]
    assert claims.failed() == []


@pytest.mark.parametrize("method, value, bound", [("below", 0.3, 0.25), ("above", 0.21, 0.5), ("below", 0.25, 0.25),
                                                  ("below", math.nan, 1.0), ("above", math.nan, 0.0)])
def test_a_failing_claim_stops_the_page_with_its_name_and_numbers(method, value, bound):
    claims = Claims()
    with pytest.raises(AssertionError, match="claim 'share' does not hold") as err:
        getattr(claims, method)("share", value, bound, "the balanced network collapses")
    assert "the balanced network collapses" in str(err.value)
    assert claims.failed()[0].name == "share"


def test_a_disabled_claim_is_measured_not_asserted():
    claims = Claims(enabled=False)
    assert claims.above("share", 0.21, 0.5) == pytest.approx(0.21)
    assert len(claims.failed()) == 1 and not claims.failed()[0].enabled


def test_soft_mode_records_every_claim_to_the_log(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv(CLAIMS_LOG_ENV, str(log))
    monkeypatch.setenv(CLAIMS_SOFT_ENV, "1")
    claims = Claims()
    claims.above("share", 0.21, 0.5, "fails")
    claims.below("w2", 0.1, 0.25, "holds")
    recorded = read_claims_log(log)
    assert [(c.name, c.holds, c.relation, c.bound) for c in recorded] == [("share", False, ">", 0.5),
                                                                          ("w2", True, "<", 0.25)]


def test_each_claim_has_its_own_name_and_a_real_bound():
    claims = Claims()
    claims.below("w2", 0.1, 0.25)
    with pytest.raises(ValueError, match="already made"):
        claims.below("w2", 0.1, 0.25)
    with pytest.raises(ValueError, match="bound is NaN"):
        claims.below("other", 0.1, math.nan)


def test_glue_names_are_identifiers_and_glue_returns_the_value_outside_a_kernel():
    assert glue("kl_share", 0.5) == 0.5
    with pytest.raises(ValueError, match="identifier"):
        glue("kl share", 0.5)


def test_markdown_table_formats_numbers_and_escapes_bars():
    text = markdown_table(["model", "W2", "share"], [["kl", np.float64(0.41234), 0.0312], ["a|b", 2, 1]],
                          {1: ".3f", 2: ".1%"})
    assert text.splitlines() == ["| model | W2 | share |", "|---|---|---|", "| kl | 0.412 | 3.1% |",
                                 "| a\\|b | 2.000 | 100.0% |"]
    with pytest.raises(ValueError, match="3 values"):
        markdown_table(["a", "b", "c"], [[1, 2]])


def test_wilson_interval_matches_newcombes_table_and_its_closed_forms_at_the_ends():
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score interval without continuity correction)
    for (k, n), (low, high) in {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605), (0, 20): (0.0, 0.1611),
                                (1, 29): (0.0061, 0.1718)}.items():
        assert wilson(k, n) == pytest.approx((low, high), abs=6e-5)
    z = 1.96
    for n in (1, 7, 500):
        assert wilson(0, n) == pytest.approx((0.0, z * z / (n + z * z)), abs=1e-15)
        assert wilson(n, n) == pytest.approx((n / (n + z * z), 1.0), abs=1e-15)
    assert wilson(np.int64(3), 10)[0] < 0.3 < wilson(3, 10)[1]
    assert wilson(5, 10, z=1.0)[1] - wilson(5, 10, z=1.0)[0] < wilson(5, 10)[1] - wilson(5, 10)[0]


@pytest.mark.parametrize("k, n, z, words", [
    (-1, 10, 1.96, "0 <= k <= n"), (11, 10, 1.96, "0 <= k <= n"), (0, 0, 1.96, "n >= 1"),
    (2.5, 10, 1.96, "whole number"), (True, 10, 1.96, "whole number"), (3, 10.0, 1.96, "whole number"),
    (3, 10, 0.0, "positive finite"), (3, 10, -1.96, "positive finite"), (3, 10, math.inf, "positive finite"),
    (3, 10, math.nan, "positive finite"),
])
def test_wilson_refuses_bad_counts_and_quantiles(k, n, z, words):
    with pytest.raises(ValueError, match=words):
        wilson(k, n, z)
