"""A 20-point budget sweep on 1M users: one `couponopt whatif` against 20 `couponopt optimize`.

The world comes from `couponopt generate` (all stages are candidates: no stage filter with
--scores); the scores are the world's true probabilities (conversion and redemption), so the
measurement is about planning, not about models. Both sides run as the user would run them, one
command per process, on the same Parquet files:

* reference: `couponopt optimize --scores ... --budget B --json` once per budget;
* ours: `couponopt whatif --scores ... --vary budget=LO:HI:20 --policies optimal --json`.

The same comparison in one process isolates the planning itself: `sweep_budgets` (one hull sort
or one price bracket per budget, rankings reused) against `make_plan` per budget. Every point's
objective value must agree between the two sides.

    .venv/bin/python benchmarks/whatif.py                    # 1M users, 20 budgets
    .venv/bin/python benchmarks/whatif.py --users 200000 --points 10
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT, write_json
from rich.console import Console
from rich.table import Table

from optimizer.io.contract import coupon_column, redeem_column
from optimizer.io.menu import load_menu
from optimizer.io.tables import load_users
from optimizer.planning.candidates import campaign_problem, select_candidates
from optimizer.planning.policies import PolicySettings, make_plan
from optimizer.planning.sweep import sweep_budgets

CLI = [str(ROOT / ".venv" / "bin" / "couponopt")]


def _run(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/whatif.json")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        console.print(f"generating a {args.users:,}-user world ...")
        _run(["generate", "--population", str(args.users), "--seed", "3", "--out", str(world)])
        truth = pd.read_parquet(world / "truth.parquet")
        menu = load_menu(world / "menu.toml")
        columns = ["user_id", "p_natural", *(coupon_column(n) for n in menu.names)]
        columns += [redeem_column(n) for n in menu.names]
        scores = truth[columns].copy()
        for c in columns[1:]:
            scores[c] = scores[c].astype(np.float32)
        scores_path = Path(tmp) / "scores.parquet"
        scores.to_parquet(scores_path, index=False)
        files = ["--scores", str(scores_path), "--users", str(world / "users.parquet"),
                 "--menu", str(world / "menu.toml")]  # fmt: skip
        lo, hi = 0.02 * args.users, 0.4 * args.users
        budgets = np.linspace(lo, hi, args.points)

        console.print(f"{args.points} optimize runs ...")
        reference = []
        for budget in budgets:
            seconds, out = _run(["optimize", *files, "--budget", f"{budget:.6f}", "--json"])
            plan = json.loads(out)["plans"]["optimal"]
            reference.append((seconds, plan["objective_value"]))
        console.print("one whatif run ...")
        spec = f"budget={lo:.6f}:{hi:.6f}:{args.points}"
        sweep_s, out = _run(["whatif", *files, "--vary", spec, "--policies", "optimal", "--json"])
        points = pd.DataFrame(json.loads(out)["points"]).sort_values("budget")
        ours = points["objective_value"].to_numpy()
        ref_values = np.array([v for _, v in reference])
        worst = float(np.max(np.abs(ours - ref_values) / np.maximum(np.abs(ref_values), 1e-12)))

        console.print("in-process planning ...")
        candidates = select_candidates(scores, load_users(world / "users.parquet"), menu)
        problem = campaign_problem(candidates)
        settings = PolicySettings(denomination=menu.names[1], solver="dual")
        make_plan("optimal", problem, float(budgets[0]), settings)  # warm-up: torch import
        start = time.perf_counter()
        for budget in budgets:
            make_plan("optimal", problem, float(budget), settings)
        each_s = time.perf_counter() - start
        start = time.perf_counter()
        sweep_budgets(problem, budgets, ["optimal"], settings)
        swept_s = time.perf_counter() - start

    optimize_s = float(sum(s for s, _ in reference))
    result = {
        "users": args.users,
        "points": args.points,
        "budgets": [float(budgets[0]), float(budgets[-1])],
        "optimize_runs_s": optimize_s,
        "optimize_run_mean_s": optimize_s / args.points,
        "whatif_run_s": sweep_s,
        "cli_ratio": optimize_s / sweep_s,
        "in_process_make_plan_s": each_s,
        "in_process_sweep_s": swept_s,
        "in_process_ratio": each_s / swept_s,
        "worst_relative_value_difference": worst,
        "machine": platform.platform(),
    }
    table = Table(title=f"{args.points}-point budget sweep, {args.users:,} users")
    for col in ("what", "ours s", "reference s", "reference / ours"):
        table.add_column(col, justify="left" if col == "what" else "right")
    table.add_row(
        "CLI: 1 whatif vs N optimize",
        f"{sweep_s:.1f}",
        f"{optimize_s:.1f}",
        f"{optimize_s / sweep_s:.1f}x",
    )
    table.add_row(
        "in process: sweep_budgets vs make_plan per budget",
        f"{swept_s:.2f}",
        f"{each_s:.2f}",
        f"{each_s / swept_s:.1f}x",
    )
    table.caption = (
        f"Every point's objective value agrees to {worst:.1e} (relative). Reference CLI runs "
        "each read the files, import torch and plan one budget; the sweep does those once."
    )
    console.print(table)
    write_json(args.out, result)
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
