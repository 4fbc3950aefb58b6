"""The two models trained together on a randomized log, saved and scored as one unit.

Two architectures answer the same two questions (P(buy | no coupon) and P(buy | coupon d)):

* ``two_models`` (the article's): a :class:`NaturalConversionModel` on the no-coupon arm and a
  :class:`CouponConversionModel` on the coupon arms;
* ``shared_trunk``: one :class:`optimizer.joint.JointConversionModel` on all arms, with a
  treatment input.

A third model, P(redeem | converted holding coupon d), prices each coupon per user.

A models directory holds ``natural/`` and ``coupon/`` (two models) or ``joint/`` (shared trunk),
each a saved model, ``redemption/`` (when fitted) and ``models.json`` (architecture, segment,
split, rows per arm, menu).
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
from optimizer.features import FeatureEncoder
from optimizer.joint import JointConversionModel
from optimizer.logdata import is_coupon, training_rows, user_split
from optimizer.menu import NO_COUPON, Menu
from optimizer.metrics import coverage_knee
from optimizer.models import CouponConversionModel, NaturalConversionModel
from optimizer.schema import USERS, coupon_column, redeem_column
from optimizer.training import EpochReport

__all__ = ["ConversionModels", "FEATURES", "ARCHITECTURES", "TrainingProgress"]

#: How the pair of probabilities is modelled (see the module docstring).
ARCHITECTURES: tuple[str, ...] = ("two_models", "shared_trunk")

#: Feature columns of the user table that the models learn from (all but the id).
FEATURES: tuple[str, ...] = tuple(c for c in USERS.names if c != "user_id")
TrainingProgress = Callable[[str, EpochReport], None]
#: Fewest converters in the coupon arms for fitting the redemption model.
MIN_REDEMPTION_ROWS = 200


class ConversionModels:
    """Natural and coupon conversion models fitted on the same randomized log.

    Parameters
    ----------
    architecture : {"two_models", "shared_trunk"}
        Two separate networks, or one network with a treatment input.
    segment : sequence of str, optional
        Lifecycle stages (at campaign time) to train on; the article trains on the population it
        will target. None uses every stage.
    test_share : float
        Share of users held out of training (by a hash of the user id) for evaluation.
    random_state : int
        Seed of the split and of both models.
    natural_params, coupon_params : dict, optional
        Keyword arguments of :class:`NaturalConversionModel` and :class:`CouponConversionModel`
        (``coupon_params`` also configures the shared-trunk model and the redemption model).
    redemption : bool
        Also fit P(redeem | converted holding coupon d, x) on the converters of the coupon arms
        (a :class:`CouponConversionModel` with ``redeemed`` as the outcome). A natural buyer
        redeems only when the basket reaches the threshold, so redemption, and with it the
        coupon's expected cost, differs widely by denomination and user; without the model the
        planner assumes the menu's redemption shares.

    Attributes
    ----------
    natural_ : NaturalConversionModel or None
        None with the shared-trunk architecture.
    coupon_ : CouponConversionModel or JointConversionModel
    redemption_ : CouponConversionModel or None
        P(redeem | converted, coupon, x); None when not requested or the log has too few
        converters with both outcomes.
    menu_ : Menu
    holdout_ : DataFrame
        The held-out log rows joined with features (see :func:`optimizer.logdata.training_rows`).
    summary_ : dict
        Rows per arm in training and holdout, segment, split settings.
    """

    def __init__(
        self,
        *,
        architecture: str = "shared_trunk",
        segment: Sequence[str] | None = None,
        test_share: float = 0.2,
        random_state: int = 0,
        natural_params: dict[str, Any] | None = None,
        coupon_params: dict[str, Any] | None = None,
        redemption: bool = True,
    ) -> None:
        self.architecture = architecture
        self.segment = segment
        self.test_share = test_share
        self.random_state = random_state
        self.natural_params = natural_params
        self.coupon_params = coupon_params
        self.redemption = redemption

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
        if self.architecture not in ARCHITECTURES:
            raise InputError(
                f"architecture must be one of {', '.join(ARCHITECTURES)}", source="architecture"
            )
        seed = {"random_state": self.random_state}
        features = list(FEATURES)

        def report(name: str):
            return None if progress is None else (lambda r: progress(name, r))

        if self.architecture == "shared_trunk":
            params = dict(self.coupon_params or {})
            params.pop("head", None)  # the joint model has the shared head only
            self.natural_ = None
            self.coupon_ = JointConversionModel(**(seed | params)).fit(
                train[features],
                train["denomination"].to_numpy(),
                train["converted"].to_numpy(),
                menu=menu,
                progress=report("joint"),
            )
        else:
            self.natural_ = NaturalConversionModel(**(seed | (self.natural_params or {})))
            self.coupon_ = CouponConversionModel(**(seed | (self.coupon_params or {})))
            untreated_rows = train[~treated]
            treated_rows = train[treated]
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
        self.redemption_ = None
        converters = train[treated & (train["converted"].to_numpy() == 1)]
        redeemed = converters["redeemed"].to_numpy()
        if (
            self.redemption
            and len(converters) >= MIN_REDEMPTION_ROWS
            and 0 < redeemed.sum() < len(redeemed)
        ):
            self.redemption_ = CouponConversionModel(**(seed | (self.coupon_params or {}))).fit(
                converters[features],
                converters["denomination"].to_numpy(),
                redeemed,
                menu=menu,
                progress=report("redemption"),
            )
        self.menu_ = menu
        knee = None
        control = self.holdout_[self.holdout_["denomination"] == NO_COUPON]
        if len(control) and control["converted"].nunique() == 2:
            knee = coverage_knee(
                control["converted"].to_numpy(), self.predict_natural(control[features])
            )
        self.summary_ = {
            "natural_knee": knee,
            "architecture": self.architecture,
            "segment": list(self.segment) if self.segment else None,
            "test_share": self.test_share,
            "random_state": self.random_state,
            "training_rows": _arm_counts(train),
            "holdout_rows": _arm_counts(self.holdout_),
        }
        return self

    @property
    def model_names(self) -> tuple[str, ...]:
        """Names of the fitted networks, as reported in training progress."""
        names = ("joint",) if self.architecture == "shared_trunk" else ("natural", "coupon")
        return (*names, "redemption") if self.redemption else names

    @property
    def encoder(self) -> FeatureEncoder:
        """The feature encoder (with the training population's drift reference)."""
        return self.coupon_.encoder_ if self.natural_ is None else self.natural_.encoder_

    def predict_natural(self, X: pd.DataFrame) -> np.ndarray:
        """P(convert | no coupon), shape (n,), float32."""
        if self.natural_ is None:
            return self.coupon_.predict_natural(X)
        return self.natural_.predict_proba(X)

    def predict_coupon(self, X: pd.DataFrame, menu: Menu | None = None) -> np.ndarray:
        """P(convert | coupon d), shape (n, k), float32, for the denominations of ``menu``."""
        return self.coupon_.predict_proba(X, self.menu_ if menu is None else menu)

    def predict_redemption(self, X: pd.DataFrame, menu: Menu | None = None) -> np.ndarray | None:
        """P(redeem | converted holding coupon d), shape (n, k), float32; None without a model."""
        if self.redemption_ is None:
            return None
        return self.redemption_.predict_proba(X, self.menu_ if menu is None else menu)

    def validation_quality(self) -> list[dict[str, Any]]:
        """Validation AUC, log-loss and calibration error (before/after) of each output."""
        if self.natural_ is None:
            pairs = [
                ("natural", self.coupon_.natural_metrics_),
                ("coupon", self.coupon_.validation_metrics_),
            ]
        else:
            pairs = [
                ("natural", self.natural_.validation_metrics_),
                ("coupon", self.coupon_.validation_metrics_),
            ]
        epochs = {
            "natural": self.coupon_.n_epochs_ if self.natural_ is None else self.natural_.n_epochs_,
            "coupon": self.coupon_.n_epochs_,
        }
        if self.redemption_ is not None:
            pairs.append(("redemption", self.redemption_.validation_metrics_))
            epochs["redemption"] = self.redemption_.n_epochs_
        return [{"model": name, "epochs": epochs[name], **metrics} for name, metrics in pairs]

    def predict(self, users: pd.DataFrame, menu: Menu | None = None) -> pd.DataFrame:
        """Scores for ``users``: the contract's scores table.

        Returns
        -------
        DataFrame, shape (n, 2 + k), or (n, 2 + 2k) with a redemption model
            ``user_id``, ``p_natural``, ``p_coupon__<name>`` (and ``p_redeem__<name>``), float32
            probabilities.
        """
        menu = self.menu_ if menu is None else menu
        out = pd.DataFrame({"user_id": users["user_id"].to_numpy()})
        out["p_natural"] = self.predict_natural(users)
        p = self.predict_coupon(users, menu)
        for k, name in enumerate(menu.names):
            out[coupon_column(name)] = p[:, k]
        redeem = self.predict_redemption(users, menu)
        if redeem is not None:
            for k, name in enumerate(menu.names):
                out[redeem_column(name)] = redeem[:, k]
        return out

    def save(self, path: str | Path) -> None:
        """Write the networks and ``models.json`` into directory ``path``."""
        path = Path(path)
        if self.natural_ is None:
            self.coupon_.save(path / "joint")
        else:
            self.natural_.save(path / "natural")
            self.coupon_.save(path / "coupon")
        if self.redemption_ is not None:
            self.redemption_.save(path / "redemption")
        meta = {
            "params": {
                "architecture": self.architecture,
                "segment": list(self.segment) if self.segment else None,
                "test_share": self.test_share,
                "random_state": self.random_state,
                "natural_params": self.natural_params,
                "coupon_params": self.coupon_params,
                "redemption": self.redemption,
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
        if models.architecture == "shared_trunk":
            models.natural_ = None
            models.coupon_ = JointConversionModel.load(path / "joint")
        else:
            models.natural_ = NaturalConversionModel.load(path / "natural")
            models.coupon_ = CouponConversionModel.load(path / "coupon")
        models.redemption_ = None
        if (path / "redemption").is_dir():
            models.redemption_ = CouponConversionModel.load(path / "redemption")
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
