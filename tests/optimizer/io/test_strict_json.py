"""Strict JSON: no NaN or Infinity ever, a note where a figure is undefined."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optimizer.io import json_dumps


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


class Colour(StrEnum):
    RED = "red"


def test_non_finite_numbers_become_null_with_a_note():
    payload = {"roi": float("nan"), "rows": [{"x": np.float32("inf")}, {"x": -np.inf}], "ok": 1.5}
    data = _strict(json_dumps(payload))
    assert data["roi"] is None and data["rows"] == [{"x": None}, {"x": None}]
    assert data["ok"] == 1.5
    assert len(data["notes"]) == 1 and "3 values; first at $.roi" in data["notes"][0]
    assert "notes" not in _strict(json_dumps({"a": 1}))


def test_numpy_pandas_paths_and_enums_are_plain_json():
    payload = {
        "i": np.int64(3),
        "f": np.float32(0.5),
        "b": np.bool_(True),
        "arr": np.array([1.0, np.nan]),
        "path": Path("a/b.parquet"),
        "colour": Colour.RED,
        "when": pd.Timestamp("2026-11-29"),
        "missing": pd.NA,
        "records": pd.DataFrame({"v": [1.0, np.nan]}).to_dict(orient="records"),
    }
    data = _strict(json_dumps(payload))
    assert data["i"] == 3 and data["f"] == 0.5 and data["b"] is True
    assert data["arr"] == [1.0, None] and data["path"] == "a/b.parquet"
    assert data["colour"] == "red" and data["when"].startswith("2026-11-29")
    assert data["missing"] is None and data["records"] == [{"v": 1.0}, {"v": None}]


def test_unknown_objects_are_refused():
    with pytest.raises(TypeError, match="cannot write object at"):
        json_dumps({"x": object()})
