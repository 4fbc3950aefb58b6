"""Score users on Apache Spark: the models broadcast once, applied to every Arrow batch.

:func:`score_spark` is :func:`optimizer.models.score_file` with Spark partitions for chunks:

* the fitted models are broadcast to the executors once (``SparkContext.broadcast``) and each
  partition applies them batch by batch (``mapInArrow``): a batch is checked against the user
  contract (or the models' data mapping) exactly as a chunk of a file is, then scored;
* user ids are checked unique across partitions by one aggregation before anything is written;
* the scores are written as a Parquet dataset with a manifest, published whole (the same folder
  :func:`optimizer.planning.out_of_core.plan_budget_out_of_core` and the Spark planner read);
* the drift check (population stability per feature) runs on a uniform sample of the users on
  the driver, and the mean scores are one aggregation over the written dataset.

A bad row on an executor reaches the driver as the same one-line :class:`InputError` a file
would give (its row number counted within the partition's batch).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from optimizer.engines.spark import driver_errors, on_executor
from optimizer.errors import InputError
from optimizer.evaluation.drift import drift_table
from optimizer.io.atomic import atomic_directory, write_manifest
from optimizer.io.contract import USERS
from optimizer.io.tables import check_users, validate_frame
from optimizer.models.conversion import ConversionModels
from optimizer.models.scoring import ScoreRun

__all__ = ["score_spark", "DRIFT_SAMPLE", "SPARK_SCORE_FILES"]

#: Users of the sample the drift check reads on the driver.
DRIFT_SAMPLE = 200_000
#: The files Spark writes into a scores folder (besides the manifest).
SPARK_SCORE_FILES = ("part-*", "_SUCCESS", ".part-*.crc", "._SUCCESS.crc")


def _shaper(models: ConversionModels):
    """A function turning a raw batch (DataFrame) into checked users of the models' form."""
    from optimizer.io.mapping import _shape_users
    from optimizer.models.mapped import _spec, data_of

    data = data_of(models)
    if data is None:

        def synthetic(frame: pd.DataFrame, source: str) -> pd.DataFrame:
            users = validate_frame(frame, USERS, source)
            check_users(users, source)
            return users

        return synthetic
    if not data.users.id:
        raise InputError("the Spark engine needs an id column to score a customer table "
                         "(rows have no order across partitions)", key="data.users.id")  # fmt: skip
    spec = _spec(models)
    return lambda frame, source: _shape_users(frame, data, spec, Path(source))


def _score_rows(models: Any, source: str):
    """The per-partition function: check, then score each batch (``mapInArrow``)."""

    def run(batches):
        fitted: ConversionModels = models.value
        shape = _shaper(fitted)
        for batch in batches:
            users = shape(batch.to_pandas(), source)
            scores = fitted.predict(users)
            yield pa.RecordBatch.from_pandas(scores, preserve_index=False)

    return on_executor(run)  # an input error reaches the driver as one line


def score_spark(
    models: ConversionModels,
    users: Any,
    out: str | Path,
    *,
    source: str = "users",
    id_column: str | None = None,
    seed: int = 0,
) -> ScoreRun:
    """Score every user of a Spark DataFrame into a Parquet dataset.

    Parameters
    ----------
    models : ConversionModels
        Fitted models (broadcast to the executors once).
    users : pyspark.sql.DataFrame
        The user table: the synthetic contract's columns, or for models trained on a data
        configuration, the customer table's.
    out : path
        Folder of the scores dataset (``user_id``, ``p_natural``, ``p_coupon__<name>``, and
        ``p_redeem__<name>`` with a redemption model), replaced whole; on a cluster, a path the
        driver and every executor see.
    source : str
        The table's name in error messages.
    id_column : str, optional
        The users' id column (default ``user_id``, or the data configuration's).
    seed : int
        Seed of the drift check's sample.

    Returns
    -------
    ScoreRun
        Rows, mean scores and each feature's PSI against the training population.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    with warnings.catch_warnings():  # the engine never uses Spark's pandas paths
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas",
                                FutureWarning)  # fmt: skip
        from optimizer.models.mapped import data_of

        data = data_of(models)
        ident = id_column or (data.users.id if data is not None else "user_id")
        shape = _shaper(models)
        if ident not in users.columns:
            raise InputError("missing column", source=source, column=ident)
        twice = users.groupBy(ident).count().where(F.col("count") > 1).limit(1).collect()
        if twice:
            raise InputError(f"duplicated user_id {twice[0][0]!r}", source=source, column=ident)
        n = users.count()
        if n == 0:
            raise InputError("no data rows; expected at least one row", source=source)
        sample = users.sample(fraction=min(1.0, DRIFT_SAMPLE / n), seed=seed).toArrow()
        if sample.num_rows == 0:
            sample = users.limit(1).toArrow()
        try:
            checked = shape(sample.to_pandas(), source)
        except InputError as exc:
            raise InputError(exc.line() + " (in a sample of the rows)") from None
        schema = from_arrow_schema(
            pa.Schema.from_pandas(models.predict(checked.iloc[:1]), preserve_index=False)
        )
        rule = users.sparkSession.sparkContext.broadcast(models)
        scored = users.mapInArrow(_score_rows(rule, source), schema)
        try:
            with driver_errors(), atomic_directory(out, whole=True, writes=SPARK_SCORE_FILES,
                                                   writer="scores") as staging:  # fmt: skip
                scored.write.mode("overwrite").parquet(str(staging))
                write_manifest(staging, writer="scores")
        finally:
            rule.unpersist()
        written = users.sparkSession.read.parquet(str(out))
        columns = [c for c in written.columns if c != "user_id"]
        means = written.agg(*[F.avg(c).alias(c) for c in columns]).collect()[0].asDict()
        return ScoreRun(
            rows=int(n),
            drift=drift_table(models.encoder.reference(), models.encoder.bin_counts(checked)),
            mean_scores={k: float(v) for k, v in means.items()},
        )
