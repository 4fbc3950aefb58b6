"""Time and peak memory to generate synthetic worlds (users, log and truth written to Parquet).

Each size runs in a fresh Python process so that its peak resident memory (ru_maxrss) is its
own. Prints a table and writes ``benchmarks/results/generate.json``.

    .venv/bin/python benchmarks/generate.py                 # 1M and 10M users
    .venv/bin/python benchmarks/generate.py --sizes 100000  # a quick run
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

from _common import ROOT, run_child, write_json
from rich.console import Console
from rich.table import Table

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from simulator.world import write_world
from simulator.scenario import Scenario
scenario = Scenario().with_overrides(users={users})
out = Path({out!r})
start = time.perf_counter()
summary = write_world(scenario, out)
elapsed = time.perf_counter() - start
sizes = {{p.name: p.stat().st_size for p in out.iterdir()}}
print(json.dumps({{
    "users": {users},
    "seconds": elapsed,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "bytes_written": sum(sizes.values()),
    "files": sizes,
    "log_rows": int(summary.log_counts[..., 0].sum()),
}}))
"""


def run(users: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="couponopt-bench-") as tmp:
        code = CHILD.format(root=str(ROOT), users=users, out=str(Path(tmp) / "world"))
    return run_child(code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "generate.json"
    )
    args = parser.parse_args()

    console = Console()
    results = []
    for users in args.sizes:
        console.print(f"generating {users:,} users ...")
        results.append(run(users))
    table = Table(title="couponopt generate: time and peak memory", title_justify="left")
    for col in ("users", "seconds", "users / s", "peak RSS (MB)", "written (MB)", "log rows"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(
            f"{r['users']:,}",
            f"{r['seconds']:.1f}",
            f"{r['users'] / r['seconds']:,.0f}",
            f"{r['peak_rss_mb']:,.0f}",
            f"{r['bytes_written'] / 1e6:,.0f}",
            f"{r['log_rows']:,}",
        )
    table.caption = "one process per size; peak RSS = ru_maxrss of that process"
    console.print(table)
    payload = {
        "benchmark": "generate",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
    }
    write_json(args.json, payload)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
