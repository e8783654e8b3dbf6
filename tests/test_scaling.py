"""Check the scaling-law formulas in week7.scaling against published numbers and against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from week7 import scaling


def test_six_n_d_reproduces_gpt3_compute():
    """Check C = 6ND: 175e9 x 300e9 x 6 = 3.15e23, and GPT-3's exact 174.6e9 gives its Table D.1 value 3.14e23."""
    assert scaling.training_flops(175e9, 300e9) == pytest.approx(3.15e23, rel=1e-12)
    assert scaling.training_flops(174.6e9, 300e9) == pytest.approx(3.14e23, rel=1e-3)
    # and in PF-days (Table D.1 lists 3640 for GPT-3 175B)
    assert scaling.flops_to_pf_days(scaling.training_flops(174.6e9, 300e9)) == pytest.approx(3640, rel=2e-3)
    arr = scaling.training_flops(np.array([1.0, 2.0]), 10.0)
    assert arr.tolist() == [60.0, 120.0]


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), []])
def test_bad_input_is_named(bad):
    """Check that zero, negative, non-finite or empty sizes fail with a message naming the argument."""
    with pytest.raises(ValueError, match="n_params must be a positive"):
        scaling.training_flops(bad, 1e9)


def test_kaplan_power_laws_scale_as_published():
    """Check the exponents: 10x parameters multiplies L(N) by 10^-0.076, 10x tokens L(D) by 10^-0.095."""
    assert scaling.kaplan_loss_n(1e10) / scaling.kaplan_loss_n(1e9) == pytest.approx(10 ** -0.076)
    assert scaling.kaplan_loss_d(1e11) / scaling.kaplan_loss_d(1e10) == pytest.approx(10 ** -0.095)
    assert scaling.kaplan_loss_c(10 * scaling.PF_DAY) / scaling.kaplan_loss_c(scaling.PF_DAY) == pytest.approx(
        10 ** -0.050)
    assert scaling.kaplan_loss_n(8.8e13) == pytest.approx(1.0)
    # the joint law tends to L(N) when data is unlimited and to L(D) when the model is unlimited
    assert scaling.kaplan_loss_nd(1e9, 1e30) == pytest.approx(scaling.kaplan_loss_n(1e9), rel=1e-6)
    assert scaling.kaplan_loss_nd(1e30, 1e10) == pytest.approx(scaling.kaplan_loss_d(1e10), rel=1e-6)


def test_kaplan_optimal_grows_as_c_to_the_073():
    """Check N_opt(C) = 1.3e9 at one PF-day, grows as C^0.73, and D = C / 6N."""
    one = scaling.kaplan_optimal(scaling.PF_DAY)
    assert one.n_params == pytest.approx(1.3e9)
    big = scaling.kaplan_optimal(1000 * scaling.PF_DAY)
    assert big.n_params / one.n_params == pytest.approx(1000 ** 0.73)
    assert 6 * big.n_params * big.n_tokens == pytest.approx(big.flops)


@pytest.mark.parametrize("flops", [1e19, 5.76e23, 1e26])
def test_chinchilla_fit_allocation_is_the_minimum(flops):
    """Check the closed-form optimum against a brute-force search of the parametric loss under C = 6ND."""
    best = scaling.chinchilla_optimal(flops, method="fit")
    assert 6 * best.n_params * best.n_tokens == pytest.approx(flops)
    grid = best.n_params * np.logspace(-1, 1, 2001)
    losses = scaling.chinchilla_loss(grid, flops / (6 * grid))
    assert grid[np.argmin(losses)] == pytest.approx(best.n_params, rel=0.01)
    assert scaling.chinchilla_loss(best.n_params, best.n_tokens) <= losses.min() + 1e-12


def test_chinchilla_rule_matches_chinchilla_itself():
    """Check the 20-tokens-per-parameter rule: Chinchilla's 5.76e23 FLOPs give about 70B params and 1.4T tokens."""
    alloc = scaling.chinchilla_optimal(5.76e23)  # Hoffmann et al. 2022, Table 3: 67B, 1.5T; Chinchilla: 70B, 1.4T
    assert 65e9 < alloc.n_params < 72e9
    assert alloc.tokens_per_param == pytest.approx(20)
    with pytest.raises(ValueError, match="'rule' or 'fit'"):
        scaling.chinchilla_optimal(1e20, method="kaplan")


def test_kaplan_puts_more_of_a_big_budget_into_parameters():
    """Check the known disagreement: at GPT-3's budget Kaplan's model is bigger and sees fewer tokens."""
    c = 3.14e23
    k, h = scaling.kaplan_optimal(c), scaling.chinchilla_optimal(c)
    assert k.n_params > 2 * h.n_params and k.n_tokens < h.n_tokens / 2


def test_fit_power_law_recovers_known_exponent():
    """Check that a fit on exact power-law data recovers a and alpha, with and without a floor."""
    n = np.array([1e5, 3e5, 1e6, 3e6, 1e7])
    fit = scaling.fit_power_law(n, 7.0 * n ** -0.2)
    assert fit.alpha == pytest.approx(0.2) and fit.a == pytest.approx(7.0) and fit.r2 == pytest.approx(1.0)
    fit2 = scaling.fit_power_law(n, 1.5 + 7.0 * n ** -0.2, floor=1.5)
    assert fit2.alpha == pytest.approx(0.2) and fit2(n) == pytest.approx(1.5 + 7.0 * n ** -0.2)
    with pytest.raises(ValueError, match="above floor"):
        scaling.fit_power_law(n, 7.0 * n ** -0.2, floor=5.0)
    with pytest.raises(ValueError, match="at least two"):
        scaling.fit_power_law([1e5], [2.0])
