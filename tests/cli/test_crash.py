"""The crash suite: SIGKILLs at random moments of generate, train, optimize --out, whatif --plots.

After every kill each output is absent, the earlier run's, or the new run's, whole (its
manifest checks, its table reads back with every user once), every cached model folder loads,
and the next uninterrupted run succeeds and removes what the killed ones left.

A fast subset (``FAST`` kills per command) runs with the suite; the full run is the ``crash``
marked suite, ``.venv/bin/python -m pytest -m crash -q`` (``FULL`` kills per command, over 50
in all, counted in the run's summary). Each kill lands at a uniform random moment of a run as
long as an uninterrupted one, measured first.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from optimizer.io import MANIFEST, verify_manifest

FAST = 2
FULL = 15
#: Kills and what each found, per command (printed by tests/conftest.py's summary hook).
TALLY: Counter[str] = Counter()


def _run(args: list[str], env: dict[str, str], kill_after: float | None = None):
    """Run the CLI in its own process; SIGKILL it after ``kill_after`` seconds if still alive."""
    if kill_after is None:
        done = subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr
        return True
    process = subprocess.Popen(  # output not piped: a full pipe must not decide the moment
        [sys.executable, "-m", "cli", *args], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        process.wait(timeout=kill_after)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True


def _whole_folder(folder: Path, needed: tuple[str, ...]) -> None:
    """``folder`` is absent, or whole: its manifest lists exactly its files, each unchanged."""
    if not folder.exists():
        return
    verify_manifest(folder, needed)
    import json

    listed = set(json.loads((folder / MANIFEST).read_text())["files"]) | {MANIFEST}
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert present == listed, (folder, present ^ listed)  # nothing mixed in, nothing missing


def _no_leftovers(folder: Path) -> None:
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert hidden == [], hidden


class Family:
    """One command under kills: how to run it, and what its outputs must be afterwards."""

    def __init__(self, name: str, root: Path, env: dict[str, str], folder: str):
        self.name, self.root, self.env = name, root, env
        self.base = root / folder
        self.base.mkdir()

    def args(self, seed: int) -> list[str]:
        b, world = self.base, self.root / "world0"
        if self.name == "generate":
            return ["generate", "--population", "20000", "--seed", str(seed),
                    "--out", str(b / "world")]  # fmt: skip
        if self.name == "train":
            return ["train", "--config", str(world / "campaign.toml"), "--out", str(b / "models"),
                    "--max-epochs", "3", "--segments", "dormant", "--seed", str(seed)]  # fmt: skip
        if self.name == "optimize":
            return ["optimize", "--population", "4000", "--seed", str(seed), "--budget", "1500",
                    "--solver", "dual", "--out", str(b / "plan.parquet")]  # fmt: skip
        return ["whatif", "--scores", str(self.root / "scores.parquet"), "--users",
                str(world / "users.parquet"), "--vary", f"budget=100:{2000 + seed}:5",
                "--solver", "dual", "--plots", str(b / "plots")]  # fmt: skip

    def check(self) -> None:
        """Every output absent or whole; every cache entry loads."""
        from optimizer.models import ConversionModels

        b = self.base
        if self.name == "generate":
            _whole_folder(b / "world", ("users.parquet", "history.parquet", "truth.parquet"))
            if (b / "world").exists():
                users = pd.read_parquet(b / "world" / "users.parquet")
                truth = pd.read_parquet(b / "world" / "truth.parquet")
                assert len(users) == 20_000 and users["user_id"].equals(truth["user_id"])
        elif self.name == "train":
            if (b / "models").exists():
                _whole_folder(b / "models", ("models.json", "holdout.parquet"))
                ConversionModels.load(b / "models")
        elif self.name == "optimize":
            if (b / "plan.parquet").exists():
                plan = pd.read_parquet(b / "plan.parquet")
                assert len(plan) > 0 and plan["user_id"].is_unique  # its world's candidates
                assert plan["expected_cost"].sum() <= 1500 + 1e-6
            cache = Path(self.env["COUPONOPT_CACHE"])
            for entry in cache.iterdir() if cache.exists() else ():
                if not entry.name.startswith("."):
                    ConversionModels.load(entry)  # a published cache always loads
        else:
            _whole_folder(b / "plots", ())
            for png in (b / "plots").glob("*.png") if (b / "plots").exists() else ():
                assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def state(self) -> bytes | None:
        """A fingerprint of the output (its manifest, or the plan's bytes); None when absent."""
        output = {"generate": "world", "train": "models", "optimize": "plan.parquet",
                  "whatif": "plots"}[self.name]  # fmt: skip
        path = self.base / output
        path = path / MANIFEST if path.is_dir() else path
        return path.read_bytes() if path.exists() else None

    def leftovers(self) -> None:
        _no_leftovers(self.base)
        cache = Path(self.env["COUPONOPT_CACHE"])
        if self.name == "optimize" and cache.exists():
            _no_leftovers(cache)


@pytest.fixture(scope="module")
def crash_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    env = {**os.environ, "COUPONOPT_CACHE": str(root / "cache"), "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    _run(["--version"], env)
    env["STARTUP_SECONDS"] = str(time.perf_counter() - start)  # before any command's work
    _run(["generate", "--population", "20000", "--seed", "1", "--out", str(root / "world0")], env)
    truth = pd.read_parquet(root / "world0" / "truth.parquet")
    columns = ["user_id", "p_natural", *[c for c in truth if c.startswith("p_coupon__")]]
    truth[columns].to_parquet(root / "scores.parquet", index=False)
    return root, env


FULL_RUN = [pytest.param(False, id="fast"), pytest.param(True, id="full", marks=pytest.mark.crash)]


@pytest.mark.parametrize("full", FULL_RUN)
@pytest.mark.parametrize("name", ["generate", "train", "optimize", "whatif"])
def test_kills_leave_outputs_absent_or_whole(crash_root, name, full):
    root, env = crash_root
    family = Family(name, root, env, folder=f"{name}-{'full' if full else 'fast'}")
    rng = random.Random(f"{name}{full}")
    start = time.perf_counter()
    _run(family.args(0), env)  # an earlier output, whole, and the length of one run
    length = time.perf_counter() - start
    family.check()
    startup = float(env["STARTUP_SECONDS"])
    kills = 0
    for attempt in range(1, 4 * (FULL if full else FAST) + 1):
        if kills == (FULL if full else FAST):
            break
        before = family.state()
        moment = rng.uniform(0.9 * startup, length)  # in the command's own work
        killed = _run(family.args(attempt), env, kill_after=moment)
        kills += killed
        TALLY[f"{name}: {'killed' if killed else 'finished before the kill'}"] += 1
        family.check()
        after = family.state()
        assert after is not None, "a kill lost the earlier output"  # absent is not enough
        found = "earlier output" if after == before else "new"
        TALLY[f"{name}: after a kill, output {found} and whole"] += killed
    assert kills == (FULL if full else FAST), kills
    _run(family.args(999), env)  # the next run succeeds and cleans what the killed ones left
    family.check()
    family.leftovers()
