"""Score a user file of any size in chunks, with a drift check against the training data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from optimizer.errors import InputError
from optimizer.evaluation.drift import drift_table
from optimizer.io.atomic import atomic_directory, atomic_path, check_not_input, write_manifest
from optimizer.io.tables import count_rows, iter_users
from optimizer.models.conversion import ConversionModels
from optimizer.models.mapped import data_of, iter_customers
from optimizer.progress import Progress, report

__all__ = ["ScoreRun", "score_file", "auto_chunk_rows", "CHUNK_CELLS", "SCORE_PARTS"]

#: Users per chunk whose features count towards the drift check (an even spread of the chunk:
#: the population stability index of millions of users needs no more).
DRIFT_ROWS = 100_000
#: The part files of a scores dataset (``fnmatch`` pattern; ``*`` is the part's number).
SCORE_PARTS = "part-*.parquet"

#: Feature cells per scoring chunk when the chunk size is not given: memory follows cells, so
#: a wide table gets fewer rows per chunk (500,000 rows at 15 features, 50,000 at 200).
CHUNK_CELLS = 10_000_000


@dataclass
class ScoreRun:
    """What a scoring run did.

    Attributes
    ----------
    rows : int
        Users scored.
    drift : DataFrame
        One row per feature: ``feature`` and ``psi``, sorted by PSI, descending.
    mean_scores : dict of str to float
        Mean of each score column.
    """

    rows: int
    drift: pd.DataFrame
    mean_scores: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures: rows, mean scores and every feature's PSI."""
        return {
            "rows": self.rows,
            "mean_scores": dict(self.mean_scores),
            "drift": self.drift.to_dict(orient="records"),
        }


def _writer_for(path: Path):
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    if path.is_dir() or not path.suffix:
        return "dataset"
    raise InputError(
        "unsupported output type; expected .parquet, .csv or a folder (a Parquet dataset)",
        source=path,
    )


class _Sink:
    """Where scored chunks go: one Parquet or CSV file, or one part file per chunk."""

    def __init__(self, kind: str, target: Path):
        self.kind, self.target, self.writer, self.parts = kind, target, None, 0

    def write(self, table: pa.Table) -> None:
        if self.kind == "dataset":
            name = SCORE_PARTS.replace("*", f"{self.parts:05d}")
            pq.write_table(table, self.target / name, compression="zstd", use_dictionary=False)
        elif self.writer is None:
            self.writer = (
                # Probabilities do not repeat: dictionary pages would cost a third of the time.
                pq.ParquetWriter(
                    self.target, table.schema, compression="zstd", use_dictionary=False
                )  # fmt: skip
                if self.kind == "parquet"
                else pacsv.CSVWriter(self.target, table.schema)
            )
        if self.writer is not None:
            self.writer.write_table(table)
        self.parts += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextlib.contextmanager
def _staged(kind: str, out_path: Path) -> Iterator[_Sink]:
    """A sink whose output appears under ``out_path`` whole, or not at all."""
    if kind == "dataset":
        with atomic_directory(out_path, whole=True, writes=(SCORE_PARTS,),
                              writer="scores") as staging:  # fmt: skip
            sink = _Sink(kind, staging)
            yield sink
            write_manifest(staging, writer="scores")
        return
    with atomic_path(out_path) as tmp:
        sink = _Sink(kind, tmp)
        try:
            yield sink
        finally:
            sink.close()


def auto_chunk_rows(n_features: int) -> int:
    """Rows per scoring chunk for ``n_features`` features.

    :data:`CHUNK_CELLS` feature cells, kept between 10,000 and 500,000 rows.
    """
    return int(min(500_000, max(10_000, CHUNK_CELLS // max(n_features, 1))))


def score_file(
    models: ConversionModels,
    users_path: str | Path,
    out_path: str | Path,
    *,
    chunk_rows: int | None = None,
    progress: Progress | None = None,
) -> ScoreRun:
    """Score every user of ``users_path`` into ``out_path`` (Parquet or CSV), chunk by chunk.

    Memory is bounded by ``chunk_rows``; the output appears under its name only once every
    chunk was validated and scored (duplicated ids anywhere in the file abort the run).

    Parameters
    ----------
    models : ConversionModels
        Fitted models.
    users_path : str or Path
        User table: the synthetic contract's (:data:`optimizer.io.contract.USERS`), or for
        models trained on a data configuration, a customer file with the same columns.
    out_path : str or Path
        Scores table: ``user_id``, ``p_natural``, ``p_coupon__<name>``: a ``.parquet`` or
        ``.csv`` file, or a folder, written as a Parquet dataset of one ``part-NNNNN.parquet``
        per chunk and a manifest (what the out-of-core and Spark planners read in parallel).
    chunk_rows : int, optional
        Rows per chunk; default :func:`auto_chunk_rows` of the models' features.
    progress : callable, optional
        Receives a ``"scoring users"`` :class:`~optimizer.progress.Step` after every chunk.
    """
    out_path = Path(out_path)
    chunk_rows = auto_chunk_rows(len(models.features)) if chunk_rows is None else chunk_rows
    kind = _writer_for(out_path)
    check_not_input(out_path, users_path)
    encoder = models.encoder
    reference = encoder.reference()
    counts = {f: np.zeros_like(r, dtype=np.float64) for f, r in reference.items()}
    sums: dict[str, float] = {}
    rows = 0
    total = count_rows(users_path)
    with _staged(kind, out_path) as sink:
        chunks = (
            iter_users(users_path, chunk_rows)
            if data_of(models) is None
            else iter_customers(models, users_path, chunk_rows)
        )
        for users in chunks:
            scores = models.predict(users)
            # Drift is counted on an even spread of at most DRIFT_ROWS users per chunk.
            spread = users.iloc[:: max(1, -(-len(users) // DRIFT_ROWS))]
            for feature, c in encoder.bin_counts(spread).items():
                counts[feature] += c
            for column in scores.columns[1:]:
                sums[column] = sums.get(column, 0.0) + float(scores[column].sum())
            sink.write(pa.Table.from_pandas(scores, preserve_index=False))
            rows += len(users)
            report(progress, "scoring users", rows, total)
            del users, scores  # freed before the next chunk is read
    return ScoreRun(
        rows=rows,
        drift=drift_table(reference, counts),
        mean_scores={k: v / max(rows, 1) for k, v in sums.items()},
    )
