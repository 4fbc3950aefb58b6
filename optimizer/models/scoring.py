"""Score a user file of any size in chunks, with a drift check against the training data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from optimizer.errors import InputError
from optimizer.evaluation.drift import drift_table
from optimizer.io.atomic import atomic_path
from optimizer.io.tables import count_rows, iter_users
from optimizer.models.conversion import ConversionModels
from optimizer.models.mapped import data_of, iter_customers
from optimizer.progress import Progress, report

__all__ = ["ScoreRun", "score_file", "auto_chunk_rows", "CHUNK_CELLS"]

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
    raise InputError("unsupported output type; expected .parquet or .csv", source=path)


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
        Scores table: ``user_id``, ``p_natural``, ``p_coupon__<name>``.
    chunk_rows : int, optional
        Rows per chunk; default :func:`auto_chunk_rows` of the models' features.
    progress : callable, optional
        Receives a ``"scoring users"`` :class:`~optimizer.progress.Step` after every chunk.
    """
    out_path = Path(out_path)
    chunk_rows = auto_chunk_rows(len(models.features)) if chunk_rows is None else chunk_rows
    kind = _writer_for(out_path)
    encoder = models.encoder
    reference = encoder.reference()
    counts = {f: np.zeros_like(r, dtype=np.float64) for f, r in reference.items()}
    sums: dict[str, float] = {}
    rows = 0
    total = count_rows(users_path)
    with atomic_path(out_path) as tmp:
        writer = None
        try:
            chunks = (
                iter_users(users_path, chunk_rows)
                if data_of(models) is None
                else iter_customers(models, users_path, chunk_rows)
            )
            for users in chunks:
                scores = models.predict(users)
                for feature, c in encoder.bin_counts(users).items():
                    counts[feature] += c
                for column in scores.columns[1:]:
                    sums[column] = sums.get(column, 0.0) + float(scores[column].sum())
                table = pa.Table.from_pandas(scores, preserve_index=False)
                if writer is None:
                    writer = (
                        pq.ParquetWriter(tmp, table.schema, compression="zstd")
                        if kind == "parquet"
                        else pacsv.CSVWriter(tmp, table.schema)
                    )
                writer.write_table(table)
                rows += len(users)
                report(progress, "scoring users", rows, total)
                del users, scores, table  # freed before the next chunk is read
        finally:
            if writer is not None:
                writer.close()
    return ScoreRun(
        rows=rows,
        drift=drift_table(reference, counts),
        mean_scores={k: v / max(rows, 1) for k, v in sums.items()},
    )
