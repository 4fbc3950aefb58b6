"""Decision quality: every policy's plan scored against the world's truth, as a share of an oracle.

On synthetic worlds of several sizes and seeds (seeds used nowhere else in the repository), each
world in a fresh process: the world is built and the conversion models trained on its
randomized log (its target stages) through :func:`simulator.workflows.score_scenario`, with a
temporary model cache (every run trains afresh). The campaign's candidates (the default
scenario's dormant customers) get a budget of 0.72 money per candidate (the issue's
measurement; about the default scenario's 50,000 for its ~70,000 dormant customers). Every
policy (optimal, manual, v1, v2, uplift, random) plans on the models' scores through
:func:`~optimizer.planning.resolve_request` and :func:`~optimizer.planning.plan_campaign`, as
the command line does.

The reference, in the same run: the ORACLE, the same solver (the optimal policy's: the dual
decomposition with a certified gap above 5,000 candidates) fed the world's true probabilities
(``truth``: natural, per-coupon conversion and redemption) at the same budget. Every plan is
then recounted against the truth, independently of the plans' own figures: true incremental
conversions ``sum (p_ik - p0_i)`` over the targeted users, true expected spend
``sum s + p_ik r_ik f_k`` (send cost ``s``, face value ``f_k`` paid on redemption; the
scenario's menu has no other costs). With ``profit``, the true incremental profit is
``margin x true incremental GMV - true spend``, the GMV from the world's response model
(:mod:`simulator.world.response`): a coupon-driven order is lifted to ``max(order,
threshold)``, every other order keeps its log-normal value around the typical basket; the
oracle is then the solver on that exact value (the planner's own GMV formula on true
probabilities is an approximation of it).

Two more references, in the same run: ``ceiling``, the same solver fed E[truth | features] (each
truth column regressed on the user features by LightGBM, two folds of candidates): the
oracle knows each customer's hidden archetype and price sensitivity, which no model of the
features can, so the ceiling's share of the oracle bounds what better estimates can reach; and
``optimal:<architecture>`` (``--architectures``, default the S- and X-learners), the optimal
plan made with another model architecture trained afresh on the same log (``name:N``: an
ensemble of N seeds, e.g. ``shared_trunk:5``). ``decision[:W]`` is the decision-focused
option: the default models fine-tuned, per objective, for the value of the allocation at the
budget's dual price (:func:`optimizer.planning.decision_focused_models`, weight W of the
decision loss, default 1), compared with the two-stage ``optimal`` row on the same log.
``shrink[:N]`` is the uncertainty-aware option: the default model whose uplift is shrunk
toward each coupon's mean by empirical Bayes, each user's variance from N half-sample models
(``ConversionModels(uncertainty=N)``, default 5).

Per policy: the true objective value; its share of the oracle's; true spend / budget (every
plan fits the budget under the models' probabilities, not necessarily under the truth); the
share of the oracle re-solved at a budget equal to the policy's TRUE spend ("at equal spend":
a policy that overspends is compared with an oracle spending as much); and the models'
expected value over the true value (over-promise). Objectives ``conversions`` and ``profit``
(each plans every policy and the oracle afresh). One table (size, seed, objective, policy), a
summary by size (median over seeds, [min, max]) and
``benchmarks/results/decision_quality.json``, which also holds per plan the models' expected
spend / budget, the planner's own value of the plan on the true probabilities
(``planner_on_truth``: for ``profit`` it isolates the planner's GMV formula from the models'
errors) and per world and option the correlation of the models' and the true values over the
candidates. Each world runs in a fresh process and trains its models, so a run is reproducible
bit for bit.

    .venv/bin/python benchmarks/decision_quality.py            # 60k, 150k, 400k users x 3 seeds
    .venv/bin/python benchmarks/decision_quality.py --quick    # 1 seed per size
    .venv/bin/python benchmarks/decision_quality.py --sizes 30000 --seeds 1401 \\
        --objectives conversions --json /tmp/decision_quality.json
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from _common import ROOT, run_worlds, write_json
from rich.console import Console
from rich.table import Table
from scipy.special import ndtr

from optimizer.choices import POLICIES, Objective, Policy
from optimizer.io.contract import coupon_column, redeem_column

SIZES = (60_000, 150_000, 400_000)
SEEDS = (1401, 1402, 1403)  # world seeds no test, scenario or benchmark uses
OBJECTIVES = (Objective.CONVERSIONS, Objective.PROFIT)
BUDGET_PER_CANDIDATE = 0.72
ORACLE = "oracle"
#: The solver fed the best any model of the user features could know: E[truth | features].
CEILING = "ceiling"
#: Rows of the optimal policy with another architecture than the default.
OTHER = "optimal:"
#: ``--architectures decision[:W]``: the default models fine-tuned for the allocation's value
#: (decision-focused learning, weight W of the decision loss; see
#: :func:`optimizer.planning.decision_focused_models`), per objective.
DECISION = "decision"
#: ``--architectures shrink[:N]``: the default model with its uplift shrunk by empirical Bayes,
#: the variance from N half-sample models (``ConversionModels(uncertainty=N)``, default 5).
SHRINK = "shrink"
#: The recount and the library's problem on the truth must agree to this (relative).
AGREEMENT = 1e-5
#: The recount's figure of each objective.
TRUE_FIGURE = {
    Objective.CONVERSIONS: "true_conversions",
    Objective.GMV: "true_gmv",
    Objective.PROFIT: "true_profit",
}

CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
from decision_quality import measure_world
print(json.dumps(measure_world({users}, {seed}, {per_candidate}, {objectives!r}, {cache!r},
                               {architectures!r})))
"""


# ------------------------------------------------------------------------------------ truth


@dataclass
class WorldTruth:
    """The candidates' true figures per option, aligned with the candidates, shape (n, k).

    ``conversions``: true incremental conversion probability; ``cost``: true expected spend;
    ``gmv``: true expected incremental GMV (money).
    """

    conversions: np.ndarray
    cost: np.ndarray
    gmv: np.ndarray
    margin_rate: float

    def value(self, objective: str) -> np.ndarray:
        """True objective gain of each option, shape (n, k)."""
        if objective == Objective.CONVERSIONS:
            return self.conversions
        if objective == Objective.PROFIT:
            return self.margin_rate * self.gmv - self.cost
        return self.gmv

    def recount(self, choice: np.ndarray) -> dict[str, float]:
        """True incremental conversions, GMV, spend and profit of ``choice`` (-1 for none)."""
        rows = np.flatnonzero(choice >= 0)
        k = choice[rows].astype(np.int64)
        gmv = float(self.gmv[rows, k].sum())
        spend = float(self.cost[rows, k].sum())
        return {
            "targeted": int(rows.size),
            "true_conversions": float(self.conversions[rows, k].sum()),
            "true_gmv": gmv,
            "true_spend": spend,
            "true_profit": self.margin_rate * gmv - spend,
        }


def world_truth(
    truth: pd.DataFrame, user_id: np.ndarray, scenario, sms_cost: float, margin_rate: float
) -> WorldTruth:
    """The truth of the users ``user_id`` (in that order) from the world's truth table.

    Conversion and redemption probabilities are the table's; the coupon-driven share of the
    purchases (for the GMV) comes from the world's response model, whose conversion
    probabilities must reproduce the table's.
    """
    from simulator.world.response import ResponseParams, coupon_rates

    menu = scenario.menu
    if not menu.plain:
        raise SystemExit("the recount prices plain coupons only (send cost + face on redemption)")
    t = truth.set_index("user_id").loc[user_id]
    p0 = t["p_natural"].to_numpy(np.float64)
    p = t[[coupon_column(n) for n in menu.names]].to_numpy(np.float64)
    r = t[[redeem_column(n) for n in menu.names]].to_numpy(np.float64)
    faces, thresholds = menu.face_values, menu.thresholds
    cost = sms_cost + p * r * faces[None, :]
    # The world's response model (see simulator.world.response): natural rate m*h0 once
    # messaged, coupon-driven rate u while the coupon is valid.
    params = ResponseParams()
    basket = t["typical_basket"].to_numpy(np.float64)
    u = coupon_rates(t["price_sensitivity"].to_numpy(), basket, faces, thresholds, params)
    mh = (t["natural_hazard"].to_numpy(np.float64) * t["message_effect"].to_numpy(np.float64))[
        :, None
    ]
    window = float(scenario.campaign.window_days)
    valid = min(float(scenario.campaign.validity_days), window)
    rate = mh + u
    again = -np.expm1(-(rate * valid + mh * (window - valid)))
    worst = float(np.abs(again - p).max())
    if worst > 1e-9:
        raise SystemExit(f"the response model does not reproduce the truth table ({worst:.1e})")
    with np.errstate(invalid="ignore", divide="ignore"):
        driven = np.where(rate > 0, -np.expm1(-rate * valid) * u / rate, 0.0)
    # A coupon-driven order is lifted to the threshold: E[max(V, t)] for V log-normal, mean b.
    sigma = params.basket_sigma
    z = (np.log(thresholds)[None, :] - (np.log(basket)[:, None] - 0.5 * sigma**2)) / sigma
    lifted = thresholds[None, :] * ndtr(z) + basket[:, None] * ndtr(sigma - z)
    gmv = (p - p0[:, None]) * basket[:, None] + driven * (lifted - basket[:, None])
    return WorldTruth(conversions=p - p0[:, None], cost=cost, gmv=gmv, margin_rate=margin_rate)


# ------------------------------------------------------------------------------- one world


def _agree(name: str, ours: np.ndarray | float, library: np.ndarray | float) -> None:
    ours, library = np.asarray(ours, np.float64), np.asarray(library, np.float64)
    scale = max(float(np.abs(ours).max()), 1e-12)
    gap = float(np.abs(ours - library).max()) / scale
    if gap > AGREEMENT:
        raise SystemExit(f"{name}: the recount and the library differ by {gap:.1e} (relative)")


def _picked(matrix: np.ndarray, choice: np.ndarray) -> float:
    """Sum of ``matrix`` over the chosen options of ``choice`` (-1 for none)."""
    rows = np.flatnonzero(choice >= 0)
    return float(matrix[rows, choice[rows]].sum())


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def feature_ceiling(candidates, users: pd.DataFrame, truth: pd.DataFrame, seed: int):
    """Scores of the candidates from E[truth | features]: the truth regressed on the features.

    Each truth column (natural, per-coupon conversion and redemption probabilities) is
    regressed on the models' features with LightGBM, two folds of candidates (each half
    predicted by the trees fitted on the other half). What is left between this plan and the
    oracle is what the features cannot tell (the world's hidden archetypes and sensitivities),
    not estimation error: no model trained on the log should be expected to pass it.
    """
    import lightgbm as lgb

    from optimizer.models.conversion import FEATURES
    from optimizer.models.features import FeatureEncoder

    ids = candidates.scores["user_id"].to_numpy()
    frame = users.set_index("user_id").loc[ids].reset_index()[list(FEATURES)]
    encoder = FeatureEncoder(None, None, drop_constant=None).fit(frame)
    numeric, categorical = encoder.transform(frame)
    X = np.hstack([numeric, categorical.astype(np.float32)])
    columns = [c for c in candidates.scores.columns if c != "user_id"]
    target = truth.set_index("user_id").loc[ids, columns].to_numpy(np.float64)
    half = np.random.default_rng(seed).random(len(ids)) < 0.5
    out = np.empty_like(target)
    params = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 63, "verbose": -1}
    for j in range(target.shape[1]):
        for fit_rows, predict_rows in ((half, ~half), (~half, half)):
            model = lgb.LGBMRegressor(**params, random_state=seed).fit(
                X[fit_rows], target[fit_rows, j]
            )
            out[predict_rows, j] = model.predict(X[predict_rows])
    scores = pd.DataFrame(np.clip(out, 1e-6, 1 - 1e-6), columns=columns)
    scores.insert(0, "user_id", ids)
    return scores


def measure_world(
    users: int,
    seed: int,
    per_candidate: float,
    objectives: list[str],
    cache: str,
    architectures: list[str] = (),
) -> dict:
    """Plans of every policy and the oracle on one world, recounted against its truth.

    ``architectures``: other model architectures whose optimal plan is also recounted (rows
    ``optimal:<architecture>``), each trained afresh on the same log.
    """
    from optimizer.planning import (
        Overrides,
        decision_focused_models,
        plan_campaign,
        resolve_request,
    )
    from optimizer.planning.plan import check_plan
    from optimizer.planning.policies import make_plan
    from simulator.scenario import Scenario
    from simulator.workflows import score_scenario

    scenario = Scenario().with_overrides(users=users, seed=seed)
    start = time.perf_counter()
    scored = score_scenario(scenario, cache=Path(cache))
    score_s = time.perf_counter() - start
    base = resolve_request(scenario).with_models(scored.models)
    candidates = base.candidates(scored.scores, scored.users)
    budget = per_candidate * len(candidates)
    ids = candidates.scores["user_id"].to_numpy()
    names = scenario.menu.names
    columns = [*map(coupon_column, names), *map(redeem_column, names)]
    truth_scores = scored.truth[["user_id", "p_natural", *columns]]
    oracle_candidates = base.candidates(truth_scores, scored.users)
    if not np.array_equal(oracle_candidates.scores["user_id"].to_numpy(), ids):
        raise SystemExit("the oracle's candidates are not the models' candidates")
    world = world_truth(scored.truth, ids, scenario, base.sms_cost, base.margin_rate)
    from optimizer.models.conversion import ConversionModels

    others = {}
    # "decision:W": the default models fine-tuned for each objective's allocation (weight W).
    focused = [a for a in architectures if a.partition(":")[0] == DECISION]
    for architecture in (a for a in architectures if a not in focused):
        start = time.perf_counter()
        name, _, members = architecture.partition(":")  # "shared_trunk:5": an ensemble of 5
        if name == SHRINK:  # "shrink:5": the default model, uplift shrunk by 5 half-samples
            params = {"uncertainty": int(members or 5)}
        else:
            params = {"architecture": name, "ensemble": int(members or 1)}
        fitted = ConversionModels(segment=list(scenario.target_stages), **params).fit(
            scored.history, scored.users, scenario.menu
        )
        found = base.candidates(fitted.predict(scored.users, scenario.menu), scored.users)
        if not np.array_equal(found.scores["user_id"].to_numpy(), ids):
            raise SystemExit(f"{architecture}'s candidates are not the default models'")
        others[OTHER + architecture] = (found, time.perf_counter() - start)
    ceiling = base.candidates(feature_ceiling(candidates, scored.users, scored.truth, seed),
                              scored.users)  # fmt: skip
    out = {
        "users": users,
        "seed": seed,
        "candidates": len(candidates),
        "budget": budget,
        "natural_threshold": scored.natural_threshold,
        "score_s": score_s,
        "objectives": {},
    }
    fine_tuning: dict[str, dict] = {}
    for objective in objectives:
        start = time.perf_counter()
        request = resolve_request(
            scenario, Overrides(policies=POLICIES, objective=objective, budget=budget)
        ).with_models(scored.models)
        plans = plan_campaign(candidates, request)
        single = replace(request, policies=(Policy.OPTIMAL,))
        for label, (found, _) in others.items():
            plans[label] = plan_campaign(found, single)[Policy.OPTIMAL]
        for architecture in focused:
            tuning_start = time.perf_counter()
            weight = float(architecture.partition(":")[2] or 1.0)
            tuned = decision_focused_models(
                scored.models, scored.history, scored.users, candidates, single, weight=weight
            )
            found = base.candidates(tuned.predict(scored.users, scenario.menu), scored.users)
            if not np.array_equal(found.scores["user_id"].to_numpy(), ids):
                raise SystemExit(f"{architecture}'s candidates are not the default models'")
            plans[OTHER + architecture] = plan_campaign(found, single)[Policy.OPTIMAL]
            fine_tuning[f"{objective}/{architecture}"] = {
                "seconds": time.perf_counter() - tuning_start,
                **{k: v for k, v in tuned.summary_["decision_focused"].items() if k != "history"},
                "policy_value_by_epoch": tuned.summary_["decision_focused"]["history"][
                    "policy_value"
                ],
            }
        # The ceiling and the oracle know their probabilities: no estimation error in spend.
        plans[CEILING] = plan_campaign(ceiling, replace(single, spend_error=None))[Policy.OPTIMAL]
        settings = request.settings()
        # The oracle: the optimal policy's solver on the truth's exact values and costs.
        on_truth = request.problem(oracle_candidates)  # the planner's formulas, true inputs
        true_value = world.value(objective)
        _agree("true expected spend per option", world.cost, on_truth.cost)
        if objective == Objective.CONVERSIONS:
            _agree("true incremental conversions per option", true_value, on_truth.value)
        problem = replace(on_truth, value=true_value, cost=world.cost, spend_error=None)
        model_value = plans[Policy.OPTIMAL].problem.value

        def oracle_at(amount: float, problem=problem, settings=settings):
            plan = make_plan(Policy.OPTIMAL, problem, amount, settings)
            check_plan(plan, settings.constraints)
            return plan

        oracle = oracle_at(budget)
        ref = world.recount(oracle.choice)
        ref_value = ref[TRUE_FIGURE[objective]]
        _agree("oracle value", ref_value, oracle.value)
        _agree("oracle spend", ref["true_spend"], float(oracle.expected_cost.sum()))
        rows = [
            {
                "policy": ORACLE,
                **ref,
                "true_value": ref_value,
                "model_value": oracle.value,
                "model_spend": float(oracle.expected_cost.sum()),
                "share_of_oracle": 1.0,
                "spend_vs_budget": ref["true_spend"] / budget,
                "model_spend_vs_budget": float(oracle.expected_cost.sum()) / budget,
                "oracle_at_equal_spend": ref_value,
                "share_at_equal_spend": 1.0,
                "overpromise": 1.0,
                "planner_on_truth": _picked(on_truth.value, oracle.choice),
            }
        ]
        for policy, plan in plans.items():
            got = world.recount(plan.choice)
            value = got[TRUE_FIGURE[objective]]
            model_spend = float(plan.expected_cost.sum())
            equal = world.recount(oracle_at(got["true_spend"]).choice)[TRUE_FIGURE[objective]]
            rows.append(
                {
                    "policy": policy,
                    **got,
                    "true_value": value,
                    "model_value": plan.value,
                    "model_spend": model_spend,
                    "share_of_oracle": _ratio(value, ref_value),
                    "spend_vs_budget": got["true_spend"] / budget,
                    "model_spend_vs_budget": model_spend / budget,
                    "oracle_at_equal_spend": equal,
                    "share_at_equal_spend": _ratio(value, equal),
                    "overpromise": _ratio(plan.value, value) if value > 0 else None,
                    "planner_on_truth": _picked(on_truth.value, plan.choice),
                }
            )
        out["objectives"][str(objective)] = {
            "oracle_gap": oracle.gap,
            "oracle_upper_bound": oracle.upper_bound,
            "plan_s": time.perf_counter() - start,
            "model_true_correlation": {
                name: float(np.corrcoef(model_value[:, k], true_value[:, k])[0, 1])
                for k, name in enumerate(names)
            },
            "rows": rows,
        }
    if fine_tuning:
        out["fine_tuning"] = fine_tuning
    return out


# ------------------------------------------------------------------------------ the report


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def summarize(worlds: list[dict]) -> list[dict]:
    """Median (and range) over seeds of each policy's ratios, by objective and size."""
    records = [
        {"objective": obj, "users": w["users"], "seed": w["seed"], **row}
        for w in worlds
        for obj, res in w["objectives"].items()
        for row in res["rows"]
    ]
    frame = pd.DataFrame(records)
    out = []
    others = sorted(p for p in frame["policy"].unique() if p.startswith(OTHER))
    labels = [ORACLE, *POLICIES, *others]
    order = {name: i for i, name in enumerate([*labels, CEILING])}
    for (obj, users, policy), group in frame.groupby(["objective", "users", "policy"], sort=False):
        entry = {"objective": obj, "users": int(users), "policy": policy, "seeds": len(group)}
        for col in (
            "true_value",
            "share_of_oracle",
            "spend_vs_budget",
            "share_at_equal_spend",
            "overpromise",
        ):
            values = pd.to_numeric(group[col], errors="coerce").dropna()
            entry[col] = float(values.median()) if len(values) else None
            entry[col + "_min"] = float(values.min()) if len(values) else None
            entry[col + "_max"] = float(values.max()) if len(values) else None
        out.append(entry)
    objectives = list(dict.fromkeys(r["objective"] for r in out))
    return sorted(
        out, key=lambda r: (objectives.index(r["objective"]), r["users"], order[r["policy"]])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES), help="customers")
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS), help="world seeds")
    parser.add_argument("--quick", action="store_true", help="one seed per size")
    parser.add_argument(
        "--objectives",
        nargs="*",
        default=[str(o) for o in OBJECTIVES],
        choices=[str(o) for o in Objective],
    )
    parser.add_argument(
        "--architectures",
        nargs="*",
        default=["s_learner", "x_learner", DECISION, SHRINK],
        help="other architectures whose optimal plan is recounted",
    )
    parser.add_argument(
        "--budget-per-candidate", type=float, default=BUDGET_PER_CANDIDATE, help="money"
    )
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "decision_quality.json"
    )
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    console = Console(width=120)

    def code_for(users: int, seed: int, cache: str) -> str:
        return CHILD.format(
            root=str(ROOT), bench=str(ROOT / "benchmarks"), users=users, seed=seed,
            per_candidate=args.budget_per_candidate, objectives=args.objectives, cache=cache,
            architectures=args.architectures,
        )  # fmt: skip

    worlds, total, load_before, load_after = run_worlds(
        console, args.sizes, seeds, "world, models and plans", "couponopt-decision-", code_for
    )
    summary = summarize(worlds)

    table = Table(
        title="Decision quality: each policy's plan against the truth, vs the oracle plan",
        title_justify="left",
    )
    for col in (
        "users",
        "seed",
        "objective",
        "policy",
        "targeted",
        "true value",
        "vs oracle",
        "true spend / budget",
        "vs oracle at equal spend",
        "model / true",
    ):
        table.add_column(col, justify="left" if col in ("objective", "policy") else "right")
    for obj in args.objectives:
        for w in worlds:
            for r in w["objectives"][obj]["rows"]:
                table.add_row(
                    f"{w['users']:,}",
                    str(w["seed"]),
                    obj,
                    r["policy"],
                    f"{r['targeted']:,}",
                    f"{r['true_value']:,.0f}",
                    _fmt(r["share_of_oracle"], ".3f"),
                    f"{r['spend_vs_budget']:.3f}",
                    _fmt(r["share_at_equal_spend"], ".3f"),
                    _fmt(r["overpromise"], ".2f"),
                )
            table.add_section()
    gaps = [res["oracle_gap"] for w in worlds for res in w["objectives"].values()]
    table.caption = (
        f"Budget {args.budget_per_candidate:g} money per candidate (dormant customers). True "
        "value: incremental conversions, or incremental profit (or GMV) in money, "
        "under the world's truth; vs oracle: share of the oracle plan's (the optimal solver on "
        "the true probabilities at the same budget; largest certified gap "
        f"{max(g or 0.0 for g in gaps):.1e}); true spend / budget: expected spend under the "
        "truth; at equal spend: share of the oracle re-solved at the policy's true spend; "
        "model / true: the plan's expected value under the models over its true value (n/a "
        "when the true value is not positive). Each world in its own process, models trained "
        f"afresh. Total {total:.0f} s; 1-minute load average {load_before:.1f} before, "
        f"{load_after:.1f} after ({os.cpu_count()} CPUs)."
    )
    table.caption_justify = "left"
    console.print(table)

    def span(r: dict, col: str) -> str:
        if r[col] is None:
            return "n/a"
        if r["seeds"] == 1:
            return f"{r[col]:.3f}"
        return f"{r[col]:.2f} [{r[col + '_min']:.2f}, {r[col + '_max']:.2f}]"

    cells = [
        (
            r["objective"],
            f"{r['users']:,}",
            r["policy"],
            span(r, "share_of_oracle"),
            span(r, "spend_vs_budget"),
            span(r, "share_at_equal_spend"),
            span(r, "overpromise"),
        )
        for r in summary
    ]
    brief = Table(
        title=f"By size: median over {len(seeds)} seed(s) [min, max]",
        title_justify="left",
        caption="equal-spend share: vs the oracle re-solved at the policy's true spend.",
        caption_justify="left",
    )
    for i, col in enumerate(
        (
            "objective",
            "users",
            "policy",
            "vs oracle",
            "true spend/budget",
            "equal-spend share",
            "model / true",
        )
    ):
        width = max((len(c[i]) for c in cells), default=0)  # values unwrapped, headers wrap
        left = col in ("objective", "policy")
        brief.add_column(col, justify="left" if left else "right", min_width=width)
    groups = [(r["objective"], r["users"]) for r in summary]
    for i, row in enumerate(cells):
        if i and groups[i] != groups[i - 1]:
            brief.add_section()
        brief.add_row(*row)
    console.print(brief)
    write_json(
        args.json,
        {
            "benchmark": "decision_quality",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "sizes": args.sizes,
            "seeds": seeds,
            "objectives": args.objectives,
            "budget_per_candidate": args.budget_per_candidate,
            "reference": "oracle: the optimal policy's solver on the world's true values",
            "total_s": total,
            "load_average_1min": {"before": load_before, "after": load_after},
            "worlds": worlds,
            "summary": summary,
        },
    )
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
