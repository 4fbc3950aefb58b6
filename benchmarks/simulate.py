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
import simpy
from _common import ROOT, run_child, write_json
from rich.console import Console
from rich.table import Table

from optimizer.dual import solve_dual
from optimizer.problem import build_problem
from simulator.engine import EngineSettings, simulate_campaign
from simulator.response import ResponseParams, coupon_rates, true_response
from simulator.scenario import Scenario

MENU = Scenario().menu
SETTINGS = EngineSettings(
    sms_per_hour=20_000, failure_rate=0.03, budget=float("inf"), on_budget_spent="stop_issuing"
)

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from simulate import campaign, rss_mb
start = time.perf_counter()
result = campaign({users}, seed=1)
result["total_s"] = time.perf_counter() - start
result["peak_rss_mb"] = rss_mb("VmHWM")
print(json.dumps(result))
"""


def rss_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


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
        t["natural_hazard"],
        t["message_effect"],
        t["price_sensitivity"],
        t["typical_basket"],
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
    """The same campaign with one SimPy process per user."""
    import time

    t, choice, _ = arms(n, seed)
    rng = np.random.default_rng(seed)
    h0, m, basket = t["natural_hazard"], t["message_effect"], t["typical_basket"]
    rates = coupon_rates(t["price_sensitivity"], basket, MENU.face_values, MENU.thresholds)
    sigma = ResponseParams().basket_sigma
    window = 14 * 24.0
    env = simpy.Environment()
    per_hour = SETTINGS.sms_per_hour
    tokens = simpy.Container(env, init=per_hour, capacity=per_hour)
    converted = np.zeros(n, bool)
    redeemed = np.zeros(n, bool)

    def refill(env):
        while True:
            yield env.timeout(1)
            if tokens.level < tokens.capacity:
                yield tokens.put(tokens.capacity - tokens.level)

    def user(env, i):
        t_natural = rng.exponential(1 / h0[i]) * 24 if h0[i] > 0 else np.inf
        if choice[i] < 0:
            converted[i] = t_natural < window
            return
        yield tokens.get(1)
        yield env.timeout(rng.random())
        if env.now > t_natural or rng.random() < SETTINGS.failure_rate:
            converted[i] = t_natural < window
            return
        k = choice[i]
        mh, u = m[i] * h0[i] / 24, rates[i, k] / 24
        end = min(env.now + 7 * 24, window)
        wait = rng.exponential(1 / (mh + u)) if mh + u > 0 else np.inf
        if env.now + wait < end:
            yield env.timeout(wait)
            converted[i] = True
            value = basket[i] * np.exp(sigma * rng.standard_normal() - 0.5 * sigma**2)
            redeemed[i] = rng.random() < u / (mh + u) or value >= MENU.thresholds[k]
            return
        yield env.timeout(max(0.0, end - env.now))
        later = rng.exponential(1 / mh) if mh > 0 else np.inf
        converted[i] = env.now + later < window

    start = time.perf_counter()
    env.process(refill(env))
    for i in range(n):
        env.process(user(env, i))
    env.run(until=window + 1)
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
