"""Scenario and menu files: the shipped ones load, every bad value is named by its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from cli import app
from optimizer.errors import InputError
from optimizer.io.menu import Menu, load_menu, save_menu
from optimizer.planning import CampaignConfig
from simulator.scenario import Scenario, as_scenario, load_configuration, load_scenario
from tests import ROOT  # noqa: E402


def test_default_file_is_the_embedded_default():
    assert load_scenario(ROOT / "scenarios" / "default.toml") == Scenario()
    assert load_scenario(None) == Scenario()


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path):
    scenario = load_scenario(path)
    assert scenario.manual.denomination in scenario.menu.names


def test_article_scenario_targets_dormant_with_uniform_10_off():
    article = load_scenario(ROOT / "scenarios" / "article.toml")
    assert article.targeting.segments == ("dormant",)
    assert article.targeting.column == "lifecycle_stage"
    assert article.manual.denomination == "10off99"
    assert article.menu.index("10off99") >= 0


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def _default_dict() -> dict:
    return Scenario().model_dump(mode="json", exclude_none=True)


def _case(mutate):
    data = _default_dict()
    mutate(data)
    return data


SCENARIO_CASES = {
    "unknown key": (
        lambda d: d["population"].__setitem__("userz", 5),
        "population.userz: unknown key (allowed: users, seed, stages, archetypes)",
    ),
    "unknown section": (lambda d: d.__setitem__("budgett", {}), "budgett: unknown key"),
    "wrong type": (
        lambda d: d["campaign"].__setitem__("window_days", "two weeks"),
        "campaign.window_days: Input should be a valid number",
    ),
    "negative budget": (
        lambda d: d["budget"].__setitem__("amount", -10.0),
        "budget.amount: Input should be greater than or equal to 0 (got -10.0)",
    ),
    "threshold below face": (
        lambda d: d["menu"]["denomination"][1].__setitem__("threshold", 5.0),
        "menu.denomination[1]: threshold 5 is below face value 10",
    ),
    "stage shares": (
        lambda d: d["population"]["stages"].__setitem__("active", 0.5),
        "population.stages: shares sum to 1.25; expected 1",
    ),
    "archetype shares": (
        lambda d: d["population"]["archetypes"].__setitem__("sleeping_dog", 0.0),
        "population.archetypes: shares sum to 0.95; expected 1",
    ),
    "negative share": (
        lambda d: d["population"]["stages"].__setitem__("active", -0.1),
        "population.stages.active: Input should be greater than or equal to 0",
    ),
    "manual not on menu": (
        lambda d: d["manual"].__setitem__("denomination", "15off99"),
        "manual.denomination: '15off99' is not on the menu",
    ),
    "unknown stage": (
        lambda d: d["targeting"].__setitem__("segments", ["sleepy"]),
        "targeting.segments: expected some of active, cooling, lapsed, dormant (got 'sleepy')",
    ),
    "targeting column": (
        lambda d: d["targeting"].__setitem__("column", "region"),
        "targeting.column: the synthetic world targets by lifecycle_stage",
    ),
    "repeated segment": (
        lambda d: d["targeting"].__setitem__("segments", ["dormant", "dormant"]),
        "targeting.segments: a segment is listed twice",
    ),
    "validity zero": (
        lambda d: d["campaign"].__setitem__("validity_days", 0),
        "campaign.validity_days: Input should be greater than 0",
    ),
    "validity beyond window": (
        lambda d: d["campaign"].__setitem__("validity_days", 30),
        "campaign.validity_days: 30 exceeds campaign.window_days 14",
    ),
    "zero users": (
        lambda d: d["population"].__setitem__("users", 0),
        "population.users: Input should be greater than or equal to 1",
    ),
    "duplicate denomination": (
        lambda d: d["menu"]["denomination"].append(dict(d["menu"]["denomination"][0])),
        "menu.denomination: duplicated denomination names: 5off49",
    ),
    "reserved name": (
        lambda d: d["menu"]["denomination"][0].__setitem__("name", "none"),
        "menu.denomination[0].name: 'none' is reserved",
    ),
    "bad name": (
        lambda d: d["menu"]["denomination"][0].__setitem__("name", "5 off 49"),
        "menu.denomination[0].name: '5 off 49' is not a valid denomination name",
    ),
    "cap not on menu": (
        lambda d: d["constraints"].__setitem__("max_per_denomination", {"15off99": 10}),
        "constraints.max_per_denomination: '15off99' is not on the menu",
    ),
    "negative cap": (
        lambda d: d["constraints"].__setitem__("max_per_denomination", {"5off49": -1}),
        "constraints.max_per_denomination: cap of 5off49 must be >= 0",
    ),
    "segment share order": (
        lambda d: d["constraints"].__setitem__(
            "segment_shares", {"dormant": {"min": 0.8, "max": 0.2}}
        ),
        "constraints.segment_shares.dormant: min 0.8 exceeds max 0.2",
    ),
    "unknown arm": (
        lambda d: d["simulation"].__setitem__("policies", ["optimal", "magic"]),
        "simulation.policies[1]: Input should be 'optimal', 'manual', 'v1', 'v2', 'uplift' or",
    ),
    "old arms key": (
        lambda d: d["simulation"].__setitem__("arms", ["optimal"]),
        "simulation.arms: unknown key (allowed: sms_per_hour",
    ),
    "negative gateway": (
        lambda d: d["simulation"].__setitem__("sms_per_hour", -5),
        "simulation.sms_per_hour: Input should be greater than 0",
    ),
    "budget mode": (
        lambda d: d["simulation"].__setitem__("on_budget_spent", "panic"),
        "simulation.on_budget_spent: Input should be 'continue', 'stop_issuing' or",
    ),
    "simulation match": (
        lambda d: d["simulation"].__setitem__("match", ["optimal"]),
        "simulation.match: the optimal arm matches baselines",
    ),
    "simulation match_on": (
        lambda d: d["simulation"].__setitem__("match_on", "mood"),
        "simulation.match_on: Input should be 'value', 'spend' or 'spend_conversions'",
    ),
    "simulation objective": (
        lambda d: d["simulation"].__setitem__("objective", "fun"),
        "simulation.objective: Input should be 'conversions', 'gmv' or 'profit'",
    ),
    "vary budget range": (
        lambda d: d["whatif"]["vary"].__setitem__("budget", {"start": 5, "stop": 1, "points": 3}),
        "whatif.vary.budget: stop 1 must exceed start 5",
    ),
    "vary repeated budget": (
        lambda d: d["whatif"]["vary"].__setitem__("budget", [5, 5]),
        "whatif.vary.budget: a budget is listed twice",
    ),
    "vary margin": (
        lambda d: d["whatif"]["vary"].__setitem__("margin_rate", [1.5]),
        "whatif.vary.margin_rate: margin rates must be in [0, 1]",
    ),
    "dash key": (
        lambda d: d["costs"].__setitem__("sms-cost", 0.1),
        "costs.sms-cost: unknown key (allowed: sms_cost, margin_rate, order_value)",
    ),
    "capitalised key": (
        lambda d: d.__setitem__("Budget", 5),
        "Budget: unknown key (allowed: name,",
    ),
    "segment label kept": (
        lambda d: d["constraints"].__setitem__("segment_shares", {"High-Value": {"min": 2}}),
        "constraints.segment_shares.High-Value.min: Input should be less than or equal to 1",
    ),
    "overrun risk": (
        lambda d: d["constraints"].__setitem__("overrun_risk", 1.5),
        "constraints.overrun_risk: Input should be less than or equal to 1",
    ),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_CASES))
def test_scenario_errors_name_the_key(tmp_path, runner, case):
    mutate, expected = SCENARIO_CASES[case]
    path = _write(tmp_path, _case(mutate))
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)
    for args in (
        ["validate", str(path)],
        ["generate", "--scenario", str(path), "--out", str(tmp_path / "o")],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_malformed_and_missing_scenarios(tmp_path, runner):
    broken = tmp_path / "broken.toml"
    broken.write_text("[population\nusers = 3\n")
    result = runner.invoke(app, ["optimize", "--scenario", str(broken)])
    assert result.exit_code == 2 and "not valid TOML" in result.stderr
    result = runner.invoke(app, ["optimize", "--scenario", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "file not found" in result.stderr
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    result = runner.invoke(app, ["optimize", "--scenario", str(empty)])
    assert result.exit_code == 2 and "file is empty" in result.stderr


def test_menu_round_trip_and_errors(tmp_path):
    menu = Scenario().menu
    path = tmp_path / "menu.toml"
    save_menu(menu, path)
    assert load_menu(path) == menu
    path.write_text('[[denomination]]\nname = "a"\nface_value = 10\nthreshold = 5\n')
    with pytest.raises(InputError, match=r"menu.toml: denomination\[0\]: threshold 5 is below"):
        load_menu(path)
    path.write_text('[[denomination]]\nname = "a"\nface_value = 0\nthreshold = 5\n')
    with pytest.raises(InputError, match=r"a coupon needs face_value > 0"):
        load_menu(path)


def test_menu_arrays():
    menu = Menu.model_validate(
        {"denomination": [{"name": "a", "face_value": 3, "threshold": 30, "redemption_share": 0.5}]}
    )
    assert menu.names == ("a",)
    assert menu.face_values.tolist() == [3.0]
    assert menu.thresholds.tolist() == [30.0]
    assert menu.redemption_shares.tolist() == [0.5]
    with pytest.raises(KeyError):
        menu.index("b")


def test_command_line_overrides_are_validated(runner, tmp_path):
    result = runner.invoke(app, ["generate", "--population", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2
    result = runner.invoke(app, ["optimize", "--budget", "-5"])
    assert result.exit_code == 2


def test_a_campaign_file_is_a_scenario_on_the_default_world(tmp_path):
    campaign = tmp_path / "campaign.toml"
    campaign.write_text('name = "c"\n[budget]\namount = 1234.0\n[whatif.vary]\nbudget = [1, 2]\n')
    config = load_configuration(campaign)
    assert type(config) is CampaignConfig
    assert config.targeting.segments == ()  # a campaign file targets every scored user
    scenario = as_scenario(config)
    assert scenario.budget.amount == 1234.0 and scenario.name == "c"
    assert scenario.targeting.segments == ("dormant",)  # the world's default targeting
    assert scenario.population == Scenario().population
    assert type(load_configuration(ROOT / "scenarios" / "default.toml")) is Scenario
    real = tmp_path / "real.toml"
    real.write_text('[targeting]\ncolumn = "region"\nsegments = ["north"]\n')
    assert load_configuration(real).targeting.column == "region"  # any label column for scores
    with pytest.raises(InputError, match="targeting.column: the synthetic world"):
        as_scenario(load_configuration(real))


def test_campaign_overrides_name_their_key():
    config = CampaignConfig()
    assert config.with_values(**{"budget.amount": 10.0}).budget.amount == 10.0
    with pytest.raises(InputError) as info:
        config.with_values(**{"constraints.min_roi": -1.0})
    assert info.value.key == "constraints.min_roi"
    assert "greater than or equal to 0" in str(info.value)
    with pytest.raises(InputError) as info:
        Scenario().with_overrides(users=0)
    assert info.value.key == "population.users"


def test_the_world_refuses_menus_it_cannot_play():
    from optimizer.io.tomlfile import validate

    message = {"denomination": [{"name": "e", "kind": "message"}]}
    with pytest.raises(InputError, match="menu: the synthetic world plays coupons"):
        validate(Scenario, {"menu": message, "manual": {"denomination": "e"}})
    priced = {"denomination": [{"name": "c", "face_value": 5, "threshold": 9, "send_cost": 1}]}
    with pytest.raises(InputError, match="menu: the synthetic world plays coupons"):
        validate(Scenario, {"menu": priced, "manual": {"denomination": "c"}})
