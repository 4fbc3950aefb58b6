"""The Spark engine on one machine (``local[2]``): one budget's time and memory, beside out of core.

Writes a synthetic scores file (as ``benchmarks/out_of_core.py`` does), then plans it in a
fresh process with ``plan_budget_spark`` on a local Spark session (two cores, the driver and
executor in one JVM), and with ``plan_budget_out_of_core`` for reference, measured in the same
run, under the budget alone and with two coupon caps and a message cap. Reports the wall time,
the peak memory of the Python driver, of the JVM (driver and executor in local mode) and of the
Python workers (``VmHWM`` of each process, read from /proc before the session stops), and the
per-partition cost that sizes a cluster: seconds per million users per core, from which N
executors x C cores take about ``users / 1e6 x cost / (N x C)`` seconds plus the job overheads
measured here. Prints a table and writes ``benchmarks/results/spark.json``.

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
from out_of_core import MENU, OUT_OF_CORE, constraints_for, write_scores
from rich.console import Console
from rich.table import Table

SPARK = r"""
import json, os, resource, sys, time, warnings
from pathlib import Path
sys.path.insert(0, {root!r})
os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run this interpreter
warnings.simplefilter("ignore", FutureWarning)
from pyspark.sql import SparkSession
from optimizer.engines.spark import plan_budget_spark
from optimizer.io.menu import load_menu
from optimizer.solvers import Constraints


def peak_mb(pid):
    for line in Path(f"/proc/{{pid}}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(pid):
    parent = {{}}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        here = todo.pop()
        kids = [p for p, q in parent.items() if q == here]
        out += kids
        todo += kids
    return out


start = time.perf_counter()
spark = (SparkSession.builder.master("local[2]").appName("couponopt-bench")
         .config("spark.ui.enabled", "false").config("spark.driver.memory", {memory!r})
         .config("spark.sql.files.maxPartitionBytes", str(64 << 20)).getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
session_s = time.perf_counter() - start
scores = spark.read.parquet({scores!r})
partitions = scores.rdd.getNumPartitions()
found = plan_budget_spark(scores, load_menu({menu!r}), {budget!r}, {out!r},
                          constraints=Constraints(**{constraints!r}))
jvm = spark.sparkContext._gateway.proc.pid  # the driver's JVM (local mode: the executor too)
workers = descendants(jvm)
memory = {{"jvm_peak_rss_mb": peak_mb(jvm),
           "python_workers_peak_rss_mb": sum(peak_mb(p) for p in workers),
           "python_workers": len(workers)}}
seconds = time.perf_counter() - start
spark.stop()
print(json.dumps({{**found.to_dict(), "session_s": session_s, "partitions": partitions,
                   "seconds": seconds, **memory,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
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
            for kind, constraints in (("budget", {}), ("caps + messages",
                                                       constraints_for(users))):  # fmt: skip
                common = dict(root=str(ROOT), scores=str(scores), menu=str(work / "menu.toml"),
                              budget=budget, constraints=constraints)  # fmt: skip
                for engine, code in (
                    ("spark local[2]", SPARK.format(out=str(work / "plan-spark"),
                                                    memory=args.memory, **common)),
                    ("out of core", OUT_OF_CORE.format(out=str(work / "plan-ooc"),
                                                       chunk=1_000_000, **common)),
                ):  # fmt: skip
                    console.print(f"{engine}: {users:,} users ({kind}) in a fresh process ...")
                    start = time.perf_counter()
                    found = run_child(code)
                    rows.append({"users": users, "engine": engine, "constraints": kind,
                                 "budget": budget, "wall_s": time.perf_counter() - start,
                                 **found})  # fmt: skip
            scores.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title="One budget on Spark local[2] and out of core (5 coupons)")
    for column in ("users", "engine", "constraints", "seconds", "driver (GB)", "JVM (GB)",
                   "workers (GB)", "gap", "passes", "s per 1M users per core"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        jobs = row["seconds"] - row.get("session_s", 0.0)
        row["core_seconds_per_million"] = jobs * 2 / (row["users"] / 1e6)
        jvm, workers = row.get("jvm_peak_rss_mb"), row.get("python_workers_peak_rss_mb")
        table.add_row(f"{row['users']:,}", row["engine"], row["constraints"],
                      f"{row['seconds']:.1f}", f"{row['peak_rss_mb'] / 1024:.2f}",
                      f"{jvm / 1024:.2f}" if jvm else "", f"{workers / 1024:.2f}" if jvm else "",
                      f"{row['gap']:.1e}", str(row["passes"]),
                      f"{row['core_seconds_per_million']:.2f}")  # fmt: skip
    console.print(table)
    write_json(ROOT / "benchmarks" / "results" / "spark.json", {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "rows": rows,
    })  # fmt: skip


if __name__ == "__main__":
    main()
