"""One resolver: a campaign configuration and one run's overrides into a planning request."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.choices import MatchOn, Objective, Policy, Solver
from optimizer.errors import InputError
from optimizer.planning import CampaignConfig, Overrides, resolve_request


def test_no_overrides_keep_the_configuration():
    campaign = CampaignConfig()
    request = resolve_request(campaign)
    assert request.campaign == campaign and request.budget == campaign.budget.amount
    assert request.policies == (Policy.OPTIMAL,) and request.objective == Objective.CONVERSIONS
    assert request.solver == Solver.AUTO and request.match == ()
    settings = request.settings()
    assert settings.denomination == campaign.manual.denomination
    assert settings.constraints.budget_only and settings.natural_screen is None


def test_overrides_replace_configuration_keys():
    request = resolve_request(
        CampaignConfig(),
        Overrides(
            budget=1234.0, sms_cost=0.2, margin_rate=0.5, denomination="5off49",
            target_segments=["dormant", "lapsed"], max_per_denomination={"5off49": 7},
            max_messages=9, min_roi=2.0, overrun_risk=0.1, segment_column="region",
            segment_shares={"north": (0.2, 0.8)}, policies=["v2", "optimal", "v2"],
            objective="profit", solver="dual", match=["v2"], match_on="spend", screen=True,
            v2_threshold=0.25, seed=3,
        ),
    )  # fmt: skip
    campaign = request.campaign
    assert request.budget == 1234.0 and request.sms_cost == 0.2 and request.margin_rate == 0.5
    assert campaign.manual.denomination == "5off49"
    assert campaign.targeting.segments == ("dormant", "lapsed")
    rules = request.settings().constraints
    assert rules.max_per_denomination == {"5off49": 7} and rules.max_messages == 9
    assert rules.min_roi == 2.0 and rules.segment_shares[0].segment == "north"
    assert request.segment_column == "region" and request.settings().overrun_risk == 0.1
    assert request.policies == (Policy.V2, Policy.OPTIMAL)  # repeated once
    assert request.objective == Objective.PROFIT and request.solver == Solver.DUAL
    assert request.match == (Policy.V2,) and request.match_on == MatchOn.SPEND
    assert request.settings().natural_screen == 0.25 and request.seed == 3
    data = request.to_dict()
    assert data["budget"] == 1234.0 and data["match"] == {"policies": ["v2"], "on": "spend"}


def test_v2_cut_given_else_the_models_knee_else_the_articles():
    base = resolve_request(CampaignConfig(), Overrides(screen=True))
    assert base.v2_cut == 0.9
    knee = base.with_natural_threshold(0.31)
    assert knee.v2_cut == 0.31 and knee.settings().natural_screen == 0.31
    given = resolve_request(CampaignConfig(), Overrides(v2_threshold=0.2), natural_threshold=0.31)
    assert given.v2_cut == 0.2
    assert base.with_budget(10.0).budget == 10.0 and base.budget == 50_000.0


@pytest.mark.parametrize(
    "overrides, key, message",
    [
        (Overrides(budget=-1.0), "budget.amount", "greater than or equal to 0"),
        (Overrides(budget=float("inf")), "budget.amount", "finite number"),
        (Overrides(min_roi=-1.0), "constraints.min_roi", "greater than or equal to 0"),
        (Overrides(max_per_denomination={"x": 1}), "constraints.max_per_denomination",
         "'x' is not on the menu"),
        (Overrides(segment_shares={"a": (0.7, 1.0), "b": (0.7, 1.0)}),
         "constraints.segment_shares", "add up to more than 1"),
        (Overrides(denomination="x"), "manual.denomination", "'x' is not on the menu"),
        (Overrides(policies=["best"]), "policies", "unknown policy 'best'"),
        (Overrides(policies=[]), "policies", "at least one policy"),
        (Overrides(match=["optimal"]), "match", "unknown policy 'optimal'"),
        (Overrides(policies=["v2"], match=["v2"]), "match", "plan it"),
        (Overrides(objective="fun"), "objective", "unknown value 'fun'"),
        (Overrides(solver="fast"), "solver", "unknown value 'fast'"),
        (Overrides(match_on="mood"), "match_on", "unknown value 'mood'"),
        (Overrides(v2_threshold=1.5), "v2_threshold", "probability"),
        (Overrides(overrun_risk=1.5), "constraints.overrun_risk", "less than or equal to 1"),
    ],
)  # fmt: skip
def test_errors_name_the_key(overrides, key, message):
    with pytest.raises(InputError) as info:
        resolve_request(CampaignConfig(), overrides)
    assert info.value.key == key and message in str(info.value)


def test_exclusions_are_read_relative_to_the_configuration(tmp_path):
    (tmp_path / "ids.txt").write_text("3\n1\n")
    campaign = CampaignConfig().with_values(**{"constraints.exclude_file": "ids.txt"})
    request = resolve_request(campaign, base=tmp_path)
    np.testing.assert_array_equal(np.sort(request.exclude), [1, 3])
    (tmp_path / "other.txt").write_text("7\n")
    given = resolve_request(campaign, Overrides(exclude=tmp_path / "other.txt"), base=tmp_path)
    assert given.exclude.tolist() == [7]
    with pytest.raises(InputError, match="file not found"):
        resolve_request(campaign, base=tmp_path / "elsewhere")


def test_the_default_overrun_rule_is_stated_and_changes_are_described():
    default = resolve_request(CampaignConfig())
    settings = default.settings()
    assert (settings.overrun_risk, settings.overrun_tolerance) == (0.05, 0.02)
    assert "overrun" not in default.describe()
    payload = default.to_dict()
    assert payload["overrun_risk"] == 0.05 and payload["overrun_tolerance"] == 0.02
    strict = resolve_request(CampaignConfig(), Overrides(overrun_risk=0.1, overrun_tolerance=0.0))
    assert "overrun risk 0.1 beyond 0%" in strict.describe()
    assert strict.settings().overrun_tolerance == 0.0
    off = resolve_request(CampaignConfig(), Overrides(overrun_risk=1.0))
    assert off.settings().overrun_risk is None and "no overrun rule" in off.describe()
    with pytest.raises(InputError, match="constraints.overrun_tolerance"):
        resolve_request(CampaignConfig(), Overrides(overrun_tolerance=1.5))
