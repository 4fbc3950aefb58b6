"""10M users scored and planned on one machine: the end-to-end time against the 30 s target.

Trains the default models once on the default 200k-user world, writes a user table of the
requested size, then in one fresh process scores it in chunks into a Parquet dataset
(``score_file``) and plans a budget from that dataset out of core
(``plan_budget_out_of_core``), timing each step; the scoring step is also broken down on the
first chunk (reading and validation, feature encoding, each model). Prints a table and writes
``benchmarks/results/end_to_end.json``.

    .venv/bin/python benchmarks/end_to_end.py                       # 10M users
    .venv/bin/python benchmarks/end_to_end.py --users 1000000       # a quick run
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from _common import ROOT, run_child, write_json
from rich.console import Console
from rich.table import Table

from optimizer.models.conversion import ConversionModels  # noqa: E402
from simulator.scenario import Scenario  # noqa: E402
from simulator.world.generation import build_world, write_world  # noqa: E402

#: The issue's target for 10M users on 2 cores (seconds).
TARGET_S = 30.0

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from optimizer.io.menu import load_menu
from optimizer.io.tables import iter_users
from optimizer.models import ConversionModels, score_file
from optimizer.planning import plan_budget_out_of_core
models = ConversionModels.load({models!r})
menu = load_menu({menu!r})
# Where scoring's time goes, on one chunk.
start = time.perf_counter()
users = next(iter_users({users!r}, {chunk}))
read = time.perf_counter() - start
start = time.perf_counter()
models.encoder.transform(users)
encode = time.perf_counter() - start
start = time.perf_counter()
models.predict_natural(users)
natural = time.perf_counter() - start
start = time.perf_counter()
models.predict_coupon(users)
coupon = time.perf_counter() - start
start = time.perf_counter()
models.predict_redemption(users)
redeem = time.perf_counter() - start
del users
start = time.perf_counter()
run = score_file(models, {users!r}, {scores!r}, chunk_rows={chunk})
scored = time.perf_counter() - start
mean = run.mean_scores
budget = 0.25 * run.rows * 5.0
start = time.perf_counter()
plan = plan_budget_out_of_core({scores!r}, menu, budget, {plan!r})
planned = time.perf_counter() - start
print(json.dumps({{"users": run.rows, "score_s": scored, "plan_s": planned,
                   "total_s": scored + planned, "budget": budget, "gap": plan.gap,
                   "passes": plan.passes, "chunk": {{"rows": {chunk}, "read_validate_s": read,
                   "encode_s": encode, "natural_s": natural, "coupon_s": coupon,
                   "redemption_s": redeem}},
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    args = parser.parse_args()
    console = Console(width=120)
    with tempfile.TemporaryDirectory(prefix="couponopt-e2e-") as tmp:
        tmp = Path(tmp)
        console.print("training the default models on the default world ...")
        world = build_world(Scenario())
        models = ConversionModels().fit(world.history, world.users, world.scenario.menu)
        models.save(tmp / "models")
        console.print(f"writing {args.users:,} users ...")
        write_world(Scenario().with_overrides(users=args.users, seed=99), tmp / "world")
        console.print("scoring and planning in a fresh process ...")
        row = run_child(CHILD.format(
            root=str(ROOT), models=str(tmp / "models"), menu=str(tmp / "world" / "menu.toml"),
            users=str(tmp / "world" / "users.parquet"), scores=str(tmp / "scores"),
            plan=str(tmp / "plan"), chunk=args.chunk_rows,
        ))  # fmt: skip
    table = Table(title=f"{row['users']:,} users scored and planned (2 cores)")
    for column in ("step", "seconds", "share"):
        table.add_column(column, justify="right")
    for label, key in (("score (chunked, dataset out)", "score_s"),
                       ("plan out of core", "plan_s"), ("total", "total_s")):  # fmt: skip
        table.add_row(label, f"{row[key]:.1f}", f"{row[key] / row['total_s']:.0%}")
    chunk = row["chunk"]
    table.caption = (
        f"target {TARGET_S:.0f} s: {row['total_s'] / TARGET_S:.2f}x the target. One chunk of "
        f"{chunk['rows']:,}: read + validate {chunk['read_validate_s']:.2f} s, encode "
        f"{chunk['encode_s']:.2f} s, natural model {chunk['natural_s']:.2f} s, coupon model "
        f"{chunk['coupon_s']:.2f} s, redemption model {chunk['redemption_s']:.2f} s"
    )
    console.print(table)
    write_json(ROOT / "benchmarks" / "results" / "end_to_end.json", {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "target_s": TARGET_S, **row,
    })  # fmt: skip


if __name__ == "__main__":
    main()
