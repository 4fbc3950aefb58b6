"""`couponopt value`: plans valued on a randomized log from the command line.

Hillstrom (read from ../shared/data with the shipped configuration): models trained briefly,
the policies planned and valued on the customers the models held out, strict JSON out; figures
of treat-all plan files recounted from the raw CSV. Bad input: one line, exit 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from optimizer.io.campaign_log import user_split
from optimizer.io.datasets import data_dir
from tests.cli import strict_json

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "scenarios" / "own_data" / "hillstrom_email.toml"

pytestmark = pytest.mark.skipif(
    not data_dir().is_dir(), reason=f"shared data folder {data_dir()} is absent"
)


def _run(*args: object, code: int = 0):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hillstrom") / "models"
    _run("train", "--config", CONFIG, "--out", out, "--max-epochs", "2")
    return out


def test_policies_valued_on_held_out_customers(models):
    result = _run(
        "value", "--config", CONFIG, "--models", models, "--policies", "optimal,v2,manual",
        "--objective", "profit", "--bootstrap", "20", "--json",
    )  # fmt: skip
    payload = strict_json(result.stdout)
    raw = pd.read_csv(data_dir() / "hillstrom" / "hillstrom.csv.gz")
    held_out = int(user_split(pd.RangeIndex(1, len(raw) + 1).to_numpy(), 0.2, 0).sum())
    assert payload["rows"] == held_out and "held out" in payload["rows_note"]
    plans = {e["plan"] for e in payload["estimates"]}
    assert plans == {"optimal", "v2", "manual"}
    pairs = {e["plan"] for e in payload["differences"]}
    assert pairs == {"optimal - v2", "optimal - manual"}
    for e in payload["estimates"]:
        if e["metric"] != "roi":
            assert e["low"] <= e["estimate"] <= e["high"]
            assert e["total"] == pytest.approx(e["estimate"] * len(raw))
    for d in payload["diagnostics"]:
        assert d["matched_rows"] <= held_out


def test_plan_files_treat_all_and_none(tmp_path):
    raw = pd.read_csv(data_dir() / "hillstrom" / "hillstrom.csv.gz")
    ids = pd.RangeIndex(1, len(raw) + 1)
    # "all" as a plan dataset of a larger base, in parts: only the log's customers are kept.
    wider = pd.DataFrame({"user_id": np.arange(len(raw) + 50_000, 0, -1), "denomination": "womens"})
    (tmp_path / "all").mkdir()
    for i, lo in enumerate(range(0, len(wider), 50_000)):
        wider.iloc[lo : lo + 50_000].to_parquet(tmp_path / "all" / f"part-{i}.parquet")
    pd.DataFrame({"user_id": ids, "denomination": "none"}).to_csv(tmp_path / "none.csv")
    result = _run(
        "value", "--config", CONFIG, "--plan", tmp_path / "all", "--plan",
        tmp_path / "none.csv", "--estimators", "snipw", "--bootstrap", "0", "--json",
        "--out", tmp_path / "estimates.csv",
    )  # fmt: skip
    payload = strict_json(result.stdout)
    womens = raw[raw["segment"] == "Womens E-Mail"]["conversion"].mean()
    control = raw[raw["segment"] == "No E-Mail"]["conversion"].mean()
    got = {(e["plan"], e["metric"]): e["estimate"] for e in payload["estimates"]}
    assert got["all", "incremental_conversions"] == pytest.approx(womens - control, rel=1e-9)
    assert got["none", "incremental_conversions"] == 0.0
    assert "all of the log" in payload["rows_note"]
    written = pd.read_csv(tmp_path / "estimates.csv")
    assert set(written["kind"]) == {"plan", "difference"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", CONFIG], "needs their models"),
        (["--log", CONFIG], "synthetic world has its own log"),
        (["--config", CONFIG, "--plan", "missing.csv"], "missing.csv"),
        (["--config", CONFIG, "--estimators", "naive"], "not a known estimator"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = _run("value", *args, code=2)
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_world_policies_valued_and_beside_the_expected_figures():
    world = ["--population", "30000", "--budget", "5000"]
    result = _run("value", *world, "--policies", "optimal,manual", "--bootstrap", "20", "--json")
    payload = strict_json(result.stdout)
    assert "held out" in payload["rows_note"] and payload["rows"] > 0
    assert {d["plan"] for d in payload["differences"]} == {"optimal - manual"}
    result = _run("optimize", *world, "--compare", "--value", "--json")
    payload = strict_json(result.stdout)
    side = pd.DataFrame(payload["expected_vs_estimated"])
    assert set(side["plan"]) == set(payload["plans"])
    for _, row in side.iterrows():  # the expected column is the plan's own summary figure
        key = "expected_cost" if row["metric"] == "campaign_cost" else row["metric"]
        assert row["expected"] == pytest.approx(payload["plans"][row["plan"]][key])
        assert row["low"] <= row["estimated"] <= row["high"] or row["metric"] == "roi"
    table = _run("optimize", *world, "--value").output
    assert "Expected by the models vs estimated on the log" in table


def test_own_data_whatif_and_report_carry_the_log_estimates(models, tmp_path):
    data = data_dir() / "hillstrom" / "hillstrom.csv.gz"
    scores = tmp_path / "scores.parquet"
    _run("score", "--models", models, "--users", data, "--out", scores)
    result = _run(
        "whatif", "--config", CONFIG, "--scores", scores, "--vary", "budget=1000,3000",
        "--policies", "optimal,manual", "--value", "--json",
    )  # fmt: skip
    payload = strict_json(result.stdout)
    points = pd.DataFrame(payload["points"])
    assert {"log_incremental_profit", "log_incremental_profit_low"} <= set(points.columns)
    # E-mails cost 0.10 each, whatever happens: the doubly robust cost is exact.
    assert points["log_campaign_cost"].to_numpy() == pytest.approx(
        points["expected_cost"].to_numpy(), rel=1e-9, abs=1e-9
    )
    assert (points.loc[points["policy"] == "manual", "log_campaign_cost"] > 0).all()
    _run(
        "report", "--config", CONFIG, "--scores", scores, "--models", models,
        "--out", tmp_path / "r.html",
    )  # fmt: skip
    page = (tmp_path / "r.html").read_text()
    assert "What the log says" in page and "held out from the models" in page


def test_cross_fitted_plans_are_valued_on_every_row(models, monkeypatch):
    from optimizer.models import ConversionModels

    trained, scored = [], []
    fit, predict = ConversionModels.fit, ConversionModels.predict

    def recording_fit(self, log, *args, **kwargs):
        trained.append(set(log["user_id"].tolist()))
        return fit(self, log, *args, **kwargs)

    def recording_predict(self, users, *args, **kwargs):
        scored.append(set(users["user_id"].tolist()))
        return predict(self, users, *args, **kwargs)

    monkeypatch.setattr(ConversionModels, "fit", recording_fit)
    monkeypatch.setattr(ConversionModels, "predict", recording_predict)
    result = _run(
        "value", "--config", CONFIG, "--models", models, "--crossfit", "3", "--policies",
        "optimal,manual", "--estimators", "snipw", "--bootstrap", "0", "--json",
    )  # fmt: skip
    payload = strict_json(result.stdout)
    assert payload["rows"] == 64_000 and "cross-fitted" in payload["rows_note"]
    assert len(trained) == len(scored) == 3
    for fold_trained, fold_scored in zip(trained, scored, strict=True):
        assert not fold_trained & fold_scored  # no customer scored by models that saw them
    assert set().union(*scored) == set(range(1, 64_001))
    result = _run("value", "--crossfit", "2", code=2)
    assert "cross-fitting" in result.output


def test_whatif_points_are_priced_at_their_own_send_cost():
    result = _run(
        "whatif", "--population", "30000", "--vary", "budget=5000", "--vary",
        "sms_cost=0.05,0.5", "--policies", "manual", "--value", "--json",
    )  # fmt: skip
    points = pd.DataFrame(strict_json(result.stdout)["points"]).set_index("sms_cost")
    per_message = points["log_campaign_cost"] / points["users_targeted"]
    expected = points["expected_cost"] / points["users_targeted"]
    # the send cost moves the log's cost per message as it moves the expected one
    assert per_message[0.5] - per_message[0.05] == pytest.approx(
        expected[0.5] - expected[0.05], rel=0.25
    )


def test_architectures_compared_by_cross_fitted_policy_value(models, monkeypatch):
    from optimizer.models import ConversionModels

    used = []
    fit = ConversionModels.fit

    def recording_fit(self, log, *args, **kwargs):
        used.append(self.architecture)
        return fit(self, log, *args, **kwargs)

    monkeypatch.setattr(ConversionModels, "fit", recording_fit)
    result = _run(
        "value", "--config", CONFIG, "--models", models, "--architectures",
        "shared_trunk,t_learner", "--crossfit", "2", "--objective", "profit", "--json",
    )  # fmt: skip
    assert used == ["shared_trunk", "shared_trunk", "t_learner", "t_learner"]
    payload = strict_json(result.stdout)
    choice = payload["architectures"]
    assert choice["metric"] == "incremental_profit" and choice["estimator"] == "dr"
    table = {row["architecture"]: row for row in choice["architectures"]}
    # Recount from the estimates themselves: the best has the larger dr profit total, and the
    # paired difference is the difference of the two totals (same rows, same customers).
    totals = {
        e["plan"]: e["total"]
        for e in payload["estimates"]
        if e["estimator"] == "dr" and e["metric"] == "incremental_profit"
    }
    assert set(totals) == {"shared_trunk", "t_learner"}
    assert choice["best"] == max(totals, key=totals.get)
    assert table["t_learner"]["difference"] == pytest.approx(
        totals["t_learner"] - totals["shared_trunk"], rel=1e-9, abs=1e-6
    )
    assert table["shared_trunk"]["difference"] is None
    assert payload["rows"] == 64_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--architectures", "shared_trunk"), "at least two distinct"),
        (("--architectures", "shared_trunk,bogus"), "bogus"),
        (("--architectures", "shared_trunk,s_learner", "--plan", "x.csv"), "cross-fitted"),
    ],
)
def test_architecture_comparison_refuses_bad_requests(models, args, message):
    result = _run("value", "--config", CONFIG, "--models", models, *args, code=2)
    assert message in result.output and "Traceback" not in result.output
    result = _run("value", "--config", CONFIG, "--architectures", "shared_trunk,s_learner", code=2)
    assert "[data]" in result.output


def test_architecture_comparison_follows_the_valuing_options(models):
    result = _run(
        "value", "--config", CONFIG, "--models", models, "--architectures",
        "shared_trunk,s_learner", "--crossfit", "2", "--estimators", "snipw,dr",
        "--bootstrap", "10", "--json",
    )  # fmt: skip
    payload = strict_json(result.stdout)
    assert payload["architectures"]["estimator"] == "snipw"  # the first estimator chooses
    assert {e["estimator"] for e in payload["estimates"]} == {"snipw", "dr"}
    assert payload["bootstrap"] == 10
