"""The machinery every conversion model shares: encoding, training, calibration, persistence.

Every model is a scikit-learn-style estimator over a feature DataFrame (the user table, or any
table of features): :class:`~sklearn.base.BaseEstimator` gives the parameters (stored unchanged
in ``__init__``), all learning happens in ``fit`` (which returns ``self``), and fitted state
ends in ``_``. A model saves to and loads from a directory: ``weights.pt`` (a ``state_dict``
loaded with ``weights_only=True``) and ``model.json`` (feature encoder, calibration, menu,
parameters, versions and training metrics); no pickle.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator

from optimizer.errors import InputError
from optimizer.evaluation.metrics import classification_quality
from optimizer.io.atomic import atomic_path
from optimizer.models.calibration import CALIBRATIONS, Calibrator
from optimizer.models.features import FeatureEncoder
from optimizer.models.nets import Trunk
from optimizer.models.training import AUTO_BATCH_BASE, EpochReport, auto_batch, fit_logits
from optimizer.progress import Progress, Step

__all__ = ["BaseConversionModel", "read_meta", "MODEL_FORMAT"]

#: Version of the saved-model layout (``model.json`` + ``weights.pt``).
MODEL_FORMAT = 1


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    try:
        out["couponopt"] = metadata.version("couponopt")
    except metadata.PackageNotFoundError:
        out["couponopt"] = "unknown"
    return out


class BaseConversionModel(BaseEstimator):
    """Shared machinery: encoder, network, training, calibration, save/load."""

    def __init__(
        self,
        *,
        hidden: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        max_epochs: int = 60,
        batch_size: int | None = None,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 6,
        validation_fraction: float = 0.2,
        calibration: str = "platt",
        random_state: int = 0,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        max_categories: int | None = None,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.calibration = calibration
        self.random_state = random_state
        self.numeric = numeric
        self.categorical = categorical
        self.max_categories = max_categories

    def _check_params(self) -> None:
        if self.calibration not in CALIBRATIONS:
            raise InputError(f"must be one of {', '.join(CALIBRATIONS)}", key="calibration")
        if not 0 <= self.validation_fraction < 1:
            raise InputError("must be in [0, 1)", key="validation_fraction")

    def _encode_fit(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        # A column constant in the training rows (the one segment trained on) is kept: it
        # still reports drift when other segments are scored (a data configuration refuses
        # columns constant in the whole customer table up front).
        self.encoder_ = FeatureEncoder(
            self.numeric, self.categorical, max_categories=self.max_categories, drop_constant=None
        ).fit(X)
        return self.encoder_.transform(X)

    def _seeded_net(self) -> torch.nn.Module:
        """Build the network with initial weights drawn from ``random_state`` only."""
        with torch.random.fork_rng():
            torch.manual_seed(self.random_state)
            return self._build_net()

    def _trunk(self) -> Trunk:
        return Trunk(
            self.encoder_.n_numeric_,
            self.encoder_.cardinalities_,
            hidden=tuple(self.hidden),
            dropout=self.dropout,
        )

    #: Class names earlier versions saved, mapped to today's.
    _LEGACY_NAMES: dict[str, str] = {"JointConversionModel": "SharedTrunkModel"}

    #: The task name of this model's progress reports.
    _task = "model"

    def _train(
        self, forward, inputs: tuple[np.ndarray, ...], y: np.ndarray, progress: Progress | None
    ) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if y.size == 0:
            raise InputError("no training rows")
        batch_size, learning_rate = self.batch_size, self.learning_rate
        if batch_size is None:
            batch_size = auto_batch(y.size)
            learning_rate *= float(np.sqrt(batch_size / AUTO_BATCH_BASE))
        with torch.random.fork_rng():
            history, val_idx = fit_logits(
                self.net_,
                forward,
                inputs,
                y,
                max_epochs=self.max_epochs,
                batch_size=batch_size,
                learning_rate=learning_rate,
                weight_decay=self.weight_decay,
                patience=self.patience,
                validation_fraction=self.validation_fraction,
                seed=self.random_state,
                on_epoch=None if progress is None else self._epoch_reporter(progress),
            )
        self.history_ = [vars(r).copy() for r in history]
        self.n_epochs_ = len(history)
        return val_idx

    def _epoch_reporter(self, progress: Progress):
        def on_epoch(r: EpochReport) -> None:
            detail = f"validation loss {r.validation_loss:.4f}"
            progress(Step(self._task, r.epoch, r.max_epochs, detail))

        return on_epoch

    def _calibrate(self, logits: np.ndarray, y: np.ndarray, val_idx: np.ndarray) -> None:
        """Fit the calibrator on validation rows and record validation quality."""
        rows = val_idx if val_idx.size else np.arange(y.size)
        raw = 1.0 / (1.0 + np.exp(-logits[rows]))
        self.calibrator_ = Calibrator(self.calibration).fit(logits[rows], y[rows])
        calibrated = self.calibrator_.transform(logits[rows])
        self.validation_metrics_ = {
            "before_calibration": classification_quality(y[rows], raw),
            "after_calibration": classification_quality(y[rows], calibrated),
        }

    # ---------------------------------------------------------------- persistence
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | Path) -> None:
        """Write ``weights.pt`` and ``model.json`` into directory ``path`` (atomically)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = self.get_params()
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        meta = {
            "format": MODEL_FORMAT,
            "class": type(self).__name__,
            "params": params,
            "encoder": self.encoder_.to_dict(),
            "calibrator": self.calibrator_.to_dict(),
            "history": self.history_,
            "validation_metrics": self.validation_metrics_,
            "versions": _versions(),
            **self._extra_state(),
        }
        with atomic_path(path / "weights.pt") as tmp:
            torch.save(self.net_.state_dict(), tmp)
        with atomic_path(path / "model.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1, default=float))

    @classmethod
    def _restore(cls, meta: dict[str, Any], path: Path):
        params = dict(meta["params"])
        model = cls(**params)
        model.encoder_ = FeatureEncoder.from_dict(meta["encoder"])
        model.calibrator_ = Calibrator.from_dict(meta["calibrator"])
        model.history_ = meta["history"]
        model.n_epochs_ = len(model.history_)
        model.validation_metrics_ = meta["validation_metrics"]
        model._load_extra(meta)
        model.net_ = model._seeded_net()
        state = torch.load(path / "weights.pt", weights_only=True)
        model.net_.load_state_dict(state)
        model.net_.eval()
        return model

    def _load_extra(self, meta: dict[str, Any]) -> None:
        pass

    def _build_net(self) -> torch.nn.Module:
        raise NotImplementedError

    @classmethod
    def load(cls, path: str | Path):
        """Load a model saved with :meth:`save`."""
        meta = read_meta(path)
        if meta["class"] != cls.__name__ and cls._LEGACY_NAMES.get(meta["class"]) != cls.__name__:
            raise InputError(f"holds a {meta['class']}, not a {cls.__name__}", source=path)
        return cls._restore(meta, Path(path))


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``model.json`` of a saved model, checked for its layout version."""
    path = Path(path)
    meta_path = path / "model.json"
    if not meta_path.is_file() or not (path / "weights.pt").is_file():
        raise InputError("not a saved model (model.json and weights.pt expected)", source=path)
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"model.json is not valid JSON ({exc})", source=path) from None
    if meta.get("format") != MODEL_FORMAT:
        raise InputError(f"unsupported model format {meta.get('format')!r}", source=path)
    return meta
