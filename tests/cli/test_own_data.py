"""A team's own files through the whole chain: init -> train -> score -> optimize -> report.

The customer table is generated here with 200 mixed columns (numbers with missing values,
text columns up to 5,000 labels, a segment label other than the lifecycle stage) and a
randomized log with two message arms and a control; every figure checked is recounted from
the files, not from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from optimizer.io.tomlfile import read_toml
from optimizer.models import ConversionModels
from tests.cli import strict_json

N_USERS = 4_000
N_NUMERIC = 150
N_TEXT = 48


def _customers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    data: dict[str, object] = {"customer_id": rng.permutation(n) * 7 + 100}
    for j in range(N_NUMERIC):
        values = rng.gamma(1.5, 10.0, n) if j % 3 else rng.normal(0, 1, n)
        values[rng.random(n) < 0.05] = np.nan
        data[f"num_{j:03d}"] = values
    for j in range(N_TEXT):
        labels = 3 + (j * 997) % 5_000
        data[f"txt_{j:02d}"] = np.char.add("L", rng.integers(0, labels, n).astype(str))
    data["tier"] = rng.choice(["gold", "silver", "bronze"], n)
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    """customers.csv (201 columns), log.csv (3 arms, randomized), scored later."""
    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(7)
    customers = _customers(rng, N_USERS)
    customers.to_csv(root / "customers.csv", index=False)
    arm = rng.choice(["email_a", "email_b", "no_email"], N_USERS)
    x = np.nan_to_num(customers["num_001"].to_numpy()) / 20
    effect = np.where(arm == "email_a", 0.8, np.where(arm == "email_b", 0.4, 0.0))
    p = 1 / (1 + np.exp(-(-2.2 + x + effect * (customers["tier"] == "gold"))))
    bought = (rng.random(N_USERS) < p).astype(int)
    pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "treatment": arm,
            "converted": bought,
            "revenue": np.where(bought == 1, rng.gamma(2.0, 30.0, N_USERS), 0.0),
        }
    ).to_csv(root / "log.csv", index=False)
    return root


def _run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def chain(own_data) -> dict[str, Path]:
    """init, edited costs, train, score: the files a team would have."""
    root = own_data
    result = _run(
        "init", "--users", root / "customers.csv", "--log", root / "log.csv",
        "--out", root / "campaign.toml",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (root / "campaign.toml").read_text()
    text = text.replace("[budget]\namount = 1000.0", "[budget]\namount = 60.0")
    (root / "campaign.toml").write_text(text)
    result = _run(
        "train", "--config", root / "campaign.toml", "--out", root / "models",
        "--max-epochs", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = _run(
        "score", "--models", root / "models", "--users", root / "customers.csv",
        "--out", root / "scores.parquet", "--chunk-rows", "1500",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"root": root, "config": root / "campaign.toml", "scores": root / "scores.parquet"}


def test_init_maps_the_files_and_guesses_the_roles(chain):
    config = read_toml(chain["config"])
    data = config["data"]
    assert data["users"]["id"] == "customer_id" and data["log"]["id"] == "customer_id"
    assert data["users"]["segment"] == "tier"
    assert data["log"]["arm"] == "treatment" and data["log"]["outcome"] == "converted"
    assert data["log"]["order_value"] == "revenue"
    assert data["log"]["arms"] == {"email_a": "email_a", "email_b": "email_b", "no_email": "none"}
    assert [d["kind"] for d in config["menu"]["denomination"]] == ["message", "message"]
    log = pd.read_csv(chain["root"] / "log.csv")
    mean = log.loc[log["converted"] == 1, "revenue"].mean()
    assert config["costs"]["order_value"] == pytest.approx(mean, abs=0.01)


def test_models_keep_the_200_column_schema_and_cap_text_labels(chain):
    models = ConversionModels.load(chain["root"] / "models")
    encoder = models.encoder
    assert len(encoder.numeric_) == N_NUMERIC
    assert len(encoder.categorical_) == N_TEXT + 1  # the 48 text columns and the tier label
    assert max(len(v) for v in encoder.vocabulary_) <= 100
    assert models.summary_["segment_column"] == "tier"


def test_scores_hold_every_customer_once(chain):
    scores = pd.read_parquet(chain["scores"])
    customers = pd.read_csv(chain["root"] / "customers.csv", usecols=["customer_id"])
    assert len(scores) == len(customers)
    assert sorted(scores["user_id"]) == sorted(customers["customer_id"])
    assert {"p_natural", "p_coupon__email_a", "p_coupon__email_b"} <= set(scores.columns)


def test_optimize_plans_within_the_send_budget(chain):
    out = chain["root"] / "plan.csv"
    result = _run(
        "optimize", "--config", chain["config"], "--scores", chain["scores"],
        "--objective", "profit", "--compare", "--out", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = strict_json(result.stdout)
    plan = pd.read_csv(out)
    customers = pd.read_csv(chain["root"] / "customers.csv", usecols=["customer_id"])
    assert sorted(plan["user_id"]) == sorted(customers["customer_id"])
    sent = plan["denomination"] != "none"
    # Naive recount: messages cost 0.05 each (init's default); nothing else is paid.
    assert sent.sum() * 0.05 <= 60.0 + 1e-9
    assert payload["plans"]["optimal"]["users_targeted"] == int(sent.sum())
    assert {"manual", "v2", "optimal"} <= set(payload["plans"])


def test_segment_targeting_and_shares_use_the_own_label(chain):
    result = _run(
        "optimize", "--config", chain["config"], "--scores", chain["scores"],
        "--segments", "gold", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = strict_json(result.stdout)
    tiers = pd.read_csv(chain["root"] / "customers.csv", usecols=["tier"])["tier"]
    assert payload["plans"]["optimal"]["users"] == int((tiers == "gold").sum())


def test_report_on_own_data(chain):
    out = chain["root"] / "report.html"
    result = _run(
        "report", "--config", chain["config"], "--scores", chain["scores"],
        "--models", chain["root"] / "models", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Model quality" in page and "email_a" in page


def test_evaluate_on_own_data(chain):
    result = _run("evaluate", "--models", chain["root"] / "models", "--json")
    assert result.exit_code == 0, result.output
    assert strict_json(result.stdout)["uplift"]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda f: f.drop(columns=["num_005"]), "'num_005'"),
        (lambda f: f.assign(extra_col=1), "'extra_col'"),
        (lambda f: f.assign(num_007=["abc"] + ["1"] * (len(f) - 1)), "'num_007'"),
    ],
    ids=["missing", "extra", "retyped"],
)
def test_scoring_a_file_with_other_columns_is_one_line(chain, tmp_path, change, expected):
    frame = change(pd.read_csv(chain["root"] / "customers.csv").head(300))
    path = tmp_path / "new_customers.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "s.parquet"
    result = _run("score", "--models", chain["root"] / "models", "--users", path, "--out", out)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and str(path) in lines[0]
    assert not out.exists()


def test_init_refuses_to_overwrite(chain):
    result = _run(
        "init", "--users", chain["root"] / "customers.csv", "--log", chain["root"] / "log.csv",
        "--out", chain["config"],
    )  # fmt: skip
    assert result.exit_code == 2 and "--force" in result.output


def test_world_commands_refuse_a_data_configuration(chain):
    result = _run("optimize", "--config", chain["config"])
    assert result.exit_code == 2
    assert "--scores" in result.output and len(result.output.strip().splitlines()) == 1


def test_whatif_on_own_data(chain):
    result = _run(
        "whatif", "--config", chain["config"], "--scores", chain["scores"],
        "--vary", "budget=20,60", "--policies", "optimal,manual", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = strict_json(result.stdout)["points"]
    optimal = sorted(
        (r["budget"], r["incremental_conversions"]) for r in rows if r["policy"] == "optimal"
    )
    assert [b for b, _ in optimal] == [20.0, 60.0]
    assert optimal[1][1] >= optimal[0][1] - 1e-9  # more budget never buys less


def test_validate_reads_the_mapped_files(chain):
    result = _run("validate", chain["config"], "--json")
    assert result.exit_code == 0, result.output
    facts = strict_json(result.stdout)["data"]
    log = pd.read_csv(chain["root"] / "log.csv")
    assert facts["customers"] == N_USERS and facts["randomized_rows"] == len(log)
    counts = log["treatment"].map({"email_a": "email_a", "email_b": "email_b", "no_email": "none"})
    assert facts["arms"] == counts.value_counts().sort_index().to_dict()
    assert facts["numeric"] == N_NUMERIC


def test_wide_tables_score_in_smaller_chunks():
    from optimizer.models import auto_chunk_rows

    assert auto_chunk_rows(15) == 500_000  # the synthetic contract keeps its chunk
    assert auto_chunk_rows(200) == 50_000
    assert auto_chunk_rows(100_000) == 10_000
