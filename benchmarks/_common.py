"""Helpers shared by the benchmark scripts: child processes and JSON results."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optimizer.io.atomic import atomic_path  # noqa: E402


def run_child(code: str) -> dict:
    """Run Python ``code`` in a fresh interpreter; its last stdout line is a JSON object.

    A fresh process per measurement makes its peak resident memory (``ru_maxrss``) its own.
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rss_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (MB), e.g. VmRSS or VmHWM."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_json(path: Path, payload: dict) -> None:
    """Write benchmark results atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=float))


def run_worlds(
    console, sizes, seeds, what: str, prefix: str, code_for
) -> tuple[list[dict], float, float, float]:
    """One fresh process per (size, seed) world, sharing a temporary model cache.

    ``code_for(users, seed, cache)`` returns the child's code (see :func:`run_child`); each
    world's JSON gains ``world_s``. Returns the worlds, the total seconds and the 1-minute load
    average before and after.
    """
    import os
    import tempfile
    import time

    worlds = []
    load_before = os.getloadavg()[0]
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=prefix) as cache:
        for users in sizes:
            for seed in seeds:
                console.print(f"{users:,} users, seed {seed}: {what} in a fresh process ...")
                start = time.perf_counter()
                world = run_child(code_for(users, seed, cache))
                world["world_s"] = time.perf_counter() - start
                worlds.append(world)
    return worlds, time.perf_counter() - total, load_before, os.getloadavg()[0]


def overlay_working_tree(clone: Path) -> None:
    """Copy the working tree's changed and new files into the clone and commit them there.

    The bugs are planted in the code and tests as they are now, committed or not.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--modified", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, clone / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.exists():  # deleted in the working tree
            target.unlink()
    git = ["git", "-c", "user.name=planted", "-c", "user.email=planted@localhost"]
    subprocess.run([*git, "add", "-A"], cwd=clone, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "working tree"], cwd=clone,
                   check=True)  # fmt: skip
