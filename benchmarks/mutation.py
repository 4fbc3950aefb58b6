"""Mutation score of the core modules (mutmut 3): how many planted one-line bugs the tests catch.

Each group mutates its modules and runs only its tests, in a scratch clone of the repository
(the working tree is never mutated). mutmut plants one change at a time (an operator, a
constant, an argument, a string...) and runs the tests that reach the mutated function; a
mutant the tests fail on is *killed*, one they pass is a *survivor*. Survivors that cannot
change any result (a different error text, ``float("NAN")`` for ``float("nan")``, a sort kind
on data without ties...) are listed with a one-line reason in
``benchmarks/mutation_equivalent.toml`` and leave the denominator; every other survivor
counts against the score:

    score = (killed + timeout) / (mutants - equivalent)

("no tests": a mutant no selected test reaches, counted as a survivor; "timeout": a mutant
whose tests ran over 15x their clean time, a hang the suite exposes, counted as caught, as
mutmut does.)
Prints a table per module and writes ``benchmarks/results/mutation.json``.

    .venv/bin/pip install mutmut==3.8.1          # not a dependency of the project
    .venv/bin/python benchmarks/mutation.py --groups metrics
    .venv/bin/python benchmarks/mutation.py      # every group (tens of minutes)
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

from _common import ROOT, overlay_working_tree, write_json
from rich.console import Console
from rich.table import Table
from scipy import stats

#: Module groups: the modules mutated and the tests that judge them.
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "metrics": (["optimizer/evaluation/metrics.py"],
                ["tests/optimizer/evaluation/test_metrics.py"]),
    "calibration": (["optimizer/models/calibration.py"],
                    ["tests/optimizer/models/test_calibration.py"]),
    "solvers": (
        ["optimizer/solvers/hull.py", "optimizer/solvers/budget.py",
         "optimizer/solvers/constraints.py", "optimizer/solvers/dual.py",
         "optimizer/solvers/problem.py", "optimizer/solvers/streaming.py",
         "optimizer/solvers/streamed_dual.py", "optimizer/solvers/milp.py"],
        # the segment case against PuLP takes a minute of CBC; the other cases cover it
        ["tests/optimizer/solvers", "-k", "not (pulp and segment)"],
    ),
    "planning": (
        ["optimizer/planning/plan.py", "optimizer/planning/policies.py",
         "optimizer/planning/spend.py"],
        ["tests/optimizer/planning/test_policies.py", "tests/optimizer/planning/test_plan.py",
         "tests/optimizer/solvers/test_properties.py"],
    ),
    "offline": (
        ["optimizer/evaluation/offline.py", "optimizer/evaluation/logged.py"],
        ["tests/optimizer/evaluation/test_offline.py", "tests/optimizer/evaluation/test_logged.py"],
    ),
    "simulator": (["simulator/experiment/*.py"], ["tests/simulator/experiment"]),
}  # fmt: skip
#: Equivalent survivors, one file per group: function, changed line, why no result can change.
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent"
#: What the repository needs besides the mutated packages for its tests to run.
ALSO_COPY = ["simulator/", "cli.py", "cli_options.py", "cli_shell.py", "scenarios/", "tests/"]


def _config(modules: list[str], tests: list[str]) -> str:
    """The ``setup.cfg`` of one group's run."""

    def lines(values: list[str]) -> str:
        return "".join(f"\n    {v}" for v in values)

    sources = sorted({m.split("/")[0] + "/" for m in modules})
    copy = [c for c in ALSO_COPY if c not in sources]
    return (
        "[mutmut]\n"
        f"source_paths ={lines(sources)}\n"
        f"only_mutate ={lines(modules)}\n"
        f"also_copy ={lines(copy)}\n"
        f"pytest_add_cli_args_test_selection ={lines(tests)}\n"
    )


def _module_of(mutant: str) -> str:
    """``optimizer.evaluation.metrics.x_psi__mutmut_3`` -> ``optimizer/evaluation/metrics.py``."""
    dotted = re.sub(r"\.(x_|xǁ).*$", "", mutant)
    return dotted.replace(".", "/") + ".py"


def _function_of(mutant: str) -> str:
    """``...metrics.x_psi__mutmut_3`` -> ``...metrics.x_psi`` (numbers shift as code changes)."""
    return mutant.rsplit("__mutmut_", 1)[0]


def _changed_line(shown: str) -> str:
    """The mutated line of ``mutmut show``'s diff (``removed: ...`` when a line is dropped)."""
    lines = shown.splitlines()
    plus = [ln[1:].strip() for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    if plus:
        return plus[0]
    minus = [ln[1:].strip() for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    return f"removed: {minus[0]}" if minus else "(no change shown)"


def _equivalents() -> dict[tuple[str, str], str]:
    """``(function, changed line) -> reason`` from :data:`EQUIVALENT`.

    Each ``[[equivalent]]`` names the mutated function, the mutated line as ``mutmut show``
    prints it, and why no result can change; matching by the line, not mutmut's mutant number,
    keeps the list valid when other lines of the function change.
    """
    return {(e["function"], e["change"]): e["reason"]
            for path in sorted(EQUIVALENT.glob("*.toml"))
            for e in tomllib.loads(path.read_text()).get("equivalent", [])}  # fmt: skip


def _sample(clone: Path, mutmut: str, env: dict, share: float, seed: int) -> list[str]:
    """A seeded uniform sample of ``share`` of the group's mutants, drawn per module.

    mutmut writes every mutant's name when it generates them; a run filtered on a name that
    matches nothing stops right after (before the clean test run), leaving that list.
    """
    subprocess.run([mutmut, "run", "no-such-mutant"], cwd=clone, env=env, capture_output=True)
    rng = random.Random(seed)
    names = []
    for meta in sorted((clone / "mutants").rglob("*.meta")):
        listed = sorted(json.loads(meta.read_text()).get("exit_code_by_key", {}))
        names += rng.sample(listed, round(share * len(listed)))
    return names


def _wilson(caught: int, judged: int) -> tuple[float, float]:
    """95% Wilson interval of a sampled score (the population's share of caught mutants)."""
    if judged == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(caught, judged).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def run_group(
    name: str,
    work: Path,
    console: Console,
    share: float = 1.0,
    working_tree: bool = False,
    names: tuple[str, ...] = (),
    seed: int = 17,
) -> list[dict]:
    """Mutate one group in a scratch clone; one row per module.

    ``share`` < 1 runs a seeded uniform sample of each module's mutants (an unbiased estimate
    of the score, reported with its 95% interval) for the groups whose tests take minutes.
    ``working_tree``: judge the code and tests as they are now, committed or not.
    ``names``: run only the mutants matching these patterns (``fnmatch``).
    ``seed``: the sample's seed; a fresh seed gives an estimate independent of the mutants the
    tests were written against (a sample's survivors, once killed, bias that sample upward).
    """
    modules, tests = GROUPS[name]
    clone = work / name
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    if working_tree:
        overlay_working_tree(clone)
    (clone / "setup.cfg").write_text(_config(modules, tests))
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    start = time.perf_counter()
    # One warm model cache for every mutant's session (the tests' own is per session).
    # One thread a process: mutmut's timeout is a CPU-time limit (15x the clean run's), which
    # multi-threaded torch or BLAS would reach while no slower by the clock.
    env = {
        **os.environ,
        "PYTHONPATH": "",
        "COUPONOPT_TEST_CACHE": str(work / "model-cache"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    chosen: list[str] = []
    if names:  # only these mutants (fnmatch patterns), to check that new tests kill them
        _sample(clone, mutmut, env, 0.0, seed)  # generates the mutants' list
        listed = [m for meta in (clone / "mutants").rglob("*.meta")
                  for m in json.loads(meta.read_text()).get("exit_code_by_key", {})]  # fmt: skip
        chosen = [m for m in listed if any(fnmatch.fnmatch(m, pattern) for pattern in names)]
    elif share < 1:
        chosen = _sample(clone, mutmut, env, share, seed)
    if chosen:  # in batches: a command line holds a few thousand names
        for i in range(0, len(chosen), 500):
            subprocess.run([mutmut, "run", *chosen[i : i + 500]], cwd=clone, env=env,
                           check=True, capture_output=True)  # fmt: skip
    else:
        subprocess.run([mutmut, "run"], cwd=clone, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    listing = subprocess.run([mutmut, "results", "--all", "true"], cwd=clone, env=env,
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
    equivalent = _equivalents()
    statuses = {}
    for line in listing.splitlines():
        if ":" in line:
            mutant, status = (part.strip() for part in line.rsplit(":", 1))
            if not chosen or mutant in set(chosen):
                statuses[mutant] = status
    changes = {  # each survivor's changed line: to judge it, and to match the equivalents
        mutant: _changed_line(subprocess.run([mutmut, "show", mutant], cwd=clone, env=env,
                                             capture_output=True, text=True).stdout)
        for mutant, status in statuses.items() if status in ("survived", "no tests")
    }  # fmt: skip
    counts: dict[str, Counter] = {}
    survivors: dict[str, list[str]] = {}
    equivalents: dict[str, dict[str, str]] = {}
    for mutant, status in statuses.items():
        module = _module_of(mutant)
        if mutant in changes:
            reason = equivalent.get((_function_of(mutant), changes[mutant]))
            if reason is not None:
                status = "equivalent"
                equivalents.setdefault(module, {})[mutant] = changes[mutant]
            else:
                survivors.setdefault(module, []).append(mutant)
        counts.setdefault(module, Counter())[status] += 1
    rows = []
    for module, c in sorted(counts.items()):
        total = sum(c.values())
        judged = total - c["equivalent"]
        rows.append({
            "group": name, "module": module, "mutants": total, "killed": c["killed"],
            "survived": c["survived"], "no_tests": c["no tests"], "timeout": c["timeout"],
            "equivalent": c["equivalent"],
            "score": (c["killed"] + c["timeout"]) / judged if judged else float("nan"),
            "sampled_share": share,
            "sample_seed": seed if share < 1 else None,
            "score_95": _wilson(c["killed"] + c["timeout"], judged) if share < 1 else None,
            "survivors": {m: changes[m] for m in sorted(survivors.get(module, []))},
            "equivalents": dict(sorted(equivalents.get(module, {}).items())),
            "group_seconds": seconds,
        })  # fmt: skip
    console.print(f"{name}: {sum(r['mutants'] for r in rows)} mutants in {seconds:.0f} s")
    return rows


def _interval_text(row: dict) -> str:
    """`` [low-high]`` for a sampled row's 95% interval, else nothing."""
    if not row.get("score_95"):
        return ""
    low, high = row["score_95"]
    return f" [{low:.1%}-{high:.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default=",".join(GROUPS), help="comma-separated groups")
    parser.add_argument(
        "--working-tree",
        action="store_true",
        help="include uncommitted changes (default: the last commit)",
    )
    parser.add_argument("--mutants", nargs="*", default=[],
                        help="only these mutants (fnmatch patterns of mutmut's names)")  # fmt: skip
    parser.add_argument("--sample", type=float, default=1.0,
                        help="share of each module's mutants to run (seeded; 1: all)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=17, help="seed of the --sample draw")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "mutation.json"
    )
    args = parser.parse_args()
    console = Console(width=160)
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        sys.exit("mutmut is not installed: .venv/bin/pip install mutmut==3.8.1")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="couponopt-mutation-") as work:
        for name in args.groups.split(","):
            rows += run_group(name.strip(), Path(work), console, args.sample, args.working_tree,
                              tuple(args.mutants), args.seed)  # fmt: skip
    table = Table(title="Mutation score (mutmut): (killed + timeout) / (mutants - equivalent)")
    columns = ("module", "mutants", "killed", "timeout", "survived", "no tests", "equivalent")
    for column in (*columns, "score"):
        table.add_column(column, justify="right" if column != "module" else "left")
    for r in rows:
        table.add_row(r["module"], str(r["mutants"]), str(r["killed"]), str(r["timeout"]),
                      str(r["survived"]), str(r["no_tests"]), str(r["equivalent"]),
                      f"{r['score']:.1%}" + _interval_text(r))  # fmt: skip
    killed = sum(r["killed"] + r["timeout"] for r in rows)
    judged = sum(r["mutants"] - r["equivalent"] for r in rows)
    table.caption = (
        f"all: {killed} of {judged} non-equivalent mutants killed ({killed / judged:.1%})"
    )
    console.print(table)
    previous = json.loads(args.json.read_text()) if args.json.exists() else {"rows": []}
    kept = [r for r in previous.get("rows", []) if r["group"] not in {x["group"] for x in rows}]
    write_json(args.json, {"tool": "mutmut 3.8.1", "rows": kept + rows})


if __name__ == "__main__":
    main()
