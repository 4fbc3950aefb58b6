"""The feature encoder: robust scaling, logs of skewed counts, missing values, vocabularies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.models import FeatureEncoder


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0],
            "spend": [0.0, 0.0, 1.0, 2.0, 500.0],  # right-skewed money: logged
            "age": [20.0, np.nan, 40.0, 50.0, 60.0],
            "colour": ["a", "b", "a", None, "b"],
        }
    )


def test_numbers_are_centred_on_the_median_and_scaled_by_the_iqr(frame):
    encoder = FeatureEncoder().fit(frame)
    assert encoder.numeric_ == ["x", "spend", "age"] and encoder.categorical_ == ["colour"]
    numeric, _ = encoder.transform(frame)
    # x: median 3, quartiles 2 and 4: (x - 3) / 2.
    np.testing.assert_allclose(numeric[:, 0], [-1, -0.5, 0, 0.5, 1])
    # spend is skewed and non-negative: log1p first, then the same robust scaling.
    assert encoder.log_columns_ == ["spend"]
    logged = np.log1p(frame["spend"].to_numpy())
    q25, q50, q75 = np.quantile(logged, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(numeric[:, 1], (logged - q50) / (q75 - q25), rtol=1e-6)


def test_missing_numbers_get_the_median_and_an_indicator(frame):
    encoder = FeatureEncoder().fit(frame)
    numeric, _ = encoder.transform(frame)
    assert encoder.missing_indicator_ == ["age"] and numeric.shape == (5, 4)
    assert numeric[1, 2] == 0.0  # the median, scaled
    assert numeric[:, 3].tolist() == [0, 1, 0, 0, 0]


def test_categories_get_codes_with_zero_for_missing_and_unseen(frame):
    encoder = FeatureEncoder().fit(frame)
    _, codes = encoder.transform(frame)
    assert encoder.vocabulary_ == [["a", "b"]] and encoder.cardinalities_ == [3]
    assert codes[:, 0].tolist() == [1, 2, 1, 0, 2]
    later = frame.assign(colour=["c", "a", None, "b", "a"])
    assert encoder.transform(later)[1][:, 0].tolist() == [0, 1, 0, 2, 1]


def test_state_round_trips_and_columns_are_checked(frame):
    encoder = FeatureEncoder().fit(frame)
    again = FeatureEncoder.from_dict(encoder.to_dict())
    for got, want in zip(again.transform(frame), encoder.transform(frame), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(InputError, match="feature column 'x' is missing"):
        encoder.transform(frame.drop(columns=["x"]))
    with pytest.raises(InputError, match="no feature columns"):
        FeatureEncoder().fit(frame[["user_id"]])


def test_drift_bins_match_the_reference(frame):
    encoder = FeatureEncoder().fit(frame)
    reference = encoder.reference()
    counts = encoder.bin_counts(frame)
    assert set(reference) == set(counts) == {"x", "spend", "age", "colour"}
    for name in reference:
        assert counts[name].shape == reference[name].shape
        np.testing.assert_allclose(counts[name] / counts[name].sum(), reference[name])
    # Explicit lists: only those columns are features.
    only = FeatureEncoder(numeric=["x"], categorical=["colour"]).fit(frame)
    assert only.numeric_ == ["x"] and only.categorical_ == ["colour"]
