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
