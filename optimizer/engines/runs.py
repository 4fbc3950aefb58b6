"""Score, plan and value by engine: what the command line and a notebook call at any scale.

The engine is the configuration's ``[engine]`` (:class:`~optimizer.planning.config.Engine`):

* ``memory``: every user in memory (the default; every policy, comparison and option);
* ``stream``: scores and plan streamed in chunks from Parquet files or datasets, memory bounded
  at any number of users (:func:`~optimizer.planning.out_of_core.plan_budget_out_of_core`);
* ``spark``: the same passes as Spark jobs (:mod:`optimizer.engines.spark`), on ``master``
  (or the one ``spark-submit`` gives).

At scale a plan is the optimal policy under the budget, the business constraints and the
overrun rule, written as a Parquet dataset; the comparisons with manual and v1/v2, targeting,
exclusions and the flexible budget need every user in memory and are refused with a line
naming the key.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optimizer.choices import Policy
from optimizer.errors import InputError
from optimizer.io.atomic import check_not_input
from optimizer.models.conversion import ConversionModels
from optimizer.models.scoring import ScoreRun, score_file
from optimizer.planning.config import Engine
from optimizer.planning.out_of_core import OutOfCorePlan, plan_budget_out_of_core
from optimizer.planning.request import PlanningRequest
from optimizer.planning.valuation import read_plan
from optimizer.progress import Progress

__all__ = ["spark_session", "score_at_scale", "plan_at_scale", "plan_rows_at_scale"]


def spark_session(engine: Engine) -> Any:
    """The Spark session of ``engine`` (created, or the running one).

    Workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise; ``engine.spark``
    entries are set on the builder (they do not change a session already running).

    Raises
    ------
    InputError
        PySpark is not installed, or Spark could not start (no Java runtime).
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas",
                                    FutureWarning)  # fmt: skip
            from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("needs PySpark: pip install 'couponopt[spark]'",
                         key="engine.name") from None  # fmt: skip
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("couponopt")
    if engine.master:
        builder = builder.master(engine.master)
    settings = {"spark.sql.execution.arrow.pyspark.enabled": "true", **engine.spark}
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: Spark's own error is pages long
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"Spark did not start ({first}); it needs Java 17 or later on the "
                         "PATH or JAVA_HOME", key="engine.master") from None  # fmt: skip


def _spark_table(session: Any, path: str | Path) -> Any:
    """A Parquet file or dataset folder, or a CSV file with a header, as a Spark DataFrame."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", source=path)
    if path.name.lower().endswith((".csv", ".csv.gz")):
        return session.read.option("header", True).option("inferSchema", True).csv(str(path))
    return session.read.parquet(str(path))


def score_at_scale(
    models: ConversionModels,
    users: str | Path,
    out: str | Path,
    engine: Engine,
    *,
    chunk_rows: int | None = None,
    progress: Progress | None = None,
) -> ScoreRun:
    """Score every user of ``users`` (a file or a dataset folder) into ``out`` by ``engine``.

    ``memory`` and ``stream`` both score in chunks (``chunk_rows``, default sized by the
    models' features); ``spark`` scores on the cluster and writes a dataset folder.
    """
    if engine.name == "spark":
        if Path(out).suffix:
            raise InputError("the Spark engine writes a dataset: give a folder", source=out)
        check_not_input(out, users)
        from optimizer.engines.spark_scoring import score_spark

        session = spark_session(engine)
        return score_spark(models, _spark_table(session, users), out, source=str(users))
    # Scoring sizes its chunks by the models' features (memory follows cells), whatever the
    # engine's chunk for planning.
    return score_file(models, users, out, chunk_rows=chunk_rows, progress=progress)


#: What a plan at scale cannot do, by configuration key: a test on the request each.
_NEEDS_MEMORY: dict[str, Callable[[PlanningRequest], bool]] = {
    "policies": lambda r: tuple(r.policies) != (Policy.OPTIMAL,),
    "match": lambda r: bool(r.match),
    "screen": lambda r: r.screen,
    "targeting.segments": lambda r: bool(r.campaign.targeting.segments),
    "constraints.exclude_file": lambda r: r.exclude is not None,
    "budget.marginal_return": lambda r: r.marginal_return is not None,
}


def plan_at_scale(
    request: PlanningRequest,
    scores: str | Path,
    out: str | Path,
    *,
    users: str | Path | None = None,
    progress: Progress | None = None,
) -> OutOfCorePlan:
    """The optimal plan of ``request`` over a scores file or dataset, by its engine.

    Parameters
    ----------
    request : PlanningRequest
        Budget, objective, costs, constraints and ``campaign.engine`` (``stream`` or
        ``spark``).
    scores : path
        Scores file or dataset folder (``couponopt score``'s).
    out : path
        The plan dataset's folder (replaced whole).
    users : path, optional
        The user table in the scores' order (``stream``) or with the same ids (``spark``):
        the basket for the money objectives, the segment column for segment shares.
    progress : callable, optional

    Raises
    ------
    InputError
        The engine is ``memory``, or the request asks for what needs every user in memory.
    """
    engine = request.campaign.engine
    if engine.name == "memory":
        raise InputError("plans at scale need the stream or spark engine", key="engine.name")
    for key, asked in _NEEDS_MEMORY.items():
        if asked(request):
            raise InputError(
                f"needs every user in memory; the {engine.name} engine plans the optimal policy "
                "under the budget and constraints",
                key=key,
            )
    if Path(out).suffix:
        raise InputError("a plan at scale is a dataset: give a folder", source=out)
    check_not_input(out, scores, users)
    settings = request.settings()
    constraints = settings.constraints
    common = dict(objective=str(request.objective), sms_cost=request.sms_cost,
                  margin_rate=request.margin_rate, constraints=constraints,
                  segment_column=request.segment_column, seed=request.seed,
                  overrun_risk=settings.overrun_risk,
                  overrun_tolerance=settings.overrun_tolerance,
                  spend_error=request.spend_error_array(request.campaign.menu))  # fmt: skip
    if engine.name == "stream":
        return plan_budget_out_of_core(
            scores, request.campaign.menu, request.budget, out, users=users,
            basket_column=request.basket_column or "avg_order_value",
            chunk_rows=engine.chunk_rows, progress=progress, **common,
        )  # fmt: skip
    from optimizer.engines.spark import plan_budget_spark

    session = spark_session(engine)
    frame = _spark_table(session, scores)
    basket = None
    if users is not None:
        frame, basket = _with_user_columns(session, frame, users, request, constraints)
    elif str(request.objective) != "conversions":
        raise InputError(f"the {request.objective} objective needs the users' baskets",
                         key="users")  # fmt: skip
    return plan_budget_spark(frame, request.campaign.menu, request.budget, out,
                             basket_column=basket, **common)  # fmt: skip


def _with_user_columns(session: Any, scores: Any, users: str | Path, request: PlanningRequest,
                       constraints: Any) -> tuple[Any, str | None]:  # fmt: skip
    """The scores joined with the users' basket (and segment) columns, every user matched."""
    table = _spark_table(session, users)
    wanted = ["user_id", request.basket_column or "avg_order_value"]
    wanted += [request.segment_column] if constraints.segment_shares else []
    for column in wanted:
        if column not in table.columns:
            raise InputError("missing column", source=users, column=column)
    from pyspark.sql import functions as F

    table = table.select(*dict.fromkeys(wanted))
    twice = table.groupBy("user_id").count().where(F.col("count") > 1).limit(1).collect()
    if twice:
        raise InputError(f"user_id {twice[0][0]} appears more than once", source=users)
    missing = scores.join(table, "user_id", "left_anti").select("user_id").limit(1).collect()
    if missing:
        raise InputError(f"has no row for the scored user_id {missing[0][0]}", source=users)
    return scores.join(table, "user_id", "inner"), wanted[1]


def plan_rows_at_scale(path: str | Path, menu: Any, customers: np.ndarray,
                       engine: Engine) -> pd.DataFrame:  # fmt: skip
    """A plan's rows for a log's customers: streamed (any engine but spark) or on Spark."""
    if engine.name == "spark":
        from optimizer.engines.spark_valuation import plan_rows_spark

        session = spark_session(engine)
        return plan_rows_spark(_spark_table(session, path), customers, menu, source=str(path))
    return read_plan(path, menu, customers, chunk_rows=engine.chunk_rows)
