"""Calibration on data miscalibrated on purpose: a skipped or unapplied map fails."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.evaluation import expected_calibration_error, log_loss
from optimizer.models import Calibrator


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.fixture(scope="module")
def miscalibrated():
    """Logits whose sigmoid is wrong: the truth is sigmoid(2 z + 1)."""
    rng = np.random.default_rng(5)
    z = rng.normal(-1.0, 1.0, 40_000)
    y = (rng.random(z.size) < _sigmoid(2 * z + 1)).astype(float)
    return z, y


def test_platt_finds_the_temperature_and_the_shift(miscalibrated):
    z, y = miscalibrated
    cal = Calibrator("platt").fit(z, y)
    assert cal.a_ == pytest.approx(2.0, abs=0.1) and cal.b_ == pytest.approx(1.0, abs=0.1)
    calibrated, raw = cal.transform(z), _sigmoid(z)
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, raw) / 5
    assert log_loss(y, calibrated) < log_loss(y, raw) - 0.01
    # Monotone: a calibration never reorders users.
    order = np.argsort(z)
    assert (np.diff(calibrated[order]) >= -1e-12).all()


def test_isotonic_map_is_applied(miscalibrated):
    z, y = miscalibrated
    cal = Calibrator("isotonic").fit(z, y)
    calibrated = cal.transform(z)
    assert not np.allclose(calibrated, _sigmoid(z))
    assert expected_calibration_error(y, calibrated) < 0.01
    assert calibrated.min() >= 0 and calibrated.max() <= 1
    assert (np.diff(calibrated[np.argsort(z)]) >= -1e-12).all()


def test_none_is_the_plain_sigmoid_and_the_state_round_trips(miscalibrated):
    z, y = miscalibrated
    np.testing.assert_allclose(Calibrator("none").fit(z, y).transform(z), _sigmoid(z))
    for method in ("platt", "isotonic"):
        cal = Calibrator(method).fit(z[:5000], y[:5000])
        again = Calibrator.from_dict(cal.to_dict())
        np.testing.assert_array_equal(again.transform(z[:100]), cal.transform(z[:100]))
    with pytest.raises(ValueError, match="calibration must be one of"):
        Calibrator("magic").fit(z, y)


def test_platt_on_one_class_keeps_the_identity():
    cal = Calibrator("platt").fit(np.array([0.1, 0.5]), np.array([1.0, 1.0]))
    assert (cal.a_, cal.b_) == (1.0, 0.0)


def test_platt_is_applied_only_when_the_rows_show_miscalibration():
    """A few hundred calibrated rows: the fitted shift is noise and the identity is kept; the
    same number of rows off by 0.8 on the logit: the map is applied."""
    rng = np.random.default_rng(11)
    z = rng.normal(-1.8, 1.0, 800)
    calibrated_y = (rng.random(z.size) < _sigmoid(z)).astype(float)
    kept = Calibrator("platt").fit(z, calibrated_y)
    assert not kept.applied_ and (kept.a_, kept.b_) == (1.0, 0.0)
    assert 0 <= kept.deviance_ < 5.99  # chi-square(2) at 95%
    np.testing.assert_allclose(kept.transform(z), _sigmoid(z))
    forced = Calibrator("platt", alpha=1.0).fit(z, calibrated_y)
    assert forced.applied_ and forced.b_ != 0.0
    shifted_y = (rng.random(z.size) < _sigmoid(z + 0.8)).astype(float)
    fixed = Calibrator("platt").fit(z, shifted_y)
    assert fixed.applied_ and fixed.deviance_ > 5.99
    assert fixed.transform(z).mean() == pytest.approx(shifted_y.mean(), abs=0.01)
    again = Calibrator.from_dict(fixed.to_dict())
    assert again.applied_ and again.alpha == fixed.alpha
    np.testing.assert_array_equal(again.transform(z), fixed.transform(z))
    with pytest.raises(ValueError, match="alpha"):
        Calibrator("platt", alpha=0.0).fit(z, shifted_y)


def _loglik(y, p):
    """Bernoulli log-likelihood of outcomes ``y`` under probabilities ``p`` (nats)."""
    return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_platt_is_the_maximum_likelihood_fit():
    """Against scikit-learn's unpenalised logistic regression of the outcome on the logit:
    the same temperature and shift, on a mild and on a far-off miscalibration; the deviance is
    twice the log-likelihood gain over the identity, recounted here."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(8)
    for scale, true_a, true_b in ((1.0, 2.0, 1.0), (3.0, 0.15, -2.5)):
        z = rng.normal(0.0, scale, 20_000)
        y = (rng.random(z.size) < _sigmoid(true_a * z + true_b)).astype(float)
        reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=5000).fit(z[:, None], y)
        cal = Calibrator("platt").fit(z, y)
        assert cal.a_ == pytest.approx(reference.coef_[0, 0], rel=2e-4)
        assert cal.b_ == pytest.approx(reference.intercept_[0], rel=2e-4)

        gain = _loglik(y, _sigmoid(cal.a_ * z + cal.b_)) - _loglik(y, _sigmoid(z))
        assert cal.deviance_ == pytest.approx(2 * gain, rel=1e-6)


def test_the_test_has_two_degrees_of_freedom():
    """A deviance of 7.0 lies between chi-square(2)'s 95% point (5.99) and chi-square(3)'s
    (7.81): two parameters were fitted, so the map is applied."""
    rng = np.random.default_rng(0)
    z = rng.normal(-1.5, 1.0, 600)
    y = (rng.random(600) < _sigmoid(z + 0.25)).astype(float)
    cal = Calibrator("platt").fit(z, y)
    assert 5.99 < cal.deviance_ < 7.81
    assert cal.applied_ and (cal.a_, cal.b_) != (1.0, 0.0)


def test_platt_runs_on_both_classes_only():
    """One converter in 300 still fits (with alpha 1 every fitted map is applied); all zeros
    or all ones keep the identity."""
    z = np.linspace(-3.0, 1.0, 300)
    one = np.zeros(300)
    one[-1] = 1.0
    fitted = Calibrator("platt", alpha=1.0).fit(z, one)
    assert fitted.applied_ and (fitted.a_, fitted.b_) != (1.0, 0.0)
    for y in (np.zeros(300), np.ones(300)):
        kept = Calibrator("platt", alpha=1.0).fit(z, y)
        assert not kept.applied_ and (kept.a_, kept.b_) == (1.0, 0.0) and kept.deviance_ == 0.0


def test_inputs_of_any_numeric_type_give_float64_probabilities(miscalibrated):
    """float32 logits and integer outcomes (what the networks and the logs hold) fit the same
    map as float64, and probabilities come back in float64."""
    z, y = miscalibrated
    wide = Calibrator("platt").fit(z, y)
    narrow = Calibrator("platt").fit(z.astype(np.float32), y.astype(np.int64))
    assert narrow.a_ == pytest.approx(wide.a_, rel=1e-7)  # the same arithmetic, in float64
    assert narrow.b_ == pytest.approx(wide.b_, rel=1e-7)
    for cal in (wide, Calibrator("none").fit(z, y), Calibrator("isotonic").fit(z, y)):
        out = cal.transform(z[:1000].astype(np.float32))
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, cal.transform(z[:1000].astype(np.float32).astype(float)))


def test_extreme_logits_give_0_and_1_without_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = (
            Calibrator("none")
            .fit(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
            .transform(np.array([-1e4, -800.0, 0.0, 800.0, 1e4]))
        )
    assert p[0] < 1e-20 and p[1] < 1e-20 and p[2] == 0.5 and p[3] > 1 - 1e-15 and p[4] == 1.0


def test_state_flags_and_defaults():
    z = np.linspace(-2.0, 2.0, 400)
    y = (np.sin(7 * z) > 0).astype(float)
    assert Calibrator().method == "platt" and Calibrator().alpha == 0.05
    assert Calibrator().fit(z, y).method == "platt"  # the default method fits
    isotonic = Calibrator("isotonic").fit(z, y)
    assert isotonic.applied_ is True and isotonic.deviance_ == 0.0 and isotonic.x_
    none = Calibrator("none").fit(z, y)
    assert none.applied_ is False and none.deviance_ == 0.0 and none.x_ == []
    state = isotonic.to_dict()
    assert set(state) == {"method", "alpha", "a", "b", "x", "y", "applied", "deviance"}
    assert state["applied"] is True and state["deviance"] == 0.0
    back = Calibrator.from_dict(state)
    assert back.applied_ is True and back.deviance_ == 0.0 and back.alpha == 0.05
    with pytest.raises(ValueError, match=r"^alpha must be in \(0, 1\]$"):
        Calibrator("platt", alpha=1.5).fit(z, y)
    with pytest.raises(ValueError, match=r"^calibration must be one of platt, isotonic, none$"):
        Calibrator("magic").fit(z, y)


def test_state_saved_before_the_test_reads_as_applied():
    """Models saved before the likelihood-ratio test carry no alpha, applied or deviance:
    their map was always applied (alpha 1), applied when it is not the identity."""
    shifted = Calibrator.from_dict({"method": "platt", "a": 1.0, "b": 0.3, "x": [], "y": []})
    assert shifted.alpha == 1.0 and shifted.applied_ is True and np.isnan(shifted.deviance_)
    scaled = Calibrator.from_dict({"method": "platt", "a": 1.2, "b": 0.0, "x": [], "y": []})
    assert scaled.applied_ is True
    identity = Calibrator.from_dict({"method": "platt", "a": 1.0, "b": 0.0, "x": [], "y": []})
    assert identity.applied_ is False
    steps = Calibrator.from_dict({"method": "isotonic", "a": 1.0, "b": 0.0, "x": [0.0, 1.0],
                                  "y": [0.1, 0.9]})  # fmt: skip
    assert steps.applied_ is True
    assert steps.transform(np.array([0.0]))[0] == pytest.approx(0.5)  # sigmoid 0.5 -> 0.5
