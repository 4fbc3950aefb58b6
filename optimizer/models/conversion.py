"""The two models trained together on a randomized log, saved and scored as one unit.

Two architectures answer the same two questions (P(buy | no coupon) and P(buy | coupon d)):

* ``two_models`` (the article's): a :class:`NaturalConversionModel` on the no-coupon arm and a
  :class:`CouponConversionModel` on the coupon arms;
* ``shared_trunk``: one :class:`~optimizer.models.shared_trunk.SharedTrunkModel` on all arms,
  with a treatment input;
* ``t_learner``, ``s_learner``, ``x_learner``, ``dr_learner``: gradient-boosted meta-learners
  (:class:`~optimizer.models.boosted.BoostedConversionModel`, LightGBM) on all arms.

A third model, P(redeem | converted holding coupon d), prices each coupon per user.

A models directory holds ``natural/`` and ``coupon/`` (two models), ``shared_trunk/`` or
``boosted/``, each a saved model, ``redemption/`` (when fitted) and ``models.json``
(architecture, segment, split, rows per arm, menu).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from optimizer.choices import ARCHITECTURES
from optimizer.errors import InputError
from optimizer.evaluation.metrics import coverage_knee
from optimizer.io.atomic import atomic_path, verify_manifest, write_manifest
from optimizer.io.campaign_log import is_coupon, training_rows, user_split
from optimizer.io.contract import USERS, coupon_column, redeem_column
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.models.base import BaseConversionModel, read_meta
from optimizer.models.boosted import BoostedConversionModel
from optimizer.models.coupon import CouponConversionModel, enforce_menu_monotonicity
from optimizer.models.features import FeatureEncoder, reusing_encodings
from optimizer.models.natural import NaturalConversionModel
from optimizer.models.redemption import REDEMPTION_MODELS, RedemptionModel
from optimizer.models.shared_trunk import SharedTrunkModel
from optimizer.progress import Progress, Step

__all__ = ["ConversionModels", "FEATURES", "ARCHITECTURES", "BOOSTED", "load_model"]


#: Feature columns of the user table that the models learn from (all but the id).
FEATURES: tuple[str, ...] = tuple(c for c in USERS.names if c != "user_id")
#: The meta-learner architectures and their learner.
BOOSTED: dict[str, str] = {
    "t_learner": "t",
    "s_learner": "s",
    "x_learner": "x",
    "dr_learner": "dr",
}
#: Fewest converters in the coupon arms for fitting the redemption model.
MIN_REDEMPTION_ROWS = 200


class ConversionModels(BaseEstimator):
    """Natural and coupon conversion models fitted on the same randomized log.

    Parameters
    ----------
    architecture : {"shared_trunk", "two_models", "t_learner", "s_learner", "x_learner", \
"dr_learner"}
        One network with a treatment input, two separate networks, or a gradient-boosted
        meta-learner (:mod:`optimizer.models.boosted`).
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
    boosted_params : dict, optional
        Keyword arguments of :class:`~optimizer.models.boosted.BoostedConversionModel` (the
        meta-learner architectures; ``learner`` comes from ``architecture``).
    ensemble : int
        Models trained on the same training rows with seeds ``random_state + i`` and averaged
        (probabilities): less variance in every score, ``ensemble`` times the training time.
        Shared-trunk and meta-learner architectures; the redemption model stays single.
    uncertainty : int
        0 (default): scores are the models' estimates. N >= 2: N more models, each trained on
        a random half of the training customers; the spread of their uplifts ``p_k - p0``
        estimates each user's uplift variance ``v`` (the variance between independent
        half-sample estimates is about that of the full-sample one), and every score's uplift
        is shrunk toward its coupon's mean uplift ``m`` by empirical Bayes:
        ``m + s2 / (s2 + v) * (uplift - m)``, with ``s2`` the variance of the true uplifts
        (the estimates' variance less the mean ``v``, over the training customers). A user
        whose uplift is a small difference of two noisy probabilities is shrunk most, so the
        planner does not chase estimation noise (the posterior mean is the risk-neutral
        decision's input). ``N`` more trainings, and ``N`` more forward passes when scoring.
        Shared-trunk and meta-learner architectures.
    redemption : bool
        Also fit P(redeem | converted holding coupon d, x) on the converters of the coupon arms
        (a :class:`CouponConversionModel` with ``redeemed`` as the outcome). A natural buyer
        redeems only when the basket reaches the threshold, so redemption, and with it the
        coupon's expected cost, differs widely by denomination and user; without the model the
        planner assumes the menu's redemption shares.
    redemption_model : {"logistic", "network"}
        The redemption model: a regularised logistic regression on the user features and the
        coupon's terms relative to the basket (:class:`~optimizer.models.redemption.\
RedemptionModel`, the default: it needs few rows, and redemption is fitted on the converters
        only), or a :class:`CouponConversionModel` network with ``redeemed`` as the outcome.
    numeric, categorical : sequence of str, optional
        The feature columns (a data configuration's :class:`~optimizer.io.mapping.FeatureSpec`).
        Default: the synthetic contract's user columns (:data:`FEATURES`), types inferred.
    segment_column : str
        Column of the segment labels ``segment`` refers to: taken from the log when the log
        has it (the label at campaign time), else from the user table.
    basket_column : str or None
        User column of money per order, which places a coupon's face value and threshold
        relative to the user's basket; None uses them as they are.
    max_categories : int or None
        Frequency cap: labels beyond the most frequent ``max_categories`` of a categorical
        feature share one code with missing and unseen labels.

    Menus with messages (no face value or threshold) get per-treatment heads
    (``head="per_denomination"``), and the redemption model is fitted only when every
    treatment is a coupon and the log records redemptions.

    Attributes
    ----------
    natural_ : NaturalConversionModel or None
        None unless the architecture is ``two_models``.
    coupon_ : CouponConversionModel, SharedTrunkModel or BoostedConversionModel
    halves_ : list
        The half-sample models of ``uncertainty`` (empty without it).
    shrinkage_ : dict or None
        Per trained coupon (``names``): the prior ``mean`` uplift and ``signal_variance`` of the
        shrinkage (None without ``uncertainty``).
    redemption_ : RedemptionModel, CouponConversionModel or None
        P(redeem | converted, coupon, x); None when not requested or the log has too few
        converters with both outcomes.
    menu_ : Menu
    holdout_ : DataFrame
        The held-out log rows joined with features (see
        :func:`optimizer.io.campaign_log.training_rows`).
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
        boosted_params: dict[str, Any] | None = None,
        ensemble: int = 1,
        uncertainty: int = 0,
        redemption: bool = True,
        redemption_model: str = "logistic",
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        segment_column: str = "lifecycle_stage",
        basket_column: str | None = "avg_order_value",
        max_categories: int | None = 100,
    ) -> None:
        self.architecture = architecture
        self.segment = segment
        self.test_share = test_share
        self.random_state = random_state
        self.natural_params = natural_params
        self.coupon_params = coupon_params
        self.boosted_params = boosted_params
        self.ensemble = ensemble
        self.uncertainty = uncertainty
        self.redemption = redemption
        self.redemption_model = redemption_model
        self.numeric = numeric
        self.categorical = categorical
        self.segment_column = segment_column
        self.basket_column = basket_column
        self.max_categories = max_categories

    @property
    def features(self) -> list[str]:
        """The feature columns the models read, in order."""
        if self.numeric is None and self.categorical is None:
            return list(FEATURES)
        return [*(self.numeric or ()), *(self.categorical or ())]

    def _net_params(self, params: dict[str, Any] | None, coupon: bool) -> dict[str, Any]:
        shared: dict[str, Any] = {"random_state": self.random_state}
        if self.numeric is not None or self.categorical is not None:
            shared["numeric"] = list(self.numeric or ())
            shared["categorical"] = list(self.categorical or ())
        shared["max_categories"] = self.max_categories
        if coupon:
            shared["basket_column"] = self.basket_column
        return shared | dict(params or {})

    def fit(
        self,
        log: pd.DataFrame,
        users: pd.DataFrame,
        menu: Menu,
        *,
        progress: Progress | None = None,
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
            Receives a :class:`~optimizer.progress.Step` per epoch of each network (its task is
            the network's name in :attr:`model_names`).
        """
        rows = training_rows(
            log, users, segment=self.segment, source=source, segment_column=self.segment_column
        )
        test = user_split(rows["user_id"].to_numpy(), self.test_share, self.random_state)
        train = rows[~test]
        self.holdout_ = rows[test].reset_index(drop=True)
        treated = is_coupon(train["denomination"])
        if treated.all() or not treated.any():
            raise InputError(
                "the training rows need both a no-coupon arm and coupon arms", source=source
            )
        if self.architecture not in ARCHITECTURES:
            raise InputError(f"must be one of {', '.join(ARCHITECTURES)}", key="architecture")
        if self.redemption_model not in REDEMPTION_MODELS:
            raise InputError(
                f"must be one of {', '.join(REDEMPTION_MODELS)}", key="redemption_model"
            )
        if self.uncertainty != 0 and (
            self.uncertainty < 2 or self.architecture == "two_models" or self.ensemble > 1
        ):
            raise InputError(
                "must be 0, or at least 2 with one shared_trunk or meta-learner model (no "
                "ensemble: the half-samples' spread is that of one model)",
                key="uncertainty",
            )
        if self.ensemble < 1 or (self.ensemble > 1 and self.architecture == "two_models"):
            raise InputError(
                "must be at least 1, and 1 with two_models (an ensemble averages one model of "
                "both questions)",
                key="ensemble",
            )
        features = self.features
        missing = [c for c in features if c not in rows.columns]
        if missing:
            raise InputError(f"feature column {missing[0]!r} is not in the user table", key="users")
        head = (self.coupon_params or {}).get("head", "shared")
        if not menu.all_coupons:
            head = "per_denomination"  # a message has no face value or threshold to scale

        def report(name: str) -> Progress | None:
            if progress is None:
                return None
            return lambda step: progress(Step(name, step.done, step.total, step.detail))

        if self.architecture in BOOSTED:
            self.natural_ = None
            params = self._net_params(None, coupon=False) | dict(self.boosted_params or {})
            params["learner"] = BOOSTED[self.architecture]
            self.coupon_ = BoostedConversionModel(**params).fit(
                train[features],
                train["denomination"].to_numpy(),
                train["converted"].to_numpy(),
                menu=menu,
                progress=report("boosted model"),
                **self._design_of(train),
            )
        elif self.architecture == "shared_trunk":
            params = self._net_params(self.coupon_params, coupon=True) | {"head": head}
            self.natural_ = None
            self.coupon_ = SharedTrunkModel(**params).fit(
                train[features],
                train["denomination"].to_numpy(),
                train["converted"].to_numpy(),
                menu=menu,
                progress=report("shared-trunk model"),
            )
        else:
            self.natural_ = NaturalConversionModel(**self._net_params(self.natural_params, False))
            self.coupon_ = CouponConversionModel(
                **(self._net_params(self.coupon_params, coupon=True) | {"head": head})
            )
            untreated_rows = train[~treated]
            treated_rows = train[treated]
            self.natural_.fit(
                untreated_rows[features],
                untreated_rows["converted"].to_numpy(),
                progress=report("natural model"),
            )
            self.coupon_.fit(
                treated_rows[features],
                treated_rows["denomination"].to_numpy(),
                treated_rows["converted"].to_numpy(),
                menu=menu,
                progress=report("coupon model"),
            )
        self.members_ = [
            self._fit_copy(train, menu, i, report(f"ensemble member {i + 1}"))
            for i in range(1, self.ensemble)
        ]
        self._fit_halves(train, menu, report)
        self.redemption_ = None
        converters = train[treated & (train["converted"].to_numpy() == 1)]
        redeemed = converters["redeemed"].to_numpy()
        if (
            self.redemption
            and menu.all_coupons
            and len(converters) >= MIN_REDEMPTION_ROWS
            and 2 <= redeemed.sum() <= len(redeemed) - 2
        ):
            if self.redemption_model == "logistic":
                self.redemption_ = RedemptionModel(**self._net_params(None, coupon=True)).fit(
                    converters[features],
                    converters["denomination"].to_numpy(),
                    redeemed,
                    menu=menu,
                    groups=converters["user_id"].to_numpy(),
                    progress=report("redemption model"),
                )
            else:
                self.redemption_ = CouponConversionModel(
                    **(self._net_params(self.coupon_params, coupon=True) | {"head": head})
                ).fit(
                    converters[features],
                    converters["denomination"].to_numpy(),
                    redeemed,
                    menu=menu,
                    progress=report("redemption model"),
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
            "segment_column": self.segment_column,
            "head": head,
            "features": {
                "numeric": list(self.encoder.numeric_),
                "categorical": list(self.encoder.categorical_),
            },
            "test_share": self.test_share,
            "random_state": self.random_state,
            "training_rows": _arm_counts(train),
            "holdout_rows": _arm_counts(self.holdout_),
        }
        return self

    def _fit_copy(self, rows: pd.DataFrame, menu: Menu, offset: int, progress) -> Any:
        """A copy of the coupon model seeded ``random_state + offset``, fitted on ``rows``."""
        model = clone(self.coupon_).set_params(random_state=self.coupon_.random_state + offset)
        design = self._design_of(rows) if self.architecture in BOOSTED else {}
        return model.fit(
            rows[self.features],
            rows["denomination"].to_numpy(),
            rows["converted"].to_numpy(),
            menu=menu,
            progress=progress,
            **design,
        )

    def _fit_halves(self, train: pd.DataFrame, menu: Menu, report) -> None:
        """The half-sample models of ``uncertainty`` and the shrinkage's prior per coupon."""
        self.halves_, self.shrinkage_ = [], None
        if self.uncertainty == 0:
            return
        features = self.features
        codes, customers = pd.factorize(train["user_id"])
        rng = np.random.default_rng(self.random_state + 7_919)
        for i in range(self.uncertainty):
            chosen = np.zeros(len(customers), dtype=bool)
            chosen[rng.permutation(len(customers))[: len(customers) // 2]] = True
            half = train[chosen[codes]]
            self.halves_.append(
                self._fit_copy(half, menu, 101 + i, report(f"half-sample model {i + 1}"))
            )
        people = train.drop_duplicates("user_id")[features]
        uplift = self._raw_coupon(people, menu) - self._raw_natural(people)[:, None]
        variance = self._uplift_variance(people, menu)
        mean = uplift.mean(axis=0)
        signal = np.maximum(uplift.var(axis=0) - variance.mean(axis=0), 1e-12)
        self.shrinkage_ = {
            "names": list(menu.names),
            "mean": [float(x) for x in mean],
            "signal_variance": [float(x) for x in signal],
        }

    def _uplift_variance(self, X: pd.DataFrame, menu: Menu) -> np.ndarray:
        """Between-half-sample variance of each user's uplift, shape (n, k)."""
        uplifts = np.stack(
            [h.predict_proba(X, menu) - h.predict_natural(X)[:, None] for h in self.halves_]
        ).astype(np.float64)
        return uplifts.var(axis=0, ddof=1)

    @staticmethod
    def _design_of(rows: pd.DataFrame) -> dict[str, Any]:
        """The meta-learners' design inputs: customers, and each row's propensity when logged."""
        design: dict[str, Any] = {"groups": rows["user_id"].to_numpy()}
        if "propensity" in rows.columns:
            design["propensity"] = rows["propensity"].to_numpy(dtype=np.float64)
        return design

    @property
    def _family(self) -> str:
        if self.architecture in BOOSTED:
            return "boosted"
        return str(self.architecture)

    @property
    def model_names(self) -> tuple[str, ...]:
        """Names of the fitted networks, as reported in training progress."""
        if self.architecture in BOOSTED:
            names: tuple[str, ...] = ("boosted model",)
        elif self.architecture == "shared_trunk":
            names = ("shared-trunk model",)
        else:
            names = ("natural model", "coupon model")
        return (*names, "redemption model") if self.redemption else names

    @property
    def natural_threshold(self) -> float | None:
        """The natural probability at the knee of the held-out coverage curve (v2's cut).

        None when the holdout had no no-coupon rows with both outcomes.
        """
        return (self.summary_.get("natural_knee") or {}).get("threshold")

    @property
    def encoder(self) -> FeatureEncoder:
        """The feature encoder (with the training population's drift reference)."""
        return self.coupon_.encoder_ if self.natural_ is None else self.natural_.encoder_

    def _raw_natural(self, X: pd.DataFrame) -> np.ndarray:
        if self.natural_ is None:
            models = [self.coupon_, *self.members_]
            return np.mean([m.predict_natural(X) for m in models], axis=0).astype(np.float32)
        return self.natural_.predict_proba(X)

    def _raw_coupon(self, X: pd.DataFrame, menu: Menu) -> np.ndarray:
        models = [self.coupon_, *self.members_]
        return np.mean([m.predict_proba(X, menu) for m in models], axis=0).astype(np.float32)

    def predict_natural(self, X: pd.DataFrame) -> np.ndarray:
        """P(convert | no coupon), shape (n,), float32 (the ensemble's mean)."""
        return self._raw_natural(X)

    def predict_coupon(self, X: pd.DataFrame, menu: Menu | None = None) -> np.ndarray:
        """P(convert | coupon d), shape (n, k), float32, for the denominations of ``menu``.

        With ``uncertainty``, ``p0 + `` the shrunk uplift (see the class docstring), clipped to
        [0, 1] and made monotone over a menu of coupons; a denomination the training never
        saw takes the mean prior of those it did.
        """
        menu = self.menu_ if menu is None else menu
        p = self._raw_coupon(X, menu)
        if not getattr(self, "halves_", None):
            return p
        p0 = self._raw_natural(X).astype(np.float64)[:, None]
        prior_of = self.shrinkage_
        pairs = zip(prior_of["mean"], prior_of["signal_variance"], strict=True)
        known = dict(zip(prior_of["names"], pairs, strict=True))
        fallback = (
            float(np.mean(self.shrinkage_["mean"])),
            float(np.mean(self.shrinkage_["signal_variance"])),
        )
        prior = np.array([known.get(n, fallback) for n in menu.names])  # (k, 2)
        mean, signal = prior[:, 0][None, :], prior[:, 1][None, :]
        variance = self._uplift_variance(X, menu)
        shrunk = mean + signal / (signal + variance) * (p - p0 - mean)
        out = np.clip(p0 + shrunk, 0.0, 1.0)
        if menu.all_coupons:
            out = enforce_menu_monotonicity(out, menu)
        return out.astype(np.float32)

    def predict_redemption(self, X: pd.DataFrame, menu: Menu | None = None) -> np.ndarray | None:
        """P(redeem | converted holding coupon d), shape (n, k), float32; None without a model."""
        if self.redemption_ is None:
            return None
        return self.redemption_.predict_proba(X, self.menu_ if menu is None else menu)

    def spend_error(self) -> dict[str, float]:
        """Relative standard error of each trained treatment's paid spend level.

        A treatment's expected paid spend per user is ``p * r * f`` (converts, redeems, pays the
        face value); the models' levels of ``p`` and ``r`` are estimated from the treatment's
        training rows, so each carries at least the sampling error of its rate:
        ``(1 - p) / conversions`` for the conversion rate and ``(1 - r) / redemptions`` for the
        redemption rate (relative variances; the latter only with a redemption model, without
        one the menu's shares are taken as given). The error is the square root of their sum,
        shared by every user given the treatment, so it does not average out over a plan: on a
        log of a few thousand rows it is several percent of the spend, the main reason a plan
        made on the models' probabilities overruns its budget. Treatments without conversions
        or redemptions in training are left out (:meth:`PlanningRequest.with_models` gives
        them the largest error).

        Returns
        -------
        dict of str to float
            Treatment name to relative standard error (a share of the spend).
        """
        counts = self.summary_.get("training_rows", {})
        out: dict[str, float] = {}
        for name in self.menu_.names:
            arm = counts.get(name)
            if not arm or arm["conversions"] == 0:
                continue
            p = arm["conversions"] / arm["rows"]
            variance = (1.0 - p) / arm["conversions"]
            redeemed = arm.get("redemptions")
            if self.redemption_ is not None and redeemed is not None:
                if redeemed == 0:  # no redemption level to speak of: the largest error
                    continue
                variance += (1.0 - redeemed / arm["conversions"]) / redeemed
            out[name] = float(np.sqrt(variance))
        return out

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
        with reusing_encodings():  # the users are encoded once per encoder
            out["p_natural"] = self.predict_natural(users)
            p = self.predict_coupon(users, menu)
            redeem = self.predict_redemption(users, menu)
        for k, name in enumerate(menu.names):
            out[coupon_column(name)] = p[:, k]
        if redeem is not None:
            for k, name in enumerate(menu.names):
                out[redeem_column(name)] = redeem[:, k]
        return out

    #: Every top-level name :meth:`save` may write (``_manifest.json`` aside).
    ENTRIES: tuple[str, ...] = (
        "models.json", "natural", "coupon", "boosted", "shared_trunk", "ensemble", "halves",
        "redemption",
    )  # fmt: skip

    def saved_entries(self) -> tuple[str, ...]:
        """The entries :meth:`save` writes into a models directory."""
        nets = {"boosted": ("boosted/",), "shared_trunk": ("shared_trunk/",)}.get(
            self._family, ("natural/", "coupon/")
        )
        redemption = ("redemption/",) if self.redemption_ is not None else ()
        members = ("ensemble/",) if self.members_ else ()
        halves = ("halves/",) if getattr(self, "halves_", None) else ()
        return (*nets, *members, *halves, *redemption, "models.json")

    def save(self, path: str | Path) -> None:
        """Write the networks, ``models.json`` and last ``_manifest.json`` into ``path``.

        The manifest lists every file then in the directory with its SHA-256 (write extra
        files, such as a holdout table, before); :meth:`load` checks them all. Publish the
        directory whole (:func:`optimizer.io.atomic_directory` with ``whole=True``) so that
        nothing of an earlier model survives beside it.
        """
        path = Path(path)
        if self.architecture in BOOSTED:
            self.coupon_.save(path / "boosted")
        elif self.natural_ is None:
            self.coupon_.save(path / "shared_trunk")
        else:
            self.natural_.save(path / "natural")
            self.coupon_.save(path / "coupon")
        for i, member in enumerate(self.members_, start=1):
            member.save(path / "ensemble" / str(i))
        for i, half in enumerate(getattr(self, "halves_", []), start=1):
            half.save(path / "halves" / str(i))
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
                "boosted_params": self.boosted_params,
                "ensemble": self.ensemble,
                "uncertainty": self.uncertainty,
                "redemption": self.redemption,
                "redemption_model": self.redemption_model,
                "numeric": None if self.numeric is None else list(self.numeric),
                "categorical": None if self.categorical is None else list(self.categorical),
                "segment_column": self.segment_column,
                "basket_column": self.basket_column,
                "max_categories": self.max_categories,
            },
            "menu": self.menu_.model_dump(mode="json"),
            "summary": self.summary_,
            "shrinkage": getattr(self, "shrinkage_", None),
        }
        with atomic_path(path / "models.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
        write_manifest(path, writer="models")  # last: every file of the directory, with its SHA-256

    @classmethod
    def load(cls, path: str | Path) -> ConversionModels:
        """Load a directory written by :meth:`save`, every file checked against its manifest.

        Raises
        ------
        InputError
            One line naming the file: not a models directory, no manifest (written by an
            earlier version), or a file missing, truncated or changed since it was written.
        """
        path = Path(path)
        meta_path = path / "models.json"
        if not meta_path.is_file():
            raise InputError("not a models directory (models.json missing)", source=path)
        verify_manifest(path, needed=("models.json",))
        meta = json.loads(meta_path.read_text())
        models = cls(**meta["params"])
        if models.architecture in BOOSTED:
            models.natural_ = None
            models.coupon_ = BoostedConversionModel.load(path / "boosted")
        elif models.architecture == "shared_trunk":
            models.natural_ = None
            trunk = path / "shared_trunk"
            models.coupon_ = SharedTrunkModel.load(trunk if trunk.is_dir() else path / "joint")
        else:
            models.natural_ = NaturalConversionModel.load(path / "natural")
            models.coupon_ = CouponConversionModel.load(path / "coupon")
        member_class = type(models.coupon_)
        models.members_ = [
            member_class.load(path / "ensemble" / str(i)) for i in range(1, models.ensemble)
        ]
        models.halves_ = [
            member_class.load(path / "halves" / str(i)) for i in range(1, models.uncertainty + 1)
        ]
        models.shrinkage_ = meta.get("shrinkage")
        if models.halves_ and not models.shrinkage_:
            raise InputError("models.json has half-sample models but no shrinkage", source=path)
        models.redemption_ = None
        if (path / "redemption").is_dir():
            models.redemption_ = load_redemption(path / "redemption")
        models.menu_ = Menu.model_validate(meta["menu"])
        models.summary_ = meta["summary"]
        return models


def _arm_counts(rows: pd.DataFrame) -> dict[str, dict[str, int]]:
    grouped = rows.groupby("denomination").agg(
        size=("converted", "size"), conversions=("converted", "sum"), redeemed=("redeemed", "sum")
    )
    return {
        str(name): {
            "rows": int(r["size"]),
            "conversions": int(r["conversions"]),
            "redemptions": int(r["redeemed"]),
        }
        for name, r in grouped.iterrows()
    }


#: Saved class names of every conversion model (and the names earlier versions saved).
_MODEL_CLASSES: dict[str, type[BaseConversionModel]] = {
    "NaturalConversionModel": NaturalConversionModel,
    "CouponConversionModel": CouponConversionModel,
    "SharedTrunkModel": SharedTrunkModel,
    "JointConversionModel": SharedTrunkModel,
}


def load_redemption(path: str | Path) -> RedemptionModel | CouponConversionModel:
    """Load the redemption model saved in directory ``path``, whichever kind it is."""
    meta_path = Path(path) / "model.json"
    try:
        kind = json.loads(meta_path.read_text()).get("class") if meta_path.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = None  # the loader reports the damage
    if kind == RedemptionModel.__name__:
        return RedemptionModel.load(path)
    return CouponConversionModel.load(path)


def load_model(path: str | Path) -> BaseConversionModel | BoostedConversionModel:
    """Load whichever conversion model is saved in directory ``path``."""
    if (Path(path) / "boosters").is_dir():
        return BoostedConversionModel.load(path)
    meta = read_meta(path)
    cls = _MODEL_CLASSES.get(meta["class"])
    if cls is None:
        raise InputError(f"unknown model class {meta['class']!r}", source=path)
    return cls._restore(meta, Path(path))
