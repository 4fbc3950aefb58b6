"""Time and peak memory of `couponopt score` on large user files (chunked scoring).

Trains the models once on the default 200k-user world, generates user tables of the requested
sizes, then scores each in a fresh process (so that its peak resident memory is its own).
Prints a table and writes ``benchmarks/results/score.json``.

    .venv/bin/python benchmarks/score.py                  # 1M and 10M users
    .venv/bin/python benchmarks/score.py --sizes 200000   # a quick run
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

from _common import ROOT, run_child, write_json
from rich.console import Console
from rich.table import Table

from optimizer.models.conversion import ConversionModels  # noqa: E402
from simulator.scenario import Scenario  # noqa: E402
from simulator.world.generation import build_world, write_world  # noqa: E402

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from optimizer.models import ConversionModels, score_file
models = ConversionModels.load({models!r})
start = time.perf_counter()
run = score_file(models, {users!r}, {out!r}, chunk_rows={chunk})
print(json.dumps({{
    "rows": run.rows,
    "seconds": time.perf_counter() - start,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "score.json")
    args = parser.parse_args()
    console = Console(width=120)
    results = []
    with tempfile.TemporaryDirectory(prefix="couponopt-score-") as tmp:
        tmp = Path(tmp)
        world = build_world(Scenario())
        models = ConversionModels().fit(world.history, world.users, world.scenario.menu)
        models.save(tmp / "models")
        for users in args.sizes:
            console.print(f"generating {users:,} users ...")
            write_world(Scenario().with_overrides(users=users, seed=99), tmp / "world")
            console.print(f"scoring {users:,} users ...")
            code = CHILD.format(
                root=str(ROOT),
                models=str(tmp / "models"),
                users=str(tmp / "world" / "users.parquet"),
                out=str(tmp / "scores.parquet"),
                chunk=args.chunk_rows,
            )
            record = run_child(code)
            record["users"] = users
            results.append(record)
    table = Table(title="couponopt score: time and peak memory", title_justify="left")
    for col in ("users", "seconds", "users / s", "peak RSS (MB)"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r['users']:,}",
            f"{r['seconds']:.1f}",
            f"{r['users'] / r['seconds']:,.0f}",
            f"{r['peak_rss_mb']:,.0f}",
        )
    table.caption = (
        f"chunks of {args.chunk_rows:,} users; validation, both models, drift counts and "
        "Parquet output included; one process per size"
    )
    console.print(table)
    payload = {
        "benchmark": "score",
        "python": platform.python_version(),
        "chunk_rows": args.chunk_rows,
        "results": results,
    }
    write_json(args.json, payload)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
