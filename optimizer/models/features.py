"""Turn a feature table into model inputs: robust-scaled numbers and categorical codes.

:class:`FeatureEncoder` follows scikit-learn's conventions: parameters in ``__init__``, all
learning in :meth:`~FeatureEncoder.fit`, fitted state in attributes ending in ``_``. Its fitted
state is plain JSON (:meth:`~FeatureEncoder.to_dict`), so a saved model needs no pickle.

Numbers: right-skewed non-negative columns (counts, money) are ``log1p``-transformed, then every
numeric column is centred on its median and divided by its inter-quartile range; missing values
become the median plus a 0/1 "was missing" indicator column. Categories: each column gets a
vocabulary learned in ``fit``; code 0 is reserved for missing or unseen labels.

The encoder also keeps each feature's training distribution (deciles for numbers, label shares
for categories) so that a scoring population can be checked for drift with the population
stability index (:meth:`~FeatureEncoder.bin_counts` and :func:`optimizer.evaluation.metrics.psi`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from sklearn.base import BaseEstimator

from optimizer.errors import InputError

__all__ = ["FeatureEncoder", "PSI_BINS"]

#: Number of quantile bins of a numeric feature's drift reference.
PSI_BINS = 10


def _is_categorical(series: pd.Series) -> bool:
    return (
        isinstance(series.dtype, pd.CategoricalDtype)
        or ptypes.is_object_dtype(series.dtype)
        or ptypes.is_string_dtype(series.dtype)
        or ptypes.is_bool_dtype(series.dtype)
    )


class FeatureEncoder(BaseEstimator):
    """Encode a DataFrame of features into ``(numeric, categorical)`` arrays.

    Parameters
    ----------
    numeric : sequence of str, optional
        Numeric feature columns. Default: every numeric column not listed as categorical.
    categorical : sequence of str, optional
        Categorical feature columns. Default: every text, category or boolean column.
    exclude : sequence of str
        Columns never used as features (identifiers, outcomes).
    """

    def __init__(
        self,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        exclude: Sequence[str] = ("user_id",),
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.exclude = exclude

    # ------------------------------------------------------------------ fitting
    def fit(self, X: pd.DataFrame) -> FeatureEncoder:
        """Learn transforms, vocabularies and drift references from ``X``.

        Parameters
        ----------
        X : DataFrame, shape (n, c)
            Training features.

        Returns
        -------
        self
        """
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
        self.numeric_ = numeric
        self.categorical_ = categorical
        self.log_columns_: list[str] = []
        self.center_: list[float] = []
        self.scale_: list[float] = []
        self.missing_indicator_: list[str] = []
        self.numeric_edges_: list[list[float]] = []
        self.numeric_reference_: list[list[float]] = []
        for column in numeric:
            raw = self._raw_numeric(X, column)
            finite = raw[np.isfinite(raw)]
            if finite.size == 0:
                finite = np.zeros(1)
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
            if not np.isfinite(values).all():
                self.missing_indicator_.append(column)
            edges = np.unique(np.quantile(present, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
            self.numeric_edges_.append(edges.tolist())
            counts = self._numeric_bins(values, edges)
            self.numeric_reference_.append((counts / counts.sum()).tolist())
        self.vocabulary_: list[list[str]] = []
        self.categorical_reference_: list[list[float]] = []
        for column in categorical:
            labels = self._labels(X[column])
            vocab = sorted(set(labels[labels != ""].tolist()))
            self.vocabulary_.append(vocab)
            codes = self._codes(labels, vocab)
            counts = np.bincount(codes, minlength=len(vocab) + 1).astype(np.float64)
            self.categorical_reference_.append((counts / counts.sum()).tolist())
        self.n_numeric_ = len(numeric) + len(self.missing_indicator_)
        self.cardinalities_ = [len(v) + 1 for v in self.vocabulary_]
        return self

    # ------------------------------------------------------------- transforms
    @staticmethod
    def _raw_numeric(X: pd.DataFrame, column: str) -> np.ndarray:
        if column not in X.columns:
            raise InputError(f"feature column '{column}' is missing from the input")
        series = X[column]
        if _is_categorical(series) and not ptypes.is_bool_dtype(series.dtype):
            series = pd.to_numeric(series.astype(object), errors="coerce")
        return series.to_numpy(dtype=np.float64, na_value=np.nan)

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
        if isinstance(series.dtype, pd.CategoricalDtype):
            cats = np.array([str(c) for c in series.cat.categories] + [""], dtype=object)
            return cats[series.cat.codes.to_numpy()]
        text = series.astype(object).where(series.notna(), "")
        return text.map(str).to_numpy(dtype=object) if len(text) else np.array([], dtype=object)

    @staticmethod
    def _codes(labels: np.ndarray, vocab: list[str]) -> np.ndarray:
        lookup = pd.Index(vocab)
        codes = lookup.get_indexer(labels)
        return (codes + 1).astype(np.int64)  # -1 (unknown or missing) -> 0

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
            Codes into each vocabulary; 0 is missing or unseen.
        """
        n = len(X)
        numeric = np.empty((n, self.n_numeric_), dtype=np.float32)
        for j, column in enumerate(self.numeric_):
            values = self._shape(column, self._raw_numeric(X, column))
            scaled = (values - self.center_[j]) / self.scale_[j]
            numeric[:, j] = np.nan_to_num(np.clip(scaled, -20, 20), nan=0.0)
        offset = len(self.numeric_)
        for j, column in enumerate(self.missing_indicator_):
            numeric[:, offset + j] = ~np.isfinite(self._raw_numeric(X, column))
        categorical = np.empty((n, len(self.categorical_)), dtype=np.int64)
        for j, column in enumerate(self.categorical_):
            if column not in X.columns:
                raise InputError(f"feature column '{column}' is missing from the input")
            categorical[:, j] = self._codes(self._labels(X[column]), self.vocabulary_[j])
        return numeric, categorical

    # ------------------------------------------------------------------ drift
    def bin_counts(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Counts of ``X`` in each feature's reference bins (add them up over chunks).

        Returns
        -------
        dict of str to ndarray
            Per feature, counts of shape (bins,), aligned with :meth:`reference`.
        """
        counts: dict[str, np.ndarray] = {}
        for j, column in enumerate(self.numeric_):
            values = self._shape(column, self._raw_numeric(X, column))
            counts[column] = self._numeric_bins(values, self.numeric_edges_[j])
        for j, column in enumerate(self.categorical_):
            codes = self._codes(self._labels(X[column]), self.vocabulary_[j])
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
    )

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted state as JSON-ready data."""
        return {
            "params": {
                "numeric": None if self.numeric is None else list(self.numeric),
                "categorical": None if self.categorical is None else list(self.categorical),
                "exclude": list(self.exclude),
            },
            "state": {name: getattr(self, name) for name in self._STATE},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureEncoder:
        """Rebuild a fitted encoder from :meth:`to_dict` output."""
        encoder = cls(**data["params"])
        for name in cls._STATE:
            setattr(encoder, name, data["state"][name])
        return encoder
