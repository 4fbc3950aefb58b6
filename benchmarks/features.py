"""Time and peak memory of `couponopt train` and `score` on a wide customer table (200 features).

Writes a seeded customer table of N users (120 numeric features, some skewed, a third with 5%
missing values; 80 text features of 3 to 50,000 labels, the wide ones beyond the frequency cap
of 100), a segment ``tier`` and a randomized campaign log (arms A, B and a control, outcome from
a logistic model), both as Parquet, then a campaign file mapping them (``[data]``). Each CLI step
runs in a fresh process so that its peak resident memory is its own. The reference, in the same
run: the same steps on a synthetic world of N users (15 features). Checks that the scores hold
every customer exactly once. Prints a table and writes ``benchmarks/results/features.json``.

    .venv/bin/python benchmarks/features.py            # 300k users
    .venv/bin/python benchmarks/features.py --quick    # 30k users
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import ROOT, write_json
from rich.console import Console
from rich.table import Table

from optimizer.planning.config import load_campaign  # noqa: E402

N_NUMERIC = 120
N_CATEGORICAL = 80
MAX_CATEGORIES = 100
TIERS = np.array(["bronze", "silver", "gold", "platinum"])
RANK_BY = "num_001"  # lognormal spend-like column, never missing
TIME = Path("/usr/bin/time")

# A fresh interpreter that runs one command and reports its peak resident memory: the fallback
# when /usr/bin/time is missing (RUSAGE_CHILDREN of this wrapper is that command's alone).
WRAPPER = r"""
import json, resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(json.dumps({"rc": rc, "kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}),
      file=sys.stderr)
"""


# ---------------------------------------------------------------------------------- the data


class Design:
    """The wide table's columns, fixed by the seed: kinds, loadings, cardinalities, vocabularies."""

    def __init__(self, rng: np.random.Generator) -> None:
        i = np.arange(N_NUMERIC)
        self.kind = i % 4  # 0 normal, 1 lognormal (skewed), 2 counts (skewed), 3 shares
        self.missing = i % 3 == 2  # 40 columns with ~5% missing values
        self.loadings = rng.normal(0, 0.7, (4, N_NUMERIC))  # 4 latent traits -> correlations
        self.loc = rng.uniform(-5, 50, N_NUMERIC)
        self.scale = rng.uniform(0.5, 20, N_NUMERIC)
        self.sigma = rng.uniform(0.6, 1.5, N_NUMERIC)
        self.cardinality = np.geomspace(3, 50_000, N_CATEGORICAL).round().astype(np.int64)
        self.cdf = []
        self.vocab = []
        for j, k in enumerate(self.cardinality):
            zipf = 1.05 if k > MAX_CATEGORIES else 0.6  # long tails past the cap
            weights = (np.arange(k) + 1.0) ** -zipf
            self.cdf.append(np.cumsum(weights / weights.sum()))
            self.vocab.append(pa.array([f"c{j:02d}_{v}" for v in rng.permutation(k)]))
        self.names = [f"num_{i:03d}" for i in range(N_NUMERIC)]
        self.names += [f"cat_{j:02d}" for j in range(N_CATEGORICAL)]
        order = rng.permutation(len(self.names))  # numeric and text columns interleaved
        self.order = [self.names[o] for o in order]

    def chunk(
        self, rng: np.random.Generator, ids: np.ndarray
    ) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """One chunk of customers, its latent traits and tiers (for the log's outcome model)."""
        n = ids.size
        z = rng.normal(size=(n, 4))
        x = z @ self.loadings + rng.normal(size=(n, N_NUMERIC))
        values = np.empty_like(x)
        k = self.kind
        values[:, k == 0] = self.loc[k == 0] + self.scale[k == 0] * x[:, k == 0]
        values[:, k == 1] = np.round(np.exp(3 + self.sigma[k == 1] * x[:, k == 1] / 2), 2)
        values[:, k == 2] = rng.poisson(np.exp(0.5 + 0.8 * np.clip(x[:, k == 2], -4, 4)))
        values[:, k == 3] = 1 / (1 + np.exp(-x[:, k == 3]))
        values[(rng.random((n, N_NUMERIC)) < 0.05) & self.missing] = np.nan
        columns: dict[str, pa.Array] = {}
        for i, name in enumerate(self.names[:N_NUMERIC]):
            columns[name] = pa.array(values[:, i])
        for j in range(N_CATEGORICAL):
            codes = np.searchsorted(self.cdf[j], rng.random(n), side="right")
            codes = np.minimum(codes, self.cardinality[j] - 1).astype(np.int32)
            columns[f"cat_{j:02d}"] = pa.DictionaryArray.from_arrays(
                pa.array(codes), self.vocab[j]
            ).dictionary_decode()
        tier = np.digitize(z[:, 0] + rng.normal(0, 0.5, n), [-0.8, 0.3, 1.2])
        table = pa.table(
            {
                "customer_id": pa.array(ids),
                "tier": pa.array(TIERS[tier]),
                **{name: columns[name] for name in self.order},
            }
        )
        return table, z, tier


def write_data(
    folder: Path, users: int, log_share: float, seed: int, chunk_rows: int = 50_000
) -> dict:
    """Write ``users.parquet`` and ``log.parquet`` in chunks; return their figures."""
    rng = np.random.default_rng(seed)
    design = Design(rng)
    ids = 1_000_000 + 7 * rng.permutation(users).astype(np.int64)  # unique, unordered
    arms = np.array(["A", "B", "ctl"])
    effect = np.array([0.25, 0.45, 0.0])  # A, B, control on the logit
    writers: dict[str, pq.ParquetWriter] = {}
    log_rows = bought = 0
    start = time.perf_counter()
    try:
        for lo in range(0, users, chunk_rows):
            table, z, tiers = design.chunk(rng, ids[lo : lo + chunk_rows])
            take = rng.random(table.num_rows) < log_share
            arm = rng.integers(0, 3, int(take.sum()))
            zt = z[take]
            logit = -2.2 + 0.5 * zt[:, 0] + 0.3 * zt[:, 1] - 0.1 * tiers[take] + effect[arm]
            logit += np.where(arm == 1, 0.3 * zt[:, 2], 0.0)  # B helps some customers more
            outcome = (rng.random(arm.size) < 1 / (1 + np.exp(-logit))).astype(np.int8)
            revenue = np.where(outcome == 1, np.round(rng.lognormal(3.7, 0.5, arm.size), 2), 0.0)
            log = pa.table(
                {
                    "customer_id": pa.array(ids[lo : lo + chunk_rows][take]),
                    "arm": pa.array(arms[arm]),
                    "bought": pa.array(outcome),
                    "revenue": pa.array(revenue),
                }
            )
            for name, part in (("users", table), ("log", log)):
                if name not in writers:
                    writers[name] = pq.ParquetWriter(folder / f"{name}.parquet", part.schema)
                writers[name].write_table(part)
            log_rows += log.num_rows
            bought += int(outcome.sum())
    finally:
        for writer in writers.values():
            writer.close()
    return {
        "seconds": time.perf_counter() - start,
        "users_mb": (folder / "users.parquet").stat().st_size / 1e6,
        "log_rows": log_rows,
        "log_conversion_rate": bought / max(log_rows, 1),
        "cardinalities": design.cardinality.tolist(),
        "capped_columns": int((design.cardinality > MAX_CATEGORIES).sum()),
    }


def write_campaign(folder: Path) -> Path:
    """The campaign file mapping ``users.parquet`` and ``log.parquet`` (two message arms)."""
    path = folder / "campaign.toml"
    path.write_text(
        f"""name = "features_benchmark"
description = "A wide customer table: 120 numeric and 80 text features."

[[menu.denomination]]
name = "A"
kind = "message"
send_cost = 0.1

[[menu.denomination]]
name = "B"
kind = "message"
send_cost = 0.2
conversion_cost = 1.0

[manual]
denomination = "A"
rank_by = "{RANK_BY}"

[targeting]
column = "tier"

[constraints]
segment_column = "tier"

[data.users]
file = "users.parquet"
id = "customer_id"
features = "all"
segment = "tier"
max_categories = {MAX_CATEGORIES}

[data.log]
file = "log.parquet"
id = "customer_id"
arm = "arm"
arms = {{ A = "A", B = "B", ctl = "none" }}
outcome = "bought"
order_value = "revenue"
propensity = "uniform"
"""
    )
    load_campaign(path)  # fails loudly (InputError naming the key) if the file is refused
    return path


# ---------------------------------------------------------------------------- the CLI steps


def couponopt() -> str:
    local = Path(sys.executable).parent / "couponopt"
    found = str(local) if local.exists() else shutil.which("couponopt")
    if found is None:
        raise SystemExit("couponopt is not installed in this environment")
    return found


def timed(args: list[str], folder: Path) -> dict:
    """Run one CLI step in a fresh process: wall seconds and peak RSS (MB); exit on failure."""
    report = folder / "time.txt"
    if TIME.exists():
        cmd = [str(TIME), "-v", "-o", str(report), *args]
    else:
        cmd = [sys.executable, "-c", WRAPPER, *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
    seconds = time.perf_counter() - start
    if TIME.exists():
        text = report.read_text() if report.exists() else ""
        kb = [int(x.split(":")[1]) for x in text.splitlines() if "Maximum resident" in x]
        rc = proc.returncode
    else:
        info = json.loads(proc.stderr.strip().splitlines()[-1])
        kb, rc = [info["kb"]], info["rc"]
    if rc != 0 or not kb:
        raise SystemExit(
            f"step failed (exit {rc}): {' '.join(args)}\n"
            f"--- stdout (end) ---\n{proc.stdout[-3000:]}\n--- stderr (end) ---\n"
            f"{proc.stderr[-5000:]}"
        )
    return {"seconds": seconds, "peak_rss_mb": kb[0] / 1024, "command": " ".join(args)}


def model_features(models: Path) -> int:
    """How many features the trained models use (from their ``models.json``)."""
    summary = json.loads((models / "models.json").read_text())["summary"]
    return sum(len(v) for v in summary["features"].values())


def check_scores(scores: Path, users: Path, id_column: str) -> int:
    """Every customer of ``users`` scored exactly once (independent recount); the rows scored."""
    names = pq.read_schema(scores).names
    sid = next((c for c in (id_column, "user_id") if c in names), None)
    if sid is None:
        raise SystemExit(f"{scores}: no {id_column} or user_id column (columns: {names})")
    got = pq.read_table(scores, columns=[sid])[sid].to_numpy()
    want = pq.read_table(users, columns=[id_column])[id_column].to_numpy()
    got_sorted, want_sorted = np.sort(got), np.sort(want)
    dupes = got_sorted[1:][got_sorted[1:] == got_sorted[:-1]]
    problems = []
    if got.size != want.size:
        problems.append(f"{got.size:,} rows scored for {want.size:,} customers")
    if dupes.size:
        problems.append(f"{dupes.size:,} ids scored more than once, e.g. {dupes[0]}")
    if got.size == want.size and not np.array_equal(got_sorted, want_sorted):
        missing = np.setdiff1d(want_sorted, got_sorted)
        problems.append(f"{missing.size:,} customers not scored, e.g. {missing[:3].tolist()}")
    if problems:
        raise SystemExit(f"scores check failed for {scores}: " + "; ".join(problems))
    return int(got.size)


# -------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300_000, help="customers (default 300k)")
    parser.add_argument("--quick", action="store_true", help="30k customers")
    parser.add_argument(
        "--log-share",
        type=float,
        default=0.3,
        help="share of customers in the randomized log (the synthetic world's is about 0.3)",
    )
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="couponopt score chunks")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "features.json"
    )
    args = parser.parse_args()
    n = 30_000 if args.quick else args.users
    console = Console(width=120)
    cli = couponopt()
    epochs, chunk = str(args.max_epochs), str(args.chunk_rows)
    steps: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="couponopt-features-") as tmp:
        tmp = Path(tmp)
        wide, ref = tmp / "wide", tmp / "ref"
        wide.mkdir()
        ref.mkdir()
        console.print(f"writing {n:,} customers x {N_NUMERIC + N_CATEGORICAL} features ...")
        data = write_data(wide, n, args.log_share, args.seed)
        config = write_campaign(wide)
        users = wide / "users.parquet"

        console.print("train, 200 features ...")
        train = timed(
            [cli, "train", "--config", str(config), "--out", str(wide / "models")]
            + ["--max-epochs", epochs],
            wide,
        )
        console.print("score, 200 features ...")
        score = timed(
            [cli, "score", "--models", str(wide / "models"), "--users", str(users)]
            + ["--out", str(wide / "scores.parquet"), "--chunk-rows", chunk],
            wide,
        )
        features = model_features(wide / "models")
        rows = check_scores(wide / "scores.parquet", users, "customer_id")

        console.print(f"reference: generating a synthetic world of {n:,} users ...")
        world = ref / "world"
        generate = timed([cli, "generate", "--population", str(n), "--out", str(world)], ref)
        console.print("train, reference ...")
        ref_train = timed(
            [cli, "train", "--log", str(world / "history.parquet")]
            + ["--users", str(world / "users.parquet"), "--out", str(ref / "wm")]
            + ["--max-epochs", epochs],
            ref,
        )
        console.print("score, reference ...")
        ref_score = timed(
            [cli, "score", "--models", str(ref / "wm"), "--users", str(world / "users.parquet")]
            + ["--out", str(ref / "ws.parquet"), "--chunk-rows", chunk],
            ref,
        )
        ref_features = model_features(ref / "wm")
        ref_rows = check_scores(ref / "ws.parquet", world / "users.parquet", "user_id")
        history = pq.read_table(world / "history.parquet", columns=["assignment"])
        assignment = history["assignment"].cast(pa.string())
        ref_log_rows = int(pc.sum(pc.equal(assignment, "randomized")).as_py() or 0)
        ref_users_mb = (world / "users.parquet").stat().st_size / 1e6

    common = {"users": n}
    for step, wide_rec, ref_rec in (("train", train, ref_train), ("score", score, ref_score)):
        wide_rec.update(common, step=step, data="wide", features=features)
        ref_rec.update(common, step=step, data="reference", features=ref_features)
        wide_rec["time_ratio"] = wide_rec["seconds"] / ref_rec["seconds"]
        wide_rec["rss_ratio"] = wide_rec["peak_rss_mb"] / ref_rec["peak_rss_mb"]
        steps += [wide_rec, ref_rec]
    score.update(rows_scored=rows, users_mb=data["users_mb"], log_rows=data["log_rows"])
    ref_score.update(rows_scored=ref_rows, users_mb=ref_users_mb, log_rows=ref_log_rows)
    train.update(log_rows=data["log_rows"])
    ref_train.update(log_rows=ref_log_rows)

    table = Table(
        title="couponopt train and score: 200 mixed features vs the 15 of a synthetic world",
        title_justify="left",
    )
    for col in ("step", "data", "users", "features", "seconds", "peak RSS (MB)"):
        table.add_column(col, justify="left" if col in ("step", "data") else "right")
    table.add_column("time vs ref", justify="right")
    table.add_column("RSS vs ref", justify="right")
    for r in steps:
        ratio = "time_ratio" in r
        table.add_row(
            r["step"],
            "200 mixed" if r["data"] == "wide" else "reference",
            f"{r['users']:,}",
            f"{r['features']}",
            f"{r['seconds']:.1f}",
            f"{r['peak_rss_mb']:,.0f}",
            f"x{r['time_ratio']:.2f}" if ratio else "",
            f"x{r['rss_ratio']:.2f}" if ratio else "",
        )
    table.caption = (
        f"users file {data['users_mb']:,.1f} MB (reference {ref_users_mb:,.1f} MB); "
        f"{rows:,} rows scored, each customer once; log {data['log_rows']:,} rows "
        f"(reference {ref_log_rows:,} randomized); {args.max_epochs} epochs; score chunks of "
        f"{args.chunk_rows:,}; features include the segment; one process per step"
    )
    console.print(table)
    payload = {
        "benchmark": "features",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "peak_rss_from": "/usr/bin/time -v" if TIME.exists() else "ru_maxrss of a wrapper",
        "users": n,
        "max_epochs": args.max_epochs,
        "chunk_rows": args.chunk_rows,
        "seed": args.seed,
        "data": {
            **data,
            "numeric": N_NUMERIC,
            "categorical": N_CATEGORICAL,
            "max_categories": MAX_CATEGORIES,
            "reference_users_mb": ref_users_mb,
            "reference_log_rows": ref_log_rows,
            "reference_generate": generate,
        },
        "results": steps,
    }
    write_json(args.json, payload)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
