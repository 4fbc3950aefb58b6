"""Plan a budget for more users than memory holds: scores streamed from Parquet, plan to a dataset.

The scores file (and, for the money objectives, the user table in the same order, as
``couponopt score`` writes them) is read chunk by chunk, each chunk validated against the
contract and turned into its users' options; :func:`optimizer.solvers.solve_budget_streamed`
solves the budget over the chunks, and the plan is written as a Parquet dataset of one file
per chunk (``part-00000.parquet``, ...) with a manifest, published whole. Memory is one chunk,
the price sample, the core and the user ids (8 bytes per user, to check each appears once),
whatever the number of users.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from optimizer.errors import InputError
from optimizer.io.atomic import atomic_directory, check_not_input, write_manifest
from optimizer.io.contract import scores_schema
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.io.tables import iter_table, table_columns, validate_frame
from optimizer.planning.spend import fit_overrun_rule, spend_moments_of, spend_parts
from optimizer.progress import Progress, Step
from optimizer.solvers.constraints import Constraints
from optimizer.solvers.problem import CampaignProblem, build_problem
from optimizer.solvers.streamed_dual import StreamedDual, solve_dual_streamed
from optimizer.solvers.streaming import (
    SAMPLE_USERS,
    Chunk,
    StreamedBudget,
    solve_budget_streamed,
)

__all__ = ["OutOfCorePlan", "plan_budget_out_of_core", "plan_batch", "plan_choice", "PLAN_PARTS"]

#: The file names of a plan dataset's parts (``fnmatch`` pattern).
PLAN_PARTS = "part-*.parquet"


@dataclass
class OutOfCorePlan:
    """What an out-of-core plan did: its figures and the work it took.

    Attributes
    ----------
    users, targeted : int
        Users planned and users sent a coupon.
    budget, planning_budget : float
        The budget (money), and the one planned for under the overrun rule (else the same).
    spend_sd : float
        Standard deviation of the realised spend (money); NaN when not measured (on Spark
        without the overrun rule, where it would cost one more pass).
    conversions, gmv : float
        The plan's expected incremental conversions and GMV (money; NaN without baskets).
    value, cost : float
        Objective value and expected cost (money) of the plan.
    upper_bound : float
        LP bound at the budget; ``gap`` is ``1 - value / upper_bound``.
    multipliers : dict of str to float
        Each row's multiplier at the bound (``budget``: objective units per money).
    core_users, passes, parts : int
        Users solved exactly, passes over the scores (the writing pass included), files.
    seconds : float
    out : str
        The plan dataset's folder.
    """

    users: int
    targeted: int
    budget: float
    planning_budget: float
    spend_sd: float
    conversions: float
    gmv: float
    value: float
    cost: float
    upper_bound: float
    gap: float
    multipliers: dict[str, float]
    core_users: int
    passes: int
    parts: int
    seconds: float
    out: str

    def to_dict(self) -> dict[str, object]:
        """The figures as plain data (for JSON)."""
        return asdict(self)


def plan_choice(plan: StreamedBudget | StreamedDual, problem: CampaignProblem) -> np.ndarray:
    """The plan's option for each user of ``problem``, int64 shape (n,) (-1 none)."""
    if isinstance(plan, StreamedDual):
        return plan.choose(problem).astype(np.int64)
    return plan.choose(Chunk.of(problem)).astype(np.int64)


def plan_batch(plan: StreamedBudget | StreamedDual, problem: CampaignProblem,
               baskets: bool = True, choice: np.ndarray | None = None,
               ) -> pa.RecordBatch:  # fmt: skip
    """The plan's rows for the users of ``problem``, as the plan dataset stores them.

    Columns ``user_id``, ``denomination`` (a coupon's name or ``none``), ``p_natural``,
    ``p_coupon`` (of the coupon sent, else ``p_natural``), ``expected_uplift``,
    ``expected_gmv`` (incremental GMV, money; NaN when the users' baskets were not given) and
    ``expected_cost`` (money; 0 for users sent nothing). ``choice``: the plan's options for
    these users when already known (:func:`plan_choice`).
    """
    choice = plan_choice(plan, problem) if choice is None else choice
    rows = np.arange(problem.n_users)
    on = choice >= 0
    taken = np.where(on, choice, 0)
    p = problem.p[rows, taken]
    names = np.array([*problem.menu.names, NO_COUPON], dtype=object)
    return pa.RecordBatch.from_pydict({
        "user_id": pa.array(problem.user_id, pa.int64()),
        "denomination": pa.array(names[choice].tolist(), pa.string()),
        "p_natural": pa.array(problem.p0.astype(np.float32)),
        "p_coupon": pa.array(np.where(on, p, problem.p0).astype(np.float32)),
        "expected_uplift": pa.array(np.where(on, p - problem.p0, 0.0).astype(np.float32)),
        "expected_gmv": pa.array(np.where(on, problem.gmv_uplift_at(rows, taken), 0.0)
                                 if baskets else np.full(problem.n_users, np.nan)),
        "expected_cost": pa.array(np.where(on, problem.cost[rows, taken], 0.0)),
    })  # fmt: skip


def _frames(scores: Path, users: Path | None, chunk_rows: int, menu: Menu, redeem: bool,
            basket_column: str | None, segment_column: str | None,
            ) -> Iterator[tuple[pd.DataFrame, np.ndarray | None, np.ndarray | None]]:  # fmt: skip
    """Validated score chunks, with the aligned users' baskets and segment labels.

    Both come from ``users`` when given and their column is asked for (else None).
    """
    schema = scores_schema(menu, redemption=redeem)
    people = iter_table(users, chunk_rows) if users is not None else None
    for offset, frame in iter_table(scores, chunk_rows):
        table = validate_frame(frame, schema, scores, row_offset=offset)
        basket = segment = None
        if people is not None:
            at, them = next(people, (None, None))
            if (
                them is None
                or len(them) != len(table)
                or at != offset
                or not np.array_equal(
                    them["user_id"].to_numpy(np.int64), table["user_id"].to_numpy(np.int64)
                )
            ):
                raise InputError(
                    f"rows {offset + 1}-{offset + len(table)} are not the users of the scores "
                    "file in the same order (write the scores with `couponopt score`)",
                    source=users,
                )
            for column in (basket_column, segment_column):
                if column is not None and column not in them:
                    raise InputError("missing column", source=users, column=column)
            if basket_column is not None:
                basket = pd.to_numeric(them[basket_column], errors="coerce").to_numpy(np.float64)
            if segment_column is not None:
                segment = them[segment_column].astype(str).to_numpy()
        yield table, basket, segment


def plan_budget_out_of_core(
    scores: str | Path,
    menu: Menu,
    budget: float,
    out: str | Path,
    *,
    objective: str = "conversions",
    sms_cost: float = 0.05,
    margin_rate: float = 0.3,
    users: str | Path | None = None,
    basket_column: str = "avg_order_value",
    constraints: Constraints | None = None,
    segment_column: str = "lifecycle_stage",
    overrun_risk: float | None = None,
    overrun_tolerance: float = 0.0,
    spend_error: np.ndarray | None = None,
    chunk_rows: int = 1_000_000,
    sample_users: int = SAMPLE_USERS,
    seed: int = 0,
    progress: Progress | None = None,
) -> OutOfCorePlan:
    """The optimal plan under ``budget``, read and written in chunks of ``chunk_rows`` users.

    Parameters
    ----------
    scores : path
        Parquet or CSV scores file (the contract's scores table for ``menu``).
    menu : Menu
    budget : float
        Expected-cost budget (money).
    out : path
        Folder of the plan dataset: one ``part-NNNNN.parquet`` per chunk (``user_id``,
        ``denomination``, ``p_natural``, ``p_coupon``, ``expected_uplift``, ``expected_gmv``,
        ``expected_cost``)
        and a manifest; replaced whole.
    objective : {"conversions", "gmv", "profit"}
    sms_cost, margin_rate : float
        Money per message; gross margin share of GMV.
    users : path, optional
        The user table in the scores' order (needed for ``gmv`` and ``profit``: the basket).
    basket_column : str
        The users' column of average order values (money).
    constraints : Constraints, optional
        Caps, message cap, minimum ROI, segment shares: solved by
        :func:`~optimizer.solvers.solve_dual_streamed` (the budget alone by the bracket).
    segment_column : str
        The users' column of segment labels (segment shares need ``users``).
    overrun_risk, overrun_tolerance : float
        The overrun rule (:func:`~optimizer.planning.spend.fit_overrun_rule`): P(realised
        spend > (1 + tolerance) x budget) at most the risk; each planning budget it tries is
        one more solve and one more pass for the spend's moments. None: plan the budget.
    spend_error : ndarray, shape (k,), optional
        Relative standard error of each option's paid spend level (the models' estimation).
    chunk_rows : int
        Users per chunk (memory is about ``chunk_rows x k x 60`` bytes).
    sample_users : int
        Users of the sample that brackets the budget's price.
    seed : int
    progress : callable, optional
        Receives a ``"planning out of core"`` step per chunk of each pass.

    Returns
    -------
    OutOfCorePlan
    """
    start = time.perf_counter()
    scores, out = Path(scores), Path(out)
    if objective != "conversions" and users is None:
        raise InputError(f"the {objective} objective needs the users' baskets", key="users")
    check_not_input(out, scores, users)
    constraints = constraints or Constraints()
    shares = bool(constraints.segment_shares)
    if shares and users is None:
        raise InputError("segment shares need the user table (its segment column)", key="users")
    redeem_cols = [f"p_redeem__{name}" for name in menu.names]
    redeem = all(c in table_columns(scores) for c in redeem_cols)
    users_path = Path(users) if users is not None else None
    ids: list[np.ndarray] = []
    passes = [0]

    def chunks() -> Iterator[tuple[pd.DataFrame, CampaignProblem]]:
        passes[0] += 1
        done = 0
        for table, basket, segment in _frames(
            scores,
            users_path,
            chunk_rows,
            menu,
            redeem,
            basket_column,
            segment_column if shares else None,
        ):
            problem = build_problem(
                table["user_id"].to_numpy(np.int64),
                table["p_natural"].to_numpy(np.float64),
                table[[f"p_coupon__{n}" for n in menu.names]].to_numpy(np.float64),
                menu, objective=objective, sms_cost=sms_cost, margin_rate=margin_rate,
                basket=basket, redeem=table[redeem_cols].to_numpy(np.float32) if redeem else None,
                segment=segment,
            )  # fmt: skip
            if passes[0] == 1:
                ids.append(problem.user_id.copy())
            done += problem.n_users
            if progress is not None:
                progress(Step("planning out of core", done, None, f"pass {passes[0]}"))
            yield table, problem

    def source() -> Iterator[Chunk]:
        return (Chunk.of(problem) for _, problem in chunks())

    def solve(amount: float) -> StreamedBudget | StreamedDual:
        if constraints.budget_only:
            return solve_budget_streamed(source, amount, sample_users=sample_users, seed=seed)
        problems = lambda: (problem for _, problem in chunks())  # noqa: E731
        return solve_dual_streamed(problems, amount, constraints, sample_users=sample_users,
                                   seed=seed)  # fmt: skip

    def moments(plan: StreamedBudget | StreamedDual) -> tuple[float, float]:
        parts = sum(spend_parts(problem, plan_choice(plan, problem)) for _, problem in chunks())
        return spend_moments_of(parts, spend_error)

    found, planning = fit_overrun_rule(solve, moments, budget, overrun_risk, overrun_tolerance)
    multipliers = (
        {"budget": found.price} if isinstance(found, StreamedBudget) else found.multipliers
    )
    every = np.concatenate(ids) if ids else np.empty(0, np.int64)
    every.sort()
    if every.size and (every[1:] == every[:-1]).any():
        twice = int(every[1:][every[1:] == every[:-1]][0])
        raise InputError(f"user_id {twice} appears more than once", source=scores)
    del every, ids[:]
    parts = targeted = 0
    conversions = gmv = 0.0
    spend = np.zeros(2 + len(menu))
    with atomic_directory(out, whole=True, writes=(PLAN_PARTS,), writer="plan") as staging:
        for _, problem in chunks():
            choice = plan_choice(found, problem)
            batch = plan_batch(found, problem, baskets=users is not None, choice=choice)
            spend += spend_parts(problem, choice)
            pq.write_table(pa.Table.from_batches([batch]), staging / f"part-{parts:05d}.parquet",
                           use_dictionary=["denomination"])  # fmt: skip
            parts += 1
            targeted += int(pc.sum(pc.not_equal(batch.column("denomination"), NO_COUPON)).as_py())
            conversions += float(pc.sum(batch.column("expected_uplift").cast(pa.float64())).as_py())
            gmv += float(pc.sum(batch.column("expected_gmv")).as_py() or 0.0)
        write_manifest(staging, writer="plan")
    gap = 1.0 - found.value / found.upper_bound if found.upper_bound > 0 else 0.0
    return OutOfCorePlan(
        users=found.n_users, targeted=targeted, budget=float(budget),
        planning_budget=float(planning), spend_sd=spend_moments_of(spend, spend_error)[1],
        conversions=conversions,
        gmv=gmv if users is not None else float("nan"), value=found.value, cost=found.cost,
        upper_bound=found.upper_bound, gap=max(gap, 0.0), multipliers=multipliers,
        core_users=found.core_users, passes=passes[0], parts=parts,
        seconds=time.perf_counter() - start, out=str(out),
    )  # fmt: skip
