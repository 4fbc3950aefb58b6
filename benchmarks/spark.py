"""The Spark engine on one machine (``local[2]``): one budget's time and memory, beside out of core.

Writes a synthetic scores file (as ``benchmarks/out_of_core.py`` does), then plans it in a
fresh process with ``plan_budget_spark`` on a local Spark session (two cores, the driver and
executor in one JVM), and with ``plan_budget_out_of_core`` for reference, measured in the same
run. Reports the wall time, the peak memory of the Python driver and of the JVM (the child
processes' ``ru_maxrss``), and the per-partition cost that sizes a cluster: seconds per
million users per core, from which N executors x C cores take about
``users / 1e6 x cost / (N x C)`` seconds plus the job overheads measured here. Prints a table
and writes ``benchmarks/results/spark.json``.

    .venv/bin/python benchmarks/spark.py                       # 10M users
    .venv/bin/python benchmarks/spark.py --sizes 10000000,100000000
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from _common import ROOT, run_child, write_json
from out_of_core import MENU, OUT_OF_CORE, write_scores
from rich.console import Console
from rich.table import Table

SPARK = r"""
import json, os, resource, sys, time, warnings
sys.path.insert(0, {root!r})
os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run this interpreter
warnings.simplefilter("ignore", FutureWarning)
from pyspark.sql import SparkSession
from optimizer.engines.spark import plan_budget_spark
from optimizer.io.menu import load_menu
start = time.perf_counter()
spark = (SparkSession.builder.master("local[2]").appName("couponopt-bench")
         .config("spark.ui.enabled", "false").config("spark.driver.memory", {memory!r})
         .config("spark.sql.files.maxPartitionBytes", str(64 << 20)).getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
session_s = time.perf_counter() - start
scores = spark.read.parquet({scores!r})
partitions = scores.rdd.getNumPartitions()
found = plan_budget_spark(scores, load_menu({menu!r}), {budget!r}, {out!r})
spark.stop()
print(json.dumps({{**found.to_dict(), "session_s": session_s, "partitions": partitions,
                   "seconds": time.perf_counter() - start,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   "jvm_and_workers_peak_rss_mb":
                       resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000000", help="comma-separated user counts")
    parser.add_argument("--memory", default="4g", help="spark.driver.memory (local mode)")
    args = parser.parse_args()
    console = Console()
    work = Path(tempfile.mkdtemp(prefix="couponopt-spark-"))
    from optimizer.io.menu import save_menu

    save_menu(MENU, work / "menu.toml")
    rows = []
    try:
        for users in [int(s) for s in args.sizes.split(",")]:
            scores = work / f"scores-{users}.parquet"
            console.print(f"writing {users:,} users of scores ...")
            budget = write_scores(scores, users)
            for engine, code in (
                ("spark local[2]", SPARK.format(root=str(ROOT), scores=str(scores),
                                                menu=str(work / "menu.toml"), budget=budget,
                                                out=str(work / "plan-spark"),
                                                memory=args.memory)),
                ("out of core", OUT_OF_CORE.format(root=str(ROOT), scores=str(scores),
                                                   menu=str(work / "menu.toml"), budget=budget,
                                                   out=str(work / "plan-ooc"),
                                                   chunk=1_000_000)),
            ):  # fmt: skip
                console.print(f"{engine}: planning {users:,} users in a fresh process ...")
                start = time.perf_counter()
                found = run_child(code)
                rows.append({"users": users, "engine": engine, "budget": budget,
                             "wall_s": time.perf_counter() - start, **found})  # fmt: skip
            scores.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title="One budget on Spark local[2] and out of core (5 coupons)")
    for column in ("users", "engine", "seconds", "Python peak (GB)", "JVM peak (GB)", "gap",
                   "s per 1M users per core"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        jobs = row["seconds"] - row.get("session_s", 0.0)
        row["core_seconds_per_million"] = jobs * 2 / (row["users"] / 1e6)
        jvm = row.get("jvm_and_workers_peak_rss_mb")
        table.add_row(f"{row['users']:,}", row["engine"], f"{row['seconds']:.1f}",
                      f"{row['peak_rss_mb'] / 1024:.2f}",
                      f"{jvm / 1024:.2f}" if jvm else "", f"{row['gap']:.1e}",
                      f"{row['core_seconds_per_million']:.2f}")  # fmt: skip
    console.print(table)
    write_json(ROOT / "benchmarks" / "results" / "spark.json", {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "rows": rows,
    })  # fmt: skip


if __name__ == "__main__":
    main()
