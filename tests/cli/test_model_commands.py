"""train -> score -> evaluate from the command line, on a small generated world."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli import app
from optimizer.io import load_menu, load_scores
from optimizer.models import ConversionModels
from simulator.world import write_world
from tests.cli import flat, strict_json


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory, small_scenario) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(small_scenario.with_overrides(users=30_000), out)
    return out


@pytest.fixture(scope="module")
def models_dir(world_dir, tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("models")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--log", str(world_dir / "history.parquet"),
            "--users", str(world_dir / "users.parquet"),
            "--out", str(out),
            "--segments", "dormant",
            "--max-epochs", "4",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Trained models" in result.stdout
    return out


def test_train_writes_models_and_holdout(models_dir):
    names = {p.name for p in models_dir.iterdir()}
    assert {"shared_trunk", "models.json", "holdout.parquet"} <= names
    saved = {p.name for p in (models_dir / "shared_trunk").iterdir()}
    assert saved == {"weights.pt", "model.json"}
    models = ConversionModels.load(models_dir)
    assert models.architecture == "shared_trunk"
    assert models.segment == ["dormant"]
    holdout = pd.read_parquet(models_dir / "holdout.parquet")
    assert set(holdout["lifecycle_stage"].astype(str)) == {"dormant"}
    assert set(holdout["assignment"].astype(str)) == {"randomized"}


def test_score_writes_the_scores_contract_and_warns_on_drift(
    runner, models_dir, world_dir, tmp_path
):
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app,
        ["score", "--models", str(models_dir), "--users", str(world_dir / "users.parquet"),
         "--out", str(out), "--chunk-rows", "7000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    menu = load_menu(world_dir / "menu.toml")
    scores = load_scores(out, menu)
    users = pd.read_parquet(world_dir / "users.parquet")
    assert scores["user_id"].tolist() == users["user_id"].tolist()
    # Scoring every stage with models trained on dormant users drifts on recency and stage.
    assert "drifted from the training population" in result.stderr
    assert "lifecycle_stage" in result.stderr
    # Chunked scoring equals scoring in one go.
    models = ConversionModels.load(models_dir)
    direct = models.predict(users.iloc[:9000])
    pd.testing.assert_frame_equal(scores.iloc[:9000].reset_index(drop=True), direct)


def test_score_reads_and_writes_datasets_and_the_planner_streams_them(
    runner, models_dir, world_dir, tmp_path
):
    from optimizer.io import manifest_files
    from optimizer.planning.out_of_core import plan_budget_out_of_core

    users = pd.read_parquet(world_dir / "users.parquet")
    folder = tmp_path / "users"  # a dataset of uneven parts, as another engine writes them
    folder.mkdir()
    for i, (lo, hi) in enumerate([(0, 4_000), (4_000, 4_100), (4_100, len(users))]):
        users.iloc[lo:hi].to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    out = tmp_path / "scores"
    result = runner.invoke(
        app,
        ["score", "--models", str(models_dir), "--users", str(folder), "--out", str(out),
         "--chunk-rows", "7000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    parts = manifest_files(out)
    assert len(parts) == -(-len(users) // 7000) and all(p.startswith("part-") for p in parts)
    scores = pd.concat([pd.read_parquet(out / p) for p in parts], ignore_index=True)
    assert scores["user_id"].tolist() == users["user_id"].tolist()  # every user once, in order
    direct = ConversionModels.load(models_dir).predict(users.iloc[6_000:8_000])
    pd.testing.assert_frame_equal(scores.iloc[6_000:8_000].reset_index(drop=True), direct)
    # Scoring again replaces the dataset whole; a folder of someone else's files is refused.
    assert runner.invoke(app, ["score", "--models", str(models_dir), "--users", str(folder),
                               "--out", str(out)]).exit_code == 0  # fmt: skip
    assert len(manifest_files(out)) == 1
    again = runner.invoke(app, ["score", "--models", str(models_dir), "--users", str(folder),
                                "--out", str(folder)])  # fmt: skip
    assert again.exit_code == 2 and "users" in again.stderr
    # The planner streams the scores dataset with the users dataset, chunked across parts.
    menu = load_menu(world_dir / "menu.toml")
    plan = plan_budget_out_of_core(out, menu, 500.0, tmp_path / "plan", objective="gmv",
                                   users=folder, chunk_rows=3_000)  # fmt: skip
    assert plan.users == len(users) and plan.cost <= 500.0 + 1e-6
    (out / "part-00000.parquet").write_bytes(b"damaged")
    result = runner.invoke(app, ["score", "--models", str(models_dir), "--users", str(out),
                                 "--out", str(tmp_path / "x.parquet")])  # fmt: skip
    assert result.exit_code == 2 and "part-00000.parquet" in result.stderr


def test_scoring_the_training_population_raises_no_drift_warning(
    runner, models_dir, world_dir, tmp_path
):
    users = pd.read_parquet(world_dir / "users.parquet")
    dormant = users[users["lifecycle_stage"] == "dormant"]
    path = tmp_path / "dormant_users.csv"
    dormant.to_csv(path, index=False)
    out = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["score", "--models", str(models_dir), "--users", str(path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "drifted" not in result.stderr
    assert len(pd.read_csv(out)) == len(dormant)


def test_score_rejects_duplicates_across_chunks_and_writes_nothing(
    runner, models_dir, world_dir, tmp_path
):
    users = pd.read_parquet(world_dir / "users.parquet").iloc[:5000].copy()
    users.loc[4500, "user_id"] = users.loc[10, "user_id"]
    path = tmp_path / "users.parquet"
    users.to_parquet(path, index=False)
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app,
        ["score", "--models", str(models_dir), "--users", str(path), "--out", str(out),
         "--chunk-rows", "1000"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "duplicated user_id" in result.stderr and "row 4501" in result.stderr
    assert not out.exists()
    assert list(tmp_path.glob(".scores*")) == []


def test_evaluate_reports_quality_uplift_knee_and_plots(runner, models_dir, tmp_path):
    plots = tmp_path / "plots"
    result = runner.invoke(app, ["evaluate", "--models", str(models_dir), "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    for fragment in ("Model quality", "Uplift ranking per denomination", "natural model knee"):
        assert fragment in result.stdout
    for name in ("coverage.png", "precision_recall.png", "qini.png"):
        data = (plots / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_evaluate_on_another_log(runner, models_dir, world_dir):
    result = runner.invoke(
        app,
        ["evaluate", "--models", str(models_dir), "--log", str(world_dir / "history.parquet"),
         "--users", str(world_dir / "users.parquet")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_bad_model_inputs_fail_cleanly(runner, tmp_path, world_dir):
    result = runner.invoke(
        app,
        ["score", "--models", str(tmp_path), "--users", str(world_dir / "users.parquet"),
         "--out", str(tmp_path / "s.parquet")],
    )  # fmt: skip
    assert result.exit_code == 2 and "not a models directory" in result.stderr
    result = runner.invoke(
        app,
        ["train", "--log", str(world_dir / "history.parquet"), "--users",
         str(world_dir / "users.parquet"), "--out", str(tmp_path / "m"), "--segments", "sleepy"],
    )  # fmt: skip
    assert result.exit_code == 2 and "unknown segment 'sleepy'" in flat(result.stderr)
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_two_models_architecture_from_the_command_line(runner, world_dir, tmp_path):
    out = tmp_path / "two"
    result = runner.invoke(
        app,
        ["train", "--log", str(world_dir / "history.parquet"), "--users",
         str(world_dir / "users.parquet"), "--out", str(out), "--max-epochs", "2",
         "--architecture", "two_models", "--head", "per_denomination"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {"natural", "coupon"} <= {p.name for p in out.iterdir()}
    models = ConversionModels.load(out)
    users = pd.read_parquet(world_dir / "users.parquet").iloc[:100]
    assert np.isfinite(models.predict(users).iloc[:, 1:].to_numpy()).all()
    bad = runner.invoke(
        app,
        ["train", "--log", str(world_dir / "history.parquet"), "--users",
         str(world_dir / "users.parquet"), "--out", str(tmp_path / "x"), "--architecture", "big"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "'big' is not one of 'shared_trunk', 'two_models'" in flat(
        bad.stderr
    )


def test_optimize_from_score_files(runner, models_dir, world_dir, tmp_path):
    scores = tmp_path / "scores.parquet"
    users = world_dir / "users.parquet"
    assert (
        runner.invoke(
            app, ["score", "--models", str(models_dir), "--users", str(users), "--out", str(scores)]
        ).exit_code
        == 0
    )
    plan_path = tmp_path / "plan.csv"
    result = runner.invoke(
        app,
        ["optimize", "--budget", "2000", "--scores", str(scores), "--users", str(users),
         "--menu", str(world_dir / "menu.toml"), "--objective", "profit", "--solver", "dual",
         "--max-per-denomination", "10off99=50", "--max-messages", "400", "--out",
         str(plan_path), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import json

    payload = json.loads(result.stdout)
    optimal = payload["plans"]["optimal"]
    assert optimal["solver"] == "dual" and optimal["objective"] == "profit"
    assert optimal["expected_cost"] <= 2000 + 1e-6 and optimal["users_targeted"] <= 400
    plan = pd.read_csv(plan_path)
    assert len(plan) == 30_000 and (plan["denomination"] == "10off99").sum() <= 50
    missing = runner.invoke(app, ["optimize", "--scores", str(scores)])
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "error: --users: a scores file needs its user table"
    bad_caps = runner.invoke(
        app,
        ["optimize", "--scores", str(scores), "--users", str(users), "--max-per-denomination",
         "lots"],
    )  # fmt: skip
    assert bad_caps.exit_code == 2 and "DENOMINATION=COUNT" in flat(bad_caps.stderr)


def test_model_commands_print_strict_json(runner, models_dir, world_dir, tmp_path):
    users = str(world_dir / "users.parquet")
    scored = runner.invoke(app, ["score", "--models", str(models_dir), "--users", users,
                                 "--out", str(tmp_path / "s.parquet"), "--json"])  # fmt: skip
    assert scored.exit_code == 0, scored.output
    payload = strict_json(scored.stdout)
    assert payload["rows"] == 30_000 and "lifecycle_stage" in payload["drifted"]
    assert {"feature", "psi"} <= set(payload["drift"][0])
    evaluated = runner.invoke(app, ["evaluate", "--models", str(models_dir), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    payload = strict_json(evaluated.stdout)
    assert {q["model"] for q in payload["quality"]} >= {"natural", "coupon 10off99"}
    assert 0 < payload["natural_knee"]["share_taken"] <= 1
    trained = runner.invoke(app, ["train", "--log", str(world_dir / "history.parquet"), "--users",
                                  users, "--out", str(tmp_path / "m"), "--max-epochs", "1",
                                  "--json"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    payload = strict_json(trained.stdout)
    assert payload["summary"]["architecture"] == "shared_trunk"
    assert {q["model"] for q in payload["quality"]} == {"natural", "coupon", "redemption"}


def test_a_scores_file_plans_with_its_own_menu_and_coupon(runner, models_dir, world_dir, tmp_path):
    """A two-coupon menu without the manual practice's 10off99: --denomination names the
    baselines' coupon, and menu and coupon are checked together."""
    menu = tmp_path / "menu.toml"
    menu.write_text(
        '[[denomination]]\nname = "5off49"\nface_value = 5.0\nthreshold = 49.0\n'
        '[[denomination]]\nname = "20off199"\nface_value = 20.0\nthreshold = 199.0\n'
    )
    users = str(world_dir / "users.parquet")
    scores = tmp_path / "scores.parquet"
    score = ["score", "--models", str(models_dir), "--users", users, "--out", str(scores)]
    assert runner.invoke(app, score).exit_code == 0
    columns = ["user_id", "p_natural"] + [f"p_{kind}__{name}" for kind in ("coupon", "redeem")
                                          for name in ("5off49", "20off199")]  # fmt: skip
    pd.read_parquet(scores)[columns].to_parquet(scores, index=False)  # scores for this menu
    args = ["optimize", "--budget", "1000", "--scores", str(scores), "--users", users, "--menu",
            str(menu), "--policies", "optimal,manual", "--json"]  # fmt: skip
    planned = runner.invoke(app, [*args, "--denomination", "5off49"])
    assert planned.exit_code == 0, planned.output
    manual = strict_json(planned.stdout)["plans"]["manual"]
    assert manual["users_targeted"] > 0
    refused = runner.invoke(app, args)  # the manual coupon 10off99 is not on this menu
    assert refused.exit_code == 2
    assert refused.stderr.strip().startswith("error: manual.denomination: '10off99' is not on")


@pytest.mark.parametrize(
    ("damage", "names"),
    [
        ("truncate", ("weights.pt", "truncated")),
        ("overwrite", ("weights.pt", "SHA-256")),
        ("delete", ("weights.pt", "missing")),
        ("manifest", ("_manifest.json", "damaged")),
        ("no-manifest", ("no _manifest.json",)),
    ],
)
def test_a_damaged_models_folder_is_refused_in_one_line(
    runner, models_dir, world_dir, tmp_path, damage, names
):
    """Each damage to a trained folder: exit 2, one line naming the file, no traceback, no
    scores written."""
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(models_dir, copy)
    weights = copy / "shared_trunk" / "weights.pt"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "overwrite":  # same size, other bytes: only the checksum can tell
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "delete":
        weights.unlink()
    elif damage == "manifest":
        (copy / "_manifest.json").write_text('{"format": 1, "fil')
    else:
        (copy / "_manifest.json").unlink()
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app,
        ["score", "--models", str(copy), "--users", str(world_dir / "users.parquet"),
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and not out.exists()
    for name in names:
        assert name in lines[0]


def test_retraining_replaces_the_folder_whole(world_dir, tmp_path):
    """A file of an earlier run (here a stale redemption model) does not survive a retrain."""
    from typer.testing import CliRunner

    out = tmp_path / "models"
    (out / "redemption").mkdir(parents=True)
    (out / "redemption" / "model.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    command = ["train", "--log", str(world_dir / "history.parquet"), "--users",
               str(world_dir / "users.parquet"), "--out", str(out), "--segments", "dormant",
               "--max-epochs", "2"]  # fmt: skip

    # A file the trainer does not write is the user's: refused before training, kept.
    def never(*args, **kwargs):
        raise AssertionError("training started before the output folder was checked")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ConversionModels, "fit", never)
        refused = CliRunner().invoke(app, command)
    assert refused.exit_code == 2 and "'notes.txt'" in refused.stderr, refused.output
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    manifest = (out / "_manifest.json").read_text()
    assert "holdout.parquet" in manifest and "models.json" in manifest
    models = ConversionModels.load(out)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    listed = set(__import__("json").loads(manifest)["files"]) | {"_manifest.json"}
    assert names == listed  # nothing beside what the new run wrote
    assert (models.redemption_ is None) == (not (out / "redemption").exists())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".models.")]


def test_optimize_on_the_stream_engine_matches_memory_and_keeps_every_constraint(
    runner, models_dir, world_dir, tmp_path
):
    users = world_dir / "users.parquet"
    scores = tmp_path / "scores"  # a dataset of parts
    made = runner.invoke(app, ["score", "--models", str(models_dir), "--users", str(users),
                               "--out", str(scores), "--chunk-rows", "8000"])  # fmt: skip
    assert made.exit_code == 0, made.output
    common = ["optimize", "--budget", "2000", "--scores", str(scores), "--users", str(users),
              "--menu", str(world_dir / "menu.toml"), "--objective", "profit",
              "--max-per-denomination", "10off99=50", "--max-messages", "400",
              "--segment-share", "dormant=0.3:1", "--json"]  # fmt: skip
    memory = runner.invoke(app, [*common, "--solver", "dual"])
    assert memory.exit_code == 0, memory.output
    optimal = strict_json(memory.stdout)["plans"]["optimal"]
    out = tmp_path / "plan"
    streamed = runner.invoke(app, [*common, "--engine", "stream", "--out", str(out)])
    assert streamed.exit_code == 0, streamed.output
    found = strict_json(streamed.stdout)["plan"]
    from optimizer.io import manifest_files

    plan = pd.concat([pd.read_parquet(out / p) for p in manifest_files(out)], ignore_index=True)
    stage = pd.read_parquet(users).set_index("user_id")["lifecycle_stage"].astype(str)
    sent = plan[plan["denomination"] != "none"]
    # Recounted from the written dataset: every user once, every constraint kept.
    assert len(plan) == 30_000 and plan["user_id"].is_unique
    assert sent["expected_cost"].sum() <= 2000 + 1e-6 and len(sent) <= 400
    assert (sent["denomination"] == "10off99").sum() <= 50
    assert (stage.loc[sent["user_id"]] == "dormant").mean() >= 0.3 - 1e-9
    assert found["targeted"] == len(sent)
    assert found["cost"] == pytest.approx(sent["expected_cost"].sum(), rel=1e-6)
    assert found["gmv"] == pytest.approx(sent["expected_gmv"].sum(), rel=1e-6)
    # The same optimum as in memory, each within the other's certified bound.
    assert found["upper_bound"] >= optimal["objective_value"] * (1 - 1e-6)
    assert optimal["upper_bound"] >= found["value"] * (1 - 1e-6)
    table = runner.invoke(app, [*common[:-1], "--engine", "stream", "--out", str(out)])
    assert table.exit_code == 0 and "certified gap" in table.stdout and "ROI =" in table.stdout
    onto = runner.invoke(app, [*common[:-1], "--engine", "stream", "--out", str(scores)])
    assert onto.exit_code == 2 and "write the output elsewhere" in onto.stderr
    assert len(manifest_files(scores)) == 4  # the scores are untouched
    refused = runner.invoke(app, [*common[:-1], "--engine", "stream", "--compare",
                                  "--out", str(out)])  # fmt: skip
    assert refused.exit_code == 2 and refused.stderr.startswith("error: --policies")
    assert "needs every user in memory" in refused.stderr
