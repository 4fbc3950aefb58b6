"""Campaign simulation speed and memory: the batched SimPy engine vs one SimPy process per user.

Users with world-like true traits (natural purchase rate ~ Gamma(0.6, 0.006/day), message effect
1 or 0.6 for 5% sleeping dogs, price sensitivity ~ Gamma(2, 0.5), typical basket ~ LogNormal
around 120) on the default four-coupon menu, a 14-day window with 7-day validity, an SMS
gateway of 20,000 messages an hour with 3% failures, and three arms (one replication): a 10%
holdout, arm A with the dual solver's plan on the true probabilities under its budget share,
arm B with the uniform 10-off-99 coupon to a random half of its users. Each size runs in a fresh
process: time of the simulation (planning reported apart) and peak memory. The naive model
(one SimPy process per user: gateway tokens, delivery, purchase draws) runs on the same
campaign of 300,000 users in the same run for the speed-up.

    .venv/bin/python benchmarks/simulate.py                         # 100k, 1M, 10M; naive at 300k
    .venv/bin/python benchmarks/simulate.py --sizes 100000 --naive 50000
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
from _common import ROOT, run_child, write_json
from rich.console import Console
from rich.table import Table

from optimizer.solvers.dual import solve_dual
from optimizer.solvers.problem import build_problem
from simulator.experiment.engine import TRAITS, EngineSettings, simulate_campaign
from simulator.experiment.reference import simulate_per_user
from simulator.scenario import Scenario
from simulator.world.response import true_response

MENU = Scenario().menu
SETTINGS = EngineSettings(
    sms_per_hour=20_000, failure_rate=0.03, budget=float("inf"), on_budget_spent="stop_issuing"
)

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from _common import rss_mb
from simulate import campaign
start = time.perf_counter()
result = campaign({users}, seed=1)
result["total_s"] = time.perf_counter() - start
result["peak_rss_mb"] = rss_mb("VmHWM")
print(json.dumps(result))
"""


def traits(n: int, seed: int) -> dict[str, np.ndarray]:
    """World-like true traits of ``n`` users (see the module docstring)."""
    rng = np.random.default_rng(seed)
    return {
        "natural_hazard": rng.gamma(0.6, 0.006, n),
        "message_effect": np.where(rng.random(n) < 0.05, 0.6, 1.0),
        "price_sensitivity": rng.gamma(2.0, 0.5, n),
        "typical_basket": rng.lognormal(np.log(120), 0.5, n),
    }


def arms(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """Traits, the choice per user (-1 none) over the three arms, and planning seconds."""
    import time

    t = traits(n, seed)
    rng = np.random.default_rng(seed + 1)
    arm = rng.choice(3, n, p=[0.1, 0.45, 0.45])  # holdout, A (optimal), B (uniform)
    choice = np.full(n, -1, dtype=np.int64)
    start = time.perf_counter()
    a = np.flatnonzero(arm == 1)
    truth = true_response(
        t["natural_hazard"][a],
        t["message_effect"][a],
        t["price_sensitivity"][a],
        t["typical_basket"][a],
        MENU.face_values,
        MENU.thresholds,
        window_days=14,
        validity_days=7,
    )
    problem = build_problem(a, truth.p_natural, truth.p_coupon, MENU, sms_cost=0.05)
    budget = 0.3 * float(problem.cost.max(axis=1).sum())
    choice[a] = solve_dual(problem, budget).choice
    b = np.flatnonzero(arm == 2)
    choice[b[rng.random(b.size) < 0.5]] = MENU.index("10off99")
    return t, choice, time.perf_counter() - start


def campaign(n: int, seed: int) -> dict:
    """Plan and simulate ``n`` users once; seconds and outcome counts."""
    import time

    t, choice, plan_s = arms(n, seed)
    start = time.perf_counter()
    out = simulate_campaign(
        *(t[name] for name in TRAITS),
        choice,
        MENU,
        SETTINGS,
        np.random.default_rng(seed),
    )
    return {
        "users": n,
        "simulate_s": time.perf_counter() - start,
        "plan_s": plan_s,
        "sent": int(out.sent.sum()),
        "conversions": int(out.converted.sum()),
        "redemptions": int(out.redeemed.sum()),
    }


def naive(n: int, seed: int) -> dict:
    """The same campaign with one SimPy process per user (:mod:`simulator.experiment.reference`)."""
    import time

    t, choice, _ = arms(n, seed)
    start = time.perf_counter()
    converted, redeemed = simulate_per_user(
        *(t[name] for name in TRAITS),
        choice,
        MENU,
        SETTINGS,
        np.random.default_rng(seed),
    )
    return {
        "users": n,
        "simulate_s": time.perf_counter() - start,
        "conversions": int(converted.sum()),
        "redemptions": int(redeemed.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--naive", type=int, default=300_000, help="users of the naive model")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "simulate.json"
    )
    args = parser.parse_args()
    console = Console(width=120)
    rows = []
    for n in args.sizes:
        console.print(f"{n:,} users: batched engine in a fresh process ...")
        rows.append(run_child(CHILD.format(root=str(ROOT), bench=str(ROOT / "benchmarks"),
                                           users=n)))  # fmt: skip
    console.print(f"{args.naive:,} users: batched engine and one process per user ...")
    fast = campaign(args.naive, seed=1)
    slow = naive(args.naive, seed=1)
    table = Table(title="Campaign simulation, 14 days, 2 arms + holdout", title_justify="left")
    for col in ("users", "simulate s", "plan s", "users / s", "peak RSS MB", "conversions"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['users']:,}",
            f"{r['simulate_s']:.2f}",
            f"{r['plan_s']:.2f}",
            f"{r['users'] / r['simulate_s']:,.0f}",
            f"{r['peak_rss_mb']:,.0f}",
            f"{r['conversions']:,}",
        )
    table.caption = "Peak RSS of the whole child process (traits, plan and simulation)."
    table.caption_justify = "left"
    console.print(table)
    speed = Table(
        title=f"Same campaign, {args.naive:,} users: batched vs one SimPy process per user",
        title_justify="left",
    )
    for col in ("model", "simulate s", "conversions", "redemptions"):
        speed.add_column(col, justify="right")
    speed.add_row("batched", f"{fast['simulate_s']:.2f}", f"{fast['conversions']:,}",
                  f"{fast['redemptions']:,}")  # fmt: skip
    speed.add_row("per user", f"{slow['simulate_s']:.2f}", f"{slow['conversions']:,}",
                  f"{slow['redemptions']:,}")  # fmt: skip
    speed.caption = f"speed-up {slow['simulate_s'] / fast['simulate_s']:.0f}x"
    speed.caption_justify = "left"
    console.print(speed)
    write_json(
        args.json,
        {
            "benchmark": "simulate",
            "python": platform.python_version(),
            "sizes": rows,
            "naive": {
                "users": args.naive,
                "batched": fast,
                "per_user": slow,
                "speedup": slow["simulate_s"] / fast["simulate_s"],
            },  # fmt: skip
        },
    )


if __name__ == "__main__":
    main()
