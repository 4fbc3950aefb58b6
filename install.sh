#!/usr/bin/env bash
# Install couponopt into ./.venv: CPU-only PyTorch first (a loose torch requirement with no
# torch installed would pull a multi-GB CUDA build), then the project with its dev extras.
# Safe to run again: it reuses the virtualenv and only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
