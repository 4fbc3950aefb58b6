"""Out-of-core planning: time and peak memory of a plan made from a scores file.

Writes synthetic scores files (5 coupons; natural and coupon probabilities as
``optimizer.solvers.instances`` draws them) of the requested sizes, then plans each in a fresh
process with ``plan_budget_out_of_core`` (scores read in chunks, the plan written as a Parquet
dataset), under the budget alone and under the budget, two coupon caps and a message cap (the
streamed decomposition). The reference, measured in the same run, is the in-memory path on
the smallest size: the whole scores table loaded and ``solve_budget`` on the full arrays.
Prints a table and writes ``benchmarks/results/out_of_core.json``.

    .venv/bin/python benchmarks/out_of_core.py                          # 10M users
    .venv/bin/python benchmarks/out_of_core.py --sizes 10000000,100000000
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import ROOT, run_child, write_json
from rich.console import Console
from rich.table import Table

from optimizer.io.menu import DEFAULT_MENU, Denomination, Menu  # noqa: E402

#: The article's four coupons and a 30off299 between the two dearest: five denominations.
MENU = Menu(denomination=(*DEFAULT_MENU.denomination[:3],
                          Denomination(name="30off299", face_value=30, threshold=299),
                          DEFAULT_MENU.denomination[3]))  # fmt: skip
BLOCK = 1_000_000


def constraints_for(users: int) -> dict:
    """Caps on the two dearest coupons and a message cap, sized to bind at any size."""
    names = [d.name for d in MENU.denomination]
    return {"max_per_denomination": {names[-1]: users // 20, names[-2]: users // 10},
            "max_messages": int(0.6 * users)}  # fmt: skip


OUT_OF_CORE = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from optimizer.io.menu import load_menu
from optimizer.planning import plan_budget_out_of_core
from optimizer.solvers import Constraints
start = time.perf_counter()
found = plan_budget_out_of_core({scores!r}, load_menu({menu!r}), {budget!r}, {out!r},
                                chunk_rows={chunk}, constraints=Constraints(**{constraints!r}))
print(json.dumps({{**found.to_dict(), "seconds": time.perf_counter() - start,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

IN_MEMORY = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd
from optimizer.io.menu import load_menu
from optimizer.solvers import build_problem, solve_budget
menu = load_menu({menu!r})
start = time.perf_counter()
scores = pd.read_parquet({scores!r})
problem = build_problem(scores["user_id"].to_numpy(), scores["p_natural"].to_numpy(np.float64),
                        scores[[f"p_coupon__{{n}}" for n in menu.names]].to_numpy(np.float64), menu)
del scores
read = time.perf_counter() - start
found = solve_budget(problem, {budget!r})
print(json.dumps({{"users": problem.n_users, "value": found.value, "cost": found.cost,
                   "upper_bound": found.upper_bound, "core_users": found.core_users,
                   "read_s": read, "seconds": time.perf_counter() - start,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def write_scores(path: Path, users: int, seed: int = 0) -> float:
    """A scores file of ``users`` rows, written block by block; returns the budget to plan.

    The budget is a quarter of what sending everyone their dearest useful coupon would cost.
    """
    rng = np.random.default_rng(seed)
    schema = None
    spend = 0.0
    faces = np.array([d.face_value for d in MENU.denomination])
    with pq.ParquetWriter(path, pa.schema(
        [("user_id", pa.int64()), ("p_natural", pa.float32())]
        + [(f"p_coupon__{d.name}", pa.float32()) for d in MENU.denomination]
    )) as writer:  # fmt: skip
        for lo in range(0, users, BLOCK):
            n = min(BLOCK, users - lo)
            p0 = rng.beta(1, 8, n)
            lift = rng.beta(1, 12, (n, len(faces))) * np.linspace(0.6, 1.4, len(faces))
            p = np.clip(p0[:, None] + lift * (1 - p0[:, None]), 0, 1)
            spend += float((0.05 + p[:, -1] * faces[-1]).sum())
            table = {"user_id": np.arange(lo, lo + n, dtype=np.int64),
                     "p_natural": p0.astype(np.float32)}  # fmt: skip
            for j, d in enumerate(MENU.denomination):
                table[f"p_coupon__{d.name}"] = p[:, j].astype(np.float32)
            schema = writer.schema
            writer.write_table(pa.table(table, schema=schema))
    return 0.25 * spend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000000", help="comma-separated user counts")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="users per chunk")
    parser.add_argument("--work", default=None, help="folder for the scores files (temporary)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console()
    work = Path(args.work or tempfile.mkdtemp(prefix="couponopt-ooc-"))
    work.mkdir(parents=True, exist_ok=True)
    from optimizer.io.menu import save_menu

    save_menu(MENU, work / "menu.toml")
    rows = []
    try:
        for users in sizes:
            scores = work / f"scores-{users}.parquet"
            console.print(f"writing {users:,} users of scores ...")
            start = time.perf_counter()
            budget = write_scores(scores, users)
            written = time.perf_counter() - start
            gb = scores.stat().st_size / 1e9
            for kind, constraints in (("budget", {}), ("caps + messages",
                                                       constraints_for(users))):  # fmt: skip
                console.print(f"planning {users:,} users out of core ({kind}) ...")
                found = run_child(OUT_OF_CORE.format(
                    root=str(ROOT), scores=str(scores), menu=str(work / "menu.toml"),
                    budget=budget, out=str(work / f"plan-{users}"), chunk=args.chunk,
                    constraints=constraints,
                ))  # fmt: skip
                rows.append({"users": users, "engine": "out of core", "constraints": kind,
                             "scores_gb": gb, "write_s": written, "budget": budget,
                             **found})  # fmt: skip
            if users == min(sizes):
                console.print(f"the in-memory reference on {users:,} users ...")
                code = IN_MEMORY.format(root=str(ROOT), scores=str(scores),
                                        menu=str(work / "menu.toml"), budget=budget)  # fmt: skip
                ref = run_child(code)
                rows.append({"users": users, "engine": "in memory", "constraints": "budget",
                             "scores_gb": gb, "budget": budget, **ref})  # fmt: skip
            scores.unlink()
            shutil.rmtree(work / f"plan-{users}", ignore_errors=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    table = Table(title="One budget planned out of core (5 coupons, 2 cores)")
    for column in ("users", "engine", "constraints", "seconds", "peak RSS (GB)", "core users",
                   "gap", "passes"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        gap = 1 - row["value"] / row["upper_bound"] if row["upper_bound"] else 0.0
        table.add_row(f"{row['users']:,}", row["engine"], row["constraints"],
                      f"{row['seconds']:.1f}",
                      f"{row['peak_rss_mb'] / 1024:.2f}", f"{row['core_users']:,}",
                      f"{gap:.2e}", str(row.get("passes", "")))  # fmt: skip
    console.print(table)
    ref = next((r for r in rows if r["engine"] == "in memory"), None)
    same = next((r for r in rows if r["engine"] == "out of core" and ref and r["constraints"]
                 == "budget" and r["users"] == ref["users"]), None)  # fmt: skip
    if ref and same:
        console.print(
            f"at {ref['users']:,} users: out of core / in memory = "
            f"{same['seconds'] / ref['seconds']:.2f}x the time, "
            f"{same['peak_rss_mb'] / ref['peak_rss_mb']:.2f}x the peak memory; "
            f"LP bounds differ by {abs(same['upper_bound'] / ref['upper_bound'] - 1):.1e}"
        )
    write_json(ROOT / "benchmarks" / "results" / "out_of_core.json", {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "chunk_rows": args.chunk, "rows": rows,
    })  # fmt: skip


if __name__ == "__main__":
    main()
