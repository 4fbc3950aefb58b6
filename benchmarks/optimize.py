"""Solver speed and quality: exact PuLP/HiGHS vs the dual decomposition, and the dual at scale.

Synthetic score tables (natural probabilities ~ Beta(1, 8), coupon lifts ~ Beta(1, 20) with 10%
negative) on the default four-coupon menu (five coupons at scale: 15 off 149 added), budget at
30% of the cost of sending everyone their costliest coupon. For each size: PuLP time and
objective vs dual time, objective and certified gap (ratio of times in the same run); at 1M and
10M users, dual time and peak memory in a fresh process; the full budget frontier at 1M; and
random constrained instances (caps, minimum ROI, segment shares) of 1k-5k users, dual vs PuLP.

    .venv/bin/python benchmarks/optimize.py                       # 10k, 20k, 50k; 1M and 10M
    .venv/bin/python benchmarks/optimize.py --exact 10000 --scale 1000000
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from _common import ROOT, run_child, write_json
from rich.console import Console
from rich.table import Table

from optimizer.io.menu import Denomination, Menu
from optimizer.solvers.dual import solve_dual
from optimizer.solvers.instances import KINDS, random_instance
from optimizer.solvers.milp import solve_milp
from optimizer.solvers.problem import build_problem
from simulator.scenario import Scenario

MENU4 = Scenario().menu
MENU5 = Menu(
    denomination=(*MENU4.denomination, Denomination(name="15off149", face_value=15, threshold=149))
)

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch  # the bracket's kernels; imported once per process, timed apart
import_s = time.perf_counter() - t0
import numpy as np
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from _common import rss_mb
from optimize import naive_bisection, problem_of
from optimizer.solvers.dual import solve_dual
from optimizer.solvers.instances import KINDS, random_instance
from optimizer.solvers.hull import frontier
problem, budget = problem_of({users}, 5, seed=1)
with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark to the current RSS
    f.write("5")
inputs = rss_mb("VmRSS")
start = time.perf_counter()
sol = solve_dual(problem, budget)
seconds = time.perf_counter() - start
peak = rss_mb("VmHWM")
out = {{"users": {users}, "dual_s": seconds, "gap": sol.gap, "value": sol.value,
        "upper_bound": sol.upper_bound, "inputs_rss_mb": inputs, "solve_extra_mb": peak - inputs,
        "torch_import_s": import_s}}
if {frontier}:
    start = time.perf_counter()
    frontier(problem, np.linspace(0, 2 * budget, 200))
    out["frontier_s"] = time.perf_counter() - start
start = time.perf_counter()
ref = naive_bisection(problem, budget)
out["naive_s"] = time.perf_counter() - start
out["naive_value"] = ref
print(json.dumps(out))
"""


def naive_bisection(problem, budget: float, iterations: int = 40) -> float:
    """Reference: bisection on the budget's price over the whole (n, k) matrix each step.

    Returns the value of the feasible end of the bracket (what a plain Lagrangian gives).
    """
    value = np.where(problem.eligible & (problem.value > 0), problem.value, -np.inf)
    rows = np.arange(problem.n_users)

    def at(lam: float) -> tuple[float, float]:
        reduced = value - lam * problem.cost
        best = reduced.argmax(axis=1)
        take = reduced[rows, best] > 0
        return (
            float(problem.cost[rows[take], best[take]].sum()),
            float(value[rows[take], best[take]].sum()),
        )

    lo, hi = 0.0, float(np.nanmax(np.where(np.isfinite(value), value / problem.cost, 0)))
    if at(lo)[0] <= budget:
        return at(lo)[1]
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if at(mid)[0] <= budget:
            hi = mid
        else:
            lo = mid
    return at(hi)[1]


def problem_of(n: int, k: int, seed: int = 0):
    """A random campaign of ``n`` users and ``k`` coupons, and its budget (money)."""
    rng = np.random.default_rng(seed)
    menu = MENU4 if k == 4 else MENU5
    p0 = rng.beta(1, 8, n).astype(np.float32)
    sign = np.where(rng.random((n, k)) < 0.9, 1.0, -0.3).astype(np.float32)
    p = np.clip(p0[:, None] + rng.beta(1, 20, (n, k)).astype(np.float32) * sign, 0, 1)
    problem = build_problem(np.arange(n), p0, p, menu, sms_cost=0.05)
    budget = 0.3 * float(problem.cost.max(axis=1).sum())
    return problem, budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exact", type=int, nargs="*", default=[10_000, 20_000, 50_000])
    parser.add_argument("--scale", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--random",
        type=int,
        default=6,
        help="random constrained instances (1k-5k users) per constraint kind, dual vs PuLP",
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "optimize.json"
    )
    args = parser.parse_args()
    console = Console(width=120)
    exact_rows = []
    for n in args.exact:
        problem, budget = problem_of(n, 4)
        console.print(f"{n:,} users x 4: PuLP/HiGHS ...")
        start = time.perf_counter()
        milp = solve_milp(problem, budget)
        pulp_s = time.perf_counter() - start
        start = time.perf_counter()
        dual = solve_dual(problem, budget)
        dual_s = time.perf_counter() - start
        exact_rows.append(
            {
                "users": n,
                "pulp_s": pulp_s,
                "pulp_value": milp.value,
                "pulp_status": milp.status,
                "dual_s": dual_s,
                "dual_value": dual.value,
                "dual_vs_pulp": (milp.value - dual.value) / milp.value,
                "certified_gap": (dual.upper_bound - dual.value) / dual.upper_bound,
                "speedup": pulp_s / dual_s,
            }
        )
    random_rows = []
    rng = np.random.default_rng(2026)
    for kind in KINDS if args.random else ():
        console.print(f"{args.random} random instances with {kind} constraints: PuLP and dual ...")
        worst, worst_certified, pulp_s, dual_s, statuses = 0.0, 0.0, [], [], []
        for _ in range(args.random):
            problem, budget, constraints = random_instance(rng, kind, MENU4)
            milp = solve_milp(problem, budget, constraints, gap=1e-5, time_limit=120)
            dual = solve_dual(problem, budget, constraints)
            pulp_s.append(milp.seconds)
            dual_s.append(dual.seconds)
            statuses.append(milp.status)
            worst = max(worst, (milp.value - dual.value) / max(milp.value, 1e-12))
            worst_certified = max(worst_certified, dual.gap)
        random_rows.append(
            {
                "kind": kind,
                "instances": args.random,
                "pulp_mean_s": float(np.mean(pulp_s)),
                "dual_mean_s": float(np.mean(dual_s)),
                "dual_max_s": float(np.max(dual_s)),
                "worst_dual_below_pulp": worst,
                "worst_certified_gap": worst_certified,
                "pulp_optimal": statuses.count("Optimal"),
            }
        )
    scale_rows = []
    for n in args.scale:
        console.print(f"{n:,} users x 5: dual in a fresh process ...")
        code = CHILD.format(
            root=str(ROOT),
            bench=str(ROOT / "benchmarks"),
            users=n,
            frontier=n <= 1_000_000,
        )
        scale_rows.append(run_child(code))
    table = Table(title="PuLP (HiGHS) vs dual, 4 coupons, one budget", title_justify="left")
    for col in ("users", "PuLP s", "dual s", "speed-up", "dual vs PuLP", "certified gap"):
        table.add_column(col, justify="right")
    for r in exact_rows:
        table.add_row(
            f"{r['users']:,}",
            f"{r['pulp_s']:.2f}",
            f"{r['dual_s']:.3f}",
            f"{r['speedup']:.0f}x",
            f"{100 * r['dual_vs_pulp']:.4f}%",
            f"{100 * r['certified_gap']:.4f}%",
        )
    if exact_rows:
        console.print(table)
    if random_rows:
        rand = Table(
            title="Random constrained instances, 1k-5k users x 4 coupons (PuLP to a 0.001% gap)",
            title_justify="left",
        )
        for col in (
            "constraints",
            "instances",
            "PuLP mean s",
            "dual mean s",
            "dual max s",
            "worst dual below PuLP",
            "worst certified gap",
        ):
            rand.add_column(col, justify="right")
        for r in random_rows:
            rand.add_row(
                r["kind"],
                f"{r['instances']} ({r['pulp_optimal']} proven)",
                f"{r['pulp_mean_s']:.2f}",
                f"{r['dual_mean_s']:.3f}",
                f"{r['dual_max_s']:.2f}",
                f"{100 * r['worst_dual_below_pulp']:.4f}%",
                f"{100 * r['worst_certified_gap']:.4f}%",
            )
        rand.caption = (
            "Negative 'below PuLP': the dual found a better plan than PuLP's within its gap or "
            "time limit (120 s). The certified gap is to the dual bound, which no plan beats."
        )
        rand.caption_justify = "left"
        console.print(rand)
    scale = Table(title="dual at scale, 5 coupons, one budget", title_justify="left")
    for col in (
        "users",
        "dual s",
        "naive bisection s",
        "speed-up",
        "certified gap",
        "frontier s (200 budgets)",
        "inputs MB",
        "solve peak beyond inputs MB",
    ):
        scale.add_column(col, justify="right")
    for r in scale_rows:
        scale.add_row(
            f"{r['users']:,}",
            f"{r['dual_s']:.2f}",
            f"{r['naive_s']:.2f}",
            f"{r['naive_s'] / r['dual_s']:.1f}x",
            f"{100 * r['gap']:.6f}%",
            f"{r['frontier_s']:.2f}" if "frontier_s" in r else "",
            f"{r['inputs_rss_mb']:,.0f}",
            f"{r['solve_extra_mb']:,.0f}",
        )
    scale.caption = (
        "Inputs: the problem's arrays (p0, p, value, cost, eligible) in RSS before the solve; "
        "the peak is the kernel's high-water mark, reset before the solve. torch is imported "
        "before timing (once per process: "
        + ", ".join(f"{r['torch_import_s']:.1f} s" for r in scale_rows)
        + ")."
    )
    scale.caption_justify = "left"
    if scale_rows:
        console.print(scale)
    write_json(
        args.json,
        {
            "benchmark": "optimize",
            "python": platform.python_version(),
            "exact": exact_rows,
            "random": random_rows,
            "scale": scale_rows,
        },
    )


if __name__ == "__main__":
    main()
