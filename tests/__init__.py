"""couponopt's tests; the folders mirror the packages they test."""

from pathlib import Path

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]
