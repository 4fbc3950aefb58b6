"""Turn a feature table into model inputs: robust-scaled numbers and categorical codes.

:class:`FeatureEncoder` follows scikit-learn's conventions: parameters in ``__init__``, all
learning in :meth:`~FeatureEncoder.fit`, fitted state in attributes ending in ``_``. Its fitted
state is plain JSON (:meth:`~FeatureEncoder.to_dict`), so a saved model needs no pickle.

Numbers: right-skewed non-negative columns (counts, money) are ``log1p``-transformed, then every
numeric column is centred on its median and divided by its inter-quartile range; missing values
become the median plus a 0/1 "was missing" indicator column. Categories: each column gets a
vocabulary learned in ``fit``; code 0 is reserved for missing or unseen labels. High-cardinality
columns keep their N = ``max_categories`` (100 by default) most frequent labels, ties broken by
label text (the
frequency cap: labels beyond the N most frequent share code 0 with missing and unseen labels).

The encoder remembers the feature schema it was trained on: each feature's kind (numeric or
categorical) and dtype family (number or text). :meth:`~FeatureEncoder.check_columns` (and, for
missing and retyped columns, :meth:`~FeatureEncoder.transform`) rejects a table that lacks a
feature, holds text where the models learnt numbers, or numbers where they learnt text labels,
with one line naming the column, instead of silently scoring such values as missing. A column
that is constant or entirely missing in the training table cannot be learnt from: ``fit``
rejects it, or drops it with ``drop_constant=True``.

The encoder also keeps each feature's training distribution (deciles for numbers, label shares
for categories) so that a scoring population can be checked for drift with the population
stability index (:meth:`~FeatureEncoder.bin_counts` and :func:`optimizer.evaluation.metrics.psi`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.base import BaseEstimator

from optimizer.errors import InputError, format_rows

__all__ = [
    "FeatureEncoder",
    "PSI_BINS",
    "basket_median",
    "basket_values",
    "log_relative",
    "reusing_encodings",
]

#: Encodings made inside :func:`reusing_encodings`, by (encoder, frame) identity.
_ENCODINGS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("encodings", default=None)


@contextlib.contextmanager
def reusing_encodings() -> Iterator[None]:
    """Within the block, each encoder encodes each frame once (the frames must not change).

    Scoring asks the same encoder for the same users' encoding once per model output (natural,
    coupon); inside this block the later calls get the first one's arrays.
    """
    token = _ENCODINGS.set({})
    try:
        yield
    finally:
        _ENCODINGS.reset(token)


#: Number of quantile bins of a numeric feature's drift reference.
PSI_BINS = 10

#: How many feature names an error message lists before "...".
_NAMES_SHOWN = 8

#: Text that a numeric column may hold to mean "missing" (besides blanks), lower-cased.
_MISSING_TEXT = frozenset({"nan", "na", "n/a", "null", "none"})

#: Hint of the error for a column that is not a feature.
_EXTRA_HINT = "list it under data.users.ignore or drop it"


def _is_categorical(series: pd.Series) -> bool:
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or ptypes.is_object_dtype(series.dtype)
        or ptypes.is_string_dtype(series.dtype)
        or ptypes.is_bool_dtype(series.dtype)
    )


def _dtype_family(series: pd.Series) -> str:
    """``"number"`` (int, float, bool), ``"text"`` (object, string, category) or ``"other"``."""
    dtype = series.dtype
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or ptypes.is_object_dtype(dtype)
        or ptypes.is_string_dtype(dtype)
    ):
        return "text"
    if ptypes.is_bool_dtype(dtype) or ptypes.is_numeric_dtype(dtype):
        return "number"
    return "other"


def _holds_numbers(series: pd.Series) -> bool:
    """True for an int or float column (not bool, not category)."""
    dtype = series.dtype
    return (
        not isinstance(dtype, pd.CategoricalDtype)
        and not ptypes.is_bool_dtype(dtype)
        and ptypes.is_numeric_dtype(dtype)
    )


def _show_value(value: Any) -> str:
    """A value for an error message: ``5`` for 5.0, ``'a'`` for text."""
    if isinstance(value, str):
        return repr(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def _name_list(names: Sequence[Any]) -> str:
    shown = ", ".join(str(c) for c in names[:_NAMES_SHOWN])
    return shown + (", ..." if len(names) > _NAMES_SHOWN else "")


class FeatureEncoder(BaseEstimator):
    """Encode a DataFrame of features into ``(numeric, categorical)`` arrays.

    Each categorical column keeps its N = ``max_categories`` most frequent labels, ties broken
    by label text (the
    frequency cap: labels beyond the N most frequent share code 0 with missing and unseen labels).

    Parameters
    ----------
    numeric : sequence of str, optional
        Numeric feature columns. Default: every numeric column not listed as categorical.
    categorical : sequence of str, optional
        Categorical feature columns. Default: every text, category or boolean column.
    exclude : sequence of str
        Columns never used as features (identifiers, outcomes).
    max_categories : int or None
        Most labels a categorical column keeps (N above); None keeps every label.
    drop_constant : bool or None
        What ``fit`` does with a feature column that is constant (a single distinct non-missing
        value) or entirely missing: raise :class:`~optimizer.errors.InputError` naming it
        (False), leave it out of the features and record it in ``dropped_`` (True), or keep it
        (None: the models' choice, since the rows of one segment make its label constant and
        the kept column still reports drift when other segments are scored).

    Attributes
    ----------
    numeric_, categorical_ : list of str
        The feature columns by kind, in encoding order.
    vocabulary_ : list of list of str
        Per categorical column, the kept labels in text order; label ``i`` has code ``i + 1``.
    folded_labels_ : list of int
        Per categorical column, how many training labels the frequency cap folded into code 0.
    numeric_labels_ : list of bool
        Per categorical column, whether every kept label reads as a number ('1', '2.5'): such a
        column may arrive as numbers, matched to the labels by value (1.0 finds '1').
    kinds_ : dict of str to str
        Each feature column: ``"numeric"`` or ``"categorical"``.
    dtypes_ : dict of str to str
        Each feature column's training dtype family: ``"number"`` (int, float, bool) or
        ``"text"`` (object, string, category); empty for encoders saved before it existed
        (unknown: no type checks).
    dropped_ : list of str
        Constant or entirely missing columns left out by ``drop_constant=True``.
    """

    def __init__(
        self,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        exclude: Sequence[str] = ("user_id",),
        max_categories: int | None = 100,
        drop_constant: bool | None = False,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.exclude = exclude
        self.max_categories = max_categories
        self.drop_constant = drop_constant

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        cap = self.max_categories
        if cap is not None and (
            isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 1
        ):
            raise InputError("must be a positive integer or None", key="max_categories")

    def fit(self, X: pd.DataFrame) -> FeatureEncoder:
        """Learn transforms, vocabularies and drift references from ``X``.

        Parameters
        ----------
        X : DataFrame, shape (n, c)
            Training features.

        Returns
        -------
        self

        Raises
        ------
        InputError
            No feature columns; a listed feature column is absent; a feature column is constant
            or entirely missing (unless ``drop_constant``).
        """
        self._check_params()
        excluded = set(self.exclude)
        if self.categorical is None:
            categorical = [c for c in X.columns if c not in excluded and _is_categorical(X[c])]
        else:
            categorical = list(self.categorical)
        if self.numeric is None:
            numeric = [
                c
                for c in X.columns
                if c not in excluded and c not in categorical and ptypes.is_numeric_dtype(X[c])
            ]
        else:
            numeric = list(self.numeric)
        if not numeric and not categorical:
            raise InputError("no feature columns to learn from")
        for column in (*numeric, *categorical):
            if column not in X.columns:
                raise InputError(
                    f"feature column '{column}' is missing from the input", column=column
                )
        self.dropped_: list[str] = []
        self.numeric_: list[str] = []
        self.log_columns_: list[str] = []
        self.center_: list[float] = []
        self.scale_: list[float] = []
        self.missing_indicator_: list[str] = []
        self.numeric_edges_: list[list[float]] = []
        self.numeric_reference_: list[list[float]] = []
        for column in numeric:
            raw = self._raw_numeric(X, column)
            finite = raw[np.isfinite(raw)]
            if self._is_degenerate(column, finite, finite.size < raw.size):
                continue
            self.numeric_.append(column)
            std = float(finite.std())
            skew = float(((finite - finite.mean()) ** 3).mean() / std**3) if std > 0 else 0.0
            if finite.min() >= 0 and skew > 1.0:
                self.log_columns_.append(column)
            values = self._shape(column, raw)
            present = values[np.isfinite(values)]
            if present.size == 0:
                present = np.zeros(1)
            q25, q50, q75 = np.quantile(present, [0.25, 0.5, 0.75])
            scale = float(q75 - q25)
            if scale <= 1e-12:
                scale = float(present.std()) or 1.0
            self.center_.append(float(q50))
            self.scale_.append(scale)
            if present.size < values.size:
                self.missing_indicator_.append(column)
            edges = np.unique(np.quantile(present, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
            self.numeric_edges_.append(edges.tolist())
            counts = self._numeric_bins(values, edges)
            self.numeric_reference_.append((counts / counts.sum()).tolist())
        self.categorical_: list[str] = []
        self.vocabulary_: list[list[str]] = []
        self.folded_labels_: list[int] = []
        self.numeric_labels_: list[bool] = []
        self.categorical_reference_: list[list[float]] = []
        for column in categorical:
            self._fit_categorical(column, *self._label_index(X[column]))
        if not self.numeric_ and not self.categorical_:
            raise InputError(
                "no feature columns to learn from (every one is constant or entirely missing: "
                f"{_name_list(self.dropped_)})"
            )
        self.kinds_: dict[str, str] = {c: "numeric" for c in self.numeric_}
        self.kinds_.update({c: "categorical" for c in self.categorical_})
        self.dtypes_: dict[str, str] = {c: _dtype_family(X[c]) for c in self.kinds_}
        self.n_numeric_ = len(self.numeric_) + len(self.missing_indicator_)
        self.cardinalities_ = [len(v) + 1 for v in self.vocabulary_]
        return self

    def _is_degenerate(self, column: str, present: np.ndarray, some_missing: bool) -> bool:
        """Whether to drop a column with these distinct (or all) present values; may raise."""
        if present.size and (present[0] != present).any():
            return False
        if self.drop_constant is None:  # kept as it is: it encodes to one value
            return False
        if present.size == 0:
            problem = "is entirely missing"
        else:
            tail = " or missing" if some_missing else ""
            problem = f"is constant (every row {_show_value(present[0])}{tail})"
        if not self.drop_constant:
            raise InputError(f"feature column '{column}' {problem}", column=column)
        self.dropped_.append(column)
        return True

    def _fit_categorical(self, column: str, row_label: np.ndarray, names: np.ndarray) -> None:
        freq = np.bincount(row_label[row_label >= 0], minlength=len(names))
        seen, freq = names[freq > 0], freq[freq > 0]  # unused categories of a category dtype
        if self._is_degenerate(column, seen, bool((row_label < 0).any())):
            return
        # Most frequent first, ties in label text order; keep the first max_categories.
        by_text = np.argsort(seen, kind="stable")
        ranked = by_text[np.argsort(-freq[by_text], kind="stable")]
        if self.max_categories is not None:
            ranked = ranked[: int(self.max_categories)]
        vocab = sorted(seen[ranked].tolist())
        codes = self._row_codes(row_label, names, vocab)
        counts = np.bincount(codes, minlength=len(vocab) + 1).astype(np.float64)
        as_numbers = self._label_values(vocab)
        self.categorical_.append(column)
        self.vocabulary_.append(vocab)
        self.folded_labels_.append(int(len(seen) - len(vocab)))
        self.numeric_labels_.append(bool(len(vocab)) and bool(np.isfinite(as_numbers).all()))
        self.categorical_reference_.append((counts / counts.sum()).tolist())

    # ------------------------------------------------------------- column checks
    def _features(self) -> list[str]:
        return list(self.kinds_)

    def _check_present(self, X: pd.DataFrame, source: str | None) -> None:
        features = self._features()
        absent = [c for c in features if c not in X.columns]
        if not absent:
            return
        others = f", as are {_name_list(absent[1:])}" if len(absent) > 1 else ""
        raise InputError(
            f"feature column '{absent[0]}' is missing{others} (the models were trained on "
            f"{len(features)} feature{'s' if len(features) != 1 else ''}: "
            f"{_name_list(features)})",
            source=source,
            column=absent[0],
        )

    def _trained_on_numbers(self, column: str) -> bool:
        return self.dtypes_.get(column) == "number"

    def _trained_on_text(self, column: str) -> bool:
        return self.dtypes_.get(column) == "text"

    def _check_categorical(
        self, series: pd.Series, j: int, column: str, source: str | None
    ) -> None:
        """Reject numbers arriving in a column whose training labels were (non-numeric) text."""
        if isinstance(series.dtype, pd.CategoricalDtype):
            if series.notna().any():
                self._check_categorical(pd.Series(series.cat.categories), j, column, source)
            return
        if (
            _holds_numbers(series)
            and self._trained_on_text(column)
            and not self.numeric_labels_[j]
            and series.notna().any()
        ):
            raise InputError(
                f"feature column '{column}' holds numbers; the models were trained on text labels",
                source=source,
                column=column,
            )

    def check_columns(
        self,
        X: pd.DataFrame,
        *,
        source: str | None = "input",
        extra_allowed: Collection[str] = (),
        strict_extra: bool = False,
    ) -> None:
        """Check that ``X`` can be scored: every feature present and of its training type.

        Checked in this order: a feature column missing; a feature column retyped (text that
        does not read as numbers where the models learnt numbers, or numbers where they learnt
        non-numeric text labels); with ``strict_extra``, a column that is not a feature.

        Parameters
        ----------
        X : DataFrame, shape (n, c)
            The table to score.
        source : str, optional
            The file name error messages start with.
        extra_allowed : collection of str
            Non-feature columns that may be present under ``strict_extra`` (besides ``exclude``
            and columns dropped in ``fit``).
        strict_extra : bool
            Reject columns that are not features.

        Raises
        ------
        InputError
            One line naming the first offending column.
        """
        self._check_present(X, source)
        for column in self.numeric_:
            self._numeric_values(X, column, source)
        for j, column in enumerate(self.categorical_):
            self._check_categorical(X[column], j, column, source)
        if not strict_extra:
            return
        allowed = {*self._features(), *extra_allowed, *self.exclude, *self.dropped_}
        extra = [c for c in X.columns if c not in allowed]
        if len(extra) == 1:
            raise InputError(
                f"column '{extra[0]}' is not among the models' features; {_EXTRA_HINT}",
                source=source,
                column=str(extra[0]),
            )
        if extra:
            names = ", ".join(f"'{c}'" for c in extra[:_NAMES_SHOWN])
            names += ", ..." if len(extra) > _NAMES_SHOWN else ""
            raise InputError(
                f"columns {names} are not among the models' features; list them under "
                "data.users.ignore or drop them",
                source=source,
                column=str(extra[0]),
            )

    # ------------------------------------------------------------- transforms
    @staticmethod
    def _raw_numeric(X: pd.DataFrame, column: str) -> np.ndarray:
        if column not in X.columns:
            raise InputError(f"feature column '{column}' is missing from the input", column=column)
        series = X[column]
        if _is_categorical(series) and not ptypes.is_bool_dtype(series.dtype):
            series = pd.to_numeric(series.astype(object), errors="coerce")
        return series.to_numpy(dtype=np.float64, na_value=np.nan)

    def _numeric_values(self, X: pd.DataFrame, column: str, source: str | None) -> np.ndarray:
        """A numeric feature as float64; text in a column trained on numbers raises."""
        series = X[column]
        if not _is_categorical(series) or ptypes.is_bool_dtype(series.dtype):
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
        objects = series.astype(object)
        values = pd.to_numeric(objects, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if not self._trained_on_numbers(column):
            return values
        unread = np.flatnonzero(np.isnan(values) & series.notna().to_numpy())
        if unread.size:
            text = objects.iloc[unread].astype(str).str.strip()
            unread = unread[~text.str.lower().isin(_MISSING_TEXT).to_numpy() & (text != "")]
        if unread.size:
            first = objects.iloc[unread[0]]
            raise InputError(
                f"feature column '{column}' holds text ({str(first)!r} at "
                f"{format_rows(unread[:1], int(unread.size), limit=1)}); "
                "the models were trained on numbers",
                source=source,
                column=column,
            )
        return values

    def _shape(self, column: str, raw: np.ndarray) -> np.ndarray:
        if column in getattr(self, "log_columns_", ()):
            return np.log1p(np.maximum(raw, 0.0))
        return raw

    @staticmethod
    def _numeric_bins(values: np.ndarray, edges: np.ndarray | list[float]) -> np.ndarray:
        finite = np.isfinite(values)
        idx = np.searchsorted(np.asarray(edges, dtype=np.float64), values[finite], side="right")
        counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
        return np.append(counts, float((~finite).sum()))  # last bin: missing

    @staticmethod
    def _labels(series: pd.Series) -> np.ndarray:
        """Each row's label as text, ``""`` when missing."""
        if isinstance(series.dtype, pd.CategoricalDtype):
            cats = np.array([str(c) for c in series.cat.categories] + [""], dtype=object)
            return cats[series.cat.codes.to_numpy()]
        values = series.to_numpy(dtype=object, copy=True)
        missing = pd.isna(values)
        if ptypes.infer_dtype(values, skipna=True) not in ("string", "empty"):
            values = pd.Series(values, copy=False).map(str).to_numpy(dtype=object)
        values[missing] = ""
        return values

    @classmethod
    def _label_index(cls, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Each row's position among the column's distinct labels, and those labels.

        Returns
        -------
        row_label : ndarray of int64, shape (n,)
            Position in ``labels``; -1 where the row is missing (or the empty label).
        labels : ndarray of str, shape (m,)
            Distinct non-empty labels, the text of the values (``str``).
        """
        if isinstance(series.dtype, pd.CategoricalDtype):
            row, values = series.cat.codes.to_numpy(), series.cat.categories
        elif ptypes.is_object_dtype(series.dtype) and ptypes.infer_dtype(
            series, skipna=True
        ) not in ("string", "empty"):
            # Mixed Python objects (1 and 1.0 hash alike): text first, row by row.
            row, values = pd.factorize(cls._labels(series))
        else:
            # Hash the values, then turn only the distinct ones into text.
            row, values = pd.factorize(series)
        text = np.array([str(v) for v in values.tolist()] + [""], dtype=object)
        merged, labels = pd.factorize(text)  # distinct values may share a text
        labels = np.asarray(labels, dtype=object)
        empty = labels == ""
        position = np.cumsum(~empty) - 1
        position[empty] = -1
        lookup = position[merged]  # the appended "" takes row -1 (missing)
        return lookup[row].astype(np.int64), labels[~empty]

    @staticmethod
    def _row_codes(row_label: np.ndarray, labels: np.ndarray, vocab: list[str]) -> np.ndarray:
        """Codes of rows given by :meth:`_label_index`: 0 for missing or not in ``vocab``."""
        label_code = pd.Index(vocab, dtype=object).get_indexer(labels) + 1
        return np.append(label_code, 0).astype(np.int64)[row_label]

    @staticmethod
    def _label_values(vocab: list[str]) -> np.ndarray:
        """The labels read as numbers (NaN where they do not)."""
        return pd.to_numeric(pd.Series(vocab, dtype=object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )

    def _category_codes(
        self, series: pd.Series, j: int, column: str, source: str | None
    ) -> np.ndarray:
        """Codes of one categorical feature; numbers match numeric labels by value."""
        vocab = self.vocabulary_[j]
        if isinstance(series.dtype, pd.CategoricalDtype):
            categories = pd.Series(series.cat.categories)
            if not series.notna().any():
                return np.zeros(len(series), dtype=np.int64)
            lookup = np.append(self._category_codes(categories, j, column, source), 0)
            return lookup[series.cat.codes.to_numpy()]  # code -1 (missing) -> last: 0
        self._check_categorical(series, j, column, source)
        if _holds_numbers(series) and self.numeric_labels_[j]:
            keys, first = np.unique(self._label_values(vocab), return_index=True)
            pos = pd.Index(keys).get_indexer(series.to_numpy(dtype=np.float64, na_value=np.nan))
            return np.where(pos >= 0, first[pos] + 1, 0).astype(np.int64)
        return self._row_codes(*self._label_index(series), vocab)

    def transform(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Encode ``X``.

        Parameters
        ----------
        X : DataFrame, shape (n, c)
            Features with at least the fitted columns.

        Returns
        -------
        numeric : ndarray of float32, shape (n, n_numeric_)
            Robust-scaled numbers followed by missing indicators.
        categorical : ndarray of int64, shape (n, len(categorical_))
            Codes into each vocabulary; 0 is missing, unseen or folded by the frequency cap.

        Raises
        ------
        InputError
            A feature column is missing or retyped (see :meth:`check_columns`).
        """
        memo = _ENCODINGS.get()
        if memo is not None and (id(self), id(X)) in memo:
            return memo[id(self), id(X)][1]
        out = self._transform(X)
        if memo is not None:  # the frame is kept with its encoding, so its id stays its own
            memo[id(self), id(X)] = (X, out)
        return out

    def _transform(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        self._check_present(X, None)
        n = len(X)
        numeric = np.empty((n, self.n_numeric_), dtype=np.float32)
        offset = len(self.numeric_)
        indicator = {c: offset + k for k, c in enumerate(self.missing_indicator_)}
        for j, column in enumerate(self.numeric_):
            raw = self._numeric_values(X, column, None)
            scaled = (self._shape(column, raw) - self.center_[j]) / self.scale_[j]
            numeric[:, j] = np.nan_to_num(np.clip(scaled, -20, 20), nan=0.0)
            if column in indicator:
                numeric[:, indicator[column]] = ~np.isfinite(raw)
        categorical = np.empty((n, len(self.categorical_)), dtype=np.int64)
        for j, column in enumerate(self.categorical_):
            categorical[:, j] = self._category_codes(X[column], j, column, None)
        return numeric, categorical

    # ------------------------------------------------------------------ drift
    def bin_counts(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Counts of ``X`` in each feature's reference bins (add them up over chunks).

        Returns
        -------
        dict of str to ndarray
            Per feature, counts of shape (bins,), aligned with :meth:`reference`.
        """
        self._check_present(X, None)
        counts: dict[str, np.ndarray] = {}
        for j, column in enumerate(self.numeric_):
            values = self._shape(column, self._numeric_values(X, column, None))
            counts[column] = self._numeric_bins(values, self.numeric_edges_[j])
        for j, column in enumerate(self.categorical_):
            codes = self._category_codes(X[column], j, column, None)
            counts[column] = np.bincount(codes, minlength=len(self.vocabulary_[j]) + 1).astype(
                np.float64
            )
        return counts

    def reference(self) -> dict[str, np.ndarray]:
        """Training share of each feature's bins, aligned with :meth:`bin_counts`."""
        ref = {
            c: np.asarray(r) for c, r in zip(self.numeric_, self.numeric_reference_, strict=True)
        }
        ref.update(
            {
                c: np.asarray(r)
                for c, r in zip(self.categorical_, self.categorical_reference_, strict=True)
            }
        )
        return ref

    # ---------------------------------------------------------- persistence
    _STATE = (
        "numeric_",
        "categorical_",
        "log_columns_",
        "center_",
        "scale_",
        "missing_indicator_",
        "numeric_edges_",
        "numeric_reference_",
        "vocabulary_",
        "categorical_reference_",
        "n_numeric_",
        "cardinalities_",
        "folded_labels_",
        "numeric_labels_",
        "kinds_",
        "dtypes_",
        "dropped_",
    )

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON-ready data."""
        return {
            "params": {
                "numeric": None if self.numeric is None else list(self.numeric),
                "categorical": None if self.categorical is None else list(self.categorical),
                "exclude": list(self.exclude),
                "max_categories": (
                    None if self.max_categories is None else int(self.max_categories)
                ),
                "drop_constant": self.drop_constant,
            },
            "state": {name: getattr(self, name) for name in self._STATE},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureEncoder:
        """Rebuild a fitted encoder from :meth:`to_dict` output.

        Data saved before the frequency cap and the feature schema existed loads with the
        behaviour it was saved with: no cap, nothing folded, kinds from the feature lists and
        unknown dtypes (no type checks), nothing dropped.
        """
        params = dict(data["params"])
        params.setdefault("max_categories", None)
        encoder = cls(**params)
        state = data["state"]
        for name in cls._STATE:
            if name in state:
                setattr(encoder, name, state[name])
        n_categorical = len(state["categorical_"])
        defaults: dict[str, Any] = {
            "folded_labels_": [0] * n_categorical,
            "numeric_labels_": [False] * n_categorical,
            "kinds_": {
                **{c: "numeric" for c in state["numeric_"]},
                **{c: "categorical" for c in state["categorical_"]},
            },
            "dtypes_": {},
            "dropped_": [],
        }
        for name in cls._STATE:
            if name not in state:
                setattr(encoder, name, defaults[name] if name in defaults else state[name])
        return encoder


def basket_median(X: pd.DataFrame, column: str | None) -> float:
    """Median of the positive finite baskets (money) in ``column``; 1 without the column or any."""
    if column is None:
        return 1.0
    raw = X[column].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(raw) & (raw > 0)
    return float(np.median(raw[ok])) if ok.any() else 1.0


def basket_values(X: pd.DataFrame, column: str | None, fallback: float) -> np.ndarray:
    """Each row's basket (money), shape (n,): ``fallback`` where missing or not positive.

    Without a column every basket is 1 (face values and thresholds taken as they are).
    """
    if column is None:
        return np.ones(len(X))
    if column not in X.columns:
        raise InputError(f"basket column '{column}' is missing from the input")
    raw = X[column].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(raw) & (raw > 0)
    return np.where(ok, raw, fallback)


def log_relative(money: np.ndarray, basket: np.ndarray) -> np.ndarray:
    """``log(money / basket)`` broadcast over the two arrays, float64.

    Places a coupon's face value or threshold (money) relative to the user's basket (money);
    amounts are floored at 1e-6 so a zero stays finite.
    """
    return np.log(np.maximum(np.asarray(money, np.float64), 1e-6)) - np.log(basket)
