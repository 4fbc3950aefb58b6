"""What-if grids on a scenario's world: planned at every point, and on request simulated.

The models are trained once, on every stage the grid targets, and score any menu without
retraining (their coupon head takes face values and thresholds); the grid is planned by
:func:`optimizer.planning.whatif.plan_grid`. With ``simulate``, every point is also played on
the world by :func:`simulator.experiment.ab.simulate_point` (paired design: every policy on the
whole population with the same draws), which adds 95% intervals. Points are simulated in worker
processes (joblib), each handed its whole job as an argument.
"""

from __future__ import annotations

import functools
import os
from dataclasses import replace

import pandas as pd
from joblib import Parallel, delayed

from optimizer.choices import Solver
from optimizer.errors import InputError
from optimizer.io.menu import Menu
from optimizer.planning.candidates import Candidates, select_candidates
from optimizer.planning.request import PlanningRequest
from optimizer.planning.valuation import LogValuer, grid_values
from optimizer.planning.whatif import Context, Grid, GridResult, plan_grid
from optimizer.progress import Progress, report
from optimizer.segments import STAGES
from simulator.experiment.ab import PointJob, simulate_point
from simulator.scenario import Scenario
from simulator.workflows.model_cache import ScoredScenario, score_scenario
from simulator.workflows.valuation import world_log

__all__ = ["grid_stages", "run_whatif"]


def grid_stages(grid: Grid) -> tuple[str, ...]:
    """Every lifecycle stage a grid targets, in stage order (what the models train on)."""
    wanted = {s for segments in grid.segments for s in segments}
    return tuple(s for s in STAGES if s in wanted)


def run_whatif(
    scenario: Scenario,
    request: PlanningRequest,
    grid: Grid,
    *,
    scored: ScoredScenario | None = None,
    simulate: bool = False,
    replications: int = 3,
    workers: int | None = None,
    progress: Progress | None = None,
    value: bool = False,
) -> GridResult:
    """Plan (and optionally simulate) every policy of ``request`` at every point of ``grid``.

    Parameters
    ----------
    scenario : Scenario
        The world, and the ``[simulation]`` settings of simulated points.
    request : PlanningRequest
        Policies, objective, constraints and knobs shared by every point; its campaign (menu,
        costs, manual practice, constraints) is played on the world.
    grid : Grid
        Budgets, menus, SMS costs, margins and stage sets (:func:`optimizer.planning.build_grid`).
    scored : ScoredScenario, optional
        The world, models and scores (default: :func:`score_scenario`, trained on every stage
        the grid targets).
    simulate : bool
        Also play every point on the world (paired design, ``replications`` each).
    workers : int, optional
        Processes simulating points in parallel (default: one per CPU, at most one per budget;
        1 runs them in this process).
    progress : callable, optional
        Receives :class:`~optimizer.progress.Step` reports of planning and simulating.
    value : bool
        Also estimate every plan on the world's randomized log, on the customers the models
        held out (``log_<figure>`` columns; influence-function intervals).
    """
    unknown = {s for segments in grid.segments for s in segments} - set(STAGES)
    if unknown:
        raise InputError(
            f"{sorted(unknown)[0]!r} is not a lifecycle stage ({', '.join(STAGES)})",
            key="whatif.vary.segments",
        )
    world = scenario.with_campaign(request.campaign)  # the run's campaign, on the world
    if scored is None:
        trained = world.with_values(**{"targeting.segments": grid_stages(grid)})
        scored = score_scenario(trained, progress=progress)
    request = request.with_models(scored.models)
    by_menu: dict[Menu, ScoredScenario] = {world.menu: scored}

    def scored_for(menu: Menu) -> ScoredScenario:
        if menu not in by_menu:
            by_menu[menu] = scored.with_menu(menu)
        return by_menu[menu]

    def candidates_for(context: Context) -> Candidates:
        here = scored_for(context.menu)
        return select_candidates(
            here.scores,
            here.users,
            context.menu,
            column=request.campaign.targeting.column,
            segments=context.segments,
            exclude=request.exclude,
        )

    valued = None
    if value:
        valuer = LogValuer.prepare(request, world_log(world, scored), bootstrap=0,
                                   unrandomized="flag")  # fmt: skip
        valued = functools.partial(grid_values, valuer)
    result = plan_grid(request, grid, candidates_for, progress=progress, value=valued)
    if not simulate:
        return result
    if scored.truth is None:
        raise ValueError("simulating a grid needs the world's truth")
    contexts = grid.contexts()
    total = len(contexts) * len(grid.budget)
    workers = min(os.cpu_count() or 1, len(grid.budget)) if workers is None else workers
    simulated = []
    with Parallel(n_jobs=max(1, workers)) as parallel:
        for index, context in enumerate(contexts):
            variant = world.with_values(
                **{
                    "menu": context.menu.model_dump(),
                    "costs.sms_cost": context.sms_cost,
                    "costs.margin_rate": context.margin_rate,
                    "targeting.segments": context.segments,
                }
            )
            candidates = candidates_for(context)
            ids = candidates.scores["user_id"].to_numpy()
            job = PointJob(
                scenario=variant,
                candidates=candidates,
                truth=scored.truth[scored.truth["user_id"].isin(ids)],
                request=replace(request, campaign=variant, solver=Solver.DUAL),
                replications=replications,
            )
            rows = parallel(delayed(simulate_point)(job, budget) for budget in grid.budget)
            for points in rows:
                for row in points:
                    simulated.append({"context": context.label, **row})
            report(progress, "simulating the grid", (index + 1) * len(grid.budget), total)
    sims = pd.DataFrame(simulated)
    frame = result.frame.merge(sims, on=["context", "policy", "budget"], how="left")
    return replace(result, frame=frame, simulated=True)
