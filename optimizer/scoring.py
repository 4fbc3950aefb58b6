"""Score a user file of any size in chunks, with a drift check against the training data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from optimizer.atomic import atomic_path
from optimizer.bundle import ConversionModels
from optimizer.data import iter_users
from optimizer.errors import InputError
from optimizer.metrics import psi

__all__ = ["ScoreRun", "score_file", "drift_table", "PSI_WARNING"]

#: Population stability index above which a feature is reported as drifted.
PSI_WARNING = 0.2


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


def drift_table(reference: dict[str, np.ndarray], counts: dict[str, np.ndarray]) -> pd.DataFrame:
    """PSI of every feature, highest first.

    Parameters
    ----------
    reference : dict of str to ndarray
        Training shares per bin (``FeatureEncoder.reference()``).
    counts : dict of str to ndarray
        Scoring counts per bin, same bins.
    """
    records = [{"feature": f, "psi": psi(reference[f], counts[f])} for f in reference]
    return pd.DataFrame(records).sort_values("psi", ascending=False, ignore_index=True)


def _writer_for(path: Path):
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    raise InputError("unsupported output type; expected .parquet or .csv", source=path)


def score_file(
    models: ConversionModels,
    users_path: str | Path,
    out_path: str | Path,
    *,
    chunk_rows: int = 500_000,
    progress: Callable[[int], None] | None = None,
) -> ScoreRun:
    """Score every user of ``users_path`` into ``out_path`` (Parquet or CSV), chunk by chunk.

    Memory is bounded by ``chunk_rows``; the output appears under its name only once every
    chunk was validated and scored (duplicated ids anywhere in the file abort the run).

    Parameters
    ----------
    models : ConversionModels
        Fitted models.
    users_path : str or Path
        User table (contract :data:`optimizer.schema.USERS`).
    out_path : str or Path
        Scores table: ``user_id``, ``p_natural``, ``p_coupon__<name>``.
    chunk_rows : int
        Rows per chunk.
    progress : callable, optional
        Called with the number of rows scored so far.
    """
    out_path = Path(out_path)
    kind = _writer_for(out_path)
    encoder = models.encoder
    reference = encoder.reference()
    counts = {f: np.zeros_like(r, dtype=np.float64) for f, r in reference.items()}
    sums: dict[str, float] = {}
    rows = 0
    with atomic_path(out_path) as tmp:
        writer = None
        try:
            for users in iter_users(users_path, chunk_rows):
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
                if progress is not None:
                    progress(rows)
        finally:
            if writer is not None:
                writer.close()
    return ScoreRun(
        rows=rows,
        drift=drift_table(reference, counts),
        mean_scores={k: v / max(rows, 1) for k, v in sums.items()},
    )
