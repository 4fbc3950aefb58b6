"""Population drift: how far a scored population's features moved from the training data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.evaluation.metrics import psi

__all__ = ["drift_table", "drifted", "PSI_WARNING"]

#: Population stability index above which a feature is reported as drifted (rule of thumb:
#: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant).
PSI_WARNING = 0.2


def drift_table(reference: dict[str, np.ndarray], counts: dict[str, np.ndarray]) -> pd.DataFrame:
    """PSI of every feature, highest first.

    Parameters
    ----------
    reference : dict of str to ndarray
        Training shares per bin (``FeatureEncoder.reference()``), each shape (bins,).
    counts : dict of str to ndarray
        Scoring counts per bin, same bins.

    Returns
    -------
    DataFrame
        ``feature`` and ``psi``, sorted by PSI, descending.
    """
    records = [{"feature": f, "psi": psi(reference[f], counts[f])} for f in reference]
    frame = pd.DataFrame(records, columns=["feature", "psi"])
    return frame.sort_values("psi", ascending=False, ignore_index=True)


def drifted(table: pd.DataFrame, threshold: float = PSI_WARNING) -> pd.DataFrame:
    """The rows of a :func:`drift_table` whose PSI exceeds ``threshold``."""
    return table[table["psi"] > threshold].reset_index(drop=True)
