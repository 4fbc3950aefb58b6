"""The feature encoder's frequency cap, feature schema checks and constant columns."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.models import FeatureEncoder


@pytest.fixture
def skewed():
    """A high-cardinality column with ties at the cap boundary, plus missing labels."""
    rng = np.random.default_rng(3)
    labels = [f"L{k:03d}" for k in range(60)]
    weights = np.repeat(np.arange(30, 0, -1), 2).astype(float)  # pairs of equal weight
    city = rng.choice(labels, size=3000, p=weights / weights.sum()).astype(object)
    city[rng.random(3000) < 0.05] = None
    return pd.DataFrame(
        {
            "user_id": np.arange(3000),
            "x": rng.normal(size=3000),
            "city": city,
        }
    )


def naive_top(values, n):
    counts = Counter(v for v in values if isinstance(v, str))  # NaN / None: missing
    ranked = sorted(counts, key=lambda label: (-counts[label], label))
    return sorted(ranked[:n]), len(counts) - min(n, len(counts))


@pytest.mark.parametrize("cap", [1, 7, 25, 59, 60, 200])
def test_the_cap_keeps_exactly_the_most_frequent_labels(skewed, cap):
    encoder = FeatureEncoder(max_categories=cap).fit(skewed)
    want, folded = naive_top(skewed["city"].tolist(), cap)
    assert encoder.vocabulary_ == [want]
    assert encoder.folded_labels_ == [folded]
    assert encoder.cardinalities_ == [len(want) + 1]


def test_ties_at_the_cap_are_broken_by_label_text():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "c": list("bbaccd")})
    encoder = FeatureEncoder(max_categories=2).fit(frame)
    assert encoder.vocabulary_ == [["b", "c"]]  # b and c twice; a and d once
    encoder = FeatureEncoder(max_categories=3).fit(frame)
    assert encoder.vocabulary_ == [["a", "b", "c"]] and encoder.folded_labels_ == [1]


def test_rare_unseen_and_missing_labels_share_code_zero(skewed):
    encoder = FeatureEncoder(max_categories=10).fit(skewed)
    vocab = encoder.vocabulary_[0]
    _, codes = encoder.transform(skewed)
    city = skewed["city"]
    expected = [vocab.index(v) + 1 if v in vocab else 0 for v in city]
    assert codes[:, 0].tolist() == expected
    rare = city.notna() & ~city.isin(vocab)
    assert rare.any() and (codes[rare.to_numpy(), 0] == 0).all()
    assert (codes[city.isna().to_numpy(), 0] == 0).all()
    later = skewed.head(3).assign(city=["never-seen", None, vocab[0]])
    assert encoder.transform(later)[1][:, 0].tolist() == [0, 0, 1]
    # The drift reference counts the folded labels in code 0.
    share0 = float((~city.isin(vocab)).mean())
    assert encoder.categorical_reference_[0][0] == pytest.approx(share0)


def test_no_cap_keeps_every_label(skewed):
    encoder = FeatureEncoder(max_categories=None).fit(skewed)
    assert len(encoder.vocabulary_[0]) == skewed["city"].nunique()
    assert encoder.folded_labels_ == [0]


@pytest.mark.parametrize("cap", [0, -1, 2.5, True, "10"])
def test_a_bad_cap_is_rejected(skewed, cap):
    with pytest.raises(InputError, match="max_categories"):
        FeatureEncoder(max_categories=cap).fit(skewed)


def test_state_round_trips_through_json(skewed):
    encoder = FeatureEncoder(max_categories=10).fit(skewed)
    data = json.loads(json.dumps(encoder.to_dict()))
    assert data["params"]["max_categories"] == 10
    again = FeatureEncoder.from_dict(data)
    assert again.max_categories == 10
    for name in ("folded_labels_", "kinds_", "dtypes_", "numeric_labels_", "dropped_"):
        assert getattr(again, name) == getattr(encoder, name)
    for got, want in zip(again.transform(skewed), encoder.transform(skewed), strict=True):
        np.testing.assert_array_equal(got, want)


def test_the_schema_records_kinds_and_dtype_families():
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "f": [0.5, np.nan, 2.0],
            "flag": [True, False, True],
            "t": ["a", "b", None],
            "cat": pd.Categorical(["u", "v", "u"]),
        }
    )
    encoder = FeatureEncoder().fit(frame)
    assert encoder.kinds_ == {
        "n": "numeric",
        "f": "numeric",
        "flag": "categorical",
        "t": "categorical",
        "cat": "categorical",
    }
    assert encoder.dtypes_ == {
        "n": "number",
        "f": "number",
        "flag": "number",
        "t": "text",
        "cat": "text",
    }


def old_format(encoder: FeatureEncoder) -> dict:
    """The dict an encoder saved before the cap and the schema existed."""
    data = encoder.to_dict()
    for key in ("max_categories", "drop_constant"):
        del data["params"][key]
    for key in ("folded_labels_", "numeric_labels_", "kinds_", "dtypes_", "dropped_"):
        del data["state"][key]
    return data


def test_an_old_format_dict_loads_and_transforms(skewed):
    encoder = FeatureEncoder(max_categories=None).fit(skewed)
    old = FeatureEncoder.from_dict(old_format(encoder))
    assert old.max_categories is None and old.drop_constant is False
    assert old.folded_labels_ == [0] and old.numeric_labels_ == [False]
    assert old.kinds_ == {"x": "numeric", "city": "categorical"}
    assert old.dtypes_ == {} and old.dropped_ == []
    for got, want in zip(old.transform(skewed), encoder.transform(skewed), strict=True):
        np.testing.assert_array_equal(got, want)
    # Unknown dtypes: no type checks, as before.
    old.check_columns(skewed.assign(city=np.arange(len(skewed), dtype=float)))
    with pytest.raises(InputError, match="feature column 'city' is missing"):
        old.transform(skewed.drop(columns=["city"]))


@pytest.fixture
def scored():
    frame = pd.DataFrame(
        {f"V{k}": np.arange(20, dtype=float) * k for k in range(1, 10)}
        | {"zip": [f"z{k % 4}" for k in range(20)], "user_id": np.arange(20)}
    )
    return frame, FeatureEncoder().fit(frame)


def test_a_missing_feature_column_is_named(scored):
    frame, encoder = scored
    with pytest.raises(InputError) as err:
        encoder.check_columns(frame.drop(columns=["V3"]), source="users.csv")
    message = str(err.value)
    assert err.value.column == "V3" and err.value.source == "users.csv"
    assert "feature column 'V3' is missing" in message
    assert "trained on 10 features: V1, V2, V3, V4, V5, V6, V7, V8, ..." in message
    assert "\n" not in message
    with pytest.raises(InputError, match="feature column 'V3' is missing"):
        encoder.transform(frame.drop(columns=["V3"]))


def test_text_in_a_numeric_column_is_named_with_its_row(scored):
    frame, encoder = scored
    retyped = frame.assign(V2=frame["V2"].astype(object))
    retyped.loc[4, "V2"] = "abc"
    retyped.loc[9, "V2"] = "xyz"
    with pytest.raises(InputError) as err:
        encoder.check_columns(retyped)
    assert err.value.column == "V2"
    assert "feature column 'V2' holds text ('abc' at rows 5 and 1 more)" in str(err.value)
    assert "trained on numbers" in str(err.value)
    # transform refuses too, instead of scoring the text as missing.
    with pytest.raises(InputError, match=r"'V2' holds text \('abc' at rows 5"):
        encoder.transform(retyped)
    # Numbers as text, blanks and missing markers are fine.
    as_text = frame.assign(V2=frame["V2"].astype(str))
    as_text.loc[3, "V2"] = " "
    as_text.loc[5, "V2"] = "NaN"
    encoder.check_columns(as_text)
    numeric, _ = encoder.transform(as_text)
    assert numeric.shape[0] == len(frame)


def test_numbers_in_a_text_column_are_rejected(scored):
    frame, encoder = scored
    with pytest.raises(InputError) as err:
        encoder.check_columns(frame.assign(zip=np.arange(20)))
    assert err.value.column == "zip"
    assert "feature column 'zip' holds numbers; the models were trained on text labels" in str(
        err.value
    )
    with pytest.raises(InputError, match="'zip' holds numbers"):
        encoder.transform(frame.assign(zip=np.arange(20.0)))
    # An entirely empty column read as floats is just missing.
    encoder.check_columns(frame.assign(zip=np.nan))
    assert (encoder.transform(frame.assign(zip=np.nan))[1] == 0).all()


def test_extra_columns_are_rejected_only_when_strict(scored):
    frame, encoder = scored
    extra = frame.assign(foo=1)
    encoder.check_columns(extra)
    with pytest.raises(InputError) as err:
        encoder.check_columns(extra, strict_extra=True)
    assert err.value.column == "foo"
    assert "column 'foo' is not among the models' features" in str(err.value)
    assert str(err.value).endswith("list it under data.users.ignore or drop it")
    encoder.check_columns(extra, strict_extra=True, extra_allowed=["foo"])
    encoder.check_columns(frame, strict_extra=True)  # user_id is excluded, not extra


def test_checks_come_in_order_missing_retyped_extra(scored):
    frame, encoder = scored
    bad = frame.drop(columns=["V9"]).assign(zip=1.0, foo=1)
    with pytest.raises(InputError, match="'V9' is missing"):
        encoder.check_columns(bad, strict_extra=True)
    with pytest.raises(InputError, match="'zip' holds numbers"):
        encoder.check_columns(bad.assign(V9=0.0), strict_extra=True)


def test_int_like_labels_arriving_as_floats_keep_their_codes():
    frame = pd.DataFrame({"x": np.arange(8.0), "tier": ["1", "2", "3", "1", "2", None, "10", "3"]})
    encoder = FeatureEncoder().fit(frame)
    assert encoder.vocabulary_ == [["1", "10", "2", "3"]]
    assert encoder.numeric_labels_ == [True] and encoder.dtypes_["tier"] == "text"
    _, want = encoder.transform(frame)
    as_float = frame.assign(tier=[1.0, 2.0, 3.0, 1.0, 2.0, np.nan, 10.0, 3.0])
    encoder.check_columns(as_float)
    np.testing.assert_array_equal(encoder.transform(as_float)[1], want)
    as_int = frame.assign(tier=pd.array([1, 2, 3, 1, 2, None, 10, 3], dtype="Int64"))
    np.testing.assert_array_equal(encoder.transform(as_int)[1], want)
    as_category = frame.assign(tier=pd.Categorical([1, 2, 3, 1, 2, None, 10, 3]))
    np.testing.assert_array_equal(encoder.transform(as_category)[1], want)
    # Unseen numbers are unseen labels.
    assert encoder.transform(frame.assign(tier=7.0))[1][:, 0].tolist() == [0] * 8
    # Same for an integer column trained as categorical and arriving with NaN (as floats).
    ints = FeatureEncoder(categorical=["tier"]).fit(frame.assign(tier=[1, 2, 3, 1, 2, 4, 10, 3]))
    assert ints.dtypes_["tier"] == "number" and ints.numeric_labels_ == [True]
    codes = ints.transform(as_float)[1][:, 0]
    assert codes.tolist() == [1, 3, 4, 1, 3, 0, 2, 4]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ([5.0] * 6, "feature column 'c' is constant (every row 5)"),
        ([5.0, np.nan, 5.0, 5.0, 5.0, 5.0], "feature column 'c' is constant (every row 5 or"),
        ([np.nan] * 6, "feature column 'c' is entirely missing"),
        (["a"] * 6, "feature column 'c' is constant (every row 'a')"),
        ([None] * 6, "feature column 'c' is entirely missing"),
    ],
)
def test_constant_and_empty_columns_raise_or_are_dropped(column, message):
    frame = pd.DataFrame({"x": np.arange(6.0), "t": list("ababab"), "c": column})
    with pytest.raises(InputError) as err:
        FeatureEncoder().fit(frame)
    assert err.value.column == "c" and message in str(err.value)
    encoder = FeatureEncoder(drop_constant=True).fit(frame)
    assert encoder.dropped_ == ["c"]
    assert "c" not in encoder.numeric_ + encoder.categorical_ and "c" not in encoder.kinds_
    numeric, codes = encoder.transform(frame)
    assert numeric.shape == (6, 1) and codes.shape == (6, 1)
    encoder.check_columns(frame, strict_extra=True)  # a dropped column is not "extra"
    again = FeatureEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert again.dropped_ == ["c"] and again.drop_constant is True


def test_dropping_every_column_leaves_nothing_to_learn():
    frame = pd.DataFrame({"c": [1.0, 1.0], "d": [None, None]})
    with pytest.raises(InputError, match="no feature columns to learn from"):
        FeatureEncoder(drop_constant=True).fit(frame)


def test_unused_categories_are_not_labels():
    stage = pd.Categorical(["dormant"] * 4, categories=["active", "cooling", "dormant"])
    frame = pd.DataFrame({"x": np.arange(4.0), "t": list("abab"), "stage": stage})
    with pytest.raises(InputError, match="'stage' is constant \\(every row 'dormant'\\)"):
        FeatureEncoder().fit(frame)
    two = frame.assign(
        stage=pd.Categorical(["dormant", "cooling"] * 2, categories=stage.categories)
    )
    encoder = FeatureEncoder(max_categories=1).fit(two)
    assert encoder.vocabulary_ == [["a"], ["cooling"]] and encoder.folded_labels_ == [1, 1]
