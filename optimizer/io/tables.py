"""Loading and validating tables against the data contract in :mod:`optimizer.io.contract`.

Every problem becomes one :class:`~optimizer.errors.InputError` naming the file, the column, the
first offending rows (the first data row is row 1) and what is expected.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas.api import types as ptypes

from optimizer.errors import InputError, format_rows
from optimizer.io.atomic import MANIFEST, atomic_path, check_parent, manifest_files
from optimizer.io.contract import (
    USERS,
    ColumnSpec,
    TableSchema,
    log_schema,
    redeem_column,
    scores_schema,
    truth_schema,
)
from optimizer.io.menu import NO_COUPON, Menu
from optimizer.io.tomlfile import read_toml
from optimizer.segments import STAGES, stage_codes

__all__ = [
    "TABLE_SUFFIXES",
    "check_writable",
    "FILE_KINDS",
    "guess_kind",
    "load_table",
    "read_table",
    "table_columns",
    "validate_frame",
    "load_users",
    "check_users",
    "iter_table",
    "count_rows",
    "dataset_files",
    "iter_users",
    "load_log",
    "load_truth",
    "load_scores",
    "write_table",
    "load_user_ids",
]

#: File suffixes that :func:`read_table` understands.
TABLE_SUFFIXES: tuple[str, ...] = (".parquet", ".pq", ".csv", ".csv.gz")


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise InputError(
        f"unsupported file type; expected one of {', '.join(TABLE_SUFFIXES)}", source=path
    )


#: Dataset folders whose manifest this process checked, with their files' signature then.
_CHECKED: dict[Path, tuple] = {}


def _signature(path: Path) -> tuple:
    """Every file of a folder with its size and modification time (nanoseconds)."""
    out = []
    for f in sorted(path.rglob("*")):
        if f.is_file():
            stat = f.stat()
            out.append((f.relative_to(path).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def dataset_files(path: str | Path) -> list[Path]:
    """The Parquet files of a dataset folder, in order.

    A folder with a manifest (:data:`~optimizer.io.atomic.MANIFEST`: written by this tool) is
    checked whole first and read in the manifest's order; any other folder (written by Spark
    or another engine) is read as its visible ``*.parquet`` files in name order, any depth.

    Raises
    ------
    InputError
        The manifest finds a file damaged, missing or added, or the folder has no Parquet file.
    """
    path = Path(path)
    if (path / MANIFEST).is_file():
        # A pass over a dataset reads it again and again: its manifest is checked (every
        # file hashed) once per process, and again only when a file's size or time changes.
        seen = _signature(path)
        if _CHECKED.get(path.resolve()) == seen:
            listed = sorted(json.loads((path / MANIFEST).read_text())["files"])
        else:
            listed = manifest_files(path)
            _CHECKED[path.resolve()] = seen
        files = [path / n for n in listed if n.lower().endswith((".parquet", ".pq"))]
    else:
        files = sorted(
            f for f in path.rglob("*")
            if f.is_file() and f.name.lower().endswith((".parquet", ".pq"))
            and not any(part.startswith((".", "_")) for part in f.relative_to(path).parts)
        )  # fmt: skip
    if not files:
        raise InputError("folder holds no Parquet file; expected a dataset of parts", source=path)
    return files


def _checked_file(path: str | Path) -> tuple[Path, str]:
    """The path and its format, after checking that it exists and is not zero bytes.

    A folder is a Parquet dataset (format ``"dataset"``: :func:`dataset_files`).
    """
    path = Path(path)
    if path.is_dir():
        return path, "dataset"
    fmt = _format_of(path)
    if not path.is_file():
        raise InputError("file not found", source=path)
    if path.stat().st_size == 0:
        raise InputError("file is empty (0 bytes); expected a header and data rows", source=path)
    return path, fmt


@contextlib.contextmanager
def _read_errors(path: Path, fmt: str) -> Iterator[None]:
    """Turn the readers' exceptions into one-line :class:`InputError` s."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise InputError("file is empty; expected a header and data rows", source=path) from None
    except (pa.ArrowInvalid, pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        kind = "Parquet" if fmt == "parquet" else "CSV"
        raise InputError(f"not a readable {kind} file ({reason})", source=path) from None


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet or CSV file into a DataFrame without interpreting it.

    Parameters
    ----------
    path : str or Path
    columns : list of str, optional
        Read only these columns (each must be in the file: see :func:`table_columns`).

    Raises
    ------
    InputError
        The file is missing, empty, of an unknown type or not parseable.
    """
    path, fmt = _checked_file(path)
    if fmt == "dataset":
        parts = []
        for part in dataset_files(path):
            with _read_errors(part, "parquet"):
                parts.append(pq.read_table(part, columns=columns))
        return pa.concat_tables(parts, promote_options="permissive").to_pandas()
    with _read_errors(path, fmt):
        if fmt == "parquet":
            return pq.read_table(path, columns=columns).to_pandas()
        return pd.read_csv(path, low_memory=False, usecols=columns)


def table_columns(path: str | Path) -> list[str]:
    """The column names of a Parquet or CSV file, read from its schema or header only."""
    path, fmt = _checked_file(path)
    if fmt == "dataset":
        path, fmt = dataset_files(path)[0], "parquet"
    with _read_errors(path, fmt):
        if fmt == "parquet":
            return list(pq.ParquetFile(path).schema_arrow.names)
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]


class _Source(str):
    """A file name that also knows the position of its chunk's first row in the file."""

    offset: int = 0


def _first_rows(mask: np.ndarray, source: object = None) -> tuple[np.ndarray, int]:
    rows = np.flatnonzero(mask)
    return rows[:5] + getattr(source, "offset", 0), int(rows.size)


def _fail(source: str, spec: ColumnSpec, mask: np.ndarray, problem: str, expected: str) -> None:
    rows, total = _first_rows(mask, source)
    raise InputError(
        f"{problem} at {format_rows(rows, total)}; expected {expected}",
        source=source,
        column=spec.name,
    )


def _expected_text(spec: ColumnSpec) -> str:
    unit = f" ({spec.unit})" if spec.unit else ""
    if spec.kind == "flag":
        return "0 or 1"
    if spec.kind == "category":
        if spec.categories:
            return "one of " + ", ".join(spec.categories)
        return "a non-empty text label"
    what = "an integer" if spec.kind == "int" else "a number"
    lo, hi = spec.lower, spec.upper
    if lo is not None and hi is not None:
        return f"{what} in [{lo:g}, {hi:g}]{unit}"
    if lo is not None:
        return f"{what} >= {lo:g}{unit}"
    return f"{what}{unit}"


def _to_numeric(series: pd.Series, spec: ColumnSpec, source: str) -> np.ndarray:
    """The column as float64 or int64 values; text or booleans where numbers belong fail."""
    if ptypes.is_bool_dtype(series.dtype):
        if spec.kind == "flag":
            return series.to_numpy(dtype=np.int64)
        _fail(
            source, spec, np.ones(len(series), bool), "wrong type: true/false", _expected_text(spec)
        )
    if ptypes.is_integer_dtype(series.dtype) and not isinstance(series.dtype, pd.CategoricalDtype):
        if series.isna().any():  # nullable Int64
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
        return series.to_numpy(dtype=np.int64)
    if ptypes.is_float_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(series.astype(object), errors="coerce")
    bad = converted.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        first = series[bad].iloc[0]
        rows, total = _first_rows(bad, source)
        raise InputError(
            f"wrong type: text {str(first)!r} at {format_rows(rows, total)}; "
            f"expected {_expected_text(spec)}",
            source=source,
            column=spec.name,
        )
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def _check_numeric(series: pd.Series, spec: ColumnSpec, source: str) -> pd.Series:
    values = _to_numeric(series, spec, source)
    missing = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.size, bool)
    if missing.any() and not spec.nullable:
        _fail(source, spec, missing, "missing value (NaN or empty)", "a value in every row")
    present = ~missing
    if values.dtype.kind == "f":
        infinite = present & np.isinf(values)
        if infinite.any():
            _fail(source, spec, infinite, "infinite value", _expected_text(spec))
    if spec.kind in ("int", "float") and np.dtype(spec.dtype).kind in "iuf":
        kind = np.dtype(spec.dtype)
        if kind.kind in "iu":  # bounds as exact floats: 2**63 - 1 rounds up to 2**63 in float64
            top, bottom = float(np.iinfo(kind).max) + 1, float(np.iinfo(kind).min)
            outside = present & ((values >= top) | (values < bottom))
        else:
            top = float(np.finfo(kind).max)
            outside = present & (np.abs(values) > top)
        if outside.any():
            _fail(source, spec, outside, f"value beyond {spec.dtype}", _expected_text(spec))
    if spec.kind in ("int", "flag") and values.dtype.kind == "f":
        fractional = present & (values != np.round(values))
        if fractional.any():
            _fail(source, spec, fractional, "non-integer value", _expected_text(spec))
    if spec.kind == "flag":
        bad = present & ~np.isin(values, (0, 1))
        if bad.any():
            _fail(source, spec, bad, "value other than 0/1", "0 or 1")
        return pd.Series(values.astype(np.int8), index=series.index, name=spec.name)
    lo, hi = spec.lower, spec.upper
    if lo is not None:
        low = present & (values < lo)
        if low.any():
            problem = {
                "money": "negative money",
                "probability": "probability below 0",
            }.get(spec.unit, f"value below {lo:g}")
            _fail(source, spec, low, problem, _expected_text(spec))
    if hi is not None:
        high = present & (values > hi)
        if high.any():
            problem = "probability above 1" if spec.unit == "probability" else f"value above {hi:g}"
            _fail(source, spec, high, problem, _expected_text(spec))
    if spec.kind == "int" and not missing.any():
        return pd.Series(values.astype(spec.dtype), index=series.index, name=spec.name)
    dtype = spec.dtype if spec.kind == "float" else "float64"
    return pd.Series(values.astype(dtype), index=series.index, name=spec.name)


def _check_category(series: pd.Series, spec: ColumnSpec, source: str) -> pd.Series:
    """Validate labels on the (few) distinct values, never row by row."""
    cat = series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
    codes = cat.cat.codes.to_numpy()
    missing = codes < 0
    if missing.any() and not spec.nullable:
        _fail(source, spec, missing, "missing value (NaN or empty)", _expected_text(spec))
    labels = np.array([str(c).strip() for c in cat.cat.categories], dtype=object)
    if spec.categories is not None:
        categories = list(spec.categories)
        allowed = np.isin(labels, categories)
        bad = ~missing & ~allowed[np.maximum(codes, 0)] if labels.size else ~missing
        if bad.any():
            first = labels[codes[np.flatnonzero(bad)[0]]]
            rows, total = _first_rows(bad, source)
            noun = "denomination" if spec.name == "denomination" else "value"
            raise InputError(
                f"unknown {noun} {first!r} at {format_rows(rows, total)}; "
                f"expected {_expected_text(spec)}",
                source=source,
                column=spec.name,
            )
    else:
        empty = ~missing & (labels == "")[np.maximum(codes, 0)] if labels.size else missing & False
        if empty.any():
            _fail(source, spec, empty, "empty label", "a non-empty text label")
        categories = sorted(set(labels.tolist()))
    lookup = {label: i for i, label in enumerate(categories)}
    remap = np.array([lookup[label] for label in labels], dtype=np.int64)
    new_codes = np.where(missing, -1, remap[np.maximum(codes, 0)] if labels.size else -1)
    return pd.Series(
        pd.Categorical.from_codes(new_codes, categories=categories),
        index=series.index,
        name=spec.name,
    )


def validate_frame(
    df: pd.DataFrame, schema: TableSchema, source: str | Path, *, row_offset: int = 0
) -> pd.DataFrame:
    """Check ``df`` against ``schema`` and return it with the contract's dtypes.

    Parameters
    ----------
    df : DataFrame, shape (n, c)
        The table as read from disk.
    schema : TableSchema
        The contract it must follow: columns (no missing, no extra), types, ranges, labels and
        a unique key.
    source : str or Path
        The file name used in error messages.
    row_offset : int
        Position of ``df``'s first row in the file (when validating a file chunk by chunk), so
        that error messages give row numbers in the whole file.

    Returns
    -------
    DataFrame, shape (n, len(schema.columns))
        Columns in schema order, cast to the schema's dtypes, with a fresh RangeIndex.
    """
    source = _Source(str(source))
    source.offset = row_offset
    if len(df) == 0 and row_offset == 0:
        raise InputError(f"no data rows; expected at least one {schema.name} row", source=source)
    columns = [str(c) for c in df.columns]
    missing = [c for c in schema.names if c not in columns]
    if missing:
        raise InputError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            f"expected columns: {', '.join(schema.names)}",
            source=source,
            column=missing[0],
        )
    extra = [c for c in columns if c not in schema.names]
    if extra:
        raise InputError(
            f"unexpected column{'s' if len(extra) > 1 else ''} {', '.join(extra)}; "
            f"the {schema.name} table has only: {', '.join(schema.names)}",
            source=source,
            column=extra[0],
        )
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise InputError("column appears more than once", source=source, column=dupes[0])
    df = df.reset_index(drop=True)
    out = {}
    for spec in schema.columns:
        series = df[spec.name]
        if spec.kind == "category":
            out[spec.name] = _check_category(series, spec, source)
        else:
            out[spec.name] = _check_numeric(series, spec, source)
    result = pd.DataFrame(out)
    if schema.key:
        dup = result.duplicated(list(schema.key), keep="first").to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            key_text = ", ".join(f"{k}={result[k].iloc[row]}" for k in schema.key)
            rows, total = _first_rows(dup, source)
            raise InputError(
                f"duplicated {'/'.join(schema.key)} ({key_text}) at {format_rows(rows, total)}; "
                f"expected each {'/'.join(schema.key)} once",
                source=source,
                column=schema.key[-1],
            )
    return result


def check_users(users: pd.DataFrame, source: str | Path, row_offset: int = 0) -> None:
    """Cross-column checks of a validated user table: stage agrees with recency."""
    expected = np.asarray(STAGES)[stage_codes(users["days_since_last_order"].to_numpy())]
    wrong = users["lifecycle_stage"].astype(object).to_numpy() != expected
    if wrong.any():
        rows, total = _first_rows(wrong)
        where = format_rows(rows + row_offset, total)
        raise InputError(
            f"stage disagrees with days_since_last_order at {where}; "
            "expected active <= 30 days, cooling 31-90, lapsed 91-180, dormant > 180",
            source=source,
            column="lifecycle_stage",
        )


def load_users(path: str | Path) -> pd.DataFrame:
    """Read and validate a user table (see :data:`optimizer.io.contract.USERS`).

    Also checks that ``lifecycle_stage`` agrees with ``days_since_last_order``.

    Returns
    -------
    DataFrame, shape (n_users, 16)
    """
    users = validate_frame(read_table(path), USERS, path)
    check_users(users, path)
    return users


def count_rows(path: str | Path) -> int | None:
    """Rows of a Parquet file or dataset from its metadata; None for CSV or an unreadable one."""
    path = Path(path)
    try:
        if path.is_dir():
            return sum(int(pq.ParquetFile(f).metadata.num_rows) for f in dataset_files(path))
        if path.name.lower().endswith((".parquet", ".pq")) and path.is_file():
            return int(pq.ParquetFile(path).metadata.num_rows)
    except (pa.ArrowInvalid, OSError, InputError):
        return None
    return None


def _parquet_frames(files: Sequence[Path], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Chunks of ``chunk_rows`` rows of the files in order, read one row group at a time.

    One ``iter_batches`` over the whole file keeps the column-chunk bytes of every row group
    it has read until it is exhausted (about the file's compressed size by the end); a reader
    per row group frees them. Batches are regrouped so chunks stay ``chunk_rows`` long.
    """
    pending: list[pa.RecordBatch] = []
    held = 0
    readers = (pq.ParquetFile(f) for f in files)  # opened one after the other
    groups = ((parquet, g) for parquet in readers for g in range(parquet.num_row_groups))
    for parquet, group in groups:
        for batch in parquet.iter_batches(batch_size=chunk_rows, row_groups=[group]):
            pending.append(batch)
            held += batch.num_rows
            del batch
            while held >= chunk_rows:
                table = pa.Table.from_batches(pending)
                pending, held = table.slice(chunk_rows).to_batches(), held - chunk_rows
                frame = table.slice(0, chunk_rows).to_pandas()
                del table  # no Arrow copy of the chunk is held while the frame is used
                yield frame
    if held:
        yield pa.Table.from_batches(pending).to_pandas()


def iter_table(path: str | Path, chunk_rows: int = 1_000_000) -> Iterator[tuple[int, pd.DataFrame]]:
    """Read a Parquet or CSV file in chunks of about ``chunk_rows`` rows.

    Yields
    ------
    offset : int
        Position of the chunk's first row in the file.
    chunk : DataFrame
        The rows, not yet validated.
    """
    path, fmt = _checked_file(path)
    offset = 0
    with _read_errors(path, "parquet" if fmt == "dataset" else fmt):
        if fmt == "csv":
            batches = pd.read_csv(path, chunksize=chunk_rows, low_memory=False)
        else:  # a dataset's parts in order, chunked across their boundaries
            batches = _parquet_frames(dataset_files(path) if fmt == "dataset" else [path],
                                      chunk_rows)  # fmt: skip
        for frame in batches:
            yield offset, frame
            offset += len(frame)
    if offset == 0:
        raise InputError("no data rows; expected at least one row", source=path)


def iter_users(path: str | Path, chunk_rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
    """Validated user-table chunks of about ``chunk_rows`` rows, in bounded memory.

    User ids are checked for duplicates across chunks too; that check completes when the last
    chunk has been yielded, so write results to a temporary file and rename it only after the
    iteration ends without error.
    """
    seen: list[np.ndarray] = []
    for offset, frame in iter_table(path, chunk_rows):
        users = validate_frame(frame, USERS, path, row_offset=offset)
        check_users(users, path, offset)
        seen.append(users["user_id"].to_numpy())
        yield users
    ids = np.concatenate(seen)
    unique, first = np.unique(ids, return_index=True)
    if unique.size != ids.size:
        dup_mask = np.ones(ids.size, dtype=bool)
        dup_mask[first] = False
        rows, total = _first_rows(dup_mask)
        raise InputError(
            f"duplicated user_id (user_id={ids[rows[0]]}) at {format_rows(rows, total)}; "
            "expected each user_id once",
            source=path,
            column="user_id",
        )


def load_log(path: str | Path, menu: Menu) -> pd.DataFrame:
    """Read and validate a campaign log for ``menu`` (see :func:`optimizer.io.contract.log_schema`).

    Also checks the outcome columns agree: a redemption needs a conversion and a coupon, an
    order value > 0 goes with a conversion, and a discount equals the face value when redeemed.

    Returns
    -------
    DataFrame, shape (n_rows, 9)
    """
    log = validate_frame(read_table(path), log_schema(menu), path)
    converted = log["converted"].to_numpy() == 1
    redeemed = log["redeemed"].to_numpy() == 1
    no_coupon = (log["denomination"] == NO_COUPON).to_numpy()
    checks = (
        ("redeemed", redeemed & ~converted, "redeemed without converting", "redeemed <= converted"),
        ("redeemed", redeemed & no_coupon, f"redeemed with denomination '{NO_COUPON}'", "0"),
        (
            "order_value",
            converted & (log["order_value"].to_numpy() <= 0),
            "converted with order_value 0",
            "a positive order value for converters (money)",
        ),
        (
            "order_value",
            ~converted & (log["order_value"].to_numpy() != 0),
            "order value without a conversion",
            "0 when converted is 0",
        ),
    )
    # Categories are the menu names followed by 'none', so codes index the menu directly.
    codes = log["denomination"].cat.codes.to_numpy()
    face = np.append(menu.face_values, 0.0)[codes]
    expected_discount = np.where(redeemed, face, 0.0)
    checks += (
        (
            "discount",
            ~np.isclose(log["discount"].to_numpy(), expected_discount),
            "discount differs from the redeemed coupon's face value",
            "the face value when redeemed, else 0 (money)",
        ),
    )
    for column, mask, problem, expected in checks:
        if mask.any():
            rows, total = _first_rows(mask)
            raise InputError(
                f"{problem} at {format_rows(rows, total)}; expected {expected}",
                source=path,
                column=column,
            )
    return log


def load_truth(path: str | Path, menu: Menu) -> pd.DataFrame:
    """Read and validate a ground-truth table for ``menu``."""
    return validate_frame(read_table(path), truth_schema(menu), path)


def load_scores(path: str | Path, menu: Menu) -> pd.DataFrame:
    """Read and validate a scores table for ``menu``.

    The ``p_redeem__<name>`` columns (redemption model) are optional: all or none.

    Returns
    -------
    DataFrame, shape (n_users, 2 + k) or (n_users, 2 + 2k)
        ``user_id``, ``p_natural``, ``p_coupon__<name>`` (and ``p_redeem__<name>``) per
        denomination, float32.
    """
    frame = read_table(path)
    redemption = any(str(c).startswith(redeem_column("")) for c in frame.columns)
    return validate_frame(frame, scores_schema(menu, redemption=redemption), path)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` to Parquet or CSV (by suffix), atomically."""
    path = Path(path)
    fmt = _format_of(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(
                tmp, index=False, compression="gzip" if path.name.endswith(".gz") else None
            )


def load_user_ids(path: str | Path) -> np.ndarray:
    """User ids from a Parquet/CSV table with a ``user_id`` column, or a text file (one per line).

    Used for exclusion lists (opted-out users).

    Returns
    -------
    ndarray of int64, shape (m,)
    """
    path = Path(path)
    if path.name.lower().endswith(".txt"):
        if not path.is_file():
            raise InputError("file not found", source=path)
        tokens = path.read_text().split()
        bad = [t for t in tokens if not t.lstrip("-").isdigit()]
        if bad:
            raise InputError(
                f"not a user id: {bad[0]!r}; expected one integer per line", source=path
            )
        return np.array([int(t) for t in tokens], dtype=np.int64)
    frame = read_table(path)
    if "user_id" not in frame.columns:
        raise InputError(
            "missing column user_id; expected a table of user ids", source=path, column="user_id"
        )
    spec = USERS.column("user_id")
    return _check_numeric(frame["user_id"], spec, _Source(str(path))).to_numpy(dtype=np.int64)


#: What a data file can hold, and the names such files usually start with.
FILE_KINDS: dict[str, tuple[str, ...]] = {
    "users": ("users",),
    "log": ("history", "log"),
    "truth": ("truth",),
    "scores": ("scores",),
    "menu": ("menu",),
    "scenario": (),
}


def guess_kind(path: str | Path) -> str:
    """What ``path`` holds: a :data:`FILE_KINDS` key.

    A table by the start of its name; a TOML file by its content (a menu lists denominations
    at the top, anything else is a scenario or campaign file).

    Raises
    ------
    InputError
        The name says nothing (key ``kind``).
    """
    name = Path(path).name.lower()
    if name.endswith(".toml"):  # a menu is a list of denominations at the top
        return "menu" if "denomination" in read_toml(path) else "scenario"
    for kind, starts in FILE_KINDS.items():
        if starts and name.startswith(starts):
            return kind
    raise InputError("cannot tell what this file holds from its name", source=path, key="kind")


def load_table(path: str | Path, kind: str, menu: Menu) -> pd.DataFrame:
    """Read and validate a ``users``, ``log``, ``truth`` or ``scores`` table."""
    if kind == "users":
        return load_users(path)
    loaders = {"log": load_log, "truth": load_truth, "scores": load_scores}
    if kind not in loaders:
        raise InputError(f"{kind!r} is not a table; expected one of users, log, truth, scores")
    return loaders[kind](path, menu)


def check_writable(path: Path | None, suffixes: Sequence[str] | None = None) -> None:
    """Refuse, before any work, an output ``path`` that could not be written.

    ``suffixes``: the accepted file endings (default: a table file's, ``.parquet`` or ``.csv``).

    Raises
    ------
    InputError
        The name does not end in one of ``suffixes``, is a directory, or a parent is a file.
    """
    if path is None:
        return
    if suffixes is None:
        suffixes = TABLE_SUFFIXES
    if not path.name.lower().endswith(tuple(suffixes)):
        raise InputError(f"expected a {' or '.join(suffixes)} file name", source=path)
    if path.is_dir():
        raise InputError("is a directory; expected a file name", source=path)
    check_parent(path)
