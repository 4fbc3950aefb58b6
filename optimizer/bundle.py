"""The two models trained together on a randomized log, saved and scored as one unit.

A models directory holds ``natural/`` and ``coupon/`` (each a saved model) and
``models.json`` (segment, split, training rows per arm, feature columns, versions).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer.atomic import atomic_path
from optimizer.errors import InputError
from optimizer.logdata import is_coupon, training_rows, user_split
from optimizer.menu import NO_COUPON, Menu
from optimizer.models import CouponConversionModel, NaturalConversionModel
from optimizer.schema import USERS, coupon_column
from optimizer.training import EpochReport

__all__ = ["ConversionModels", "FEATURES", "TrainingProgress"]

#: Feature columns of the user table that the models learn from (all but the id).
FEATURES: tuple[str, ...] = tuple(c for c in USERS.names if c != "user_id")
TrainingProgress = Callable[[str, EpochReport], None]


class ConversionModels:
    """Natural and coupon conversion models fitted on the same randomized log.

    Parameters
    ----------
    segment : sequence of str, optional
        Lifecycle stages (at campaign time) to train on; the article trains on the population it
        will target. None uses every stage.
    test_share : float
        Share of users held out of training (by a hash of the user id) for evaluation.
    random_state : int
        Seed of the split and of both models.
    natural_params, coupon_params : dict, optional
        Keyword arguments of :class:`NaturalConversionModel` and :class:`CouponConversionModel`.

    Attributes
    ----------
    natural_ : NaturalConversionModel
    coupon_ : CouponConversionModel
    menu_ : Menu
    holdout_ : DataFrame
        The held-out log rows joined with features (see :func:`optimizer.logdata.training_rows`).
    summary_ : dict
        Rows per arm in training and holdout, segment, split settings.
    """

    def __init__(
        self,
        *,
        segment: Sequence[str] | None = None,
        test_share: float = 0.2,
        random_state: int = 0,
        natural_params: dict[str, Any] | None = None,
        coupon_params: dict[str, Any] | None = None,
    ) -> None:
        self.segment = segment
        self.test_share = test_share
        self.random_state = random_state
        self.natural_params = natural_params
        self.coupon_params = coupon_params

    def fit(
        self,
        log: pd.DataFrame,
        users: pd.DataFrame,
        menu: Menu,
        *,
        progress: TrainingProgress | None = None,
        source: str | Path = "log",
    ) -> ConversionModels:
        """Fit both models on the randomized rows of ``log`` joined with ``users``.

        Parameters
        ----------
        log : DataFrame
            A validated campaign log (manual rows are ignored: their assignment is biased).
        users : DataFrame
            A validated user table.
        menu : Menu
            The menu the log's denominations come from.
        progress : callable, optional
            Called as ``progress(model_name, epoch_report)`` after every epoch.
        """
        rows = training_rows(log, users, segment=self.segment, source=source)
        test = user_split(rows["user_id"].to_numpy(), self.test_share, self.random_state)
        train = rows[~test]
        self.holdout_ = rows[test].reset_index(drop=True)
        treated = is_coupon(train["denomination"])
        if treated.all() or not treated.any():
            raise InputError(
                "the training rows need both a no-coupon arm and coupon arms", source=source
            )
        seed = {"random_state": self.random_state}
        self.natural_ = NaturalConversionModel(**(seed | (self.natural_params or {})))
        self.coupon_ = CouponConversionModel(**(seed | (self.coupon_params or {})))
        features = list(FEATURES)
        untreated_rows = train[~treated]
        treated_rows = train[treated]

        def report(name: str):
            return None if progress is None else (lambda r: progress(name, r))

        self.natural_.fit(
            untreated_rows[features],
            untreated_rows["converted"].to_numpy(),
            progress=report("natural"),
        )
        self.coupon_.fit(
            treated_rows[features],
            treated_rows["denomination"].to_numpy(),
            treated_rows["converted"].to_numpy(),
            menu=menu,
            progress=report("coupon"),
        )
        self.menu_ = menu
        self.summary_ = {
            "segment": list(self.segment) if self.segment else None,
            "test_share": self.test_share,
            "random_state": self.random_state,
            "training_rows": _arm_counts(train),
            "holdout_rows": _arm_counts(self.holdout_),
        }
        return self

    def predict(self, users: pd.DataFrame, menu: Menu | None = None) -> pd.DataFrame:
        """Scores for ``users``: the contract's scores table.

        Returns
        -------
        DataFrame, shape (n, 2 + k)
            ``user_id``, ``p_natural`` and ``p_coupon__<name>`` (float32 probabilities).
        """
        menu = self.menu_ if menu is None else menu
        out = pd.DataFrame({"user_id": users["user_id"].to_numpy()})
        out["p_natural"] = self.natural_.predict_proba(users)
        p = self.coupon_.predict_proba(users, menu)
        for k, name in enumerate(menu.names):
            out[coupon_column(name)] = p[:, k]
        return out

    def save(self, path: str | Path) -> None:
        """Write ``natural/``, ``coupon/`` and ``models.json`` into directory ``path``."""
        path = Path(path)
        self.natural_.save(path / "natural")
        self.coupon_.save(path / "coupon")
        meta = {
            "params": {
                "segment": list(self.segment) if self.segment else None,
                "test_share": self.test_share,
                "random_state": self.random_state,
                "natural_params": self.natural_params,
                "coupon_params": self.coupon_params,
            },
            "menu": self.menu_.model_dump(mode="json"),
            "summary": self.summary_,
        }
        with atomic_path(path / "models.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> ConversionModels:
        """Load a directory written by :meth:`save`."""
        path = Path(path)
        meta_path = path / "models.json"
        if not meta_path.is_file():
            raise InputError("not a models directory (models.json missing)", source=path)
        meta = json.loads(meta_path.read_text())
        models = cls(**meta["params"])
        models.natural_ = NaturalConversionModel.load(path / "natural")
        models.coupon_ = CouponConversionModel.load(path / "coupon")
        models.menu_ = Menu.model_validate(meta["menu"])
        models.summary_ = meta["summary"]
        return models


def _arm_counts(rows: pd.DataFrame) -> dict[str, dict[str, int]]:
    grouped = rows.groupby("denomination")["converted"].agg(["size", "sum"])
    return {
        str(name): {"rows": int(r["size"]), "conversions": int(r["sum"])}
        for name, r in grouped.iterrows()
    }


def untreated_mask(rows: pd.DataFrame) -> np.ndarray:
    """True for rows of the no-coupon arm, shape (n,)."""
    return (rows["denomination"].astype(str) == NO_COUPON).to_numpy()
