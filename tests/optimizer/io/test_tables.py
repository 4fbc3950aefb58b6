"""Every validation error of the data contract: one line, naming file and column, exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli import app
from optimizer.errors import InputError
from optimizer.io.contract import USERS, coupon_column
from optimizer.io.tables import load_log, load_scores, load_users, read_table
from simulator.world.generation import write_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory, small_scenario) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(small_scenario, out, csv=True)
    return out


def _users(world_dir: Path) -> pd.DataFrame:
    return pd.read_csv(world_dir / "users.csv")


def _log(world_dir: Path) -> pd.DataFrame:
    return pd.read_csv(world_dir / "history.csv")


def _scores(world_dir: Path) -> pd.DataFrame:
    truth = pd.read_parquet(world_dir / "truth.parquet")
    names = [c for c in truth.columns if c.startswith("p_coupon__")]
    return truth[["user_id", "p_natural", *names]]


def _invoke(runner, path: Path, *extra: str):
    result = runner.invoke(app, ["validate", str(path), *extra])
    return result


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_generated_tables_pass_their_own_contract(world_dir, runner):
    for name in ("users", "history", "truth"):
        for suffix in ("parquet", "csv"):
            result = _invoke(runner, world_dir / f"{name}.{suffix}")
            assert result.exit_code == 0, result.output
            assert "ok" in result.stdout


def test_csv_and_parquet_load_identically(world_dir, small_scenario):
    a = load_users(world_dir / "users.parquet")
    b = load_users(world_dir / "users.csv")
    pd.testing.assert_frame_equal(a, b, check_categorical=False)
    la = load_log(world_dir / "history.parquet", small_scenario.menu)
    lb = load_log(world_dir / "history.csv", small_scenario.menu)
    pd.testing.assert_frame_equal(la, lb, check_categorical=False)


def _mutated_users(world_dir: Path, change) -> pd.DataFrame:
    df = _users(world_dir)
    change(df)
    return df


def _set(column: str, row: int, value):
    def change(df: pd.DataFrame) -> None:
        df[column] = df[column].astype(object)
        df.loc[row, column] = value

    return change


USER_CASES = {
    "missing column": (lambda df: df.pop("age"), ["column 'age'", "missing column age"]),
    "extra column": (
        lambda df: df.insert(1, "email", "x@y"),
        ["column 'email'", "unexpected column email"],
    ),
    "wrong type": (
        _set("orders_365d", 3, "many"),
        ["column 'orders_365d'", "wrong type: text 'many'", "row 4"],
    ),
    "nan": (_set("orders_365d", 6, np.nan), ["column 'orders_365d'", "missing value", "row 7"]),
    "duplicate id": (
        _set("user_id", 9, 1),
        ["column 'user_id'", "duplicated user_id (user_id=1)", "row 10"],
    ),
    "negative money": (
        _set("avg_order_value", 2, -5.0),
        ["column 'avg_order_value'", "negative money", "row 3"],
    ),
    "infinite money": (
        _set("avg_order_value", 2, np.inf),
        ["column 'avg_order_value'", "infinite value", "row 3"],
    ),
    "beyond the column's type": (
        _set("orders_365d", 5, 1e12),
        ["column 'orders_365d'", "value beyond int32", "row 6"],
    ),
    "probability below 0": (
        _set("coupon_redeem_share", 4, -0.1),
        ["column 'coupon_redeem_share'", "probability below 0", "[0, 1]"],
    ),
    "probability above 1": (
        _set("coupon_redeem_share", 4, 1.5),
        ["column 'coupon_redeem_share'", "probability above 1"],
    ),
    "unknown label": (_set("gender", 0, "X"), ["column 'gender'", "unknown value 'X'", "F, M, U"]),
    "non-integer": (_set("city_tier", 1, 2.5), ["column 'city_tier'", "non-integer value"]),
    "stage vs recency": (
        _set("lifecycle_stage", 0, "active"),
        ["column 'lifecycle_stage'", "disagrees with days_since_last_order"],
    ),
}


@pytest.mark.parametrize("case", sorted(USER_CASES))
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_user_table_errors(world_dir, tmp_path, runner, case, suffix):
    change, fragments = USER_CASES[case]
    df = _mutated_users(world_dir, change)
    if case == "stage vs recency":
        df.loc[0, "days_since_last_order"] = 400
    path = tmp_path / f"users.{suffix}"
    if suffix == "csv":
        df.to_csv(path, index=False)
    else:
        if case in ("wrong type", "unknown label", "stage vs recency", "extra column"):
            df = df.astype({c: str for c in df.columns if df[c].dtype == object})
        df.to_parquet(path, index=False)
    result = _invoke(runner, path)
    _assert_one_line_error(result, str(path), *fragments)
    with pytest.raises(InputError):
        load_users(path)


def test_empty_files(tmp_path, runner, world_dir):
    zero = tmp_path / "users.csv"
    zero.write_bytes(b"")
    _assert_one_line_error(_invoke(runner, zero), "users.csv", "file is empty")
    header = tmp_path / "users_header.csv"
    header.write_text(",".join(USERS.names) + "\n")
    _assert_one_line_error(_invoke(runner, header), "no data rows")
    empty_parquet = tmp_path / "users_empty.parquet"
    _users(world_dir).iloc[:0].to_parquet(empty_parquet)
    _assert_one_line_error(_invoke(runner, empty_parquet), "no data rows")


def test_unreadable_and_missing_files(tmp_path, runner):
    _assert_one_line_error(_invoke(runner, tmp_path / "nope.parquet"), "file not found")
    bad = tmp_path / "users.parquet"
    bad.write_bytes(b"this is not parquet")
    _assert_one_line_error(_invoke(runner, bad), "not a readable Parquet file")
    odd = tmp_path / "users.xlsx"
    odd.write_bytes(b"x")
    _assert_one_line_error(_invoke(runner, odd), "unsupported file type")
    with pytest.raises(InputError, match="unsupported file type"):
        read_table(odd)


LOG_CASES = {
    "unknown denomination": (
        _set("denomination", 5, "15off99"),
        ["column 'denomination'", "unknown denomination '15off99'", "row 6", "10off99"],
    ),
    "flag not 0/1": (_set("converted", 0, 2), ["column 'converted'", "value other than 0/1"]),
    "negative order value": (
        _set("order_value", 0, -1.0),
        ["column 'order_value'", "negative money"],
    ),
    "unknown assignment": (
        _set("assignment", 0, "ab-test"),
        ["column 'assignment'", "unknown value"],
    ),
    "duplicate campaign row": (
        lambda df: df.__setitem__("user_id", df["user_id"].where(df.index != 1, df["user_id"][0])),
        ["column 'user_id'", "duplicated campaign_id/user_id", "row 2"],
    ),
}


@pytest.mark.parametrize("case", sorted(LOG_CASES))
def test_log_errors(world_dir, tmp_path, runner, case):
    change, fragments = LOG_CASES[case]
    df = _log(world_dir)
    change(df)
    path = tmp_path / "history.csv"
    df.to_csv(path, index=False)
    result = _invoke(runner, path, "--menu", str(world_dir / "menu.toml"))
    _assert_one_line_error(result, str(path), *fragments)


def test_log_outcome_consistency(world_dir, tmp_path, runner, small_scenario):
    df = _log(world_dir)
    row = int(np.flatnonzero((df["converted"] == 0).to_numpy())[0])
    df.loc[row, "redeemed"] = 1
    path = tmp_path / "history.csv"
    df.to_csv(path, index=False)
    result = _invoke(runner, path, "--menu", str(world_dir / "menu.toml"))
    _assert_one_line_error(result, "column 'redeemed'", "redeemed without converting")
    with pytest.raises(InputError, match="redeemed without converting"):
        load_log(path, small_scenario.menu)


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("p_natural", 1.2, "probability above 1"),
        ("p_coupon__10off99", -0.01, "probability below 0"),
        ("p_natural", np.nan, "missing value"),
    ],
)
def test_scores_errors(world_dir, tmp_path, runner, small_scenario, column, value, fragment):
    df = _scores(world_dir).copy()
    df.loc[7, column] = value
    path = tmp_path / "scores.parquet"
    df.to_parquet(path, index=False)
    result = _invoke(runner, path, "--menu", str(world_dir / "menu.toml"))
    _assert_one_line_error(result, str(path), f"column '{column}'", fragment, "row 8")


def test_scores_follow_the_menu(world_dir, small_scenario):
    df = _scores(world_dir)
    scores = load_scores_from(df, world_dir, small_scenario)
    assert scores["p_natural"].dtype == np.float32
    assert list(scores.columns) == [
        "user_id",
        "p_natural",
        *(coupon_column(n) for n in small_scenario.menu.names),
    ]


def load_scores_from(df, world_dir, scenario):
    path = world_dir / "scores_ok.parquet"
    df.to_parquet(path, index=False)
    return load_scores(path, scenario.menu)


@pytest.mark.parametrize("chunk", [7, 30, 45, 200])
def test_parquet_chunks_span_row_groups_in_order(tmp_path, chunk):
    """Read a row group at a time, chunks are still ``chunk`` rows and the file in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from optimizer.io.tables import iter_table

    frame = pd.DataFrame({"a": np.arange(100), "b": [f"x{i}" for i in range(100)]})
    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=30)
    parts = list(iter_table(path, chunk))
    sizes = [len(p) for _, p in parts]
    assert sizes == [chunk] * (100 // chunk) + ([100 % chunk] if 100 % chunk else [])
    assert [offset for offset, _ in parts] == list(np.cumsum([0, *sizes[:-1]]))
    pd.testing.assert_frame_equal(pd.concat([p for _, p in parts], ignore_index=True), frame)
