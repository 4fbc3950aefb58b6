"""The model cache: written whole, checked on every load, rebuilt with a note when damaged."""

from __future__ import annotations

import warnings

import pytest

from optimizer.errors import Notice
from simulator.workflows import score_scenario


def test_a_damaged_cache_is_reported_and_rebuilt(small_scenario, tmp_path):
    scenario = small_scenario.with_overrides(users=8_000)
    first = score_scenario(scenario, cache=tmp_path)
    assert not first.cached
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("models-")]
    assert (folder / "_manifest.json").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)  # a sound cache loads without a note
        again = score_scenario(scenario, cache=tmp_path)
    assert again.cached
    weights = folder / "shared_trunk" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:64])
    with pytest.warns(Notice, match=r"cached models unusable \(.*weights\.pt.*\); retraining"):
        rebuilt = score_scenario(scenario, cache=tmp_path)
    assert not rebuilt.cached
    assert (rebuilt.scores == first.scores).all().all()  # seeded: the same models again
    assert score_scenario(scenario, cache=tmp_path).cached
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # nothing left beside
