"""Planted bugs: each plausible one-line bug a user would pay for must fail at least one test.

The bugs are the survivors of the planted-bug audit of issue 17 (treatment and control swapped
in the Qini curve, the calibration error without bin weights, a calibration map fitted but
never applied, the message cost dropped from the expected cost, a gateway one message over its
hourly capacity, a declined order still counted, ROI on total GMV, a wrong marginal-value
denominator, an interval of the wrong width), plus a few more of the same kind. Each is planted
alone in a scratch clone (the working tree is never touched) and the tests that judge its
module run with ``-x``; the bug is *caught* when a test fails. Prints a table and writes
``benchmarks/results/planted_bugs.json``.

    .venv/bin/python benchmarks/planted_bugs.py              # every bug (about 10 minutes)
    .venv/bin/python benchmarks/planted_bugs.py --only qini  # only bugs named *qini*; their rows
                                                             # replace the earlier ones in the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, overlay_working_tree, write_json
from rich.console import Console
from rich.markup import escape
from rich.table import Table


@dataclass(frozen=True)
class Bug:
    """One planted bug: ``old`` (found exactly once in ``path``) replaced by ``new``."""

    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


METRICS = ("tests/optimizer/evaluation/test_metrics.py",)
CALIBRATION = ("tests/optimizer/models/test_calibration.py",)
SOLVERS = ("tests/optimizer/solvers", "tests/optimizer/planning/test_policies.py")
SIMULATOR = ("tests/simulator/experiment",)
WHATIF = (
    "tests/optimizer/planning/test_whatif_figures.py",
    "tests/simulator/workflows/test_whatif.py",
    "tests/cli/test_whatif_command.py",
)

BUGS: tuple[Bug, ...] = (
    Bug("qini-swapped", "treatment and control swapped in the Qini curve",
        "optimizer/evaluation/metrics.py",
        "    n, n_t, n_c, y_t, y_c = _cumulative(y_true, uplift, treatment)\n"
        "    with np.errstate(invalid=\"ignore\", divide=\"ignore\"):\n        q =",
        "    n, n_c, n_t, y_c, y_t = _cumulative(y_true, uplift, treatment)\n"
        "    with np.errstate(invalid=\"ignore\", divide=\"ignore\"):\n        q =",
        METRICS),
    Bug("ece-unweighted", "calibration error without bin weights (a plain mean over bins)",
        "optimizer/evaluation/metrics.py",
        "    return float(np.sum(gaps) / y_true.size)",
        "    return float(np.mean([g / b.size for g, b in zip(gaps, bins)]))",
        METRICS),
    Bug("isotonic-unapplied", "the isotonic map fitted but never applied",
        "optimizer/models/calibration.py",
        "            return np.interp(_sigmoid(logits), self.x_, self.y_)",
        "            return _sigmoid(logits)",
        CALIBRATION),
    Bug("platt-skipped", "Platt calibration fitted but skipped",
        "optimizer/models/calibration.py",
        "                self.a_, self.b_, self.applied_ = a, b0, True",
        "                self.applied_ = True",
        CALIBRATION),
    Bug("platt-shift-dropped", "the Platt map applied without its shift",
        "optimizer/models/calibration.py",
        "        return _sigmoid(self.a_ * logits + self.b_)",
        "        return _sigmoid(self.a_ * logits)",
        CALIBRATION),
    Bug("sms-cost-dropped", "the message cost dropped from the expected cost",
        "optimizer/solvers/problem.py",
        "        cost = send + p * paid",
        "        cost = p * paid",
        SOLVERS),
    Bug("redemption-share-dropped", "every converter assumed to redeem (redemption share dropped)",
        "optimizer/solvers/problem.py",
        "        paid = (menu.redemption_shares * menu.face_values)[None, :] + per_conversion",
        "        paid = menu.face_values[None, :] + per_conversion",
        SOLVERS),
    Bug("gateway-one-over", "the SMS gateway sends one message over its hourly capacity",
        "simulator/experiment/engine.py",
        "else int(per_hour)",
        "else int(per_hour) + 1",
        SIMULATOR),
    Bug("declined-still-converts",
        "a declined coupon-driven order still counted as a conversion under stop_honouring",
        "simulator/experiment/engine.py",
        "                out.converted[lost] = False\n",
        "",
        SIMULATOR),
    Bug("declined-still-paid", "a declined coupon still paid for under stop_honouring",
        "simulator/experiment/engine.py",
        "            money = float(amounts[paid].sum())",
        "            money = float(amounts.sum())",
        SIMULATOR),
    Bug("stop-issuing-ignored", "the gateway keeps sending after the budget is spent",
        "simulator/experiment/engine.py",
        "            if state[\"exhausted\"] and settings.on_budget_spent != \"continue\":\n"
        "                return\n",
        "",
        SIMULATOR),
    Bug("roi-total-gmv", "the A/B ROI computed on total rather than incremental GMV",
        "simulator/experiment/ab.py",
        "runs[\"incremental_gmv\"] / cost.where(cost > 0, 1)",
        "runs[\"gmv\"] / cost.where(cost > 0, 1)",
        SIMULATOR),
    Bug("profit-without-margin", "incremental profit without the margin rate",
        "simulator/experiment/ab.py",
        "    runs[\"incremental_profit\"] = request.margin_rate * runs[\"incremental_gmv\"] - cost",
        "    runs[\"incremental_profit\"] = runs[\"incremental_gmv\"] - cost",
        SIMULATOR),
    Bug("interval-not-scaled", "the interval's half-width not divided by sqrt(n)",
        "simulator/experiment/ab.py",
        "    half /= np.sqrt(values.size)\n",
        "",
        SIMULATOR),
    Bug("interval-normal-90", "the interval at 90% instead of the level asked",
        "simulator/experiment/ab.py",
        "stats.t.ppf(0.5 + level / 2, values.size - 1)",
        "stats.t.ppf(0.95, values.size - 1)",
        SIMULATOR),
    Bug("marginal-denominator", "the what-if marginal value over the budget, not the step",
        "optimizer/planning/whatif.py",
        "\"per_money\": (v[i] - v[i - 1]) / step if step > 0",
        "\"per_money\": (v[i] - v[i - 1]) / b[i] if step > 0",
        WHATIF),
    Bug("profit-peak-min", "the profit peak taken at the lowest profit",
        "optimizer/planning/whatif.py",
        "        best = part.loc[part[\"incremental_profit\"].idxmax()]",
        "        best = part.loc[part[\"incremental_profit\"].idxmin()]",
        WHATIF),
)  # fmt: skip


def plant(clone: Path, bug: Bug) -> None:
    """Replace ``bug.old`` by ``bug.new`` in the clone; the text must occur exactly once."""
    path = clone / bug.path
    text = path.read_text()
    if text.count(bug.old) != 1:
        raise SystemExit(f"{bug.name}: the text to replace occurs {text.count(bug.old)} times "
                         f"in {bug.path}; update the bug to the current code")  # fmt: skip
    path.write_text(text.replace(bug.old, bug.new))


def run_bug(clone: Path, bug: Bug) -> dict:
    """Plant one bug, run its tests, restore the clone."""
    plant(clone, bug)
    start = time.perf_counter()
    try:
        env = {**os.environ, "PYTHONPATH": str(clone)}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *bug.tests],
            cwd=clone, env=env, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
    finally:
        subprocess.run(["git", "checkout", "-q", "--", bug.path], cwd=clone, check=True)
    failed = re.findall(r"^FAILED (\S+)", done.stdout, flags=re.M)
    errors = re.findall(r"^ERROR (\S+)", done.stdout, flags=re.M)
    return {
        "bug": bug.name,
        "what": bug.what,
        "module": bug.path,
        "caught": done.returncode == 1 and bool(failed),
        "first_failing_test": (failed or errors or [""])[0],
        "pytest_exit_code": done.returncode,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the bugs whose name contains this")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "planted_bugs.json"
    )
    args = parser.parse_args()
    console = Console(width=160)
    bugs = [b for b in BUGS if args.only in b.name]
    rows = []
    with tempfile.TemporaryDirectory(prefix="couponopt-planted-") as work:
        clone = Path(work) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        overlay_working_tree(clone)
        for bug in bugs:
            plant(clone, bug)  # every bug applies to the current code before any test runs
            subprocess.run(["git", "checkout", "-q", "--", bug.path], cwd=clone, check=True)
        for bug in bugs:
            row = run_bug(clone, bug)
            rows.append(row)
            mark = "caught" if row["caught"] else "[bold red]MISSED[/]"
            console.print(f"{bug.name}: {mark} ({row['seconds']:.0f} s) "
                          f"{escape(row['first_failing_test'])}")  # fmt: skip
    table = Table(title="Planted bugs: each must fail at least one test")
    for column in ("bug", "what", "caught", "first failing test"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["bug"], escape(r["what"]), "yes" if r["caught"] else "[bold red]no[/]",
                      escape(r["first_failing_test"]))  # fmt: skip
    caught = sum(r["caught"] for r in rows)
    table.caption = f"{caught} of {len(rows)} planted bugs caught"
    console.print(table)
    table_rows = list(rows)
    if args.only and args.json.exists():  # replace these bugs' rows, keep the others
        names = {r["bug"] for r in rows}
        rows = [r for r in json.loads(args.json.read_text())["rows"] if r["bug"] not in names]
        rows += [r for r in table_rows if r["bug"] in names]
        rows.sort(key=lambda r: [b.name for b in BUGS].index(r["bug"]))
    write_json(args.json, {"caught": sum(r["caught"] for r in rows), "planted": len(rows),
                           "rows": rows})  # fmt: skip
    sys.exit(0 if all(r["caught"] for r in rows) else 1)


if __name__ == "__main__":
    main()
