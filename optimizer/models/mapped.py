"""The models on a team's own data: train from a data configuration, read its customers back.

A models directory trained this way records the data configuration's customer mapping (id,
segment, basket and the features by kind) in ``models.json``, so scoring another customer
file with the same columns needs only the models; a file whose columns differ (a feature
missing, retyped, or an extra column beside "all other columns") is refused with one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.errors import InputError
from optimizer.io.campaign_log import training_rows
from optimizer.io.mapping import (
    DataConfig,
    FeatureSpec,
    MappedUsers,
    check_features,
    iter_users_mapped,
    load_log_mapped,
    load_users_mapped,
)
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.io.tables import load_log, load_users, read_table
from optimizer.models.conversion import ConversionModels
from optimizer.progress import Progress

__all__ = [
    "train_on_data",
    "data_of",
    "read_customers",
    "iter_customers",
    "evaluation_rows",
]


def train_on_data(
    data: DataConfig,
    menu: Menu,
    base: str | Path | None = None,
    *,
    users_path: str | Path | None = None,
    log_path: str | Path | None = None,
    progress: Progress | None = None,
    **params: Any,
) -> tuple[ConversionModels, pd.DataFrame]:
    """Fit :class:`ConversionModels` on the randomized rows of a mapped campaign log.

    Parameters
    ----------
    data : DataConfig
        Where the customer table and the log are and what their columns mean.
    menu : Menu
        The treatments the log's arms map to.
    base : str or Path, optional
        Folder the configuration's relative file names start from.
    users_path, log_path : str or Path, optional
        Other files with the same columns than the configuration's.
    progress : callable, optional
    **params
        Keyword arguments of :class:`ConversionModels` (architecture, segment, test_share...).

    Returns
    -------
    models : ConversionModels
        Fitted; ``summary_["data"]`` holds the customer mapping, ``summary_["users_path"]``
        the customer file.
    log : DataFrame
        The mapped log (contract form), e.g. to save the held-out rows.
    """
    users = load_users_mapped(data, base, path=users_path)
    check_features(users.frame, users.features, users.source)
    log = load_log_mapped(data, menu, users, base, path=log_path)
    models = ConversionModels(
        numeric=list(users.features.numeric),
        categorical=list(users.features.categorical),
        segment_column=data.users.segment or data.log_segment or "lifecycle_stage",
        basket_column=data.users.basket,
        max_categories=data.users.max_categories,
        **params,
    )
    models.fit(log, users.frame, menu, progress=progress, source=users.source)
    models.summary_["users_path"] = str(users.source.resolve())
    models.summary_["data"] = data.model_dump(mode="json", exclude_none=True)
    return models, log


def data_of(models: ConversionModels) -> DataConfig | None:
    """The data configuration the models were trained with (None: the synthetic contract)."""
    raw = models.summary_.get("data")
    return None if raw is None else DataConfig.model_validate(raw)


def _spec(models: ConversionModels) -> FeatureSpec:
    encoder = models.encoder
    return FeatureSpec(tuple(encoder.numeric_), tuple(encoder.categorical_))


def read_customers(models: ConversionModels, path: str | Path) -> MappedUsers:
    """A customer file read with the models' mapping and features (for evaluation)."""
    data = data_of(models)
    assert data is not None
    return load_users_mapped(data, path=path, features=_spec(models))


def iter_customers(
    models: ConversionModels, path: str | Path, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """A customer file in chunks, read with the models' mapping; refuses differing columns."""
    data = data_of(models)
    assert data is not None
    strict = data.users.features == "all"
    return iter_users_mapped(data, path, _spec(models), chunk_rows, strict_extra=strict)


#: Columns of a mapped log's held-out rows (``holdout.parquet``).
HOLDOUT_COLUMNS: tuple[str, ...] = (
    "campaign_id",
    "user_id",
    "assignment",
    "denomination",
    "converted",
    "redeemed",
    "propensity",
)


def _read_holdout(path: Path, menu: Menu) -> pd.DataFrame:
    """A mapped log's held-out rows as written by training, checked as they are read back."""
    frame = read_table(path)
    missing = [c for c in HOLDOUT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"missing column {missing[0]!r}; not a held-out log", source=path)
    arms = frame["denomination"].astype(str)
    unknown = ~arms.isin([*menu.names, NO_COUPON]).to_numpy()
    if unknown.any():
        raise InputError(
            f"treatment {arms[unknown].iloc[0]!r} is not on the models' menu", source=path
        )
    if not frame["converted"].isin([0, 1]).all():
        raise InputError("converted is not 0/1", source=path, column="converted")
    return frame


def evaluation_rows(
    models: ConversionModels,
    log: str | Path,
    users: str | Path | None = None,
    *,
    held_out: bool = True,
) -> pd.DataFrame:
    """Log rows joined with customer features, to evaluate ``models`` on.

    Parameters
    ----------
    models : ConversionModels
    log : str or Path
        The held-out rows training wrote (``held_out``), or another log: for models trained on
        a data configuration, a raw log file with the configuration's columns.
    users : str or Path, optional
        Customer table; default the one training read.
    held_out : bool
        ``log`` is ``holdout.parquet`` from training (the contract's form).
    """
    users = users or models.summary_.get("users_path")
    if users is None:
        raise InputError("which user table? the models do not record one", key="users")
    data = data_of(models)
    if data is None:
        table = load_log(log, models.menu_)
        people = load_users(users)
    else:
        customers = read_customers(models, users)
        people = customers.frame
        if held_out:
            table = _read_holdout(Path(log), models.menu_)
        else:
            table = load_log_mapped(data, models.menu_, customers, path=log)
    return training_rows(
        table,
        people,
        segment=models.segment,
        source=log,
        segment_column=models.segment_column,
    )
