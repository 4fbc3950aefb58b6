"""Your own data in: a data configuration that maps a team's files onto the contract.

A ``[data]`` section of a campaign file (or a file of its own with ``[users]`` and ``[log]``)
says where the customer table and the campaign log are and what their columns mean::

    [data.users]
    file = "customers.parquet"          # relative to the configuration file
    id = "customer_id"                  # integer ids; omit to number the rows (1, 2, ...)
    features = "all"                    # every other column, types inferred; or "listed"
    numeric = ["age"]                   # force these to numbers (with "listed": the features)
    categorical = ["store"]             # force these to labels
    ignore = ["email"]                  # never features (identifiers, outcomes, free text)
    segment = "tier"                    # labels for targeting and segment shares (optional)
    basket = "avg_order_value"          # money per order, for the GMV and profit objectives
    max_categories = 100                # frequency cap per categorical feature

    [data.log]
    file = "campaign_log.csv"
    id = "customer_id"
    arm = "variant"                                  # the treatment column
    arms = { A = "10off99", B = "promo", control = "none" }   # label -> menu name or "none"
    outcome = "bought"                               # 0/1
    redeemed = "used_coupon"                         # 0/1, optional
    order_value = "revenue"                          # money, optional
    propensity = "uniform"       # or "share" (each arm's share of the randomized rows; IPW
                                 # then gives the arm means on all of them),
                                 # { column = "p" }, { arms = { A = 0.4, ... } },
                                 # or { columns = { A = "p_a", ... } } (each row sums to 1)
    campaign = "campaign_id"                         # optional campaign id or date column
    segment = "tier_then"                            # optional segment label at campaign time
    randomized = { column = "design", values = ["rct"] }   # default: every row randomized

:func:`load_users_mapped` and :func:`load_log_mapped` return the contract's frames: ``user_id``
(int64) plus the features, segment and basket columns under their own names; the log as
``campaign_id``, ``user_id``, ``assignment``, ``denomination``, ``converted``, ``redeemed``,
``order_value``, ``discount`` and ``propensity`` (P(the row's arm), in (0, 1]), and the segment
label at campaign time when the log has one. Every problem
is one :class:`~optimizer.errors.InputError` naming the file, column and first rows.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optimizer.errors import InputError, format_rows
from optimizer.io.contract import USERS
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.io.tables import iter_table, read_table, table_columns

__all__ = [
    "UsersMap",
    "LogMap",
    "PropensityMap",
    "PROPENSITY_PREFIX",
    "RandomizedRows",
    "DataConfig",
    "FeatureSpec",
    "MappedUsers",
    "load_users_mapped",
    "iter_users_mapped",
    "load_log_mapped",
    "check_features",
    "data_path",
    "contract_data",
    "design_propensities",
    "check_data",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _distinct(values: Sequence[str], what: str) -> None:
    seen = [v for v in values if list(values).count(v) > 1]
    if seen:
        raise ValueError(f"{what}: {seen[0]!r} is listed twice")


class UsersMap(_Strict):
    """Where the customer table is and what its columns mean."""

    file: str = Field(min_length=1, description="customer table, relative to the configuration")
    id: str | None = Field(None, min_length=1, description="integer id column; None numbers rows")
    features: Literal["all", "listed"] = Field(
        "all", description="all: every other column (types inferred); listed: numeric+categorical"
    )
    numeric: tuple[str, ...] = Field((), description="feature columns read as numbers")
    categorical: tuple[str, ...] = Field((), description="feature columns read as labels")
    ignore: tuple[str, ...] = Field((), description="columns never used as features")
    segment: str | None = Field(None, min_length=1, description="segment label column")
    basket: str | None = Field(None, min_length=1, description="money per order column")
    max_categories: int = Field(100, ge=1, description="most frequent labels kept per feature")

    @model_validator(mode="after")
    def _lists(self) -> UsersMap:
        _distinct([*self.numeric, *self.categorical], "numeric/categorical")
        _distinct(self.ignore, "ignore")
        both = set(self.ignore) & {*self.numeric, *self.categorical}
        if both:
            raise ValueError(f"{sorted(both)[0]!r} is both a feature and ignored")
        if self.features == "listed" and not (self.numeric or self.categorical):
            raise ValueError("features = 'listed' needs numeric or categorical columns")
        if self.id is not None and self.id in {*self.numeric, *self.categorical}:
            raise ValueError(f"the id column {self.id!r} cannot be a feature")
        return self


class PropensityMap(_Strict):
    """How likely each logged row was to get its arm: exactly one of the three forms."""

    column: str | None = Field(None, min_length=1, description="P(the row's arm) column")
    arms: dict[str, float] | None = Field(None, description="constant P per arm label")
    columns: dict[str, str] | None = Field(None, description="per arm label, a P column")

    @model_validator(mode="after")
    def _one(self) -> PropensityMap:
        given = [k for k in ("column", "arms", "columns") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of column, arms or columns")
        if self.arms is not None:
            bad = [a for a, p in self.arms.items() if not 0 < p <= 1]
            if bad:
                raise ValueError(f"arms.{bad[0]}: {self.arms[bad[0]]!r} is outside (0, 1]")
            if abs(sum(self.arms.values()) - 1) > 1e-6:
                raise ValueError(f"the arms' propensities add up to {sum(self.arms.values()):g}")
        return self


class RandomizedRows(_Strict):
    """Which log rows come from a randomized assignment: those whose column holds a value."""

    column: str = Field(min_length=1)
    values: tuple[str, ...] = Field(min_length=1, description="labels of randomized rows")


class LogMap(_Strict):
    """Where the campaign log is and what its columns mean."""

    file: str = Field(min_length=1, description="campaign log, relative to the configuration")
    id: str | None = Field(None, min_length=1, description="integer id column; None numbers rows")
    arm: str = Field(min_length=1, description="column of the treatment each row got")
    arms: dict[str, str] = Field(min_length=2, description="arm label -> menu name or 'none'")
    outcome: str = Field(min_length=1, description="0/1 conversion column")
    redeemed: str | None = Field(None, min_length=1, description="0/1 coupon redeemed column")
    order_value: str | None = Field(None, min_length=1, description="money of the order column")
    propensity: str | PropensityMap = Field(
        "uniform",
        description="'uniform' over the arms, 'share' (each arm's share of the randomized "
        "rows), or {column|arms|columns}",
    )
    campaign: str | None = Field(None, min_length=1, description="campaign id or date column")
    segment: str | None = Field(
        None, min_length=1, description="segment label at campaign time (default: the customer's)"
    )
    randomized: RandomizedRows | None = Field(None, description="default: every row")

    @field_validator("propensity")
    @classmethod
    def _uniform(cls, value: str | PropensityMap) -> str | PropensityMap:
        if isinstance(value, str) and value not in ("uniform", "share"):
            raise ValueError("expected 'uniform', 'share' or a table {column|arms|columns}")
        return value

    @field_validator("arms")
    @classmethod
    def _has_control(cls, value: dict[str, str]) -> dict[str, str]:
        if NO_COUPON not in value.values():
            raise ValueError(f"map one arm label to {NO_COUPON!r} (the control arm)")
        return value


class DataConfig(_Strict):
    """A team's files mapped onto the contract: the customer table and the campaign log."""

    users: UsersMap
    log: LogMap | None = None

    @model_validator(mode="after")
    def _same_file_ids(self) -> DataConfig:
        log = self.log
        if log is None:
            return self
        if log.file != self.users.file and (self.users.id is None or not log.id):
            raise ValueError(
                "users.id and log.id: separate users and log files need id columns to join on"
            )
        if log.file == self.users.file and self.users.id != log.id:
            raise ValueError(
                "users.id and log.id: one file holds both, so give the same id column to both "
                "(or neither, to number the rows)"
            )
        return self

    @property
    def log_segment(self) -> str | None:
        """The log's column of segment labels at campaign time, if it has one."""
        return None if self.log is None else self.log.segment

    def menu_problem(self, menu: Menu) -> str | None:
        """What keeps the log's arms from matching ``menu``, or None when they match."""
        if self.log is None:
            return None
        names = {*menu.names, NO_COUPON}
        for label, name in self.log.arms.items():
            if name not in names:
                return (
                    f"{label!r} maps to {name!r}, which is not on the menu "
                    f"({', '.join(menu.names)}) or {NO_COUPON!r}"
                )
        missing = [n for n in menu.names if n not in self.log.arms.values()]
        if missing:
            return (
                f"no arm maps to the menu's {missing[0]!r}; the log must randomize every "
                "treatment the models score"
            )
        return None

    def check_menu(self, menu: Menu) -> None:
        """Every arm maps to a menu treatment or ``none``, and every treatment has an arm."""
        problem = self.menu_problem(menu)
        if problem:
            raise InputError(problem, key="data.log.arms")


@dataclass(frozen=True)
class FeatureSpec:
    """The feature columns of a customer table by kind (what the models learn from)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every feature column, numeric first."""
        return (*self.numeric, *self.categorical)


@dataclass
class MappedUsers:
    """A customer table in the contract's form.

    Attributes
    ----------
    frame : DataFrame, shape (n, 1 + c)
        ``user_id`` (int64), then the feature, segment and basket columns under their names.
    features : FeatureSpec
    source : Path
    """

    frame: pd.DataFrame
    features: FeatureSpec
    source: Path
    extra: tuple[str, ...] = field(default=())


def data_path(file: str, base: str | Path | None) -> Path:
    """``file`` relative to the configuration's folder ``base`` (absolute paths unchanged)."""
    path = Path(file).expanduser()
    return path if path.is_absolute() or base is None else Path(base) / path


def _shown(value: object) -> str:
    """``repr`` of a cell, as plain Python (``2``, not ``np.int64(2)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _rows(mask: np.ndarray, offset: int = 0) -> str:
    rows = np.flatnonzero(mask)
    return format_rows(rows[:5] + offset, int(rows.size))


def _need(columns: Sequence[str], name: str | None, source: Path, key: str) -> None:
    if name is None or name in columns:
        return
    close = difflib.get_close_matches(name, [str(c) for c in columns], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(map(str, list(columns)[:12])) + (", ..." if len(columns) > 12 else "")
    raise InputError(f"no column {name!r} (from {key}){hint} Columns: {shown}", source=source)


def _labels(series: pd.Series) -> pd.Series:
    """Text labels of a column; integral numbers without a decimal point; missing stays NaN."""
    if ptypes.is_bool_dtype(series.dtype):
        return series.map({True: "1", False: "0"}).astype(object)
    if ptypes.is_numeric_dtype(series.dtype):
        # Decided per value, so that chunks of one file label alike: 2.0 reads "2".
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**53)
        text = series.astype(str).to_numpy(dtype=object)
        text[whole] = values[whole].astype(np.int64).astype(str).astype(object)
        out = pd.Series(text, index=series.index, dtype=object)
        return out.where(series.notna(), np.nan)
    return series.astype(str).where(series.notna(), np.nan).astype(object)


def _numbers(series: pd.Series, source: Path, column: str, offset: int, why: str) -> np.ndarray:
    if ptypes.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64)
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        first = series[bad].iloc[0]
        raise InputError(
            f"holds text ({_shown(first)} at {_rows(bad, offset)}); expected numbers ({why})",
            source=source,
            column=column,
        )
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _ids(frame: pd.DataFrame, name: str | None, source: Path, offset: int, key: str) -> np.ndarray:
    if name is None:
        return np.arange(offset + 1, offset + len(frame) + 1, dtype=np.int64)
    series = frame[name]
    if ptypes.is_integer_dtype(series.dtype) and not series.isna().any():
        return series.to_numpy(dtype=np.int64)  # exact, even beyond 2**53
    values = _numbers(series, source, name, offset, f"integer ids ({key})")
    bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) >= 2**53)
    if bad.any():
        raise InputError(
            f"missing, non-integer or inexact (stored as a float >= 2**53) id at "
            f"{_rows(bad, offset)}; expected integer ids",
            source=source,
            column=name,
        )
    return values.astype(np.int64)


def _duplicates(ids: np.ndarray, source: Path, column: str) -> None:
    unique, first = np.unique(ids, return_index=True)
    if unique.size == ids.size:
        return
    dup = np.ones(ids.size, dtype=bool)
    dup[first] = False
    raise InputError(
        f"duplicated id {ids[dup][0]} at {_rows(dup)}; expected each customer once",
        source=source,
        column=column,
    )


def _feature_spec(
    columns: Sequence[str], dtypes: pd.Series, users: UsersMap, reserved: set[str], source: Path
) -> FeatureSpec:
    for key in ("numeric", "categorical", "ignore"):
        for name in getattr(users, key):
            _need(list(columns), name, source, f"data.users.{key}")
    if users.features == "listed":
        return FeatureSpec(tuple(users.numeric), tuple(users.categorical))
    numeric: list[str] = []
    categorical: list[str] = []
    for column in columns:
        if column in reserved or column in users.ignore:
            continue
        if column in users.categorical:
            categorical.append(column)
        elif column in users.numeric:
            numeric.append(column)
        elif ptypes.is_numeric_dtype(dtypes[column]) or ptypes.is_bool_dtype(dtypes[column]):
            numeric.append(column)
        else:
            categorical.append(column)
    if not numeric and not categorical:
        raise InputError(
            "no feature columns left after id, ignore and log columns", key="data.users"
        )
    return FeatureSpec(tuple(numeric), tuple(categorical))


def _log_columns(log: LogMap | None) -> set[str]:
    if log is None:
        return set()
    names = {log.arm, log.outcome, log.redeemed, log.order_value, log.campaign, log.id, log.segment}
    if isinstance(log.propensity, PropensityMap):
        names.add(log.propensity.column)
        names.update((log.propensity.columns or {}).values())
    if log.randomized is not None:
        names.add(log.randomized.column)
    return {n for n in names if n is not None}


def _reserved(config: DataConfig) -> set[str]:
    """Columns of the customer table that are not features.

    The id and, when the customers and the log share a file, the log's columns.
    """
    users = config.users
    reserved = {users.id} if users.id else set()
    if config.log is not None and config.log.file == users.file:
        reserved |= _log_columns(config.log)
    return reserved


def _shape_users(
    frame: pd.DataFrame,
    config: DataConfig,
    spec: FeatureSpec,
    source: Path,
    offset: int = 0,
) -> pd.DataFrame:
    users = config.users
    columns = list(frame.columns)
    for name, key in (
        (users.id, "data.users.id"),
        (users.segment, "data.users.segment"),
        (users.basket, "data.users.basket"),
    ):
        _need(columns, name, source, key)
    for name in spec.names:
        _need(columns, name, source, "data.users features")
    out = {"user_id": _ids(frame, users.id, source, offset, "data.users.id")}
    for name in spec.numeric:
        out[name] = _numbers(frame[name], source, name, offset, "a numeric feature")
    for name in spec.categorical:
        series = frame[name]
        if isinstance(series.dtype, pd.StringDtype) and series.dtype.na_value is np.nan:
            # Already pandas' text dtype (NaN when missing, Arrow-backed): keep it. Going
            # through object would make a Python str per cell, only for pd.DataFrame to turn
            # them back into the same dtype (~5 KB a row with 80 text features).
            out[name] = series.array
        else:
            out[name] = _labels(series).to_numpy(dtype=object)
    if users.segment is not None and users.segment not in out:
        out[users.segment] = _labels(frame[users.segment]).fillna("missing").to_numpy(dtype=object)
    if users.basket is not None and users.basket not in out:
        out[users.basket] = _numbers(frame[users.basket], source, users.basket, offset, "money")
    if users.basket is not None:
        basket = np.asarray(out[users.basket], dtype=np.float64)
        bad = np.isfinite(basket) & (basket < 0)
        if bad.any():
            raise InputError(
                f"negative basket at {_rows(bad, offset)}; expected money per order >= 0",
                source=source,
                column=users.basket,
            )
    return pd.DataFrame(out)


def check_features(frame: pd.DataFrame, spec: FeatureSpec, source: str | Path) -> None:
    """Refuse features that are constant or entirely missing (nothing to learn from)."""
    for name in spec.names:
        series = frame[name]
        present = series.dropna()
        if present.empty:
            raise InputError(
                "is entirely missing; list it under data.users.ignore",
                source=source,
                column=name,
            )
        if present.nunique() < 2:
            raise InputError(
                f"is constant (every row {_shown(present.iloc[0])}); "
                "list it under data.users.ignore",
                source=source,
                column=name,
            )


def load_users_mapped(
    config: DataConfig,
    base: str | Path | None = None,
    *,
    path: str | Path | None = None,
    features: FeatureSpec | None = None,
) -> MappedUsers:
    """Read the customer table of ``config`` into the contract's form.

    Parameters
    ----------
    config : DataConfig
    base : str or Path, optional
        Folder the configuration's relative file names start from.
    path : str or Path, optional
        Another customer file with the same columns (e.g. this month's customers to score).
    features : FeatureSpec, optional
        The features to read (a trained model's, or none to plan: id, segment and basket
        only); default: from the configuration. With it, only the columns needed are read.

    Raises
    ------
    InputError
        A configured column is missing (with the closest name), a number column holds text,
        or ids are missing, non-integer or duplicated. (Constant features are refused by
        :func:`check_features`, which training calls.)
    """
    source = Path(path) if path is not None else data_path(config.users.file, base)
    columns = None
    if features is not None:  # only what is needed, so that planning reads a few columns
        users_map = config.users
        wanted = {users_map.id, users_map.segment, users_map.basket, *features.names}
        present = table_columns(source)
        for name in (users_map.id, users_map.segment, users_map.basket, *features.names):
            _need(present, name, source, "data.users")
        columns = [c for c in present if c in wanted]
    frame = read_table(source, columns)
    spec = features or _feature_spec(
        [str(c) for c in frame.columns], frame.dtypes, config.users, _reserved(config), source
    )
    users = _shape_users(frame, config, spec, source)
    _duplicates(users["user_id"].to_numpy(), source, config.users.id or "row number")
    used = {*_reserved(config), *config.users.ignore, *spec.names}
    used |= {c for c in (config.users.segment, config.users.basket) if c}
    extra = tuple(str(c) for c in frame.columns if c not in used)
    return MappedUsers(users, spec, source, extra)


def iter_users_mapped(
    config: DataConfig,
    path: str | Path,
    features: FeatureSpec,
    chunk_rows: int = 500_000,
    *,
    strict_extra: bool = False,
) -> Iterator[pd.DataFrame]:
    """The customer table at ``path`` in chunks of the contract's form, in bounded memory.

    Ids are checked for duplicates across chunks once the last chunk is out (write results to
    a temporary file and publish them only when the iteration ends). With ``strict_extra``, a
    column that is neither a feature nor mapped nor ignored is refused (a model trained on
    "all other columns" would silently not see it).
    """
    path = Path(path)
    seen: list[np.ndarray] = []
    used = {*_reserved(config), *config.users.ignore, *features.names}
    used |= {c for c in (config.users.segment, config.users.basket) if c}
    for offset, frame in iter_table(path, chunk_rows):
        if strict_extra and offset == 0:
            extra = [str(c) for c in frame.columns if c not in used]
            if extra:
                raise InputError(
                    f"is not among the models' {len(features.names)} features; list it under "
                    "data.users.ignore or drop it",
                    source=path,
                    column=extra[0],
                )
        users = _shape_users(frame, config, features, path, offset)
        seen.append(users["user_id"].to_numpy())
        yield users
    _duplicates(np.concatenate(seen), path, config.users.id or "row number")


def _binary(series: pd.Series, source: Path, column: str) -> np.ndarray:
    text = _labels(series)
    mapping = {"0": 0, "1": 1, "true": 1, "false": 0, "True": 1, "False": 0}
    values = text.map(mapping)
    bad = values.isna().to_numpy()
    if bad.any():
        first = series[bad].iloc[0]
        raise InputError(
            f"holds {_shown(first)} at {_rows(bad)}; expected 0/1 outcomes",
            source=source,
            column=column,
        )
    return values.to_numpy(dtype=np.int8)


def _propensity(
    frame: pd.DataFrame, log: LogMap, labels: np.ndarray, source: Path, randomized: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """P(the row's treatment) per row, by menu name, and per-row P of every name when known.

    Several arm labels may map to one menu name (two e-mail variants counted as one
    treatment): the row's weight is then the chance of that *name*, the labels' sum.

    Returns
    -------
    p : ndarray, shape (m,)
        P(the menu name the row received).
    by_name : dict of str to ndarray, optional
        P(name) per row for every menu name, for a per-row design (``columns``).
    """
    spec = log.propensity
    names = pd.Series(labels).map(log.arms).to_numpy(dtype=object)
    groups: dict[str, list[str]] = {}
    for label, name in log.arms.items():
        groups.setdefault(name, []).append(label)
    if spec == "uniform":
        per_name = {name: len(group) / len(log.arms) for name, group in groups.items()}
        return pd.Series(names).map(per_name).to_numpy(dtype=np.float64), None
    if spec == "share":  # estimated from the randomized rows: IPW gives their arm means
        shares = pd.Series(names[randomized]).value_counts(normalize=True)
        return pd.Series(names).map(shares).fillna(1.0).to_numpy(dtype=np.float64), None
    assert isinstance(spec, PropensityMap)
    if spec.arms is not None:
        unknown = sorted(set(spec.arms) - set(log.arms))
        if unknown:
            raise InputError(
                f"{unknown[0]!r} is not an arm label of data.log.arms", key="data.log.propensity"
            )
        missing = sorted(set(log.arms) - set(spec.arms))
        if missing:
            raise InputError(f"no propensity for arm {missing[0]!r}", key="data.log.propensity")
        per_name = {name: sum(spec.arms[g] for g in group) for name, group in groups.items()}
        return pd.Series(names).map(per_name).to_numpy(dtype=np.float64), None
    if spec.column is not None:
        shared = [name for name, group in groups.items() if len(group) > 1]
        if shared:
            raise InputError(
                f"several arm labels map to {shared[0]!r}: a column of P(the row's label) cannot "
                "weigh them; give {columns = ...} or {arms = ...}",
                key="data.log.propensity",
            )
        _need(list(frame.columns), spec.column, source, "data.log.propensity.column")
        p = _numbers(frame[spec.column], source, spec.column, 0, "probabilities")
        _in_unit(p, source, spec.column)
        return p, None
    columns = spec.columns or {}
    missing = sorted(set(log.arms) - set(columns))
    if missing:
        raise InputError(f"no propensity column for arm {missing[0]!r}", key="data.log.propensity")
    matrix = np.empty((len(frame), len(columns)))
    order = list(columns)
    for j, label in enumerate(order):
        _need(list(frame.columns), columns[label], source, "data.log.propensity.columns")
        matrix[:, j] = _numbers(frame[columns[label]], source, columns[label], 0, "probabilities")
        _in_unit(matrix[:, j], source, columns[label], allow_zero=True)
    total = matrix.sum(axis=1)
    bad = np.abs(total - 1) > 1e-6
    if bad.any():
        raise InputError(
            f"the arms' propensities add up to {total[bad][0]:g} at {_rows(bad)}; "
            "expected 1 per row",
            source=source,
            column=",".join(columns.values()),
        )
    by_name = {
        name: matrix[:, [order.index(g) for g in group]].sum(axis=1)
        for name, group in groups.items()
    }
    received = pd.Index(order).get_indexer(labels)
    zero = matrix[np.arange(len(frame)), received] <= 0
    if zero.any():  # a row got an arm its design gave no chance: name that arm's column
        column = columns[order[received[np.flatnonzero(zero)[0]]]]
        raise InputError(
            f"propensity 0 for the arm the row received at {_rows(zero)}; expected > 0",
            source=source,
            column=column,
        )
    p = np.empty(len(frame))
    for name, values in by_name.items():
        hit = names == name
        p[hit] = values[hit]
    return p, by_name


def _in_unit(p: np.ndarray, source: Path, column: str, allow_zero: bool = False) -> None:
    low = (p < 0) if allow_zero else (p <= 0)
    bad = ~np.isfinite(p) | low | (p > 1)
    if bad.any():
        raise InputError(
            f"propensity {_shown(p[bad][0])} at {_rows(bad)}; expected a probability in (0, 1]",
            source=source,
            column=column,
        )


#: Prefix of a mapped log's per-row P(treatment) columns (per-row designs only).
PROPENSITY_PREFIX = "propensity__"


def design_propensities(log: LogMap) -> dict[str, float] | None:
    """P(each arm) of a log whose design gives every row the same chances, by menu name.

    ``uniform`` gives each arm label ``1 / labels``; ``{arms = ...}`` its constants. Labels
    mapped to the same menu name add up. None when the propensities are per row (``column`` or
    ``columns``), which the log's rows carry themselves.
    """
    spec = log.propensity
    if spec == "uniform":
        per_label = {label: 1.0 / len(log.arms) for label in log.arms}
    elif isinstance(spec, PropensityMap) and spec.arms is not None:
        per_label = dict(spec.arms)
    else:
        return None
    out: dict[str, float] = {}
    for label, p in per_label.items():
        name = log.arms.get(label)
        if name is not None:
            out[name] = out.get(name, 0.0) + p
    return out


def load_log_mapped(
    config: DataConfig,
    menu: Menu,
    users: MappedUsers,
    base: str | Path | None = None,
    *,
    path: str | Path | None = None,
) -> pd.DataFrame:
    """Read the campaign log of ``config`` into the contract's form.

    Returns
    -------
    DataFrame, shape (m, 9) or more
        ``campaign_id`` (int32), ``user_id`` (int64), ``assignment`` (randomized / manual),
        ``denomination`` (menu name or ``none``), ``converted``, ``redeemed`` (int8),
        ``order_value``, ``discount`` (money) and ``propensity`` (P(the row's treatment, by
        menu name: labels mapped to one name add up)); with per-row propensity columns, also
        ``propensity__<name>`` per treatment and ``none``.

    Raises
    ------
    InputError
        A configured column is missing, an arm label is not mapped, an outcome is not 0/1, a
        propensity is outside (0, 1] or a row's propensities do not add up to 1, a logged
        customer is not in the customer table, or a (campaign, customer) pair repeats.
    """
    log = config.log
    if log is None:
        raise InputError("the configuration maps no campaign log", key="data.log")
    config.check_menu(menu)
    source = Path(path) if path is not None else data_path(log.file, base)
    frame = read_table(source)
    columns = list(frame.columns)
    for name in sorted(_log_columns(log) - {None}):
        _need(columns, name, source, "data.log")
    ids = _ids(frame, log.id, source, 0, "data.log.id")
    labels = _labels(frame[log.arm]).to_numpy(dtype=object)
    known = pd.Series(labels).isin(list(log.arms)).to_numpy()
    if not known.all():
        first = labels[~known][0]
        raise InputError(
            f"arm label {first!r} at {_rows(~known)} is not in data.log.arms "
            f"({', '.join(map(repr, log.arms))})",
            source=source,
            column=log.arm,
        )
    denomination = pd.Series(labels).map(log.arms).to_numpy(dtype=object)
    converted = _binary(frame[log.outcome], source, log.outcome)
    is_coupon = dict(zip(menu.names, menu.coupons.tolist(), strict=True))
    coupon = pd.Series(denomination).map(is_coupon).fillna(False).to_numpy(dtype=bool)
    if log.redeemed is not None:
        redeemed = _binary(frame[log.redeemed], source, log.redeemed)
    else:
        redeemed = np.zeros(len(frame), dtype=np.int8)
    bad = (redeemed == 1) & ((converted == 0) | ~coupon)
    if bad.any():
        raise InputError(
            f"redeemed without a conversion or a coupon at {_rows(bad)}",
            source=source,
            column=log.redeemed,
        )
    if log.order_value is not None:
        value = _numbers(frame[log.order_value], source, log.order_value, 0, "money")
        # A missing value stays missing for a converted row (valuation falls back on the
        # basket or the configured order value); a row without an order has none.
        value = np.where(np.isfinite(value), value, np.where(converted == 1, np.nan, 0.0))
        bad = value < 0
        if bad.any():
            raise InputError(
                f"negative order value at {_rows(bad)}", source=source, column=log.order_value
            )
    else:
        value = np.full(len(frame), np.nan)
    if log.campaign is not None:
        codes, _ = pd.factorize(_labels(frame[log.campaign]).fillna("missing"), sort=True)
        campaign = codes.astype(np.int32)
    else:
        campaign = np.zeros(len(frame), dtype=np.int32)
    if log.randomized is not None:
        assigned = _labels(frame[log.randomized.column]).isin(list(log.randomized.values))
        randomized = assigned.to_numpy()
        if not randomized.any():
            raise InputError(
                f"no row holds {', '.join(map(repr, log.randomized.values))}; "
                "no randomized rows to learn from",
                source=source,
                column=log.randomized.column,
            )
    else:
        randomized = np.ones(len(frame), dtype=bool)
    propensity, by_name = _propensity(frame, log, labels, source, randomized)
    face = np.append(menu.face_values, 0.0)[
        pd.Index([*menu.names, NO_COUPON]).get_indexer(denomination)
    ]
    out = pd.DataFrame(
        {
            "campaign_id": campaign,
            "user_id": ids,
            "assignment": np.where(randomized, "randomized", "manual"),
            "denomination": denomination,
            "converted": converted,
            "redeemed": redeemed,
            "order_value": value,
            "discount": np.where(redeemed == 1, face, 0.0),
            "propensity": propensity,
        }
    )
    if by_name is not None:  # a per-row design: every treatment's chance, for positivity
        for name, values in by_name.items():
            out[f"{PROPENSITY_PREFIX}{name}"] = values
    if log.segment is not None:
        # The label at campaign time, under the name the customer table's labels have.
        name = config.users.segment or log.segment
        out[name] = _labels(frame[log.segment]).fillna("missing").to_numpy(dtype=object)
    key = out.duplicated(["campaign_id", "user_id"]).to_numpy()
    if key.any():
        raise InputError(
            f"customer {out['user_id'].to_numpy()[key][0]} appears twice in one campaign at "
            f"{_rows(key)}; expected one row per (campaign, customer)",
            source=source,
            column=log.id or "row number",
        )
    missing = ~np.isin(ids, users.frame["user_id"].to_numpy())
    if missing.any():
        raise InputError(
            f"{int(missing.sum())} logged customers are not in the customer table "
            f"{users.source} (first id {ids[missing][0]}, at {_rows(missing)})",
            source=source,
            column=log.id or "row number",
        )
    for name in (*menu.names, NO_COUPON):
        if not (out["denomination"] == name).to_numpy()[randomized].any():
            raise InputError(
                f"no randomized row of arm {name!r}; every arm needs rows to learn from",
                source=source,
                column=log.arm,
            )
    return out


def contract_data(
    menu: Menu,
    propensity: dict[str, float] | None = None,
    *,
    users: str = "users.parquet",
    log: str = "history.parquet",
) -> DataConfig:
    """The synthetic contract as a data configuration: the world's tables through the same path.

    Parameters
    ----------
    menu : Menu
        The denominations the log's ``denomination`` column holds (with ``none``).
    propensity : dict of str to float, optional
        P(arm) of the randomized campaign per denomination and ``none``; default uniform.
    users, log : str
        File names (relative to the configuration) of the user table and the campaign log.
    """
    numeric = tuple(c.name for c in USERS.columns if c.kind in ("int", "float", "flag"))
    categorical = tuple(c.name for c in USERS.columns if c.kind == "category")
    arms = {name: name for name in (*menu.names, NO_COUPON)}
    return DataConfig(
        users=UsersMap(
            file=users,
            id="user_id",
            features="listed",
            numeric=tuple(n for n in numeric if n != "user_id"),
            categorical=categorical,
            segment="lifecycle_stage",
            basket="avg_order_value",
        ),
        log=LogMap(
            file=log,
            id="user_id",
            arm="denomination",
            arms=arms,
            outcome="converted",
            redeemed="redeemed",
            order_value="order_value",
            propensity="uniform" if propensity is None else PropensityMap(arms=propensity),
            campaign="campaign_id",
            segment="lifecycle_stage",
            randomized=RandomizedRows(column="assignment", values=("randomized",)),
        ),
    )


def check_data(config: DataConfig, menu: Menu, base: str | Path | None = None) -> dict[str, object]:
    """Read and check a data configuration's files as training would, and say what they hold.

    Returns
    -------
    dict
        ``customers``, ``numeric`` and ``categorical`` feature counts, and with a log
        ``log_rows``, ``randomized_rows`` and rows per arm.

    Raises
    ------
    InputError
        Anything training would refuse (see :func:`load_users_mapped`,
        :func:`load_log_mapped` and :func:`check_features`).
    """
    users = load_users_mapped(config, base)
    check_features(users.frame, users.features, users.source)
    facts: dict[str, object] = {
        "customers": len(users.frame),
        "numeric": len(users.features.numeric),
        "categorical": len(users.features.categorical),
    }
    if config.log is not None:
        log = load_log_mapped(config, menu, users, base)
        randomized = log[log["assignment"] == "randomized"]
        facts |= {
            "log_rows": len(log),
            "randomized_rows": len(randomized),
            "arms": randomized["denomination"].value_counts().sort_index().to_dict(),
        }
    return facts
