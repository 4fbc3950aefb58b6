"""The embedded default, end to end: world -> randomized log -> models -> scores.

Used when `couponopt optimize` is given no scores: the scenario's synthetic world is built, the
models are trained on its randomized log (on the campaign's target stages, as the article
does) and cached, and the target users are scored. The cache key is a hash of everything that
changes the trained models, so a second run with the same scenario skips training.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from optimizer.atomic import atomic_directory
from optimizer.bundle import ConversionModels
from simulator.generate import build_world
from simulator.scenario import Scenario

__all__ = ["ScoredScenario", "score_scenario", "cache_dir", "MODEL_CACHE_VERSION"]

#: Bump when training changes, so stale cached models are not reused.
MODEL_CACHE_VERSION = 3


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


def _key(scenario: Scenario) -> str:
    relevant = scenario.model_dump(
        mode="json", include={"population", "menu", "campaign", "history"}
    )
    relevant["version"] = MODEL_CACHE_VERSION
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def score_scenario(
    scenario: Scenario,
    *,
    cache: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ScoredScenario:
    """Build the world, train (or load cached) models, score every user.

    Parameters
    ----------
    scenario : Scenario
    cache : Path, optional
        Model cache directory (default :func:`cache_dir`); None-like empty path disables it.
    progress : callable, optional
        Called with a short description of each stage.
    """
    say = progress or (lambda _msg: None)
    say("building the synthetic world")
    world = build_world(scenario)
    root = cache_dir() if cache is None else cache
    target = root / f"models-{_key(scenario)}"
    cached = (target / "models.json").is_file()
    if cached:
        say("loading cached models")
        models = ConversionModels.load(target)
    else:
        say("training the conversion models")
        models = ConversionModels(segment=list(scenario.campaign.target_stages)).fit(
            world.history, world.users, scenario.menu
        )
        with atomic_directory(target) as staging:
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
