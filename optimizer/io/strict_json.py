"""Strict JSON: what every JSON output of the tool is, whatever the figures hold.

JSON has no NaN or Infinity; Python's ``json`` writes them anyway, and strict parsers reject
the result. :func:`dumps` turns every non-finite number into ``null`` and says so in a note, and
numpy scalars, arrays, paths and enums into their plain JSON forms.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["jsonable", "json_dumps", "NULL_NOTE"]

#: The note a payload gets when some of its numbers were not finite.
NULL_NOTE = (
    "null stands for a figure that is not defined (NaN: e.g. the ROI of a plan that spends "
    "nothing, an interval from one replication) or not finite"
)


def jsonable(value: Any, nulls: list[str] | None = None, path: str = "$") -> Any:
    """``value`` as plain JSON data: dicts, lists, str, int, finite float, bool, None.

    Non-finite numbers become None and their paths are appended to ``nulls``.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value, nulls, path)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number):
            return number
        if nulls is not None:
            nulls.append(path)
        return None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, nulls, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, nulls, f"{path}[{i}]") for i, v in enumerate(value)]
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing markers
        if nulls is not None:
            nulls.append(path)
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} at {path} as JSON")


def json_dumps(payload: Mapping[str, Any], **kwargs: Any) -> str:
    """``payload`` as strict JSON text; a ``notes`` entry explains any ``null`` from NaN.

    Parameters
    ----------
    payload : mapping
        The figures; nested dicts, lists, numbers (numpy's too), strings, enums, paths.
    **kwargs
        Passed to :func:`json.dumps` (``indent``...).
    """
    nulls: list[str] = []
    data = jsonable(payload, nulls)
    if nulls:
        notes = list(data.get("notes", []))
        notes.append(f"{NULL_NOTE} ({len(nulls)} values; first at {nulls[0]})")
        data["notes"] = notes
    return json.dumps(data, allow_nan=False, **kwargs)
