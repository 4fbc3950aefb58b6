"""Metrics on small cases worked by hand (the figures in the comments are the hand work)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer.evaluation import (
    auuc,
    classification_quality,
    coverage_knee,
    drift_table,
    expected_calibration_error,
    psi,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_curve,
)

# Four users A, B, C, D: treated 1, 0, 1, 0; converted 1, 0, 0, 1.
Y = np.array([1, 0, 0, 1])
T = np.array([1, 0, 1, 0])
BEST = np.array([0.9, 0.7, 0.5, 0.1])  # A, B, C, D: the perfect order for the Qini
WORST = np.array([0.1, 0.7, 0.5, 0.9])  # D, B, C, A


def test_qini_curve_by_hand():
    # Order A, B, C, D; q = y_t - y_c * n_t / n_c after each user (0 where n_c = 0):
    # A: 1 - 0 = 1; B: 1 - 0 * 1/1 = 1; C: 1 - 0 * 2/1 = 1; D: 1 - 1 * 2/2 = 0.
    x, q = qini_curve(Y, BEST, T)
    assert x.tolist() == [0, 1, 2, 3, 4]
    assert q.tolist() == [0, 1, 1, 1, 0]
    # Order D, B, C, A: D: 0 - 1 * 0/1 = 0; B: 0; C: 0 - 1 * 1/2 = -0.5; A: 1 - 1 * 2/2 = 0.
    assert qini_curve(Y, WORST, T)[1].tolist() == [0, 0, 0, -0.5, 0]


def test_qini_coefficient_by_hand():
    # Areas by trapezoids: best order 0.5 + 1 + 1 + 0.5 = 3 (the perfect curve: A, B, C, D is
    # the perfect order here); the line to the end point has area 0.5 * 4 * 0 = 0.
    assert qini_coefficient(Y, BEST, T) == pytest.approx(1.0)
    # Worst order: 0 + 0 - 0.25 - 0.25 = -0.5, against 3: -1/6.
    assert qini_coefficient(Y, WORST, T) == pytest.approx(-1 / 6)


def test_uplift_curve_and_auuc_by_hand():
    # (treated rate - control rate) x n, a rate with no rows counting as 0:
    # A: (1 - 0) x 1 = 1; B: (1 - 0) x 2 = 2; C: (1/2 - 0) x 3 = 1.5; D: (1/2 - 1/2) x 4 = 0.
    x, u = uplift_curve(Y, BEST, T)
    assert u.tolist() == [0, 1, 2, 1.5, 0]
    # Worst order D, B, C, A: D: (0 - 1) x 1 = -1; B: (0 - 1/2) x 2 = -1;
    # C: (0 - 1/2) x 3 = -1.5; A: (1/2 - 1/2) x 4 = 0.
    assert uplift_curve(Y, WORST, T)[1].tolist() == [0, -1, -1, -1.5, 0]
    # Areas: best 0.5 + 1.5 + 1.75 + 0.75 = 4.5, worst -0.5 - 1 - 1.25 - 0.75 = -3.5; the
    # perfect ranking of these rows is the best order (area 4.5).
    assert auuc(Y, BEST, T) == pytest.approx(1.0)
    assert auuc(Y, WORST, T) == pytest.approx(-3.5 / 4.5)


def test_uplift_at_k_by_hand():
    # Top half by BEST: A (treated, bought) and B (control, did not): 1 - 0.
    assert uplift_at_k(Y, BEST, T, k=0.5) == 1.0
    # Top half by WORST: D (control, bought), B (control): no treated row, undefined.
    assert math.isnan(uplift_at_k(Y, WORST, T, k=0.5))
    # All four: treated 1/2, control 1/2.
    assert uplift_at_k(Y, BEST, T, k=1.0) == 0.0
    with pytest.raises(ValueError):
        uplift_at_k(Y, BEST, T, k=0.0)


def test_expected_calibration_error_weighs_bins_by_size():
    # Five rows sorted by p in two equal-count bins of 3 and 2 rows:
    # bin 1: observed 1/3, predicted 0.2 -> 0.1333 x 3 rows = 0.4
    # bin 2: observed 1, predicted 0.85 -> 0.15 x 2 rows = 0.3
    # (0.4 + 0.3) / 5 = 0.14; an unweighted mean of the gaps would give 0.141667.
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.14, abs=1e-12)
    assert expected_calibration_error(y[::-1], p[::-1], n_bins=2) == pytest.approx(0.14)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0


def test_coverage_knee_by_hand():
    # Converters at ranks 1, 2 and 4 of 8: coverage 1/3, 2/3, 2/3, 1, 1, ...; coverage minus
    # share taken peaks after 4 users (1 - 0.5): 3 converters of 4 taken, at p = 0.6.
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    knee = coverage_knee(y, p)
    assert knee == {"share_taken": 0.5, "coverage": 1.0, "precision": 0.75, "threshold": 0.6}
    shuffled = np.random.default_rng(0).permutation(8)
    assert coverage_knee(y[shuffled], p[shuffled]) == knee


def test_psi_by_hand():
    # Shares 0.3/0.7 against 0.5/0.5: (0.3 - 0.5) ln(0.6) + (0.7 - 0.5) ln(1.4)
    # = 0.2 x 0.510826 + 0.2 x 0.336472 = 0.169460.
    assert psi(np.array([0.5, 0.5]), np.array([30, 70])) == pytest.approx(0.1694595, abs=1e-6)
    assert psi(np.array([0.5, 0.5]), np.array([50, 50])) == 0.0
    # An empty bin is floored at 1e-4 instead of giving infinity.
    assert np.isfinite(psi(np.array([0.5, 0.5]), np.array([100, 0])))
    table = drift_table({"a": np.array([0.5, 0.5]), "b": np.array([0.5, 0.5])},
                        {"a": np.array([50, 50]), "b": np.array([30, 70])})  # fmt: skip
    assert table["feature"].tolist() == ["b", "a"]  # highest first


def test_classification_quality_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    quality = classification_quality(y, p)
    # AUC: of the 4 (positive, negative) pairs, (0.35, 0.4) is the one ordered wrong: 3/4.
    assert quality["auc"] == pytest.approx(0.75)
    assert quality["rows"] == 4 and quality["positive_rate"] == 0.5
    expected = -np.mean(np.log([0.9, 0.6, 0.35, 0.8]))
    assert quality["log_loss"] == pytest.approx(expected)
    empty = classification_quality(np.array([]), np.array([]))
    assert empty["rows"] == 0 and math.isnan(empty["log_loss"]) and math.isnan(empty["auc"])


def test_uplift_calibration_finds_a_compressed_prediction():
    """True uplift 2x the prediction: the slope is 2 within its standard error, and each bin's
    observed uplift is recounted here from the raw rows."""
    from optimizer.evaluation.metrics import uplift_calibration

    rng = np.random.default_rng(3)
    n = 200_000
    tau = rng.uniform(0.0, 0.1, n)
    t = (rng.random(n) < 0.5).astype(np.int64)
    y = (rng.random(n) < 0.2 + t * tau).astype(np.int64)
    result = uplift_calibration(y, tau / 2, t, bins=5)
    assert abs(result["slope"] - 2.0) < 3 * result["slope_se"] and result["slope_se"] < 0.3
    order = np.argsort(tau / 2, kind="stable")
    for part, row in zip(np.array_split(order, 5), result["bins"], strict=True):
        yy, tt = y[part], t[part]
        assert row["observed"] == pytest.approx(yy[tt == 1].mean() - yy[tt == 0].mean())
        assert row["predicted"] == pytest.approx((tau / 2)[part].mean())
    right = uplift_calibration(y, tau, t, bins=5)
    assert abs(right["slope"] - 1.0) < 3 * right["slope_se"]
    # A bin with no conversion at all does not take the fit over (its error is not zero).
    low = tau < 0.03
    quiet = np.where(low, 0, y)
    result = uplift_calibration(quiet, tau, t, bins=5)
    assert result["bins"][0]["observed"] == 0.0 and result["bins"][0]["se"] > 0
    assert 0.5 < result["slope"] < 3.0
    # One arm only: no slope, no error.
    alone = uplift_calibration(y, tau, np.ones(n, dtype=np.int64))
    assert np.isnan(alone["slope"]) and all(np.isnan(b["observed"]) for b in alone["bins"])
