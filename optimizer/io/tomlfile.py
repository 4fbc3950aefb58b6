"""TOML reading and writing, and one-line messages for schema validation errors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import tomli_w
from pydantic import BaseModel, ValidationError

from optimizer.errors import InputError
from optimizer.io.atomic import atomic_path

__all__ = [
    "read_toml",
    "write_toml",
    "validate",
    "load_validated",
    "validation_error_line",
    "validation_error_parts",
]


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


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: dict[str, Any], source: str | Path | None = None) -> M:
    """``data`` as a ``model``.

    A problem is one :class:`InputError` naming ``source`` and the key (its ``key`` attribute
    set, so that a caller can say which of its own names set the value).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        key, text = validation_error_parts(exc, model)
        raise InputError(text, source=source, key=key or None) from None


def load_validated(path: str | Path, model: type[M]) -> M:
    """Read a TOML file and validate it as a ``model`` (one-line errors naming file and key)."""
    return validate(model, read_toml(path), source=path)


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
    key, text = validation_error_parts(exc, model)
    return f"{key}: {text}" if key else text


def _clean_loc(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The keys of an error location, without the tags pydantic adds inside a union.

    Walks the model along ``loc``: a field of a union of several types is followed by a tag
    naming the member (``list[float]``, ``function-after[..., BudgetRange]``), which is not a
    key of the file; every other part is (a field, a dict key such as a segment label, an index).
    """
    out: list[Any] = []
    current: Any = model
    parts = list(loc)
    while parts:
        members = [a for a in get_args(current) if a is not type(None)]
        if get_origin(current) in (Union, UnionType) and len(members) > 1:
            tag = str(parts.pop(0))  # pydantic's name of the member that was tried
            named = [m for m in members if getattr(m, "__name__", str(m)) in tag or str(m) in tag]
            current = named[0] if named else None
            continue
        if get_origin(current) in (Union, UnionType):  # X | None
            current = members[0] if members else None
            continue
        part = parts.pop(0)
        out.append(part)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = field.annotation if field is not None else None
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) in (list, tuple, set, frozenset):
            current = (get_args(current) or (None,))[0]
        else:
            current = None
    return tuple(out)


def validation_error_parts(exc: Exception, model: type[BaseModel]) -> tuple[str, str]:
    """The dotted key (``""`` at the top) and the message of a pydantic ValidationError.

    Unknown keys come first (the likeliest typo), then the deepest location: a parent's error
    (an emptied list, say) is usually a consequence of its child's; within a union, the member
    whose shape the value has.
    """
    if not isinstance(exc, ValidationError):
        return "", str(exc)
    errors = exc.errors(include_url=False)
    for error in errors:
        error["loc"] = _clean_loc(model, tuple(error["loc"]))
    # Within a union, a "not this type" error is the least telling of the members' errors.
    errors.sort(
        key=lambda e: (e["type"] != "extra_forbidden", -len(e["loc"]), e["type"].endswith("_type"))
    )
    first = errors[0]
    locs = [e["loc"] for e in errors]
    loc = locs[0]
    # Problems at this key or above it (a parent's, a union's other members) are the same one.
    others = [other for other in locs[1:] if other != loc[: len(other)]]
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
    if kind == "value_error":  # a check across keys names the key it blames, from where it runs
        named = re.match(r"^([a-z_]+(?:\.[a-z_]+)*): (.+)$", text)
        if named:
            key = ".".join(p for p in (key, named.group(1)) if p)
            text = named.group(2)
    more = f" (and {len(others)} more problems)" if others else ""
    return key, f"{text}{more}"
