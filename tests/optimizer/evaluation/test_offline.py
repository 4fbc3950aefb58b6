"""The offline estimators on a six-row log whose every figure is worked out by hand.

Rows (menu: the default four coupons; only ``5off49`` and no coupon are logged; send cost 0.10;
margin 0.3), propensity per row, so the design check leaves them alone:

====  =======  ===========  =========  ===========  ========
user  arm      propensity   converted  order value  discount
====  =======  ===========  =========  ===========  ========
1     5off49   0.5          1          60           5
2     5off49   0.5          0          0            0
3     none     0.5          1          40           0
4     none     0.5          0          0            0
5     5off49   0.25         1          50           5
6     none     0.75         0          0            0
====  =======  ===========  =========  ===========  ========

Plan "all": everyone gets 5off49. Matched rows 1, 2, 5 weigh 2, 2, 4; the control rows 3, 4, 6
weigh 2, 2, 4/3. IPW per customer: conversions (2 + 4 - 2) / 6, GMV (120 + 200 - 80) / 6,
cost (2 x 5.1 + 2 x 0.1 + 4 x 5.1) / 6. Self-normalised: conversions 6/8 - 2/(16/3), GMV
320/8 - 80/(16/3), cost 30.8/8.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InputError
from optimizer.evaluation import OutcomePredictions, logged_rows, plan_actions, policy_values
from optimizer.evaluation.offline import METRICS
from optimizer.io import DEFAULT_MENU

MARGIN = 0.3


def _log(users: list[int] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": users or [1, 2, 3, 4, 5, 6],
            "assignment": "randomized",
            "denomination": ["5off49", "5off49", "none", "none", "5off49", "none"],
            "propensity": [0.5, 0.5, 0.5, 0.5, 0.25, 0.75],
            "converted": [1, 0, 1, 0, 1, 0],
            "redeemed": [1, 0, 0, 0, 1, 0],
            "order_value": [60.0, 0.0, 40.0, 0.0, 50.0, 0.0],
            "discount": [5.0, 0.0, 0.0, 0.0, 5.0, 0.0],
        }
    )


def _rows(log: pd.DataFrame | None = None):
    return logged_rows(_log() if log is None else log, DEFAULT_MENU, sms_cost=0.10)


def _plans(rows) -> dict[str, np.ndarray]:
    return {"all": np.zeros(rows.n_rows, dtype=np.int16), "none": np.full(rows.n_rows, 4)}


def test_hand_worked_ipw_and_self_normalised_figures():
    rows = _rows()
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw", "snipw"), bootstrap=0
    )
    ipw = {"conv": 4 / 6, "gmv": 240 / 6, "cost": 30.8 / 6}
    snipw = {"conv": 6 / 8 - 2 / (16 / 3), "gmv": 320 / 8 - 80 / (16 / 3), "cost": 30.8 / 8}
    for name, want in (("ipw", ipw), ("snipw", snipw)):
        got = {
            "conv": values.value("all", "incremental_conversions", name),
            "gmv": values.value("all", "incremental_gmv", name),
            "cost": values.value("all", "campaign_cost", name),
        }
        assert got == pytest.approx(want, rel=1e-12)
        assert values.value("all", "roi", name) == pytest.approx(want["gmv"] / want["cost"])
        profit = MARGIN * want["gmv"] - want["cost"]
        assert values.value("all", "incremental_profit", name) == pytest.approx(profit)
        assert values.value("none", "incremental_conversions", name) == 0.0
    total = values.estimates.query("plan == 'all' and estimator == 'ipw' and metric == 'roi'")
    assert total["total"].iloc[0] == pytest.approx(values.value("all", "roi", "ipw"))  # unscaled


def test_influence_standard_error_clusters_a_customers_rows():
    rows = _rows(_log([1, 1, 3, 4, 5, 6]))  # customer 1 logged in two campaigns
    values = policy_values(rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0)
    term = np.array([2.0, 0.0, -2.0, 0.0, 4.0, 0.0])  # w Y under the plan minus under none
    psi = term - term.mean()
    sums = np.array([psi[0] + psi[1], psi[2], psi[3], psi[4], psi[5]])
    se = np.sqrt((sums**2).sum() / 36 * 5 / 4)
    row = values.estimates.query(
        "plan == 'all' and estimator == 'ipw' and metric == 'incremental_conversions'"
    ).iloc[0]
    assert row["se"] == pytest.approx(se, rel=1e-12)
    assert row["low"] == pytest.approx(row["estimate"] - 1.959964 * se, rel=1e-6)
    assert values.customers == 5 and values.rows == 6


def test_clipping_cuts_weights_and_says_how_many():
    rows = _rows()
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0, clip=3.0
    )
    assert values.value("all", "incremental_conversions", "ipw") == pytest.approx((2 + 3 - 2) / 6)
    clipped = values.plans.set_index("plan")["clipped_rows"]
    assert clipped["all"] == 1 and clipped["none"] == 0
    with pytest.raises(InputError, match="at least 1"):
        policy_values(rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), clip=0.5)


def test_effective_sample_size_and_plan_shares():
    rows = _rows()
    values = policy_values(rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0)
    d = values.diagnostics.set_index(["plan", "arm"])
    assert d.loc[("all", "5off49"), "ess"] == pytest.approx(64 / 24)  # weights 2, 2, 4
    assert d.loc[("all", "5off49"), "matched_rows"] == 3
    assert d.loc[("all", "5off49"), "plan_share"] == 1.0
    assert d.loc[("none", "none"), "ess"] == pytest.approx((16 / 3) ** 2 / (8 + 16 / 9))


def test_doubly_robust_with_a_zero_outcome_model_is_ipw():
    rows = _rows()
    zero = np.zeros((rows.n_rows, len(rows.arms)))
    outcomes = OutcomePredictions(zero, zero, zero, "none", 2)
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw", "dr"), outcomes=outcomes,
        bootstrap=0,
    )  # fmt: skip
    for metric in ("incremental_conversions", "incremental_gmv", "campaign_cost"):
        assert values.value("all", metric, "dr") == pytest.approx(
            values.value("all", metric, "ipw")
        )
    # a perfect constant model of the control arm moves the estimate to it exactly
    mu = np.zeros((rows.n_rows, len(rows.arms)))
    mu[:, 4] = 0.25
    outcomes = OutcomePredictions(mu, zero, zero, "constant", 2)
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("dr",), outcomes=outcomes, bootstrap=0
    )
    alone = np.array([0, 0, 2, 2, 0, 4 / 3])
    y = np.array([1, 0, 1, 0, 1, 0])
    base = (0.25 + alone * (y - 0.25)).mean()
    assert values.value("all", "incremental_conversions", "dr") == pytest.approx(
        4 / 6 + 2 / 6 - base
    )


def test_bootstrap_is_seeded_and_paired():
    rows = _rows()
    kwargs = {"margin_rate": MARGIN, "estimators": ("ipw",), "differences": [("all", "none")]}
    first = policy_values(rows, _plans(rows), bootstrap=50, seed=3, **kwargs)
    again = policy_values(rows, _plans(rows), bootstrap=50, seed=3, **kwargs)
    other = policy_values(rows, _plans(rows), bootstrap=50, seed=4, **kwargs)
    pd.testing.assert_frame_equal(first.estimates, again.estimates)
    assert not first.estimates["boot_low"].equals(other.estimates["boot_low"])
    # "none" is 0 in every replicate, so the paired difference's replicates are the plan's own
    diff = first.differences.set_index("metric").loc["incremental_conversions"]
    plan = first.estimates.query("plan == 'all'").set_index("metric").loc["incremental_conversions"]
    assert diff["boot_low"] == pytest.approx(plan["boot_low"])


def test_a_plan_arm_the_log_never_randomized():
    rows = _rows()
    plans = {"ten": np.ones(rows.n_rows, dtype=np.int16), "none": np.full(rows.n_rows, 4)}
    with pytest.raises(InputError, match="never randomized"):
        policy_values(rows, plans, margin_rate=MARGIN, estimators=("ipw",), bootstrap=0)
    flagged = policy_values(
        rows, plans, margin_rate=MARGIN, estimators=("ipw",), bootstrap=0, unrandomized="flag"
    )
    assert flagged.plans.set_index("plan").loc["ten", "unrandomized_share"] == 1.0


def test_plan_files_map_customers_to_arms():
    rows = _rows()
    plan = pd.DataFrame({"user_id": [6, 5, 4, 3, 2, 1], "denomination": ["none", "5off49"] * 3})
    actions = plan_actions(plan, rows)
    assert actions.tolist() == [0, 4, 0, 4, 0, 4]
    partial = plan_actions(plan.head(2), rows)
    assert partial.tolist() == [-2, -2, -2, -2, 0, 4]
    with pytest.raises(InputError, match="does not cover"):
        policy_values(rows, {"p": partial}, margin_rate=MARGIN, estimators=("ipw",))
    with pytest.raises(InputError, match="twice"):
        plan_actions(pd.concat([plan, plan.head(1)]), rows)


def test_bad_logs_are_refused():
    with pytest.raises(InputError, match="not on the menu"):
        _rows(_log().assign(denomination=["5off49", "15off20", "none", "none", "5off49", "none"]))
    with pytest.raises(InputError, match="outside"):
        _rows(_log().assign(propensity=[0.5, 0.5, 0.5, 0.0, 0.25, 0.75]))
    with pytest.raises(InputError, match="no randomized rows"):
        _rows(_log().assign(assignment="manual"))
    with pytest.raises(InputError, match="add up to"):
        logged_rows(_log().drop(columns="propensity"), DEFAULT_MENU, sms_cost=0.1,
                    propensity={"5off49": 0.5, "none": 0.6})  # fmt: skip
    with pytest.raises(InputError, match="do not describe this log"):
        big = pd.concat([_log()] * 50, ignore_index=True).assign(user_id=range(300))
        logged_rows(big.drop(columns="propensity"), DEFAULT_MENU, sms_cost=0.1,
                    propensity={"5off49": 0.1, "none": 0.9})  # fmt: skip


def test_a_difference_of_plans_of_different_sizes_has_no_total():
    rows = _rows()
    values = policy_values(
        rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0,
        customers={"all": 100, "none": 50}, differences=[("all", "none")],
    )  # fmt: skip
    diff = values.differences.set_index("metric").loc["incremental_conversions"]
    assert diff["estimate"] == pytest.approx(4 / 6) and np.isnan(diff["total"])
    plan = values.estimates.query("plan == 'all' and metric == 'incremental_conversions'")
    assert plan["total"].iloc[0] == pytest.approx(100 * 4 / 6)


# --------------------------------------------------------------- recounts from the definitions

ARMS = (*DEFAULT_MENU.names, "none")
NONE = len(ARMS) - 1
Z95 = 1.959963984540054


def _ratio(a: float, b: float) -> float:
    return a / b if b != 0 else float("nan")


def _terms(rows, act, estimator, mu=None, clip=None) -> list[list[float]]:
    """Each row's terms: IPW and DR (conversions, GMV, cost), incremental over no treatment;
    self-normalised (w Y under the plan, w, w Y under none, w under none)."""
    out = []
    for i in range(rows.n_rows):
        w = 1.0 / rows.propensity[i]
        if clip is not None:
            w = min(w, clip)
        y = [rows.converted[i], rows.gmv[i], rows.cost[i]]
        got, plan = int(rows.arm[i]), int(act[i])
        w_plan = w if got == plan else 0.0
        w_none = w if got == NONE else 0.0
        if estimator == "ipw":
            out.append(
                [w_plan * y[0] - w_none * y[0], w_plan * y[1] - w_none * y[1], w_plan * y[2]]
            )
        elif estimator == "snipw":
            out.append([w_plan * y[0], w_plan * y[1], w_plan * y[2], w_plan,
                        w_none * y[0], w_none * y[1], w_none])  # fmt: skip
        else:
            term = []
            for k in range(3):
                model = mu[k][i]
                value = (model[plan] if plan >= 0 else 0.0) + w_plan * (y[k] - model[got])
                base = 0.0 if k == 2 else model[NONE] + w_none * (y[k] - model[NONE])
                term.append(value - base)
            out.append(term)
    return out


def _figures(means: list[float], estimator: str, margin: float) -> list[float]:
    """(incremental conversions, incremental GMV, cost, ROI, profit) from the terms' means."""
    if estimator == "snipw":
        conv = _ratio(means[0], means[3]) - _ratio(means[4], means[6])
        gmv = _ratio(means[1], means[3]) - _ratio(means[5], means[6])
        cost = _ratio(means[2], means[3])
    else:
        conv, gmv, cost = means[:3]
    roi = gmv / cost if cost > 0 else float("nan")
    return [conv, gmv, cost, roi, margin * gmv - cost]


def _influence(terms, estimator: str, margin: float) -> list[list[float]]:
    """Each row's influence on the five figures (the delta method for ratios)."""
    m = len(terms)
    means = [sum(t[k] for t in terms) / m for k in range(len(terms[0]))]
    conv, gmv, cost, roi, _ = _figures(means, estimator, margin)
    out = []
    for t in terms:
        if estimator == "snipw":
            plan = [_ratio(t[k] - t[3] * _ratio(means[k], means[3]), means[3]) for k in range(3)]
            none = [_ratio(t[4 + k] - t[6] * _ratio(means[4 + k], means[6]), means[6])
                    for k in range(2)]  # fmt: skip
            psi = [plan[0] - none[0], plan[1] - none[1], plan[2]]
        else:
            psi = [t[k] - means[k] for k in range(3)]
        psi_roi = (psi[1] - gmv / cost * psi[2]) / cost if cost > 0 else float("nan")
        out.append([psi[0], psi[1], psi[2], psi_roi, margin * psi[1] - psi[2]])
    return out


def _cluster_se(psi, users) -> list[float]:
    """Standard error of a row mean with customers as clusters: sum(S_c^2) / m^2 x G / (G - 1)."""
    m = len(psi)
    sums: dict[int, list[float]] = {}
    for u, p in zip(users, psi, strict=True):
        sums[int(u)] = [a + b for a, b in zip(sums.get(int(u), [0.0] * 5), p, strict=True)]
    g = len(sums)
    return [
        math.sqrt(sum(s[j] ** 2 for s in sums.values()) / m**2 * g / max(g - 1, 1))
        for j in range(5)
    ]


def _recount(rows, act, estimator, margin, mu=None, clip=None):
    """The five figures and their standard errors, and the rows' influence."""
    terms = _terms(rows, act, estimator, mu, clip)
    m = len(terms)
    means = [sum(t[k] for t in terms) / m for k in range(len(terms[0]))]
    psi = _influence(terms, estimator, margin)
    return _figures(means, estimator, margin), _cluster_se(psi, rows.user_id), psi, terms


def _boot_replicates(rows, terms, estimator, margin, draws) -> np.ndarray:
    """The five figures of each replicate: every row weighs its customer's Poisson draw."""
    out = []
    for r in range(len(next(iter(draws.values())))):
        weights = [draws[int(u)][r] for u in rows.user_id]
        total = sum(weights)
        if total == 0:
            out.append([float("nan")] * 5)
            continue
        q = len(terms[0])
        means = [sum(w * t[k] for w, t in zip(weights, terms, strict=True)) / total
                 for k in range(q)]  # fmt: skip
        out.append(_figures(means, estimator, margin))
    return np.array(out)


def _draws(rows, replicates: int, seed: int, cells: int) -> dict[int, np.ndarray]:
    """Poisson(1) draws per customer in increasing id order, ``cells // replicates`` customers
    (at least one) per draw of the seeded generator."""
    users = sorted({int(u) for u in rows.user_id})
    rng = np.random.default_rng(seed)
    step = max(1, cells // replicates)
    blocks = [rng.poisson(1.0, size=(replicates, len(users[i : i + step])))
              for i in range(0, len(users), step)]  # fmt: skip
    table = np.hstack(blocks)
    return {u: table[:, j] for j, u in enumerate(users)}


def _interval(reps: np.ndarray) -> tuple[float, float]:
    finite = reps[np.isfinite(reps)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [0.025, 0.975])
    return float(low), float(high)


def _random_rows(seed: int = 5):
    """Nine customers, one to three rows each (ids shuffled), arms 5off49, 10off99 and none
    with per-row propensities; only 10off99 costs less than 1 a customer. Plans: each customer
    one of the logged arms (``mixed``), everyone one arm, and ``odd``: ``mixed`` with one
    customer given a treatment the log does not know and one an arm it never randomized."""
    from optimizer.evaluation.logged import LoggedRows

    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.arange(100, 109))
    user = np.repeat(ids, rng.integers(1, 4, ids.size))
    rng.shuffle(user)
    m = user.size
    arm = rng.choice([0, 1, NONE], size=m)
    converted = (rng.random(m) < 0.5).astype(float)
    gmv = converted * rng.uniform(20, 80, m)
    cost = np.where(arm == NONE, 0.0, 0.1 + np.where(arm == 0, 5.0, 0.0) * converted)
    rows = LoggedRows(ARMS, user.astype(np.int64), arm.astype(np.int16),
                      rng.choice([0.2, 0.25, 0.4, 0.5], size=m), converted, gmv, cost)  # fmt: skip
    mu = [rng.uniform(0, 1, (m, 5)), rng.uniform(0, 60, (m, 5)), rng.uniform(0, 6, (m, 5))]
    for model in mu:  # no model value for the arms the log never randomized (20off199, 50off399)
        model[:, 2:4] = 0.0
    per_customer = dict(zip(ids.tolist(), rng.choice([0, 1, NONE], size=ids.size), strict=True))
    mixed = np.array([per_customer[int(u)] for u in user])
    odd = mixed.copy()
    odd[user == ids[0]] = -1  # a treatment the log does not know
    odd[user == ids[1]] = 2  # never randomized
    plans = {"mixed": mixed, "all": np.zeros(m, dtype=int), "ten": np.ones(m, dtype=int),
             "odd": odd, "none": np.full(m, NONE)}  # fmt: skip
    return rows, plans, mu


def test_random_log_figures_and_intervals_match_a_recount():
    """Every figure, standard error, interval and total of IPW, SNIPW and DR, with and without
    clipping, on a log whose customers have several rows, against plain loops over the rows;
    with the plans' summary and the per-arm diagnostics."""
    rows, plans, mu = _random_rows()
    assert set(rows.arm.tolist()) == {0, 1, NONE} and len(set(rows.user_id.tolist())) == 9
    outcomes = OutcomePredictions(*mu, "random", 3)
    customers = {"mixed": 1000, "all": 1000, "ten": 400, "odd": 3, "none": 7}
    for clip in (None, 3.0):
        values = policy_values(
            rows, plans, margin_rate=MARGIN, estimators=("ipw", "snipw", "dr"), outcomes=outcomes,
            customers=customers, bootstrap=0, clip=clip, unrandomized="flag",
        )  # fmt: skip
        table = values.estimates.set_index(["plan", "estimator", "metric"])
        for name, act in plans.items():
            for estimator in ("ipw", "snipw", "dr"):
                want, se, _, _ = _recount(rows, act, estimator, MARGIN, mu, clip)
                for j, metric in enumerate(METRICS):
                    got = table.loc[(name, estimator, metric)]
                    where = (clip, name, estimator, metric)
                    assert got["estimate"] == pytest.approx(want[j], rel=1e-9, nan_ok=True), where
                    assert got["se"] == pytest.approx(se[j], rel=1e-9, nan_ok=True), where
                    low, high = want[j] - Z95 * se[j], want[j] + Z95 * se[j]
                    assert got["low"] == pytest.approx(low, rel=1e-9, nan_ok=True), where
                    assert got["high"] == pytest.approx(high, rel=1e-9, nan_ok=True), where
                    factor = 1.0 if metric == "roi" else customers[name]
                    for column, figure in (("total", want[j]), ("total_low", low),
                                           ("total_high", high)):  # fmt: skip
                        assert got[column] == pytest.approx(
                            figure * factor, rel=1e-9, nan_ok=True
                        ), where
                    assert np.isnan(got[["boot_low", "boot_high"]].astype(float)).all()
                    assert np.isnan(got[["total_boot_low", "total_boot_high"]].astype(float)).all()
        # only 10off99 costs less than 1 a customer, and still has a ROI and its interval
        assert 0 < values.value("ten", "campaign_cost", "ipw") < 1
        assert np.isfinite(table.loc[("ten", "ipw", "roi"), ["estimate", "se"]].astype(float)).all()
        logged = {int(a) for a in rows.arm}
        summary = values.plans.set_index("plan")
        diagnostics = values.diagnostics.set_index(["plan", "arm"])
        for name, act in plans.items():
            weights = [1 / p for p, a, b in zip(rows.propensity, rows.arm, act, strict=True)
                       if a == b]  # fmt: skip
            kept = [min(w, clip) if clip else w for w in weights]
            never = [b == -1 or b not in logged for b in act]
            want = {
                "customers": customers[name], "valued_rows": rows.n_rows,
                "unrandomized_share": sum(never) / len(act),
                "clipped_rows": sum(w > clip for w in weights) if clip else 0,
                "max_weight": max(kept) if kept else 0.0,
            }  # fmt: skip
            assert summary.loc[name].to_dict() == pytest.approx(want, rel=1e-12), (clip, name)
            for a, arm in enumerate(ARMS):
                w = [min(1 / p, clip or np.inf) for p, got, b in
                     zip(rows.propensity, rows.arm, act, strict=True) if got == b == a]  # fmt: skip
                row = diagnostics.loc[(name, arm)]
                assert row["plan_share"] == pytest.approx(sum(b == a for b in act) / len(act))
                assert row["matched_rows"] == len(w)
                ess = sum(w) ** 2 / sum(v * v for v in w) if w else 0.0
                assert row["ess"] == pytest.approx(ess, rel=1e-12), (clip, name, arm)
        assert summary.loc["odd", "unrandomized_share"] > 0
        assert values.rows == rows.n_rows and values.customers == 9 and values.clip == clip


def test_paired_differences_match_a_recount():
    """A difference's figures are the plans' figures subtracted; its standard error is that of
    the rows' influence subtracted (the same customers as clusters); its total needs one
    customer count. Pairs name plans in any order, a plan in several pairs."""
    rows, plans, mu = _random_rows(seed=8)
    plans = {k: plans[k] for k in ("mixed", "all", "ten", "none")}
    outcomes = OutcomePredictions(*mu, "random", 3)
    pairs = [("none", "mixed"), ("mixed", "all"), ("ten", "all"), ("all", "ten")]
    customers = {"mixed": 500, "all": 500, "ten": 400, "none": 500}
    values = policy_values(
        rows, plans, margin_rate=MARGIN, estimators=("ipw", "snipw", "dr"), outcomes=outcomes,
        customers=customers, differences=pairs, bootstrap=0,
    )  # fmt: skip
    table = values.differences.set_index(["plan", "estimator", "metric"])
    assert len(values.differences) == len(pairs) * 3 * len(METRICS)
    for a, b in pairs:
        for estimator in ("ipw", "snipw", "dr"):
            fa, _, psi_a, _ = _recount(rows, plans[a], estimator, MARGIN, mu)
            fb, _, psi_b, _ = _recount(rows, plans[b], estimator, MARGIN, mu)
            paired = [[x - y for x, y in zip(pa, pb, strict=True)]
                      for pa, pb in zip(psi_a, psi_b, strict=True)]  # fmt: skip
            se = _cluster_se(paired, rows.user_id)
            scale = customers[a] if customers[a] == customers[b] else float("nan")
            for j, metric in enumerate(METRICS):
                got = table.loc[(f"{a} - {b}", estimator, metric)]
                where = (a, b, estimator, metric)
                assert got["estimate"] == pytest.approx(fa[j] - fb[j], rel=1e-9, nan_ok=True), where
                assert got["se"] == pytest.approx(se[j], rel=1e-9, nan_ok=True), where
                factor = 1.0 if metric == "roi" else scale
                high = (fa[j] - fb[j] + Z95 * se[j]) * factor
                assert got["total_high"] == pytest.approx(high, rel=1e-9, nan_ok=True), where


@pytest.mark.parametrize("cells", [None, 1, 3 * 30])
def test_bootstrap_replicates_match_a_recount(monkeypatch, cells):
    """The customer-level Poisson bootstrap, recounted replicate by replicate: each customer's
    rows weigh its Poisson(1) draw, drawn in increasing id order ``cells // replicates``
    customers at a time; percentile intervals of the finite replicates; a difference's
    replicates are the plans' replicates subtracted."""
    from optimizer.evaluation import offline

    replicates, seed = 30, 4
    if cells is not None:
        monkeypatch.setattr(offline, "_BOOT_CHUNK_CELLS", cells)
    rows, plans, mu = _random_rows(seed=6)
    plans = {k: plans[k] for k in ("mixed", "all", "none")}
    outcomes = OutcomePredictions(*mu, "random", 3)
    values = policy_values(
        rows, plans, margin_rate=MARGIN, estimators=("ipw", "snipw", "dr"), outcomes=outcomes,
        customers={"mixed": 10, "all": 10, "none": 10}, differences=[("mixed", "all")],
        bootstrap=replicates, seed=seed, clip=4.0,
    )  # fmt: skip
    draws = _draws(rows, replicates, seed, cells or offline._BOOT_CHUNK_CELLS)
    reps = {}
    for name, act in plans.items():
        for estimator in ("ipw", "snipw", "dr"):
            terms = _terms(rows, act, estimator, mu, clip=4.0)
            reps[name, estimator] = _boot_replicates(rows, terms, estimator, MARGIN, draws)
    estimates = values.estimates.set_index(["plan", "estimator", "metric"])
    differences = values.differences.set_index(["plan", "estimator", "metric"])
    for (name, estimator), figures in reps.items():
        for j, metric in enumerate(METRICS):
            low, high = _interval(figures[:, j])
            got = estimates.loc[(name, estimator, metric)]
            factor = 1.0 if metric == "roi" else 10.0
            want = [low, high, low * factor, high * factor]
            columns = ["boot_low", "boot_high", "total_boot_low", "total_boot_high"]
            assert got[columns].astype(float).tolist() == pytest.approx(
                want, rel=1e-9, nan_ok=True
            ), (name, estimator, metric)
    for estimator in ("ipw", "snipw", "dr"):
        paired = reps["mixed", estimator] - reps["all", estimator]
        for j, metric in enumerate(METRICS):
            got = differences.loc[("mixed - all", estimator, metric)]
            assert got[["boot_low", "boot_high"]].astype(float).tolist() == pytest.approx(
                list(_interval(paired[:, j])), rel=1e-9, nan_ok=True
            ), (estimator, metric)
    assert np.isfinite(values.estimates.query("plan == 'mixed'")["boot_low"]).all()


def test_a_doubly_robust_cost_of_exactly_zero_has_no_roi():
    """Two customers; the plan treats both with 5off49. A cost model that predicts 2.5 for the
    treated row (cost 1, weight 2: term 2.5 + 2 x (1 - 2.5) = -0.5) and 0.5 for the other makes
    the DR cost terms -0.5 and 0.5: a cost of exactly 0, so no ROI and no ROI interval.
    Hand-worked influence: conversions (1, -1), GMV (50, -50), cost (-0.5, 0.5), profit
    (15.5, -15.5); with two clusters se = sqrt(sum psi^2 / 4 x 2 / 1)."""
    from optimizer.evaluation.logged import LoggedRows

    rows = LoggedRows(ARMS, np.array([1, 2]), np.array([0, NONE], dtype=np.int16),
                      np.array([0.5, 0.5]), np.array([1.0, 0.0]), np.array([50.0, 0.0]),
                      np.array([1.0, 0.0]))  # fmt: skip
    zero = np.zeros((2, 5))
    cost = zero.copy()
    cost[:, 0] = [2.5, 0.5]
    outcomes = OutcomePredictions(zero, zero, cost, "linear", 2)
    values = policy_values(rows, {"all": np.zeros(2, dtype=int)}, margin_rate=MARGIN,
                           estimators=("dr",), outcomes=outcomes, bootstrap=0)  # fmt: skip
    got = values.estimates.set_index("metric")
    assert got.loc["incremental_conversions", ["estimate", "se"]].tolist() == pytest.approx([1, 1])
    assert got.loc["incremental_gmv", ["estimate", "se"]].tolist() == pytest.approx([50, 50])
    assert got.loc["campaign_cost", ["estimate", "se"]].tolist() == pytest.approx([0, 0.5])
    assert got.loc["incremental_profit", ["estimate", "se"]].tolist() == pytest.approx([15, 15.5])
    assert np.isnan(got.loc["roi", ["estimate", "se", "low", "high"]].astype(float)).all()


def test_empty_matches_and_empty_replicates_raise_no_warnings():
    """A plan the log never randomized (flagged) has no self-normalised value; a replicate that
    draws no customer has no figures; a plan that costs nothing has no ROI: NaN, silently."""
    import warnings

    from optimizer.evaluation.logged import LoggedRows

    rows = LoggedRows(ARMS, np.array([1, 2]), np.array([0, NONE], dtype=np.int16),
                      np.array([0.5, 0.5]), np.array([1.0, 1.0]), np.array([60.0, 40.0]),
                      np.array([5.1, 0.0]))  # fmt: skip
    zero = np.zeros((2, 5))
    plans = {"all": np.zeros(2, dtype=int), "ten": np.ones(2, dtype=int), "none": np.full(2, 4)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = policy_values(
            rows, plans, margin_rate=MARGIN, estimators=("ipw", "snipw", "dr"),
            outcomes=OutcomePredictions(zero, zero, zero, "none", 2), bootstrap=200,
            unrandomized="flag",
        )  # fmt: skip
    assert np.isnan(values.value("ten", "incremental_conversions", "snipw"))
    assert values.plans.set_index("plan").loc["ten", ["max_weight", "clipped_rows"]].tolist() == [
        0.0,
        0,
    ]
    assert values.diagnostics.query("plan == 'ten'")["ess"].tolist() == [0.0] * len(ARMS)
    assert values.value("ten", "incremental_gmv", "ipw") == pytest.approx(-40.0)
    assert np.isnan(values.value("ten", "roi", "ipw"))
    assert np.isnan(values.value("none", "roi", "ipw"))
    ipw = values.estimates.query("plan == 'all' and estimator == 'ipw'").set_index("metric")
    assert np.isfinite(ipw.loc["incremental_conversions", ["boot_low", "boot_high"]]).all()


def test_the_plans_arms_the_log_never_randomized():
    """With a design, an arm of P = 0 was never randomized (arm 0 included); without one, an arm
    no row received (once is enough); a treatment the log does not know is never randomized."""
    design = {"5off49": 0.5, "none": 0.5}
    rows = logged_rows(_log().drop(columns="propensity"), DEFAULT_MENU, sms_cost=0.1,
                       propensity=design)  # fmt: skip
    mix = {"mix": np.array([1, 2, 0, 4, 0, 4])}
    error = _error(lambda: policy_values(rows, mix, margin_rate=MARGIN, estimators=("ipw",)))
    assert (error.message, error.key) == (
        "plan 'mix' gives 33.3% of the valued rows an arm the log never randomized for them "
        "(first: 10off99); the log cannot value it",
        "plans",
    )
    flagged = policy_values(rows, mix, margin_rate=MARGIN, estimators=("ipw",), bootstrap=0,
                            unrandomized="flag")  # fmt: skip
    assert flagged.plans.loc[0, "unrandomized_share"] == pytest.approx(2 / 6)
    ten = _log().assign(denomination=["10off99", "10off99", "none", "none", "10off99", "none"])
    rows = logged_rows(ten.drop(columns="propensity"), DEFAULT_MENU, sms_cost=0.1,
                       propensity={"10off99": 0.5, "none": 0.5})  # fmt: skip
    error = _error(lambda: policy_values(rows, {"p": np.zeros(6, dtype=int)}, margin_rate=MARGIN,
                                         estimators=("ipw",)))  # fmt: skip
    assert error.message.startswith("plan 'p' gives 100.0% of the valued rows an arm the log ")
    assert "(first: 5off49)" in error.message
    # no design: an arm received once was randomized; one never received was not
    once = _rows(_log().assign(denomination=["5off49", "10off99", "none", "none", "5off49", "none"],
                               propensity=[0.5, 1 / 6, 0.5, 0.5, 0.25, 0.75]))  # fmt: skip
    values = policy_values(once, {"ten": np.ones(6, dtype=int)}, margin_rate=MARGIN,
                           estimators=("ipw",), bootstrap=0)  # fmt: skip
    assert values.plans.loc[0, "unrandomized_share"] == 0.0
    no_control = _rows(_log().assign(denomination=["5off49", "10off99"] * 3,
                                     propensity=[0.5, 0.4, 0.25, 0.5, 0.4, 0.5]))  # fmt: skip
    error = _error(lambda: policy_values(no_control, {"n": np.full(6, 4)}, margin_rate=MARGIN,
                                         estimators=("ipw",)))  # fmt: skip
    assert "(first: none)" in error.message
    rows = _rows()
    unknown = {"u": np.array([-1, 0, 0, 4, 0, 4])}
    error = _error(lambda: policy_values(rows, unknown, margin_rate=MARGIN, estimators=("ipw",)))
    assert error.message == (
        "plan 'u' gives 16.7% of the valued rows an arm the log never randomized for them "
        "(first: an arm the log does not know); the log cannot value it"
    )
    flagged = policy_values(rows, unknown, margin_rate=MARGIN, estimators=("ipw",), bootstrap=0,
                            unrandomized="flag")  # fmt: skip
    assert flagged.plans.loc[0, "unrandomized_share"] == pytest.approx(1 / 6)
    # the unknown row counts as nothing under the plan: rows 2 and 5 (weights 2 and 4) convert
    assert flagged.value("u", "incremental_conversions", "ipw") == pytest.approx((4 - 2) / 6)


def _error(call) -> InputError:
    with pytest.raises(InputError) as caught:
        call()
    return caught.value


def test_bad_arguments_name_the_argument():
    """Every refused argument: the exact message and the key the command line maps to a flag."""
    rows = _rows()
    plans = _plans(rows)

    def refused(**kwargs) -> tuple:
        args = {"rows": rows, "plans": plans, "margin_rate": MARGIN, "estimators": ("ipw",)}
        error = _error(lambda: policy_values(**{**args, **kwargs}))
        return error.message, error.key, error.source, error.column

    assert refused(estimators=("ipw", "bogus", "zzz")) == (
        "unknown estimator 'bogus'", "estimators", None, None,
    )  # fmt: skip
    assert refused(estimators=()) == ("no estimator chosen", "estimators", None, None)
    # the missing outcome models are named before any plan is looked at
    assert refused(estimators=("dr",), plans={"p": np.full(6, -2)}) == (
        "the doubly robust estimate needs outcome models", "estimators", None, None,
    )  # fmt: skip
    assert refused(unrandomized="maybe") == (
        "must be 'refuse' or 'flag'", "unrandomized", None, None,
    )  # fmt: skip
    assert refused(clip=0.99) == (
        "must be at least 1 (a weight is 1 / propensity)", "clip", None, None,
    )  # fmt: skip
    assert refused(bootstrap=-1) == ("must be 0 or more", "bootstrap", None, None)
    assert refused(rows=rows.subset(np.zeros(6, dtype=bool))) == (
        "no log rows to value the plans on", "log", None, None,
    )  # fmt: skip
    assert refused(differences=[("all", "nope")]) == (
        "no plan named 'nope' to compare", "differences", None, None,
    )  # fmt: skip
    assert refused(plans={"short": np.zeros(5, dtype=int)}) == (
        "plan 'short' has 5 actions for 6 rows", "plans", None, None,
    )  # fmt: skip
    for bad in (-2, -3, 5):
        act = np.array([0, 0, bad, 4, 0, 4])
        assert refused(plans={"p": act}) == (
            "plan 'p' does not cover every valued row", "plans", None, None,
        ), bad  # fmt: skip
    # a clip of 1 makes every weight 1; one row is a log
    values = policy_values(rows, plans, margin_rate=MARGIN, estimators=("ipw",), clip=1.0,
                           bootstrap=0)  # fmt: skip
    assert values.value("all", "incremental_conversions", "ipw") == pytest.approx((2 - 1) / 6)
    values = policy_values(rows, plans, margin_rate=MARGIN, estimators=("ipw",), clip=1.5,
                           bootstrap=0)  # fmt: skip
    assert values.value("all", "incremental_conversions", "ipw") == pytest.approx((3 - 1.5) / 6)
    one = rows.subset(np.array([0]))
    values = policy_values(one, {"all": np.zeros(1, dtype=int)}, margin_rate=MARGIN,
                           estimators=("ipw",), bootstrap=0)  # fmt: skip
    assert values.value("all", "incremental_conversions", "ipw") == 2.0


def test_the_doubly_robust_terms_need_outcome_models():
    """The per-row terms refuse DR without models themselves, not only through policy_values."""
    from optimizer.evaluation import offline

    rows = _rows()
    prepared, _ = offline._sorted_rows(rows, None, None)
    error = _error(lambda: offline._components(prepared, np.zeros(6, dtype=int), "dr"))
    assert (error.message, error.key) == (
        "the doubly robust estimate needs outcome models", "estimators",
    )  # fmt: skip


def test_the_result_object_reads_tables_and_json():
    """``value`` defaults to DR and names what it misses; ``table`` stacks the plans then the
    differences; ``to_dict`` carries every field; the defaults: 200 replicates, seed 0."""
    rows = _rows()
    zero = np.zeros((rows.n_rows, len(rows.arms)))
    outcomes = OutcomePredictions(zero, zero, zero, "ridge", 3)
    kwargs = {"margin_rate": MARGIN, "estimators": ("ipw", "dr"), "outcomes": outcomes}
    values = policy_values(rows, _plans(rows), differences=[("all", "none")],
                           rows_note="held out", **kwargs)  # fmt: skip
    assert values.value("all", "incremental_conversions") == pytest.approx(4 / 6)
    with pytest.raises(KeyError) as missing:
        values.value("all", "nope", "ipw")
    assert missing.value.args == (("all", "nope", "ipw"),)
    assert (values.bootstrap, values.clip, values.outcome_model, values.rows_note) == (
        200, None, "ridge, 3 folds", "held out",
    )  # fmt: skip
    seeded = policy_values(rows, _plans(rows), differences=[("all", "none")], seed=0, **kwargs)
    pd.testing.assert_frame_equal(values.estimates, seeded.estimates)
    table = values.table()
    n, d = len(values.estimates), len(values.differences)
    assert d == 2 * len(METRICS) and table.index.tolist() == list(range(n + d))
    assert table["kind"].tolist() == ["plan"] * n + ["difference"] * d
    assert table["plan"].tolist()[n:] == ["all - none"] * d
    pd.testing.assert_frame_equal(table.iloc[:n].drop(columns="kind"), values.estimates)
    data = values.to_dict()
    assert {k: data[k] for k in ("rows", "customers", "rows_note", "bootstrap", "clip")} == {
        "rows": 6, "customers": 6, "rows_note": "held out", "bootstrap": 200, "clip": None,
    }  # fmt: skip
    assert data["outcome_model"] == "ridge, 3 folds"
    assert data["definitions"].startswith("estimated on randomized log rows")
    for key in ("plans", "estimates", "differences", "diagnostics"):
        frame = getattr(values, key)
        assert isinstance(data[key], list) and len(data[key]) == len(frame), key
        pd.testing.assert_frame_equal(pd.DataFrame.from_records(data[key]), frame)
    plain = policy_values(rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0)
    assert plain.rows_note == "" and plain.outcome_model is None and plain.bootstrap == 0
    assert plain.differences.empty
    assert plain.differences.columns.tolist() == plain.estimates.columns.tolist()
    assert plain.table()["kind"].tolist() == ["plan"] * len(plain.estimates)
    assert plain.to_dict()["differences"] == []
    assert plain.plans["customers"].tolist() == [6, 6]


def test_a_weight_equal_to_the_clip_is_not_clipped():
    """The plan "all" matches rows of weight 2, 2 and 4: a clip of 4 cuts none, a clip of 2 cuts
    one (the 4), and the largest weight is the clip."""
    rows = _rows()
    for clip, cut, largest in ((4.0, 0, 4.0), (2.0, 1, 2.0)):
        values = policy_values(
            rows, _plans(rows), margin_rate=MARGIN, estimators=("ipw",), bootstrap=0, clip=clip
        )
        got = values.plans.set_index("plan").loc["all"]
        assert (got["clipped_rows"], got["max_weight"]) == (cut, largest), clip
