"""Fuzzing the command line: bad flags and numbers, damaged tables, broken TOML, contradictions.

Every generated input must end cleanly: exit code 0 (and then every output whole and every
invariant of the plan true, recounted here from the files), or exit code 2 with exactly one
line on stderr starting ``error:``; never a traceback, never a staging file left behind, and an
output that existed before a failed run is left byte for byte as it was.

A fast subset runs with the suite (``FAST`` examples per family); the full run is the ``fuzz``
marked suite: ``.venv/bin/python -m pytest -m fuzz -q`` (``FULL`` examples per family, over
1,000 generated inputs in all, counted in the run's summary). Hypothesis re-runs shrinking
examples only on failure, so on a passing run each example is one generated input.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli import app

FAST = 25
FULL = 300
#: Inputs tried and how they ended, per family (printed by tests/conftest.py's summary hook).
TALLY: Counter[str] = Counter()

USERS = 400
#: The world's files as written, per workspace: no run may change an input.
WORLD_BYTES: dict[Path, dict[str, bytes]] = {}
NASTY = [
    "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1", "-0", "0", "1e-320", "", " ",
    "abc", "[/x]", "[link=http://example.com]x[/link]", "$\\q$", "[bold]b", "1,2,,3", "=",
    ":", ",", "5off49=", "nope=1", "dormant=0.9:0.1", "dormant=:", "dormant=0.7:,lapsed=0.7:",
    "10off99=-5", "5off49=nan", "budget=", "budget=1,1", "budget=1:2:1", "budget=0:1e9:999",
    "sms_cost=nan", "margin_rate=2", "segments=", "menu=missing.toml", "9" * 400, "é", "None",
    "true", "--json", "-1e-9", "0.9999999999", "1.0000001", "3.5e38", "0x10",
]  # fmt: skip
SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(0, 5_000).map(lambda x: f"{x:.2f}"),
)
VALUE = st.one_of(st.sampled_from(NASTY), NUMBER, SAFE_TEXT)
GOOD = {
    "--budget": ["300", "1000", "0"],
    "--objective": ["conversions", "gmv", "profit"],
    "--solver": ["dual", "pulp", "auto"],
    "--policies": ["optimal", "optimal,manual,v2", "random"],
    "--denomination": ["10off99", "5off49"],
    "--max-per-denomination": ["10off99=20", "5off49=0,20off199=5"],
    "--max-messages": ["50", "0"],
    "--min-roi": ["0", "2", "1e6"],
    "--overrun-risk": ["1", "0.05", "0.5"],
    "--segment-share": ["dormant=0.2:", "lapsed=:0.5", "dormant=0.9:,lapsed=0.9:"],
    "--segment-column": ["lifecycle_stage", "city_tier", "no_such_column"],
    "--match": ["none", "manual"],
    "--v2-threshold": ["0.5", "0.9"],
    "--marginal-return": ["0", "0.1"],
    "--vary": ["budget=100,500", "budget=100:900:3", "sms_cost=0.05,0.2", "margin_rate=0.2"],
    "--kind": ["users", "scores", "log", "menu", "scenario", "truth", "bogus"],
}
FLAGS = {"--compare", "--screen", "--json"}
OPTIMIZE = [*GOOD.keys() - {"--vary", "--kind"}, *FLAGS]
WHATIF = ["--vary", "--policies", "--solver", "--objective", "--json", "--segment-share"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A small world, its true probabilities as a scores file, and a valid earlier plan."""
    from simulator.scenario import Scenario
    from simulator.world.generation import write_world

    root = tmp_path_factory.mktemp("fuzz")
    write_world(Scenario().with_overrides(users=USERS, seed=9), root / "world")
    truth = pd.read_parquet(root / "world" / "truth.parquet")
    columns = ["user_id", "p_natural", *[c for c in truth if c.startswith("p_coupon__")]]
    truth[columns].to_parquet(root / "scores.parquet", index=False)
    truth[columns].to_csv(root / "scores.csv", index=False)
    pd.read_parquet(root / "world" / "users.parquet").to_csv(root / "users.csv", index=False)
    pd.DataFrame({"user_id": [1, 2]}).to_csv(root / "exclude.csv", index=False)
    WORLD_BYTES[root] = _listing(root / "world")
    earlier = CliRunner().invoke(app, [*_base(root), "--budget", "200", "--solver", "dual",
                                       "--out", str(root / "earlier.parquet")])  # fmt: skip
    assert earlier.exit_code == 0, earlier.output
    return root


def _base(root: Path) -> list[str]:
    return ["optimize", "--scores", str(root / "scores.parquet"),
            "--users", str(root / "world" / "users.parquet")]  # fmt: skip


def _fresh(root: Path, world: bool = False) -> Path:
    """An empty output folder for one example; ``world``: the world's tables linked in it."""
    out_dir = root / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir()
    for name in ("users.parquet", "history.parquet", "truth.parquet", "menu.toml") if world else ():
        os.symlink(root / "world" / name, out_dir / name)
    return out_dir


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _listing(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def run_checked(root: Path, family: str, args: list[str], out: Path | None = None):
    """Run ``args``; assert the clean ending; return the result (exit 0 or 2)."""
    out_dir = root / "out"
    prior = out.read_bytes() if out is not None and out.exists() else None
    result = CliRunner().invoke(app, args)
    TALLY[f"{family}: command runs"] += 1
    TALLY[f"{family}: command runs ending with exit {result.exit_code}"] += 1
    text = result.output
    assert "Traceback" not in text, (args, text)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))  # fmt: skip
    assert result.exit_code in (0, 2), (args, result.exit_code, text)
    leftovers = [p.name for p in out_dir.rglob(".*")] if out_dir.exists() else []
    assert leftovers == [], (args, leftovers)  # no staging file or folder left
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        if prior is not None:
            assert out.read_bytes() == prior, args  # an earlier output is left as it was
        elif out is not None:
            assert not out.exists(), args
    assert _listing(root / "world") == WORLD_BYTES[root], args  # inputs never touched
    if result.exit_code == 0 and "--json" in args and args[0] != "validate":
        _strict(result.stdout)
    return result


def _check_plan(root: Path, args: list[str], out: Path) -> None:
    """Invariants of a written plan, recounted from the files alone."""
    plan = pd.read_parquet(out)
    scores = pd.read_parquet(root / "scores.parquet")
    assert sorted(plan["user_id"]) == sorted(scores["user_id"]), args  # every user once
    budget = float(args[args.index("--budget") + 1]) if "--budget" in args else 50_000.0
    assert plan["expected_cost"].sum() <= budget * (1 + 1e-9) + 1e-6, args
    merged = plan.merge(scores, on="user_id")
    sent = merged[merged["denomination"].astype(str) != "none"]
    truth = np.array([row[f"p_coupon__{d}"] for d, row in zip(sent["denomination"].astype(str),
                      sent.to_dict("records"), strict=True)])  # fmt: skip
    assert np.allclose(sent["p_coupon"].to_numpy(np.float64), truth, atol=1e-6), args
    assert (sent["expected_cost"] > 0).all() and (merged["expected_cost"] >= 0).all(), args
    if "--max-messages" in args:
        cap = args[args.index("--max-messages") + 1]
        assert len(sent) <= float(cap), args


def _arguments(draw, flags: list[str]) -> list[str]:
    chosen = draw(st.lists(st.sampled_from(flags), min_size=1, max_size=4, unique=True))
    args: list[str] = []
    for flag in chosen:
        if flag in FLAGS:
            args.append(flag)
            continue
        good = draw(st.booleans()) and flag in GOOD
        args += [flag, draw(st.sampled_from(GOOD[flag])) if good else draw(VALUE)]
    return args


def _seeded(draw) -> random.Random:
    return random.Random(draw(st.integers(0, 2**32 - 1)))


def _examples(full: bool) -> settings:
    return settings(
        max_examples=FULL if full else FAST, deadline=None, derandomize=not full,
        suppress_health_check=list(HealthCheck), database=None,
    )  # fmt: skip


FULL_RUN = [pytest.param(False, id="fast"), pytest.param(True, id="full", marks=pytest.mark.fuzz)]


# ----------------------------------------------------------------------------- flags and numbers


@pytest.mark.parametrize("full", FULL_RUN)
def test_flags_and_numbers(ws, full):
    """Every optimize and whatif flag, with good, nasty and random values."""

    @_examples(full)
    @given(st.data())
    def case(data):
        draw = data.draw
        out_dir = _fresh(ws)
        command = draw(st.sampled_from(["optimize", "whatif"]))
        if command == "optimize":
            args = [*_base(ws), *_arguments(draw, OPTIMIZE)]
            if "--budget" not in args:
                args += ["--budget", "300"]
            if "--solver" not in args:
                args += ["--solver", "dual"]
        else:
            args = ["whatif", *_base(ws)[1:], *_arguments(draw, WHATIF)]
            if "--solver" not in args:
                args += ["--solver", "dual"]
        out = None
        if draw(st.booleans()):
            out = out_dir / draw(st.sampled_from(["plan.parquet", "plan.csv", "plan.txt", "x/"]))
            if draw(st.booleans()) and out.suffix:
                shutil.copy(ws / "earlier.parquet", out)  # an earlier output to keep intact
            args += ["--out", str(out)]
        if command == "whatif" and draw(st.booleans()):
            plots = out_dir / draw(st.sampled_from(["plots", "[/x]$\\q$"]))
            args += ["--plots", str(plots)]
        result = run_checked(ws, "flags and numbers", args, out if out and out.suffix else None)
        if result.exit_code == 0 and command == "optimize" and out is not None:
            if out.suffix == ".parquet" and "--compare" not in args:
                _check_plan(ws, args, out)
        TALLY["flags and numbers: generated inputs"] += 1  # counted once it ran to the end

    case()


# ------------------------------------------------------------------------------ damaged tables


def _damage(rng: random.Random, frame: pd.DataFrame, raw: bytes, suffix: str) -> bytes:
    """One of many damages to a table's bytes or contents."""
    kind = rng.choice(["truncate", "flip", "drop column", "bad value", "duplicate id",
                       "empty", "garbage", "header only", "rename", "bom", "delimiter",
                       "negative id", "text in number", "huge"])  # fmt: skip
    if kind == "truncate":
        return raw[: rng.randrange(len(raw))]
    if kind == "flip":
        data = bytearray(raw)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == "empty":
        return b""
    if kind == "garbage":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 500)))
    frame = frame.copy()
    column = rng.choice(list(frame.columns))
    rows = rng.sample(range(len(frame)), k=rng.randint(1, 5))
    if kind == "drop column":
        frame = frame.drop(columns=[column])
    elif kind == "bad value":
        value = rng.choice([np.nan, np.inf, -np.inf, -1.0, 2.0, 1e308])
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        frame[column] = frame[column].astype("float64" if numeric else object)
        frame.loc[rows, column] = value
    elif kind == "duplicate id":
        frame = pd.concat([frame, frame.iloc[rows]])
    elif kind == "header only":
        frame = frame.iloc[:0]
    elif kind == "rename":
        frame = frame.rename(columns={column: column + "_x"})
    elif kind == "negative id":
        frame.loc[rows, "user_id"] = -frame.loc[rows, "user_id"] - 1
    elif kind == "text in number":
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = rng.choice(["abc", "[/x]", "", "1,5", "$\\q$"])
    elif kind == "huge":
        frame.loc[rows, "user_id"] = 2**62
    if suffix == ".csv":
        text = frame.to_csv(index=False)
        if kind == "bom":
            return "\ufeff".encode() + text.encode()
        if kind == "delimiter":
            return text.replace(",", ";").encode()
        return text.encode()
    try:
        import io

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    except Exception:  # a mixed object column pyarrow cannot write: damage the bytes instead
        return raw[: len(raw) // 2]


@pytest.mark.parametrize("full", FULL_RUN)
def test_damaged_tables(ws, full):
    """Users and scores files damaged in their bytes or their contents, CSV and Parquet."""
    tables = {
        "scores.parquet": pd.read_parquet(ws / "scores.parquet"),
        "scores.csv": pd.read_csv(ws / "scores.csv"),
        "users.parquet": pd.read_parquet(ws / "world" / "users.parquet"),
        "users.csv": pd.read_csv(ws / "users.csv"),
    }
    raws = {
        "scores.parquet": (ws / "scores.parquet").read_bytes(),
        "scores.csv": (ws / "scores.csv").read_bytes(),
        "users.parquet": (ws / "world" / "users.parquet").read_bytes(),
        "users.csv": (ws / "users.csv").read_bytes(),
    }

    @_examples(full)
    @given(st.data())
    def case(data):
        rng = _seeded(data.draw)
        out_dir = _fresh(ws)
        name = rng.choice(list(tables))
        damaged = out_dir / name
        damaged.write_bytes(_damage(rng, tables[name], raws[name], damaged.suffix))
        kind = name.split(".")[0]
        run_checked(ws, "damaged tables", ["validate", str(damaged), "--kind", kind])
        scores = damaged if kind == "scores" else ws / "scores.parquet"
        users = damaged if kind == "users" else ws / "world" / "users.parquet"
        out = out_dir / "plan.parquet"
        shutil.copy(ws / "earlier.parquet", out)
        args = ["optimize", "--scores", str(scores), "--users", str(users), "--budget", "300",
                "--solver", "dual", "--out", str(out)]  # fmt: skip
        result = run_checked(ws, "damaged tables", args, out)
        if result.exit_code == 0:  # the damage did not matter (or was a no-op): a whole plan
            plan = pd.read_parquet(out)
            assert plan["user_id"].is_unique and plan["expected_cost"].sum() <= 300 + 1e-6
        TALLY["damaged tables: generated inputs"] += 1  # counted once it ran to the end

    case()


# ------------------------------------------------------------------------ TOML syntax and types


def _campaign_text(ws: Path) -> str:
    text = (ws / "world" / "campaign.toml").read_text()
    return text


def _mutate_text(rng: random.Random, text: str) -> str:
    kind = rng.choice(["delete", "insert", "duplicate line", "swap", "unclosed", "binary"])
    i = rng.randrange(len(text))
    if kind == "delete":
        return text[:i] + text[i + rng.randint(1, 30) :]
    if kind == "insert":
        return (
            text[:i]
            + rng.choice(["[", "]", "=", '"', "'''", "\n[x]\n", "\\u", "#", "{"])
            + text[i:]
        )
    if kind == "duplicate line":
        lines = text.splitlines(keepends=True)
        j = rng.randrange(len(lines))
        return "".join(lines[: j + 1] + [lines[j]] + lines[j + 1 :])
    if kind == "swap":
        lines = text.splitlines(keepends=True)
        rng.shuffle(lines)
        return "".join(lines)
    if kind == "unclosed":
        return text + '\nname = "open\n'
    return text[:i] + "\udcff\x00\x01" + text[i:]


def _leaves(data, path=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _set(data, path, value):
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


WRONG = [math.nan, math.inf, -math.inf, -1, -1e-9, 0, 1e308, 2, "", "x", "[/x]", [], [1],
         {}, {"a": 1}, True, 10**30, "5off49", "dormant", 0.5]  # fmt: skip


def _mutate_values(rng: random.Random, data: dict) -> dict:
    """Values replaced by wrong types, non-finite or out-of-range numbers; keys removed/added."""
    for _ in range(rng.randint(1, 3)):
        paths = list(_leaves(data))
        kind = rng.choice(["replace"] * 5 + ["remove"] * 2 + ["unknown key", "duplicate coupon"])
        path = rng.choice(paths)
        if kind == "replace":
            _set(data, path, rng.choice(WRONG))
        elif kind == "remove" and len(path) > 1:
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            del parent[path[-1]]
        elif kind == "unknown key":
            data.setdefault("constraints", {})["no_such_key"] = 1
        elif kind == "duplicate coupon" and data.get("menu", {}).get("denomination"):
            coupons = data["menu"]["denomination"]
            coupons.append(dict(rng.choice(coupons)))
    return data


def _toml(data: dict) -> str:
    import tomli_w

    return tomli_w.dumps(data)


@pytest.mark.parametrize("full", FULL_RUN)
def test_toml_syntax_and_types(ws, full):
    """The campaign file broken in its syntax, or its values of the wrong type or range."""
    original = _campaign_text(ws)
    parsed = tomllib.loads(original)

    @_examples(full)
    @given(st.data())
    def case(data):
        rng = _seeded(data.draw)
        out_dir = _fresh(ws, world=True)
        if rng.random() < 0.4:
            text = _mutate_text(rng, original)
        else:
            text = _toml(_mutate_values(rng, json.loads(json.dumps(parsed))))
        config = out_dir / "campaign.toml"
        config.write_text(text, errors="surrogateescape")
        run_checked(ws, "toml", ["validate", str(config)])
        out = out_dir / "plan.parquet"
        args = [*_base(ws), "--config", str(config), "--solver", "dual", "--out", str(out)]
        if rng.random() < 0.5:
            args += ["--budget", "300"]
        result = run_checked(ws, "toml", args, out)
        if result.exit_code == 0:
            assert pd.read_parquet(out)["user_id"].is_unique
        TALLY["toml: generated inputs"] += 1  # counted once it ran to the end

    case()


# ------------------------------------------------------------- menu and scenario contradictions


def _put(*path: str, **values):
    """A change: ``values`` set in the table at ``path`` (created when missing)."""

    def change(data: dict) -> None:
        for part in path:
            data = data.setdefault(part, {})
        data.update(values)

    return change


def _coupon(**values):
    return lambda d: d["menu"]["denomination"][0].update(values)


CONTRADICTIONS = [
    ("threshold below face value", "menu", _coupon(threshold=1)),
    ("face value zero", "menu", _coupon(face_value=0)),
    ("same coupon twice", "menu", lambda d: d["menu"]["denomination"].append(
        d["menu"]["denomination"][0])),
    ("empty menu", "menu", _put("menu", denomination=[])),
    ("manual coupon not on the menu", "manual", _put("manual", denomination="99off999")),
    ("cap on an unknown coupon", "caps", _put("constraints", max_per_denomination={"nope": 3})),
    ("shares over one", "shares", _put("constraints", segment_shares={"dormant": {"min": 0.8},
                                                            "lapsed": {"min": 0.8}})),
    ("share min above max", "shares", _put("constraints", segment_shares={"dormant": {"min": 0.8,
                                                                            "max": 0.2}})),
    ("unknown segment", "segments", _put("targeting", segments=["sleeping"])),
    ("no segment", "segments", _put("targeting", segments=[])),
    ("negative budget", "budget", _put("budget", amount=-5)),
    ("margin above one", "margin", _put("costs", margin_rate=1.5)),
    ("minimum ROI infinite", "min_roi", _put("constraints", min_roi=math.inf)),
    ("overrun risk zero", "overrun", _put("constraints", overrun_risk=0)),
    ("vary: a budget twice", "vary budget", _put("whatif", "vary", budget=[5, 5])),
    ("vary: a missing menu", "vary menu", _put("whatif", "vary", menu=["nowhere.toml"])),
    ("vary: budget points 1", "vary budget", _put("whatif", "vary", budget={
        "start": 1, "stop": 2, "points": 1})),
    ("message cap negative", "messages", _put("constraints", max_messages=-1)),
    ("exclude file missing", "exclude", _put("constraints", exclude_file="nope.csv")),
    ("currency markup", "currency", _put(currency="[/x]$\\q$")),
    ("name markup", "name", _put(name="[link=http://example.com]x[/link]")),
]  # fmt: skip


@pytest.mark.parametrize("full", FULL_RUN)
def test_menu_and_scenario_contradictions(ws, full):
    """One to three contradictions at once, planned and asked what-if questions."""
    parsed = tomllib.loads(_campaign_text(ws))

    @_examples(full)
    @given(st.lists(st.sampled_from(CONTRADICTIONS), min_size=1, max_size=3,
                    unique_by=lambda c: c[1]),  # one change per key: none hides another
           st.sampled_from(["optimize", "whatif", "validate"]))  # fmt: skip
    def case(chosen, command):
        out_dir = _fresh(ws, world=True)
        data = json.loads(json.dumps(parsed))
        for _, _, contradict in chosen:
            contradict(data)
        config = out_dir / "campaign.toml"
        config.write_text(_toml(data))
        out = out_dir / "plan.parquet"
        if command == "validate":
            args = ["validate", str(config)]
        elif command == "optimize":
            args = [*_base(ws), "--config", str(config), "--solver", "dual", "--out", str(out)]
        else:
            args = ["whatif", *_base(ws)[1:], "--config", str(config), "--solver", "dual",
                    "--json", "--plots", str(out_dir / "plots")]  # fmt: skip
        result = run_checked(ws, "contradictions", args, out if command == "optimize" else None)
        # What is no contradiction: labels with markup, no segment (every scored user, as
        # documented), and for optimize a what-if menu it never reads.
        harmless = {"currency markup", "name markup", "no segment"}
        harmless |= {"vary: a missing menu"} if command == "optimize" else set()
        if result.exit_code == 0 and command != "validate":
            names = {name for name, *_ in chosen}
            assert names <= harmless, (names, command)
        TALLY["contradictions: generated inputs"] += 1  # counted once it ran to the end

    case()


def test_markup_in_names_prints_as_written(ws):
    """A campaign named with markup is printed as written; no link reaches the terminal."""
    data = tomllib.loads(_campaign_text(ws))
    data["name"] = "[link=http://example.com]click[/link] [/x]"
    config = _fresh(ws, world=True) / "campaign.toml"
    config.write_text(_toml(data))
    result = CliRunner().invoke(app, ["validate", str(config)])
    assert result.exit_code == 0, result.output
    assert "[link=http://example.com]click[/link] [/x]" in re.sub(r"\s+", " ", result.stdout)
    assert "\x1b]8;" not in result.stdout  # no OSC 8 hyperlink
