"""Value a plan of any size on a randomized log, on Apache Spark.

A randomized test logs far fewer customers than a plan covers (a test cell of a base of 100M).
The work that grows with the base is finding the logged customers' treatments in the plan:
:func:`plan_rows_spark` does it as a distributed semi-join of the plan table with the log's
customer ids (broadcast), checks every row's treatment with one aggregation, and collects
only the matched rows (Arrow). They go to :func:`optimizer.planning.value_plans`, whose
estimators, intervals and bootstrap run over the log's rows: the figures are the same as
valuing the whole plan in memory, with the plan never on one machine.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from optimizer.errors import InputError
from optimizer.io.menu import NO_COUPON, Menu

__all__ = ["plan_rows_spark"]


def plan_rows_spark(
    plan: Any, customers: np.ndarray, menu: Menu, *, source: str = "plan"
) -> pd.DataFrame:
    """The plan's ``user_id`` and ``denomination`` for the given customers.

    Parameters
    ----------
    plan : pyspark.sql.DataFrame
        A plan table (``user_id``, ``denomination``): a plan dataset read by Spark.
    customers : ndarray of int, shape (m,)
        The log's customer ids.
    menu : Menu
    source : str
        The plan's name in error messages.

    Returns
    -------
    DataFrame
        One row per matched customer.

    Raises
    ------
    InputError
        A missing column, a treatment not on the menu (anywhere in the plan), or a matched
        customer listed twice.
    """
    from pyspark.sql import functions as F

    with warnings.catch_warnings():  # the engine never uses Spark's pandas paths
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas",
                                FutureWarning)  # fmt: skip
        for column in ("user_id", "denomination"):
            if column not in plan.columns:
                raise InputError(f"missing column {column!r}; not a plan file", source=source)
        known = [*menu.names, NO_COUPON]
        odd = F.col("denomination").isNull() | ~F.col("denomination").isin(known)
        stray = plan.where(odd).select("denomination").limit(1)
        stray_rows = stray.collect()
        if stray_rows:
            raise InputError(f"treatment {stray_rows[0][0]!r} is not on the menu",
                             source=source, column="denomination")  # fmt: skip
        ids = np.unique(np.asarray(customers, dtype=np.int64))
        session = plan.sparkSession
        wanted = session.createDataFrame(pa.table({"user_id": pa.array(ids, pa.int64())}))
        matched = plan.select(F.col("user_id").cast("long"), "denomination").join(
            F.broadcast(wanted), "user_id", "left_semi"
        )
        rows = matched.toArrow().to_pandas()
    if rows["user_id"].duplicated().any():
        raise InputError("a customer is listed twice", source=source, column="user_id")
    return rows.reset_index(drop=True)
