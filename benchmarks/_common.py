"""Helpers shared by the benchmark scripts: child processes and JSON results."""

from __future__ import annotations

import json
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
