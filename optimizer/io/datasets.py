"""Loaders for public randomized marketing datasets, mapped onto the log contract.

Each loader returns an :class:`UpliftDataset`: features, a 0/1 treatment and a 0/1 outcome, and
:meth:`UpliftDataset.training_rows` turns it into the same rows that
:func:`optimizer.io.campaign_log.training_rows` builds from a campaign log (``user_id``,
``denomination`` = the treatment's name or ``none``, ``converted``, features), so the models,
metrics and benchmarks run on real data and on the synthetic world alike.

The files live in the shared data folder (``../shared/data`` beside the repository, or the
``COUPONOPT_DATA`` environment variable); they are read from there, never copied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.io.menu import NO_COUPON, Denomination, Menu

__all__ = [
    "UpliftDataset",
    "data_dir",
    "load_hillstrom",
    "load_starbucks",
    "load_criteo",
]


def data_dir() -> Path:
    """The shared data folder: ``$COUPONOPT_DATA`` or ``../shared/data`` from the repository."""
    env = os.environ.get("COUPONOPT_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass
class UpliftDataset:
    """A randomized experiment: features, treatment and outcome.

    Attributes
    ----------
    name : str
        Dataset and outcome, e.g. ``hillstrom-mens-visit``.
    X : DataFrame, shape (n, c)
        Features.
    treatment : ndarray of {0, 1}, shape (n,)
        1 if the row was treated (sent the e-mail / promotion).
    y : ndarray of {0, 1}, shape (n,)
        Outcome.
    arm : str
        Name of the treatment, used as the denomination name.
    numeric, categorical : list of str
        Feature columns by kind.
    """

    name: str
    X: pd.DataFrame
    treatment: np.ndarray
    y: np.ndarray
    arm: str
    numeric: list[str]
    categorical: list[str]

    @property
    def menu(self) -> Menu:
        """A one-denomination menu for the treatment (face value and threshold are nominal)."""
        return Menu(denomination=(Denomination(name=self.arm, face_value=1.0, threshold=1.0),))

    def training_rows(self) -> pd.DataFrame:
        """Rows in the format of :func:`optimizer.io.campaign_log.training_rows`."""
        rows = self.X.copy()
        rows.insert(0, "user_id", np.arange(1, len(rows) + 1, dtype=np.int64))
        rows["denomination"] = np.where(self.treatment == 1, self.arm, NO_COUPON)
        rows["converted"] = self.y.astype(np.int8)
        return rows


def _read(relative: str, data: str | Path | None) -> pd.DataFrame:
    base = Path(data) if data is not None else data_dir()
    path = base / relative
    if not path.is_file():
        raise InputError("dataset file not found (see ../shared/data/README.md)", source=path)
    return pd.read_csv(path)


def load_hillstrom(
    arm: str = "mens", outcome: str = "visit", data: str | Path | None = None
) -> UpliftDataset:
    """Hillstrom MineThatData e-mail test: one e-mail arm against no e-mail.

    Parameters
    ----------
    arm : {"mens", "womens"}
        Which e-mail arm is the treatment (the other arm's rows are dropped).
    outcome : {"visit", "conversion"}
        Outcome over the two weeks after the e-mail.
    """
    if arm not in ("mens", "womens") or outcome not in ("visit", "conversion"):
        raise InputError("arm must be mens or womens; outcome visit or conversion")
    df = _read("hillstrom/hillstrom.csv.gz", data)
    treated_label = "Mens E-Mail" if arm == "mens" else "Womens E-Mail"
    df = df[df["segment"].isin([treated_label, "No E-Mail"])].reset_index(drop=True)
    categorical = ["history_segment", "zip_code", "channel"]
    numeric = ["recency", "history", "mens", "womens", "newbie"]
    return UpliftDataset(
        name=f"hillstrom-{arm}-{outcome}",
        X=df[numeric + categorical],
        treatment=(df["segment"] == treated_label).to_numpy().astype(np.int8),
        y=df[outcome].to_numpy().astype(np.int8),
        arm=f"{arm}_email",
        numeric=numeric,
        categorical=categorical,
    )


def load_starbucks(data: str | Path | None = None) -> UpliftDataset:
    """Starbucks promotion A/B exercise (training split): promotion vs none, outcome purchase."""
    df = _read("starbucks_promotion_ab/training.csv.gz", data)
    categorical = ["V1", "V4", "V5", "V6", "V7"]
    numeric = ["V2", "V3"]
    X = df[numeric + categorical].copy()
    for c in categorical:
        X[c] = X[c].astype(str)
    return UpliftDataset(
        name="starbucks-purchase",
        X=X,
        treatment=(df["Promotion"] == "Yes").to_numpy().astype(np.int8),
        y=df["purchase"].to_numpy().astype(np.int8),
        arm="promotion",
        numeric=numeric,
        categorical=categorical,
    )


def load_criteo(outcome: str = "visit", data: str | Path | None = None) -> UpliftDataset:
    """10k-row sample of Criteo Uplift v2.1 (CC BY-NC-SA 4.0: tests and research only)."""
    if outcome not in ("visit", "conversion"):
        raise InputError("outcome must be visit or conversion")
    df = _read("criteo_uplift_sample/criteo-uplift-sample-v2.1.csv.gz", data)
    numeric = [f"f{i}" for i in range(12)]
    return UpliftDataset(
        name=f"criteo-{outcome}",
        X=df[numeric],
        treatment=df["treatment"].to_numpy().astype(np.int8),
        y=df[outcome].to_numpy().astype(np.int8),
        arm="ad",
        numeric=numeric,
        categorical=[],
    )
