"""TOML reading and writing, and one-line messages for schema validation errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ValidationError

from optimizer.atomic import atomic_path
from optimizer.errors import InputError

__all__ = ["read_toml", "write_toml", "validation_error_line"]


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; raise :class:`InputError` if it is missing, empty or malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", source=path)
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError("file is empty", source=path)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source=path) from None


def write_toml(data: dict[str, Any], path: str | Path) -> None:
    """Write ``data`` as TOML, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(tomli_w.dumps(data).encode("utf-8"))


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Follow ``loc`` through nested pydantic models; the model that holds the last key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside ``X``, ``tuple[X, ...]``, ``list[X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def validation_error_line(exc: Exception, model: type[BaseModel]) -> str:
    """Turn a pydantic ValidationError into one line naming the offending key.

    Parameters
    ----------
    exc : Exception
        The error raised by ``model.model_validate``.
    model : type of BaseModel
        The root model, used to list the allowed keys when an unknown key is found.
    """
    if not isinstance(exc, ValidationError):
        return str(exc)
    errors = exc.errors(include_url=False)
    # Unknown keys first (the likeliest typo), then the deepest location: a parent's error
    # (an emptied list, say) is usually a consequence of its child's.
    errors.sort(key=lambda e: (e["type"] != "extra_forbidden", -len(e["loc"])))
    first = errors[0]
    loc = tuple(first["loc"])
    others = [e for e in errors[1:] if tuple(e["loc"]) != loc[: len(e["loc"])]]
    key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    kind = first["type"]
    if kind == "extra_forbidden":
        holder = _model_at(model, loc)
        allowed = f" (allowed: {', '.join(holder.model_fields)})" if holder else ""
        text = f"unknown key{allowed}"
    elif kind == "missing":
        text = "required key is missing"
    else:
        text = first["msg"].removeprefix("Value error, ")
        value = first.get("input")
        if isinstance(value, (int, float, str, bool)) and kind != "value_error":
            text += f" (got {value!r})"
    more = f" (and {len(others)} more problems)" if others else ""
    where = f"{key}: " if key else ""
    return f"{where}{text}{more}"
