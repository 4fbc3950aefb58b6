"""Coverage of the offline estimators' intervals on a synthetic world whose truth is known.

Design: one small world (:data:`USERS` customers) fixes the population, i.e. the features, the
true conversion and redemption probabilities and the typical baskets. Each of
:data:`REPLICATIONS` seeded replications draws a fresh randomized campaign on all of them (arm
uniform over the menu and no coupon, propensity ``1 / (k + 1)``) with the world's own outcome
draw (:func:`simulator.world.history.draw_outcomes`), then values three fixed plans with
:func:`optimizer.evaluation.policy_values`.

Each plan's true per-customer figures are recounted here from the truth table alone, with the
closed-form expectations of that outcome draw (no code under test): an order is log-normal with
mean the typical basket, a redeemed one is lifted to the coupon's threshold. The population is
fixed, so the target is the population's own mean and a 95% interval should cover it in about
95% of the replications. The issue's acceptance asks for at least 90% and a mean bias within
one (mean) standard error, per estimator, plan and figure, for the difference of two plans too.

Each cell's coverage is a binomial count over 100 replications (standard error about 2
points), so with some 60 cells a seed set misses 90% somewhere now and then even with exact
intervals: over nine seed sets of replications the influence-function coverage pooled 94.7-95.1%
per estimator, yet six sets had one cell (or a bootstrap cell) below 90%. A change in how random
numbers are drawn can thus flip a cell without a bug; the pooled coverage tells the two apart.

A planted bias (propensities that forget the no-coupon arm, or a misstated hold-out share)
must make the coverage collapse: the test has teeth.

The doubly robust estimator runs with the linear outcome model on a few features to stay fast;
the boosting variant is slow and runs only when ``COUPONOPT_SLOW_TESTS`` is set (the suite has
no registered ``slow`` marker and CI runs every test).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

import optimizer.evaluation.logged as logged_module
from optimizer.errors import InputError
from optimizer.evaluation import cross_fit_outcomes, logged_rows, policy_values
from optimizer.io.contract import coupon_column, redeem_column
from optimizer.io.menu import NO_COUPON, Menu
from simulator.scenario import Scenario
from simulator.world.generation import build_world
from simulator.world.history import draw_outcomes
from simulator.world.population import WorldParams

USERS = 4_000
WORLD_SEED = 11
REPLICATIONS = 100
BOOTSTRAP = 100
#: Figures checked (ROI, a ratio, is left out of the acceptance).
CHECKED = ("incremental_conversions", "incremental_gmv", "campaign_cost", "incremental_profit")
#: Few numeric features keep the linear outcome model fast: its cost is the per-fit pipeline
#: (a categorical column's one-hot encoder doubles it). DR stays unbiased whatever the model.
LINEAR_FEATURES = (
    "avg_order_value",
    "orders_365d",
    "days_since_last_order",
    "sessions_30d",
    "coupon_redeem_share",  # has missing values: exercises the imputer
)
DIFFERENCE = ("oracle", "manual")
MIN_COVERAGE = 0.90
#: Mean coverage over an estimator's checked cells (a systematic shortfall, not noise).
MIN_POOLED_COVERAGE = 0.92

slow = pytest.mark.skipif(
    not os.environ.get("COUPONOPT_SLOW_TESTS"),
    reason="slow (minutes): set COUPONOPT_SLOW_TESTS=1 to run",
)


@dataclass(frozen=True)
class Population:
    """The fixed population: truth as arrays, plans and their true figures.

    Attributes
    ----------
    users : DataFrame, shape (n, 16)
        Observed features.
    menu : Menu
    sms_cost, margin_rate : float
    p_natural : ndarray, shape (n,)
    p_coupon, p_redeem : ndarray, shape (n, k)
    basket : ndarray, shape (n,)
        Typical basket (money), the centre of the order-value draw.
    sigma : float
        Log-normal shape of order values.
    plans : dict of str to ndarray of int16, each shape (n,)
        Arm per customer (menu index, ``k`` for no coupon).
    truth : DataFrame
        One row per plan (and per ``"a - b"`` difference), one column per metric.
    """

    users: pd.DataFrame
    menu: Menu
    sms_cost: float
    margin_rate: float
    p_natural: np.ndarray
    p_coupon: np.ndarray
    p_redeem: np.ndarray
    basket: np.ndarray
    sigma: float
    plans: dict[str, np.ndarray]
    truth: pd.DataFrame

    @property
    def arms(self) -> list[str]:
        """Arm labels in index order: the menu, then no coupon."""
        return [*self.menu.names, NO_COUPON]


def _expected_outcomes(
    p_natural: np.ndarray,
    p_coupon: np.ndarray,
    p_redeem: np.ndarray,
    basket: np.ndarray,
    menu: Menu,
    sms_cost: float,
    sigma: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected conversion, GMV and cost per customer and arm (no coupon last), each (n, k + 1).

    An order is ``X ~ LogNormal(mu, sigma)`` with ``E[X] = basket``; a redeemed order is
    ``max(X, t)``, whose mean is ``t Phi((ln t - mu) / sigma) + basket Phi((mu + sigma^2 -
    ln t) / sigma)``. The 1-cent rounding of the drawn orders is ignored.
    """
    mu = (np.log(basket) - 0.5 * sigma**2)[:, None]
    log_t = np.log(menu.thresholds)[None, :]
    lifted = menu.thresholds * ndtr((log_t - mu) / sigma) + basket[:, None] * ndtr(
        (mu + sigma**2 - log_t) / sigma
    )
    gmv = p_coupon * ((1.0 - p_redeem) * basket[:, None] + p_redeem * lifted)
    cost = sms_cost + p_coupon * p_redeem * menu.face_values
    conversions = np.column_stack([p_coupon, p_natural])
    gmv = np.column_stack([gmv, p_natural * basket])
    cost = np.column_stack([cost, np.zeros_like(p_natural)])
    return conversions, gmv, cost


def _true_figures(
    plan: np.ndarray, expected: tuple[np.ndarray, ...], margin_rate: float
) -> dict[str, float]:
    """A plan's true per-customer figures over the population (no coupon is the last arm)."""
    conversions, gmv, cost = expected
    rows = np.arange(plan.size)
    inc_conversions = (conversions[rows, plan] - conversions[:, -1]).mean()
    inc_gmv = (gmv[rows, plan] - gmv[:, -1]).mean()
    spent = cost[rows, plan].mean()
    return {
        "incremental_conversions": inc_conversions,
        "incremental_gmv": inc_gmv,
        "campaign_cost": spent,
        "roi": inc_gmv / spent if spent > 0 else np.nan,
        "incremental_profit": margin_rate * inc_gmv - spent,
    }


@pytest.fixture(scope="module")
def population() -> Population:
    scenario = Scenario().with_overrides(users=USERS, seed=WORLD_SEED)
    world = build_world(scenario)
    menu = scenario.menu
    truth = world.truth
    assert (truth["user_id"].to_numpy() == world.users["user_id"].to_numpy()).all()
    p_natural = truth["p_natural"].to_numpy()
    p_coupon = truth[[coupon_column(name) for name in menu.names]].to_numpy()
    p_redeem = truth[[redeem_column(name) for name in menu.names]].to_numpy()
    basket = truth["typical_basket"].to_numpy()
    sigma = WorldParams().response.basket_sigma
    k = len(menu)
    n = len(truth)

    # Oracle: the coupon of largest true uplift where it adds at least 3 points.
    uplift = p_coupon - p_natural[:, None]
    oracle = np.where(uplift.max(axis=1) >= 0.03, uplift.argmax(axis=1), k)
    # Everyone gets the cheapest coupon.
    cheapest = np.full(n, int(np.argmin(menu.face_values)))
    # Operations' rule: the manual coupon to the top third by observed average order value.
    aov = world.users["avg_order_value"].to_numpy()
    manual = np.where(aov >= np.quantile(aov, 2 / 3), menu.index(scenario.manual.denomination), k)
    plans = {
        name: plan.astype(np.int16)
        for name, plan in (("oracle", oracle), ("cheapest", cheapest), ("manual", manual))
    }

    sms_cost, margin_rate = scenario.costs.sms_cost, scenario.costs.margin_rate
    expected = _expected_outcomes(p_natural, p_coupon, p_redeem, basket, menu, sms_cost, sigma)
    figures = {name: _true_figures(plan, expected, margin_rate) for name, plan in plans.items()}
    a, b = DIFFERENCE
    figures[f"{a} - {b}"] = {m: figures[a][m] - figures[b][m] for m in figures[a]}
    figures[f"{a} - {b}"]["roi"] = np.nan  # ROI is a ratio: not checked for pairs
    return Population(
        users=world.users,
        menu=menu,
        sms_cost=sms_cost,
        margin_rate=margin_rate,
        p_natural=p_natural,
        p_coupon=p_coupon,
        p_redeem=p_redeem,
        basket=basket,
        sigma=sigma,
        plans=plans,
        truth=pd.DataFrame.from_dict(figures, orient="index"),
    )


def _randomized_log(pop: Population, replication: int) -> pd.DataFrame:
    """A fresh randomized campaign on the whole population, in the log contract's form."""
    rng = np.random.default_rng([WORLD_SEED, replication])
    k = len(pop.menu)
    arm = rng.integers(0, k + 1, pop.p_natural.size)  # uniform over the menu and none
    outcomes = draw_outcomes(
        rng,
        np.where(arm < k, arm, -1),
        pop.p_natural,
        pop.p_coupon,
        pop.p_redeem,
        pop.basket,
        pop.menu.face_values,
        pop.menu.thresholds,
        pop.sigma,
    )
    return pd.DataFrame(
        {
            "user_id": pop.users["user_id"].to_numpy(),
            "assignment": "randomized",
            "denomination": np.asarray(pop.arms)[arm],
            **outcomes,
        }
    )


def _uniform_design(pop: Population) -> dict[str, float]:
    return {arm: 1.0 / len(pop.arms) for arm in pop.arms}


def _run(
    pop: Population,
    *,
    propensity: dict[str, float],
    estimators: tuple[str, ...],
    bootstrap: int = 0,
    model: str | None = None,
    features: tuple[str, ...] | None = None,
    folds: int = 2,
    replications: int = REPLICATIONS,
) -> pd.DataFrame:
    """Estimates of every replication, plans and the difference stacked, with truth.

    Returns
    -------
    DataFrame
        ``replication``, ``plan``, ``estimator``, ``metric``, ``estimate``, ``se``, ``low``,
        ``high``, ``boot_low``, ``boot_high`` and ``truth``.
    """
    frames = []
    for r in range(replications):
        log = _randomized_log(pop, r)
        rows = logged_rows(log, pop.menu, sms_cost=pop.sms_cost, propensity=propensity)
        assert rows.n_rows == len(log)  # rows keep the log's (and the plans') order
        outcomes = None
        if model is not None:
            columns = list(features) if features else list(pop.users.columns.drop("user_id"))
            # seed 0: the fold split is a fixed hash of the ids; the log is what varies
            outcomes = cross_fit_outcomes(pop.users[columns], rows, model=model, folds=folds)
        values = policy_values(
            rows,
            pop.plans,
            margin_rate=pop.margin_rate,
            estimators=estimators,
            outcomes=outcomes,
            differences=[DIFFERENCE],
            bootstrap=bootstrap,
            seed=r,
        )
        frames.append(pd.concat([values.estimates, values.differences]).assign(replication=r))
    out = pd.concat(frames, ignore_index=True)
    truth = pop.truth.rename_axis("plan").reset_index().melt("plan", var_name="metric")
    out = out.merge(truth.rename(columns={"value": "truth"}), on=["plan", "metric"])
    assert len(out) == replications * (len(pop.plans) + 1) * len(estimators) * 5
    return out


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (estimator, plan, metric): coverages, truth, mean estimate, bias and mean se."""
    booted = runs["boot_low"].notna()
    boot_covered = (runs["boot_low"] <= runs["truth"]) & (runs["truth"] <= runs["boot_high"])
    runs = runs.assign(
        covered=(runs["low"] <= runs["truth"]) & (runs["truth"] <= runs["high"]),
        boot_covered=boot_covered.where(booted),  # NaN without a bootstrap
    )
    table = runs.groupby(["estimator", "plan", "metric"], sort=False).agg(
        coverage=("covered", "mean"),
        boot_coverage=("boot_covered", "mean"),
        truth=("truth", "first"),
        mean_estimate=("estimate", "mean"),
        mean_se=("se", "mean"),
        sd_estimate=("estimate", "std"),
    )
    table["bias"] = table["mean_estimate"] - table["truth"]
    table["bias_in_se"] = table["bias"] / table["mean_se"]
    return table


@pytest.fixture(scope="module")
def runs(population: Population) -> pd.DataFrame:
    """IPW with a bootstrap, SNIPW and linear DR without, on the same replications."""
    design = _uniform_design(population)
    booted = _run(population, propensity=design, estimators=("ipw",), bootstrap=BOOTSTRAP)
    plain = _run(
        population,
        propensity=design,
        estimators=("snipw", "dr"),
        model="linear",
        features=LINEAR_FEATURES,
    )
    return pd.concat([booted, plain], ignore_index=True)


@pytest.fixture(scope="module")
def summary(runs: pd.DataFrame) -> pd.DataFrame:
    return summarise(runs)


def _checked(table: pd.DataFrame, estimator: str, difference: bool) -> pd.DataFrame:
    plans = table.index.get_level_values("plan")
    is_difference = plans.str.contains(" - ")
    keep = (
        (table.index.get_level_values("estimator") == estimator)
        & table.index.get_level_values("metric").isin(CHECKED)
        & (is_difference if difference else ~is_difference)
    )
    return table[keep]


def test_truth_is_a_real_contrast(population):
    """The plans differ and the oracle's incremental conversions are clearly positive."""
    truth = population.truth
    assert truth.loc["oracle", "incremental_conversions"] > 0.02
    assert (
        truth.loc["oracle", "incremental_conversions"]
        > truth.loc["manual", "incremental_conversions"]
    )
    assert truth.loc["cheapest", "campaign_cost"] > truth.loc["manual", "campaign_cost"]
    shares = {name: (plan < len(population.menu)).mean() for name, plan in population.plans.items()}
    assert (
        0.2 < shares["oracle"] < 0.5 and shares["cheapest"] == 1.0 and 0.3 < shares["manual"] < 0.4
    )


@pytest.mark.parametrize("estimator", ["ipw", "snipw", "dr"])
def test_influence_intervals_cover_the_truth(summary, estimator):
    table = _checked(summary, estimator, difference=False)
    assert len(table) == 3 * len(CHECKED)
    low = table[table["coverage"] < MIN_COVERAGE]
    assert low.empty, f"coverage below {MIN_COVERAGE:.0%}:\n{low.to_string()}"
    cells = summary.loc[estimator]
    pooled = cells[cells.index.get_level_values("metric").isin(CHECKED)]["coverage"].mean()
    assert pooled >= MIN_POOLED_COVERAGE, f"{estimator} pooled coverage {pooled:.3f}"


@pytest.mark.parametrize("estimator", ["ipw", "snipw", "dr"])
def test_mean_bias_is_within_one_standard_error(summary, estimator):
    table = _checked(summary, estimator, difference=False)
    off = table[table["bias"].abs() > table["mean_se"]]
    assert off.empty, f"bias above one standard error:\n{off.to_string()}"


@pytest.mark.parametrize("estimator", ["ipw", "snipw", "dr"])
def test_paired_difference_covers_the_true_difference(summary, estimator):
    table = _checked(summary, estimator, difference=True)
    assert len(table) == len(CHECKED)
    assert (table.index.get_level_values("plan") == " - ".join(DIFFERENCE)).all()
    low = table[(table["coverage"] < MIN_COVERAGE) | (table["bias"].abs() > table["mean_se"])]
    assert low.empty, f"difference off:\n{low.to_string()}"


def test_bootstrap_intervals_cover_the_truth(summary):
    table = summary.loc["ipw"]
    table = table[table.index.get_level_values("metric").isin(CHECKED)]
    assert len(table) == 4 * len(CHECKED) and table["boot_coverage"].notna().all()
    low = table[table["boot_coverage"] < MIN_COVERAGE]
    assert low.empty, f"bootstrap coverage below {MIN_COVERAGE:.0%}:\n{low.to_string()}"


def test_interval_widths_match_the_spread_of_the_estimates(summary):
    """The mean standard error is within 25% of the estimates' spread over replications."""
    table = summary[summary.index.get_level_values("metric").isin(CHECKED)]
    table = table.assign(ratio=table["mean_se"] / table["sd_estimate"])
    off = table[(table["ratio"] < 0.75) | (table["ratio"] > 1.25)]
    assert off.empty, f"standard errors off the replications' spread:\n{off.to_string()}"


def test_the_library_refuses_a_design_the_log_contradicts(population):
    """Propensities adding up to more than 1, or a misstated hold-out share: one clear error."""
    k = len(population.menu)
    log = _randomized_log(population, 0)
    with pytest.raises(InputError, match="add up to"):
        logged_rows(
            log, population.menu, sms_cost=population.sms_cost,
            propensity={arm: 1.0 / k for arm in population.arms},
        )  # fmt: skip
    misstated = {arm: 0.5 / k for arm in population.menu.names} | {NO_COUPON: 0.5}
    with pytest.raises(InputError, match="do not describe this log"):
        logged_rows(log, population.menu, sms_cost=population.sms_cost, propensity=misstated)


def test_propensities_forgetting_the_no_coupon_arm_are_caught(population, monkeypatch):
    """Propensity 1/k instead of 1/(k + 1): IPW's figures shrink by k/(k + 1), SNIPW's do not.

    The cost of a campaign has little noise, so the 20% shortfall of treating everyone is
    several standard errors: the bias check fails and the coverage falls well below 90%. (The
    library refuses such a design; its check is switched off here to show these tests see the
    bias by themselves.)
    """
    monkeypatch.setattr(logged_module, "_check_design", lambda *args, **kwargs: None)
    k = len(population.menu)
    wrong = {arm: 1.0 / k for arm in population.arms}
    table = summarise(_run(population, propensity=wrong, estimators=("ipw", "snipw")))
    cost = table.loc[("ipw", "cheapest", "campaign_cost")]
    assert cost["bias"] < -2 * cost["mean_se"]
    assert cost["coverage"] < 0.5
    # a constant factor on every weight cancels in the self-normalised estimate
    snipw = _checked(table, "snipw", difference=False)
    assert (snipw["coverage"] >= MIN_COVERAGE).all()
    assert (snipw["bias"].abs() <= snipw["mean_se"]).all()


def test_a_misstated_hold_out_share_is_caught(population, monkeypatch):
    """A design saying half the log was held out (it was 1/(k + 1)) biases every baseline."""
    monkeypatch.setattr(logged_module, "_check_design", lambda *args, **kwargs: None)
    k = len(population.menu)
    wrong = {arm: 0.5 / k for arm in population.menu.names} | {NO_COUPON: 0.5}
    table = summarise(_run(population, propensity=wrong, estimators=("ipw",)))
    conversions = table.xs("incremental_conversions", level="metric").loc["ipw"]
    plans = conversions.drop(" - ".join(DIFFERENCE))
    assert (plans["coverage"] < 0.1).all(), plans
    assert (plans["bias"].abs() > plans["mean_se"]).all(), plans


@slow
def test_boosting_doubly_robust_intervals_cover_the_truth(population):
    """DR with cross-fitted boosting on all features, 3 folds, and a bootstrap of 200."""
    table = summarise(
        _run(
            population,
            propensity=_uniform_design(population),
            estimators=("dr",),
            bootstrap=200,
            model="boosting",
            folds=3,
        )
    )
    checked = table[table.index.get_level_values("metric").isin(CHECKED)]
    low = checked[
        (checked["coverage"] < MIN_COVERAGE)
        | (checked["boot_coverage"] < MIN_COVERAGE)
        | (checked["bias"].abs() > checked["mean_se"])
    ]
    assert low.empty, f"boosting DR off:\n{low.to_string()}"
