"""Metrics on small cases worked by hand (the figures in the comments are the hand work)."""

from __future__ import annotations

import math
import warnings

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


def test_expected_calibration_error_keeps_tied_rows_in_their_order():
    """Three predicted values over 1,000 rows: every bin edge cuts through a run of ties, so
    which tied rows fall in which bin decides the figure. Rows with equal predictions keep
    their input order (a stable sort), so the figure is a function of the rows as given;
    recounted here with Python's stable ``sorted``."""
    rng = np.random.default_rng(11)
    p = rng.choice([0.1, 0.3, 0.7], 1000)
    y = (rng.random(1000) < p).astype(np.int64)
    rows = sorted(range(1000), key=lambda i: p[i])  # stable
    gaps = 0.0
    for b in range(10):
        part = rows[100 * b : 100 * (b + 1)]
        gaps += abs(sum(y[i] for i in part) / 100 - sum(p[i] for i in part) / 100) * 100
    assert expected_calibration_error(y, p) == pytest.approx(gaps / 1000, abs=1e-12)
    # The data tells the orders apart: an unstable sort of the same rows gives another figure.
    quick = np.array_split(np.argsort(p, kind="quicksort"), 10)
    other = sum(abs(y[b].mean() - p[b].mean()) * b.size for b in quick) / 1000
    assert abs(other - gaps / 1000) > 1e-3


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
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no rows: NaN figures, not a numpy "mean of empty" warning
        empty = classification_quality(np.array([]), np.array([]))
    assert empty["rows"] == 0 and math.isnan(empty["log_loss"]) and math.isnan(empty["auc"])
    assert math.isnan(empty["positive_rate"]) and math.isnan(empty["calibration_error"])


def test_uplift_calibration_of_a_constant_prediction_has_no_slope():
    """Every bin predicts the same uplift: the slope is undefined (NaN, with a NaN standard
    error, not an infinite one) and no numpy warning escapes."""
    from optimizer.evaluation.metrics import true_uplift_at_k, uplift_calibration

    rng = np.random.default_rng(4)
    t = np.tile([0, 1], 500)
    y = (rng.random(1000) < 0.3).astype(np.int64)
    for bins in (4, 3, 7):  # equal and unequal bin sizes (means that differ by rounding)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = uplift_calibration(y, np.full(1000, 0.05), t, bins=bins)
        assert math.isnan(result["slope"]) and math.isnan(result["slope_se"])
        assert [row["predicted"] for row in result["bins"]] == pytest.approx([0.05] * bins)
    # The bins that count predict one uplift; the top bin, which does, has no control row.
    pred = np.where(np.arange(1000) < 750, 0.05, 0.2)
    arms = np.where(np.arange(1000) < 750, t, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = uplift_calibration(y, pred, arms, bins=4)
    assert [math.isnan(row["observed"]) for row in result["bins"]] == [False] * 3 + [True]
    assert math.isnan(result["slope"]) and math.isnan(result["slope_se"])
    # The defaults: 5 bins; uplift@k over the top 30%, true uplift@k over the top 20%.
    assert len(uplift_calibration(y, t * 0.1 + 0.01, t)["bins"]) == 5
    score = np.arange(1000.0)
    assert uplift_at_k(y, score, t) == uplift_at_k(y, score, t, k=0.3)
    assert uplift_at_k(y, score, t) != uplift_at_k(y, score, t, k=0.5)
    assert true_uplift_at_k(score, score) == true_uplift_at_k(score, score, k=0.2)
    assert true_uplift_at_k(score, score) == sum(range(800, 1000))


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


# ---------------------------------------------------------------- independent recounts
# Plain-Python recounts written only for these tests (no numpy sorting or cumulative sums), and
# brute force over every ranking of a few users: the library's curves, areas and perfect
# rankings are checked against them on cases whose curves do not end at 0.


def _naive_points(y, score, t):
    """(users taken, uplift-curve value, Qini value) at the end of each block of tied scores."""
    order = sorted(range(len(y)), key=lambda i: -score[i])
    points, n_t = [(0, 0.0, 0.0)], 0
    y_t = y_c = n_c = 0
    for rank, i in enumerate(order, start=1):
        n_t, y_t = n_t + t[i], y_t + y[i] * t[i]
        n_c, y_c = n_c + (1 - t[i]), y_c + y[i] * (1 - t[i])
        if rank < len(order) and score[order[rank]] == score[i]:
            continue  # a tie continues: one point per block of equal scores
        rate_t = y_t / n_t if n_t else 0.0
        rate_c = y_c / n_c if n_c else 0.0
        points.append((rank, (rate_t - rate_c) * rank, y_t - (y_c * n_t / n_c if n_c else 0.0)))
    return points


def _area(xs, ys):
    return sum((xs[i] - xs[i - 1]) * (ys[i] + ys[i - 1]) / 2 for i in range(1, len(xs)))


def _areas(y, score, t):
    points = _naive_points(y, score, t)
    xs = [p[0] for p in points]
    return _area(xs, [p[1] for p in points]), _area(xs, [p[2] for p in points]), points[-1]


def _cases():
    rng = np.random.default_rng(17)
    for _ in range(6):
        y = rng.integers(0, 2, 7)
        t = rng.integers(0, 2, 7)
        t[:2] = [0, 1]  # both arms present
        yield y, t, rng.permutation(7).astype(float)


def test_curves_equal_a_plain_recount_with_and_without_ties():
    for y, t, score in _cases():
        for s in (score, np.floor(score / 3)):  # distinct scores, then blocks of ties
            points = _naive_points(y.tolist(), s.tolist(), t.tolist())
            x, u = uplift_curve(y, s, t)
            assert x.tolist() == [p[0] for p in points]
            np.testing.assert_allclose(u, [p[1] for p in points], atol=1e-12)
            np.testing.assert_allclose(qini_curve(y, s, t)[1], [p[2] for p in points], atol=1e-12)


def test_perfect_rankings_and_normalised_areas_against_brute_force():
    """The perfect rankings (sklift's definitions, ties grouped) equal a plain recount of their
    definitions, and the normalised areas equal (model - random) / (perfect - random)
    recounted. Brute force over the 5,040 strict rankings of 7 users shows the definitions are
    not always the best ranking (an open question of issue 17, asserted once settled)."""
    from optimizer.evaluation.metrics import perfect_qini_curve, perfect_uplift_curve

    checked = 0
    for y, t, score in _cases():
        yl, tl = y.tolist(), t.tolist()
        x, u = perfect_uplift_curve(y, t)
        perfect_u = float(np.trapezoid(u, x))
        # The definition: same-outcome-as-arm users first, tie-broken by outcome when control
        # responders outnumber treated non-responders, else by arm.
        responders_c = sum(1 for a, b in zip(yl, tl, strict=True) if a == 1 and b == 0)
        idle_t = sum(1 for a, b in zip(yl, tl, strict=True) if a == 0 and b == 1)
        by = yl if responders_c > idle_t else tl
        defined = [2.0 * (a == b) + c for a, b, c in zip(yl, tl, by, strict=True)]
        assert perfect_u == pytest.approx(_areas(yl, defined, tl)[0], abs=1e-12)
        x, q = perfect_qini_curve(y, t)
        perfect_q = float(np.trapezoid(q, x))
        qini_defined = [a * b - a * (1 - b) for a, b in zip(yl, tl, strict=True)]
        assert perfect_q == pytest.approx(_areas(yl, qini_defined, tl)[1], abs=1e-12)
        area_u, area_q, (n, end_u, end_q) = _areas(yl, score.tolist(), tl)
        random_u, random_q = 0.5 * n * end_u, 0.5 * n * end_q
        if perfect_u != random_u:
            expected = (area_u - random_u) / (perfect_u - random_u)
            assert auuc(y, score, t) == pytest.approx(expected, abs=1e-12)
            checked += end_u != 0
        if perfect_q != random_q:
            expected = (area_q - random_q) / (perfect_q - random_q)
            assert qini_coefficient(y, score, t) == pytest.approx(expected, abs=1e-12)
    assert checked >= 2  # cases whose curve ends away from 0 (the random line matters)
    # One user: no ranking differs from random, so the ratio is undefined (not 0 or infinite).
    assert math.isnan(qini_coefficient(np.array([1]), np.array([0.5]), np.array([1])))
    assert math.isnan(auuc(np.array([1]), np.array([0.5]), np.array([1])))


def test_uplift_at_k_counts_the_top_share_and_refuses_shares_outside_0_1():
    y = np.array([1, 0, 1, 0, 0, 1])
    t = np.array([1, 0, 1, 1, 0, 0])
    score = np.array([6.0, 5, 4, 3, 2, 1])
    # Top 2 (round(0.3 x 6) = 2): users 0 (treated, bought), 1 (control, did not): 1 - 0.
    assert uplift_at_k(y, score, t, k=0.3) == 1.0
    # Top 1 (k = 0.1 rounds to 1 user): one arm only, undefined.
    assert math.isnan(uplift_at_k(y, score, t, k=0.1))
    for k in (1.5, -0.2):
        with pytest.raises(ValueError):
            uplift_at_k(y, score, t, k=k)


def test_true_uplift_at_k_sums_the_true_uplift_of_the_top_share():
    from optimizer.evaluation.metrics import true_uplift_at_k

    truth = np.array([0.1, 0.5, -0.2, 0.3, 0.0])
    score = np.array([1.0, 5.0, 4.0, 2.0, 3.0])  # ranks users 1, 2, 4, 3, 0
    assert true_uplift_at_k(truth, score, k=0.4) == pytest.approx(0.5 - 0.2)
    assert true_uplift_at_k(truth, score, k=0.01) == pytest.approx(0.5)  # at least one user
    assert true_uplift_at_k(truth, score, k=1.0) == pytest.approx(truth.sum())


def test_uplift_calibration_equals_a_plain_recount_of_every_bin():
    from optimizer.evaluation.metrics import uplift_calibration

    rng = np.random.default_rng(5)
    n, bins = 43, 4
    u = rng.uniform(0, 0.3, n)
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.2 + t * u).astype(int)
    top = np.argsort(u)[-(n // bins) :]
    t[top] = 1  # the highest bin has treated rows only: no observed uplift there
    got = uplift_calibration(y, u, t, bins=bins)
    order = sorted(range(n), key=lambda i: u[i])
    sizes = [n // bins + (1 if b < n % bins else 0) for b in range(bins)]
    start, xs, obs, ws = 0, [], [], []
    for b, size in enumerate(sizes):
        part = order[start : start + size]
        start += size
        row = got["bins"][b]
        assert row["rows"] == size
        assert row["predicted"] == pytest.approx(sum(u[i] for i in part) / size)
        n1 = sum(t[i] for i in part)
        n0 = size - n1
        if n1 == 0 or n0 == 0:
            assert math.isnan(row["observed"]) and math.isnan(row["se"])
            continue
        x1 = sum(y[i] for i in part if t[i] == 1)
        x0 = sum(y[i] for i in part if t[i] == 0)
        s1, s0 = (x1 + 0.5) / (n1 + 1), (x0 + 0.5) / (n0 + 1)
        se = math.sqrt(s1 * (1 - s1) / n1 + s0 * (1 - s0) / n0)
        assert row["observed"] == pytest.approx(x1 / n1 - x0 / n0)
        assert row["se"] == pytest.approx(se)
        xs.append(row["predicted"])
        obs.append(x1 / n1 - x0 / n0)
        ws.append(1 / se**2)
    assert len(xs) == bins - 1
    xm = sum(w * x for w, x in zip(ws, xs, strict=True)) / sum(ws)
    ym = sum(w * o for w, o in zip(ws, obs, strict=True)) / sum(ws)
    sxx = sum(w * (x - xm) ** 2 for w, x in zip(ws, xs, strict=True))
    slope = sum(w * (x - xm) * (o - ym) for w, x, o in zip(ws, xs, obs, strict=True)) / sxx
    assert got["slope"] == pytest.approx(slope) and got["slope_se"] == pytest.approx(sxx**-0.5)
    # Two bins with both arms are enough for a slope; one is not.
    two = uplift_calibration(y[:8], np.arange(8.0), np.array([1, 0, 1, 0, 1, 0, 1, 0]), bins=2)
    assert math.isfinite(two["slope"])
    one = uplift_calibration(y[:8], np.arange(8.0), np.array([1, 0, 1, 0, 1, 1, 1, 1]), bins=2)
    assert math.isnan(one["slope"]) and math.isnan(one["slope_se"])


def test_psi_on_an_uneven_reference_and_log_loss_at_the_edges():
    from optimizer.evaluation.metrics import auc, log_loss

    # Reference 0.2/0.8, observed 0.5/0.5: 0.3 ln(2.5) + (-0.3) ln(0.625) = 0.415888.
    assert psi(np.array([0.2, 0.8]), np.array([5, 5])) == pytest.approx(0.4158883, abs=1e-6)
    assert psi(np.array([0.2, 0.8]), np.array([0, 0])) > 0  # no rows: every share floored
    # Probabilities of exactly 0 and 1 are clipped at 1e-7: finite, -ln(1e-7) per wrong row.
    assert log_loss(np.array([1, 0]), np.array([0.0, 1.0])) == pytest.approx(-math.log(1e-7))
    assert log_loss(np.array([1, 1]), np.array([0.9, 0.8])) == pytest.approx(
        -(math.log(0.9) + math.log(0.8)) / 2
    )  # one class only is still defined
    with pytest.raises(ValueError, match="same length"):
        auc(np.array([0, 1, 1]), np.array([0.2, 0.4]))


def test_coverage_with_one_converter_and_ties_in_calibration_bins():
    from optimizer.evaluation.metrics import coverage_curve

    y = np.array([0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.1])
    share, coverage, threshold = coverage_curve(y, p)
    assert coverage.tolist() == [0.0, 1.0, 1.0, 1.0] and threshold.tolist() == [0.9, 0.8, 0.7, 0.1]
    knee = coverage_knee(y, p)
    assert knee["precision"] == 0.5 and knee["coverage"] == 1.0  # 1 converter of 2 taken
    # Ties: 30 rows at p = 0.5 split across equal-count bins in their given order (stable).
    y = np.array([1] * 10 + [0] * 20)
    p = np.full(30, 0.5)
    # Bins of 10: the first holds the ten 1s (gap 0.5), the others only 0s (gaps 0.5): 0.5.
    assert expected_calibration_error(y, p, n_bins=3) == pytest.approx(0.5)
    y = np.array([1, 0] * 15)
    assert expected_calibration_error(y, p, n_bins=3) == pytest.approx(0.0)


def _stable_desc(values):
    """Positions by descending value, ties in their given order (Python's sort is stable)."""
    return sorted(range(len(values)), key=lambda i: -values[i])


def test_rankings_with_ties_keep_the_given_order_of_tied_users():
    """Many tied scores (numpy's default sort would reorder them): every ranked figure equals a
    recount over Python's stable sort."""
    from optimizer.evaluation.metrics import coverage_curve, true_uplift_at_k, uplift_calibration

    rng = np.random.default_rng(11)
    n = 240
    y = rng.integers(0, 2, n)
    t = rng.integers(0, 2, n)
    score = rng.choice([0.1, 0.5, 0.9], n)
    truth = rng.normal(0, 1, n)
    top = _stable_desc(score.tolist())[: round(0.3 * n)]
    treated = [y[i] for i in top if t[i] == 1]
    control = [y[i] for i in top if t[i] == 0]
    assert uplift_at_k(y, score, t, k=0.3) == pytest.approx(
        sum(treated) / len(treated) - sum(control) / len(control)
    )
    assert true_uplift_at_k(truth, score, k=0.3) == pytest.approx(sum(truth[i] for i in top))
    order = _stable_desc(score.tolist())
    running = [sum(y[i] for i in order[: r + 1]) / y.sum() for r in range(n)]
    np.testing.assert_allclose(coverage_curve(y, score)[1], running)
    # Calibration error and uplift calibration bins: ascending stable order, equal-count bins.
    up = sorted(range(n), key=lambda i: score[i])
    bins = [up[b * 60 : (b + 1) * 60] for b in range(4)]
    gaps = sum(abs(sum(y[i] for i in b) / 60 - sum(score[i] for i in b) / 60) * 60 for b in bins)
    assert expected_calibration_error(y, score, n_bins=4) == pytest.approx(gaps / n)
    got = uplift_calibration(y, score, t, bins=4)["bins"]
    for row, b in zip(got, bins, strict=True):
        x1 = sum(y[i] for i in b if t[i] == 1)
        n1 = sum(t[i] for i in b)
        x0 = sum(y[i] for i in b if t[i] == 0)
        assert row["observed"] == pytest.approx(x1 / n1 - x0 / (60 - n1))
    # Normalised areas over tied scores: the curve's points are the ends of tie blocks.
    yl, tl, sl = y.tolist(), t.tolist(), score.tolist()
    area_u, area_q, (m, end_u, end_q) = _areas(yl, sl, tl)
    from optimizer.evaluation.metrics import perfect_qini_curve

    xq, q = perfect_qini_curve(y, t)
    perfect_q = _area(xq.tolist(), q.tolist())
    expected = (area_q - 0.5 * m * end_q) / (perfect_q - 0.5 * m * end_q)
    assert qini_coefficient(y, score, t) == pytest.approx(expected)


def test_the_perfect_uplift_ranking_breaks_ties_by_the_rarer_kind():
    """Control responders against treated non-responders decide the tie-break; cases where
    they are more, fewer and equal, each checked against the definition recounted."""
    from optimizer.evaluation.metrics import perfect_uplift_curve

    seen = set()
    rng = np.random.default_rng(23)
    for _ in range(400):
        y = rng.integers(0, 2, 8)
        t = rng.integers(0, 2, 8)
        yl, tl = y.tolist(), t.tolist()
        rc = sum(1 for a, b in zip(yl, tl, strict=True) if a == 1 and b == 0)
        it = sum(1 for a, b in zip(yl, tl, strict=True) if a == 0 and b == 1)
        by_y = [2.0 * (a == b) + a for a, b in zip(yl, tl, strict=True)]
        by_t = [2.0 * (a == b) + b for a, b in zip(yl, tl, strict=True)]
        area_y, area_t = _areas(yl, by_y, tl)[0], _areas(yl, by_t, tl)[0]
        if area_y == area_t:
            continue  # the tie-break does not matter here
        kind = (rc > it) - (rc < it)
        seen.add(kind)
        x, u = perfect_uplift_curve(y, t)
        assert _area(x.tolist(), u.tolist()) == pytest.approx(area_y if rc > it else area_t)
    assert seen == {-1, 0, 1}


def test_one_row_psi_error_texts_and_the_calibration_key():
    from optimizer.evaluation.metrics import auc

    # One observed row: its bin holds everything, the other is floored at 1e-4.
    expected = 0.5 * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"^arrays must have the same length$"):
        auc(np.array([0, 1, 1]), np.array([0.2, 0.4]))
    with pytest.raises(ValueError, match=r"^k must be in \(0, 1\]$"):
        uplift_at_k(np.array([1, 0]), np.array([0.2, 0.4]), np.array([1, 0]), k=2)
    quality = classification_quality(np.array([0, 1, 1]), np.array([0.2, 0.4, 0.9]))
    # Three rows, 3 bins of one row: gaps 0.2, 0.6, 0.1 -> 0.9 / 3.
    assert quality["calibration_error"] == pytest.approx(0.3)
