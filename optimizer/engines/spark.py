"""Plan a budget on Apache Spark: the streamed solve's passes as distributed jobs.

The same stages as :func:`optimizer.solvers.solve_budget_streamed`, with Spark partitions for
chunks (PySpark, an optional dependency: ``pip install couponopt[spark]``):

1. a seeded sample (``DataFrame.sample``) is collected to the driver, and its hull brackets
   the budget's price;
2. one job per bracket pass: every partition evaluates its users' options at both prices
   (:func:`~optimizer.solvers.streaming.bracket_part` on each Arrow batch, ``mapInArrow``) and
   returns its totals and its core rows; only those reach the driver;
3. the driver solves the core exactly (:func:`~optimizer.solvers.streaming.solve_core`);
4. one job writes the plan as a Parquet dataset: each partition applies the rule (the price
   and the core's options, broadcast once) to its batches.

Batches stay in Arrow from the table to the kernels and back (``mapInArrow``, ``toArrow``), so
no pandas conversion runs inside Spark (PySpark 4.3 warns it does not fully support pandas 3,
which this project uses; the engine never calls Spark's pandas paths). The certified gap is
the same as on one machine: the plan's value against the LP bound of the same core.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from optimizer.errors import InputError
from optimizer.io.atomic import atomic_directory, write_manifest
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.planning.out_of_core import OutOfCorePlan, plan_batch, plan_choice
from optimizer.planning.spend import fit_overrun_rule, spend_moments_of, spend_parts
from optimizer.solvers.constraints import Constraints, linear_rows
from optimizer.solvers.problem import CampaignProblem, build_problem
from optimizer.solvers.streamed_dual import (
    BOX_ROUNDS,
    DualPart,
    StreamedDual,
    box_around,
    check_core,
    dual_part,
    finish_box,
    no_certified_plan,
    sample_multipliers,
)
from optimizer.solvers.streaming import (
    SAMPLE_USERS,
    Chunk,
    PassPart,
    StreamedBudget,
    bracket_part,
    default_width,
    sample_prices,
    solve_core,
    widened,
)

__all__ = ["plan_budget_spark", "PLAN_SCHEMA", "SPARK_PLAN_FILES"]

#: The plan dataset's columns, as Spark DDL.
PLAN_SCHEMA = (
    "user_id long, denomination string, p_natural float, p_coupon float, "
    "expected_uplift float, expected_gmv double, expected_cost double"
)
#: The files Spark writes into a plan folder (besides the manifest).
SPARK_PLAN_FILES = ("part-*", "_SUCCESS", ".part-*.crc", "._SUCCESS.crc")
_BRACKET_SCHEMA = (
    "kind int, user_id long, value array<double>, cost array<double>, "
    "eligible array<boolean>, hi int, cost_lo double, cost_hi double, value_lo double, "
    "value_hi double"
)


class _Spec:
    """How a batch of the scores table becomes a campaign problem (pickled to the workers)."""

    def __init__(self, menu: Menu, objective: str, sms_cost: float, margin_rate: float,
                 basket_column: str | None, segment_column: str | None = None,
                 redeem: bool = False):  # fmt: skip
        self.menu, self.objective = menu, objective
        self.sms_cost, self.margin_rate, self.basket_column = sms_cost, margin_rate, basket_column
        self.segment_column, self.redeem = segment_column, redeem

    @property
    def columns(self) -> list[str]:
        """The scores' columns a problem is built from."""
        names = self.menu.names
        out = ["user_id", "p_natural", *[f"p_coupon__{n}" for n in names]]
        out += [f"p_redeem__{n}" for n in names] if self.redeem else []
        return out + [c for c in (self.basket_column, self.segment_column) if c]

    def problem(self, batch: pa.RecordBatch | pa.Table) -> CampaignProblem:
        """The batch's users as a problem, after the checks a scores file's chunk gets.

        Raises
        ------
        InputError
            A missing id, a probability missing or outside [0, 1], a negative basket.
        """

        def column(name: str, dtype: Any) -> np.ndarray:
            return np.asarray(batch.column(name).to_numpy(zero_copy_only=False), dtype=dtype)

        names = self.menu.names
        if batch.column("user_id").null_count:
            raise InputError("user_id is missing on some rows", source="scores")
        ids = column("user_id", np.int64)
        p0 = column("p_natural", np.float64)
        p = np.column_stack([column(f"p_coupon__{n}", np.float64) for n in names])
        p = p.reshape(-1, len(names))
        redeem = None
        if self.redeem:
            redeem = np.column_stack([column(f"p_redeem__{n}", np.float32) for n in names])
            redeem = redeem.reshape(-1, len(names))
        for label, values in (("p_natural", p0[:, None]), ("p_coupon", p), ("p_redeem", redeem)):
            if values is None:
                continue
            bad = np.flatnonzero(~((values >= 0) & (values <= 1)).all(axis=1))  # NaN fails too
            if bad.size:
                raise InputError(f"{label} is missing or outside [0, 1] for {bad.size} users "
                                 f"(user_id {ids[bad[0]]})", source="scores")  # fmt: skip
        basket = column(self.basket_column, np.float64) if self.basket_column else None
        if basket is not None and (basket < 0).any():
            first = ids[np.flatnonzero(basket < 0)[0]]
            raise InputError(f"is negative (user_id {first})", source="scores",
                             column=self.basket_column)  # fmt: skip
        segment = column(self.segment_column, object) if self.segment_column else None
        return build_problem(
            ids, p0, p, self.menu, objective=self.objective, sms_cost=self.sms_cost,
            margin_rate=self.margin_rate, basket=basket, segment=segment, redeem=redeem,
        )  # fmt: skip


#: Marks an input error raised on an executor, so the driver can report it in one line.
_MARK = "couponopt-input-error::"


def on_executor(run: Any) -> Any:
    """A ``mapInArrow`` function whose input errors leave the executor as one marked line."""

    def wrapped(batches):
        try:
            yield from run(batches)
        except InputError as exc:
            raise RuntimeError(_MARK + exc.line()) from None

    return wrapped


@contextlib.contextmanager
def driver_errors() -> Iterator[None]:
    """Executors' input errors (:func:`on_executor`) re-raised as one-line input errors.

    Inside the block Spark's exception, pages of stack traces, becomes the same
    :class:`InputError` the executor raised.
    """
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        text = str(exc)
        if _MARK not in text:
            raise
        raise InputError(text.split(_MARK, 1)[1].splitlines()[0].strip()) from None


def _lists(rows: np.ndarray, kind: pa.DataType) -> pa.Array:
    """Rows of an (m, k) array as an Arrow list column."""
    m, k = rows.shape
    offsets = pa.array(np.arange(0, m * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(rows.ravel(), type=kind))


def _bracket_rows(spec: _Spec, prices: tuple[float, float]):
    """The per-partition function of a bracket pass (``mapInArrow``)."""

    def run(batches):
        parts = [bracket_part(Chunk.of(spec.problem(b)), prices)[0] for b in batches]
        part = PassPart.merge(parts, len(spec.menu))
        c = part.core.n_users
        totals = [float(x) for x in (*part.cost, *part.value)]
        yield pa.RecordBatch.from_pydict({
            "kind": pa.array([0] + [1] * c, pa.int32()),
            "user_id": pa.array(np.concatenate([[0], part.core.user_id]), pa.int64()),
            "value": _lists(np.vstack([np.zeros((1, len(spec.menu))), part.core.value]),
                            pa.float64()),
            "cost": _lists(np.vstack([np.zeros((1, len(spec.menu))), part.core.cost]),
                           pa.float64()),
            "eligible": _lists(np.vstack([np.zeros((1, len(spec.menu)), bool),
                                          part.core.eligible]), pa.bool_()),
            "hi": pa.array(np.concatenate([[-1], part.core_hi]), pa.int32()),
            **{name: pa.array([totals[i]] + [0.0] * c)
               for i, name in enumerate(("cost_lo", "cost_hi", "value_lo", "value_hi"))},
        })  # fmt: skip

    return run


def _collect_part(table: pa.Table, k: int) -> PassPart:
    """The partitions' rows of a bracket pass, merged on the driver."""
    kind = table.column("kind").to_numpy()
    totals, core = kind == 0, np.flatnonzero(kind == 1)

    def matrix(name: str, dtype: Any) -> np.ndarray:
        flat = table.column(name).take(pa.array(core)).combine_chunks().flatten()
        return np.asarray(flat.to_numpy(zero_copy_only=False), dtype=dtype).reshape(-1, k)

    def total(name: str) -> float:
        return float(table.column(name).to_numpy()[totals].sum())

    return PassPart(
        np.array([total("cost_lo"), total("cost_hi")]),
        np.array([total("value_lo"), total("value_hi")]),
        Chunk(table.column("user_id").to_numpy()[core].astype(np.int64),
              matrix("value", np.float64), matrix("cost", np.float64), matrix("eligible", bool)),
        table.column("hi").to_numpy()[core].astype(np.int64),
    )  # fmt: skip


def _plan_rows(spec: _Spec, rule: Any):
    """The per-partition function of the writing pass: the plan's rule on each batch."""

    def run(batches):
        plan: StreamedBudget = rule.value
        for batch in batches:
            yield plan_batch(plan, spec.problem(batch), baskets=spec.basket_column is not None)

    return run


def _box_rows(spec: _Spec, budget: float, constraints: Constraints,
              box: tuple[np.ndarray, ...], fields: list[pa.Field]):  # fmt: skip
    """The per-partition function of a box pass (``mapInArrow``).

    It yields the core's rows as they came (``_kind`` 1) and one row of the partition's totals
    (``_kind`` 0, ``_totals`` = fixed value then each row's use, the other columns null).
    """

    def tagged(columns: list[pa.Array], kind: int, totals: list[float] | None) -> pa.RecordBatch:
        m = len(columns[0]) if columns else 1
        extra = [pa.array([kind] * m, pa.int32()),
                 pa.array([totals] * m, pa.list_(pa.float64()))]  # fmt: skip
        names = [f.name for f in fields] + ["_kind", "_totals"]
        return pa.RecordBatch.from_arrays([*columns, *extra], names=names)

    def run(batches):
        value, usage = 0.0, None
        for batch in batches:
            part, _, core = dual_part(spec.problem(batch), budget, constraints, box)
            value += part.value
            usage = part.usage if usage is None else usage + part.usage
            if core.size:
                rows = batch.take(pa.array(core))
                yield tagged([rows.column(f.name) for f in fields], 1, None)
        if usage is not None:
            nulls = [pa.nulls(1, f.type) for f in fields]
            yield tagged(nulls, 0, [value, *(float(u) for u in usage)])

    return run


def _collect_dual_part(table: pa.Table, spec: _Spec, rows: int) -> DualPart:
    """The partitions' rows of a box pass, merged on the driver."""
    kind = table.column("_kind").to_numpy()
    totals = table.filter(pa.array(kind == 0)).column("_totals").to_pylist()
    sums = np.sum(np.array(totals, dtype=np.float64).reshape(-1, rows + 1), axis=0)
    core = table.filter(pa.array(kind == 1)).drop_columns(["_kind", "_totals"])
    return DualPart(float(sums[0]), sums[1:], spec.problem(core) if core.num_rows else None)


def plan_budget_spark(
    scores: Any,
    menu: Menu,
    budget: float,
    out: str | Path,
    *,
    objective: str = "conversions",
    sms_cost: float = 0.05,
    margin_rate: float = 0.3,
    basket_column: str | None = None,
    constraints: Constraints | None = None,
    segment_column: str = "lifecycle_stage",
    overrun_risk: float | None = None,
    overrun_tolerance: float = 0.0,
    spend_error: np.ndarray | None = None,
    sample_users: int = SAMPLE_USERS,
    seed: int = 0,
) -> OutOfCorePlan:
    """The optimal plan under ``budget`` (and every constraint) over a Spark DataFrame of scores.

    Parameters
    ----------
    scores : pyspark.sql.DataFrame
        ``user_id``, ``p_natural``, ``p_coupon__<name>`` per denomination of ``menu`` (and
        ``p_redeem__<name>`` when a redemption model scored them, ``basket_column`` for the
        money objectives, ``segment_column`` for segment shares), one row per user.
    menu : Menu
    budget : float
        Expected-cost budget (money).
    out : path
        Folder of the plan dataset (Spark's ``part-*`` files and a manifest), replaced whole;
        a local path (on a cluster, a path every executor and the driver see).
    objective : {"conversions", "gmv", "profit"}
    sms_cost, margin_rate : float
    basket_column : str, optional
        The column of average order values (money), needed for ``gmv`` and ``profit``.
    constraints : Constraints, optional
        Caps, message cap, minimum ROI, segment shares (the streamed decomposition of
        :mod:`optimizer.solvers.streamed_dual`, one light job per box pass).
    segment_column : str
        The column of segment labels (read only for segment shares).
    overrun_risk, overrun_tolerance, spend_error
        The overrun rule, as :func:`~optimizer.planning.out_of_core.plan_budget_out_of_core`
        (each planning budget it tries is one more solve and one more light job).
    sample_users : int
        Users of the sample that prices the rows.
    seed : int

    Returns
    -------
    OutOfCorePlan
        The same figures as the single-machine path (``parts``: files written).
    """
    with warnings.catch_warnings(), driver_errors():  # the engine never uses pandas paths
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas",
                                FutureWarning)  # fmt: skip
        rule = (overrun_risk, overrun_tolerance, spend_error)
        return _plan(scores, menu, budget, out, objective, sms_cost, margin_rate,
                     basket_column, constraints or Constraints(), segment_column,
                     sample_users, seed, rule)  # fmt: skip


def _plan(scores: Any, menu: Menu, budget: float, out: str | Path, objective: str,
          sms_cost: float, margin_rate: float, basket_column: str | None,
          constraints: Constraints, segment_column: str, sample_users: int,
          seed: int, rule: tuple[Any, float, Any]) -> OutOfCorePlan:  # fmt: skip
    start = time.perf_counter()
    if objective != "conversions" and basket_column is None:
        raise InputError(f"the {objective} objective needs the users' baskets",
                         key="basket_column")  # fmt: skip
    redeem = all(f"p_redeem__{n}" in scores.columns for n in menu.names)
    shares = segment_column if constraints.segment_shares else None
    spec = _Spec(menu, objective, sms_cost, margin_rate, basket_column, shares, redeem)
    missing = [c for c in spec.columns if c not in scores.columns]
    if missing:
        raise InputError(f"the scores have no column {missing[0]!r}", key="scores")
    scores = scores.select(*spec.columns).persist()
    try:
        return _planned(scores, spec, menu, budget, out, constraints, sample_users, seed, rule,
                        start)  # fmt: skip
    finally:
        scores.unpersist()


def _planned(scores: Any, spec: _Spec, menu: Menu, budget: float, out: str | Path,
             constraints: Constraints, sample_users: int, seed: int, rule: tuple[Any, float, Any],
             start: float) -> OutOfCorePlan:  # fmt: skip
    from pyspark.sql import functions as F

    # One job counts the users and checks each appears once (the rule finds core users by id).
    ids = scores.groupBy("user_id").count()
    n, most = ids.agg(F.sum("count"), F.max("count")).collect()[0]
    n = int(n or 0)
    if n == 0:
        raise InputError("no users to plan", key="scores")
    if most > 1:
        twice = ids.where(F.col("count") > 1).limit(1).collect()[0][0]
        raise InputError(f"user_id {twice} appears more than once", key="scores")
    share = min(1.0, sample_users / n)
    sample = spec.problem(scores.sample(fraction=share, seed=seed).toArrow())
    passes = [1]
    known: dict[int, tuple[Any, tuple[float, float]]] = {}  # by plan (kept alive here)

    def solve(amount: float) -> StreamedBudget | StreamedDual:
        if constraints.budget_only:
            found, taken = _budget_passes(scores, spec, Chunk.of(sample), n, amount)
        else:
            found, taken = _box_passes(scores, spec, sample, n, amount, constraints, seed)
        passes[0] += taken - 1
        return found

    def moments(found: StreamedBudget | StreamedDual) -> tuple[float, float]:
        if id(found) not in known:
            passes[0] += 1
            known[id(found)] = (found, _spend_moments(scores, spec, found, rule[2]))
        return known[id(found)][1]

    plan, planning = fit_overrun_rule(solve, moments, budget, rule[0], rule[1])
    # The spread is known when the overrun rule measured it; else it would cost a pass: NaN.
    spend_sd = known[id(plan)][1][1] if id(plan) in known else float("nan")
    multipliers = {"budget": plan.price} if isinstance(plan, StreamedBudget) else plan.multipliers
    rule = scores.sparkSession.sparkContext.broadcast(plan)
    written = scores.mapInArrow(on_executor(_plan_rows(spec, rule)), PLAN_SCHEMA)
    try:
        with atomic_directory(out, whole=True, writes=SPARK_PLAN_FILES,
                              writer="plan") as staging:  # fmt: skip
            written.write.mode("overwrite").parquet(str(staging))
            write_manifest(staging, writer="plan")
    finally:
        rule.unpersist()

    sent = F.col("denomination") != NO_COUPON
    totals = (
        scores.sparkSession.read.parquet(str(out))
        .agg(F.sum(sent.cast("long")), F.sum("expected_uplift"), F.sum("expected_gmv"))
        .collect()[0]
    )
    gap = 1.0 - plan.value / plan.upper_bound if plan.upper_bound > 0 else 0.0
    return OutOfCorePlan(
        users=n, targeted=int(totals[0] or 0), budget=float(budget),
        planning_budget=float(planning), spend_sd=spend_sd, conversions=float(totals[1] or 0.0),
        gmv=float("nan") if spec.basket_column is None else float(totals[2] or 0.0),
        value=plan.value, cost=plan.cost,
        upper_bound=plan.upper_bound, gap=max(gap, 0.0), multipliers=multipliers,
        core_users=plan.core_users, passes=passes[0] + 1,
        parts=len(list(Path(out).glob("part-*"))), seconds=time.perf_counter() - start,
        out=str(out),
    )  # fmt: skip


def _spend_moments(scores: Any, spec: _Spec, plan: StreamedBudget | StreamedDual,
                   spend_error: np.ndarray | None) -> tuple[float, float]:  # fmt: skip
    """The plan's spend mean and standard deviation (money): one light job."""
    rule = scores.sparkSession.sparkContext.broadcast(plan)
    k = len(spec.menu)

    def run(batches):
        parts = np.zeros(2 + k)
        for batch in batches:
            problem = spec.problem(batch)
            parts += spend_parts(problem, plan_choice(rule.value, problem))
        yield pa.RecordBatch.from_pydict({"parts": pa.array([parts.tolist()],
                                                            pa.list_(pa.float64()))})  # fmt: skip

    rows = scores.mapInArrow(on_executor(run), "parts array<double>").toArrow()
    rows = rows.column(0).to_pylist()
    rule.unpersist()
    total = np.sum(np.array(rows, dtype=np.float64).reshape(-1, 2 + k), axis=0)
    return spend_moments_of(total, spend_error)


def _budget_passes(scores: Any, spec: _Spec, sample: Chunk, n: int,
                   budget: float) -> tuple[StreamedBudget, int]:  # fmt: skip
    """The bracket passes of the budget alone: the plan and the passes taken (sample's too)."""
    floor_prices = sample_prices(sample, sample.n_users / n, budget, default_width(sample.n_users))
    prices: tuple[float, float] | None = floor_prices[:2]
    passes = 1
    while prices is not None:
        passes += 1
        rows = scores.mapInArrow(on_executor(_bracket_rows(spec, prices)), _BRACKET_SCHEMA)
        rows = rows.toArrow()
        part = _collect_part(rows, len(spec.menu))
        bracket, prices = prices, widened(part, budget, prices, floor_prices[2])
    plan, _ = solve_core(part, budget, bracket, n, passes)
    return plan, passes


def _box_passes(scores: Any, spec: _Spec, sample: CampaignProblem, n: int, budget: float,
                constraints: Constraints, seed: int) -> tuple[StreamedDual, int]:  # fmt: skip
    """The box passes of every constraint: the plan and the passes taken (sample's too)."""
    from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StructField, StructType

    if constraints.segment_shares:  # validated against every user's labels
        labels = scores.select(spec.segment_column).distinct().toArrow().column(0).to_pylist()
        constraints.validate(replace(sample, segment_names=tuple(sorted(map(str, labels)))))
    else:
        constraints.validate(sample)
    rows = linear_rows(sample, budget, constraints)
    center, unit = sample_multipliers(sample, sample.n_users / n, budget, constraints, seed)
    columns = [StructField(f.name, f.dataType, True) for f in scores.schema.fields]  # nullable:
    schema = StructType([*columns, StructField("_kind", IntegerType()),  # the totals row
                         StructField("_totals", ArrayType(DoubleType()))])  # fmt: skip
    fields = list(scores.limit(0).toArrow().schema)  # the Arrow types the batches arrive in
    width = default_width(sample.n_users)
    box = box_around(center, unit, width)
    passes = 1
    for _ in range(BOX_ROUNDS):
        passes += 1
        run = on_executor(_box_rows(spec, budget, constraints, box, fields))
        table = scores.mapInArrow(run, schema)
        part = _collect_dual_part(table.toArrow(), spec, len(rows))
        check_core(0 if part.core is None else part.core.n_users)
        plan, box, width, _ = finish_box(part, rows, budget, constraints, box, unit, width, n,
                                         passes, seed=seed)  # fmt: skip
        if plan is not None:
            return plan, passes
    raise no_certified_plan()
