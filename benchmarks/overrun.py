"""Budget overrun: how often simulated campaigns spend more than 102% of their budget, per arm.

On synthetic worlds of several sizes and seeds (seeds used nowhere else in the repository), each
world in a fresh process: the world is built and the conversion models trained on its
randomized log through :func:`simulator.workflows.score_scenario` (a temporary model cache; the
models are trained once per world and serve both rules). The campaign's candidates (the default
scenario's dormant customers) get a budget of 0.72 money per candidate
(``--budget-per-candidate``; about the default scenario's 50,000 for its ~70,000 dormant
customers: the scenario's fixed 50,000 would not bind on smaller worlds). A simulated A/B test
(:func:`simulator.experiment.run_experiment`, as ``couponopt simulate`` runs it: split design,
10% holdout, the arms ``optimal``, ``manual`` and ``v2`` sharing the budget in proportion to
their users, the scenario's gateway and ``on_budget_spent``) is replicated under two budget
rules, with the same seed (the same randomisation and draws) for both:

* ``default``: the campaign's default rule (``constraints.overrun_risk = 0.05``,
  ``constraints.overrun_tolerance = 0.02``): each arm's plan lowers its planning budget until
  P(realised spend > 1.02 x budget) <= 5% under the models' probabilities (normal
  approximation of the plan's spend);
* ``expected``: the former rule, the plan's expected spend up to the budget
  (``Overrides(overrun_risk=0.5, overrun_tolerance=0.0)``).

Per world, rule and policy arm: the replications; the share of them whose realised spend (the
engine's, messages and paid redemptions, against the world's truth) exceeds 1.02 x the arm's
budget (the default rule's target: at most 5%); the median realised spend / arm budget; the
median planned spend (the plan's expected spend under the models) / arm budget; the arm's mean
conversions and mean incremental conversions (against the holdout). One table, a summary line
per rule (the share pooled over every world, with a 95% Clopper-Pearson interval that treats
the replications as independent, which they are not across a world's shared models) and
``benchmarks/results/overrun.json`` (every row, with each replication's realised / budget).

    .venv/bin/python benchmarks/overrun.py                 # 60k and 150k users x 3 seeds, 40 reps
    .venv/bin/python benchmarks/overrun.py --quick         # 1 seed per size, 10 replications
    .venv/bin/python benchmarks/overrun.py --sizes 60000 --seeds 1411 --replications 20 \\
        --json /tmp/overrun.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
from _common import ROOT, run_worlds, write_json
from rich.console import Console
from rich.table import Table
from scipy import stats

SIZES = (60_000, 150_000)
SEEDS = (1411, 1412, 1413)  # world seeds no test, scenario or benchmark uses
REPLICATIONS = 40
QUICK_REPLICATIONS = 10
POLICIES = ("optimal", "manual", "v2")
BUDGET_PER_CANDIDATE = 0.72
#: Realised spend above this multiple of the arm's budget is an overrun.
TOLERANCE = 1.02
#: The default rule's target share of overrunning campaigns.
TARGET = 0.05
#: Budget rules: name -> (overrun_risk, overrun_tolerance); None keeps the campaign's default.
RULES: dict[str, tuple[float, float] | None] = {
    "default": None,
    "expected": (0.5, 0.0),
}

CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from overrun import measure_world
print(json.dumps(measure_world({users}, {seed}, {replications}, {per_candidate}, {cache!r})))
"""


# ------------------------------------------------------------------------------- one world


def measure_world(
    users: int, seed: int, replications: int, per_candidate: float, cache: str
) -> dict:
    """Replicated A/B tests of one world under every rule of :data:`RULES`.

    The models are trained once; every rule's experiment uses the world's ``seed`` (the same
    randomisation and draws), so the rules differ only by their plans.
    """
    from optimizer.planning import Overrides
    from simulator.experiment import experiment_request, run_experiment
    from simulator.scenario import Scenario
    from simulator.workflows import score_scenario

    scenario = Scenario().with_overrides(users=users, seed=seed)
    start = time.perf_counter()
    scored = score_scenario(scenario, cache=Path(cache))
    score_s = time.perf_counter() - start
    first = experiment_request(scenario, Overrides(policies=POLICIES))
    first = first.with_models(scored.models)
    n_candidates = len(first.candidates(scored.scores, scored.users))
    budget = per_candidate * n_candidates
    out = {
        "users": users,
        "seed": seed,
        "candidates": n_candidates,
        "budget": budget,
        "on_budget_spent": str(scenario.simulation.on_budget_spent),
        "score_s": score_s,
        "rules": {},
    }
    for rule, knobs in RULES.items():
        start = time.perf_counter()
        risk, tolerance = knobs if knobs is not None else (None, None)
        request = experiment_request(
            scenario,
            Overrides(
                policies=POLICIES, budget=budget, overrun_risk=risk, overrun_tolerance=tolerance
            ),
        ).with_models(scored.models)
        candidates = request.candidates(scored.scores, scored.users)
        experiment = run_experiment(
            scenario, candidates, scored.truth, request, replications=replications, seed=seed
        )
        runs = experiment.runs
        rows = []
        for arm in experiment.policies:
            part = runs[runs["arm"] == arm]
            arm_budget = part["arm_budget"].to_numpy(np.float64)
            realised = part["realised_spend"].to_numpy(np.float64) / arm_budget
            planned = part["planned_spend"].to_numpy(np.float64) / arm_budget
            over = int((part["realised_spend"] > TOLERANCE * part["arm_budget"]).sum())
            rows.append(
                {
                    "arm": arm,
                    "replications": len(part),
                    "arm_budget": float(np.median(arm_budget)),
                    "overruns": over,
                    "overrun_share": over / len(part),
                    "realised_vs_budget": float(np.median(realised)),
                    "realised_vs_budget_max": float(realised.max()),
                    "planned_vs_budget": float(np.median(planned)),
                    "realised_vs_planned": float(np.median(realised / planned)),
                    "conversions": float(part["conversions"].mean()),
                    "incremental_conversions": float(part["incremental_conversions"].mean()),
                    "realised_vs_budget_runs": realised.tolist(),
                }
            )
        out["rules"][rule] = {
            "overrun_risk": request.settings().overrun_risk,
            "overrun_tolerance": request.settings().overrun_tolerance,
            "experiment_s": time.perf_counter() - start,
            "rows": rows,
        }
    return out


# ------------------------------------------------------------------------------ the report


def pooled(worlds: list[dict], rule: str, arm: str) -> dict:
    """Overruns of ``arm`` under ``rule`` pooled over ``worlds``, with a 95% interval."""
    rows = [r for w in worlds for r in w["rules"][rule]["rows"] if r["arm"] == arm]
    over = sum(r["overruns"] for r in rows)
    reps = sum(r["replications"] for r in rows)
    ci = stats.binomtest(over, reps).proportion_ci(0.95, method="exact")
    return {
        "rule": rule,
        "arm": arm,
        "overruns": over,
        "replications": reps,
        "share": over / reps,
        "low": float(ci.low),
        "high": float(ci.high),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES), help="customers")
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS), help="world seeds")
    parser.add_argument("--replications", type=int, default=None, help="per world and rule")
    parser.add_argument(
        "--quick", action="store_true", help=f"one seed, {QUICK_REPLICATIONS} replications"
    )
    parser.add_argument(
        "--budget-per-candidate", type=float, default=BUDGET_PER_CANDIDATE, help="money"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "overrun.json"
    )
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    replications = args.replications or (QUICK_REPLICATIONS if args.quick else REPLICATIONS)
    console = Console(width=120)

    def code_for(users: int, seed: int, cache: str) -> str:
        return CHILD.format(
            root=str(ROOT), bench=str(ROOT / "benchmarks"), users=users, seed=seed,
            replications=replications, per_candidate=args.budget_per_candidate, cache=cache,
        )  # fmt: skip

    worlds, total, load_before, load_after = run_worlds(
        console, args.sizes, seeds,
        f"world, models and {replications} replications x {len(RULES)} rules",
        "couponopt-overrun-", code_for,
    )  # fmt: skip

    table = Table(
        title="Budget overrun: realised spend of simulated campaigns against each arm's budget",
        title_justify="left",
    )
    for col in (
        "users",
        "seed",
        "rule",
        "arm",
        "reps",
        "> 1.02 x budget",
        "realised / budget",
        "planned / budget",
        "realised / planned",
        "conv.",
        "incr. conv.",
    ):
        table.add_column(col, justify="left" if col in ("rule", "arm") else "right")
    for w in worlds:
        for rule in RULES:
            for r in w["rules"][rule]["rows"]:
                table.add_row(
                    f"{w['users']:,}",
                    str(w["seed"]),
                    rule,
                    r["arm"],
                    str(r["replications"]),
                    f"{r['overrun_share']:.1%}",
                    f"{r['realised_vs_budget']:.3f}",
                    f"{r['planned_vs_budget']:.3f}",
                    f"{r['realised_vs_planned']:.3f}",
                    f"{r['conversions']:,.0f}",
                    f"{r['incremental_conversions']:,.0f}",
                )
        table.add_section()
    modes = sorted({w["on_budget_spent"] for w in worlds})
    table.caption = (
        f"Budget {args.budget_per_candidate:g} money per candidate (dormant customers), shared "
        "by the arms in proportion to their users (10% holdout). Rules: default = "
        "constraints.overrun_risk 0.05 with overrun_tolerance 0.02 (each plan lowers its "
        "planning budget until P(realised spend > 1.02 x budget) <= 5% under the models' "
        "probabilities; target: <= 5% of replications over 1.02 x budget); expected = "
        "overrun_risk 0.5, overrun_tolerance 0 (the plan's expected spend up to the budget). "
        "> 1.02 x budget: share of replications whose realised spend (messages and paid "
        "redemptions, simulated on the world's truth, on_budget_spent = "
        f"{', '.join(modes)}) exceeds 1.02 x the arm's budget; realised / budget, planned / "
        "budget (the plan's expected spend under the models), realised / planned: medians over "
        "replications; conv., incr. conv.: the arm's conversions and incremental conversions "
        "(vs the holdout), means over replications. Both rules replay the same randomisation "
        "and draws; models trained once per world, in its own process. "
        f"Total {total:.0f} s; 1-minute load average {load_before:.1f} before, "
        f"{load_after:.1f} after ({os.cpu_count()} CPUs)."
    )
    table.caption_justify = "left"
    console.print(table)

    arms = list(dict.fromkeys(r["arm"] for w in worlds for r in w["rules"]["default"]["rows"]))
    summary = [pooled(worlds, rule, arm) for rule in RULES for arm in arms]
    for rule in RULES:
        parts = [
            f"{s['arm']} {s['share']:.1%} ({s['overruns']}/{s['replications']}, "
            f"95% CI {s['low']:.1%}-{s['high']:.1%})"
            for s in summary
            if s["rule"] == rule
        ]
        console.print(f"[bold]{rule}[/bold] rule, > 1.02 x budget, pooled: " + "; ".join(parts))
    write_json(
        args.json,
        {
            "benchmark": "overrun",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "sizes": args.sizes,
            "seeds": seeds,
            "replications": replications,
            "budget_per_candidate": args.budget_per_candidate,
            "tolerance": TOLERANCE,
            "target": TARGET,
            "rules": {
                name: {"overrun_risk": k[0], "overrun_tolerance": k[1]}
                if k is not None
                else "the campaign's default"
                for name, k in RULES.items()
            },
            "total_s": total,
            "load_average_1min": {"before": load_before, "after": load_after},
            "records": [
                {"users": w["users"], "seed": w["seed"], "rule": rule, **r}
                for w in worlds
                for rule in RULES
                for r in w["rules"][rule]["rows"]
            ],
            "worlds": [
                {k: v for k, v in w.items() if k != "rules"}
                | {
                    "rules": {
                        rule: {k: v for k, v in res.items() if k != "rows"}
                        for rule, res in w["rules"].items()
                    }
                }
                for w in worlds
            ],
            "summary": summary,
        },
    )
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
