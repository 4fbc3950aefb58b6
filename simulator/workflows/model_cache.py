"""A scenario end to end: world -> randomized log -> models (cached) -> scores.

Used whenever a command is given no scores: the scenario's synthetic world is built, the
models are trained on its randomized log (on the campaign's target stages, as the article
does) and cached, and every user is scored. The cache key is a hash of everything that
changes the trained models, so a second run with the same scenario skips training.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from optimizer.errors import InputError, Notice
from optimizer.io.atomic import atomic_directory, clean_leftovers
from optimizer.io.menu import Menu
from optimizer.models.conversion import ConversionModels
from optimizer.progress import Progress, report
from simulator.scenario import Scenario
from simulator.world.generation import build_world

__all__ = ["ScoredScenario", "score_scenario", "cache_dir", "MODEL_CACHE_VERSION"]

#: Bump when training or the saved layout changes, so stale cached models are not reused.
MODEL_CACHE_VERSION = 9


def cache_dir() -> Path:
    """``$COUPONOPT_CACHE`` or ``~/.cache/couponopt``."""
    env = os.environ.get("COUPONOPT_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "couponopt"


@dataclass
class ScoredScenario:
    """The scenario's users, their scores, and the models that made them.

    ``truth`` is the world's ground truth (simulation only) and ``history`` its campaign log
    (the models' held-out rows come from it).
    """

    users: pd.DataFrame
    scores: pd.DataFrame
    models: ConversionModels
    cached: bool
    truth: pd.DataFrame | None = None
    history: pd.DataFrame | None = None

    @property
    def natural_threshold(self) -> float | None:
        """The models' coverage knee: v2's natural-probability cut."""
        return self.models.natural_threshold

    def with_menu(self, menu: Menu) -> ScoredScenario:
        """The same world scored for another menu (the coupon head scores any denomination)."""
        return replace(self, scores=self.models.predict(self.users, menu))


def _key(scenario: Scenario) -> str:
    relevant = scenario.model_dump(
        mode="json", include={"population", "menu", "campaign", "history", "targeting"}
    )
    relevant["version"] = MODEL_CACHE_VERSION
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def score_scenario(
    scenario: Scenario,
    *,
    cache: Path | None = None,
    progress: Progress | None = None,
) -> ScoredScenario:
    """Build the world, train (or load cached) models, score every user.

    Parameters
    ----------
    scenario : Scenario
    cache : Path, optional
        Model cache directory (default :func:`cache_dir`).
    progress : callable, optional
        Receives a :class:`~optimizer.progress.Step` as each stage begins (building the world,
        training or loading the models, scoring).
    """

    def say(task: str) -> None:
        report(progress, task)

    say("building the synthetic world")
    world = build_world(scenario)
    root = cache_dir() if cache is None else cache
    target = root / f"models-{_key(scenario)}"
    clean_leftovers(root, every_name=True)  # what killed runs left, whatever their scenario
    models = None
    if target.exists():
        say("loading cached models")
        try:
            models = ConversionModels.load(target)
        except (InputError, OSError, ValueError, KeyError, RuntimeError) as exc:
            line = exc.line() if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            warnings.warn(f"cached models unusable ({line}); retraining", Notice, stacklevel=2)
    cached = models is not None
    if models is None:
        say("training the conversion models")
        models = ConversionModels(segment=list(scenario.target_stages)).fit(
            world.history, world.users, scenario.menu, progress=progress
        )
        # replaces a damaged cache whole
        with atomic_directory(target, whole=True) as staging:  # the tool's own folder
            models.save(staging)
    say("scoring users")
    scores = models.predict(world.users, scenario.menu)
    return ScoredScenario(
        users=world.users,
        scores=scores,
        models=models,
        cached=cached,
        truth=world.truth,
        history=world.history,
    )
