from __future__ import annotations

import pytest
from typer.testing import CliRunner

from simulator.scenario import Scenario
from simulator.world.generation import World, build_world


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    """The embedded default scenario (200k users)."""
    return Scenario()


@pytest.fixture(scope="session")
def world(scenario: Scenario) -> World:
    """The default world, generated once per test session."""
    return build_world(scenario)


@pytest.fixture(scope="session")
def default_models(world: World):
    """The default conversion models trained the article's way on the default world's log."""
    import os
    from pathlib import Path

    from optimizer.models import ConversionModels

    shared = os.environ.get("COUPONOPT_TEST_CACHE")  # see _model_cache
    saved = Path(shared) / "default-models-fixture" if shared else None
    if saved is not None and saved.exists():
        return ConversionModels.load(saved)
    models = ConversionModels(segment=["dormant"]).fit(
        world.history, world.users, world.scenario.menu
    )
    if saved is not None:
        from optimizer.io import atomic_directory

        with atomic_directory(saved, whole=True) as staging:
            models.save(staging)
    return models


@pytest.fixture(scope="session")
def small_scenario() -> Scenario:
    return Scenario().with_overrides(users=5_000, seed=11)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True, scope="session")
def _model_cache(tmp_path_factory):
    """Keep `optimize`'s model cache inside the test session.

    ``COUPONOPT_TEST_CACHE`` names a cache shared by many sessions instead: the mutation
    harness (``benchmarks/mutation.py``) runs the tests once per mutant and would otherwise
    train the same models every time.
    """
    import os

    shared = os.environ.get("COUPONOPT_TEST_CACHE")
    os.environ["COUPONOPT_CACHE"] = shared or str(tmp_path_factory.mktemp("model-cache"))


def pytest_terminal_summary(terminalreporter):
    """The fuzzing and crash suites' counts: inputs tried and how each ended."""
    import sys

    for name in ("tests.cli.test_fuzz", "tests.cli.test_crash"):
        module = sys.modules.get(name)
        tally = getattr(module, "TALLY", None)
        if tally:
            terminalreporter.section(name.rsplit(".", 1)[-1])
            for key in sorted(tally):
                terminalreporter.write_line(f"{key}: {tally[key]}")
