from __future__ import annotations

import numpy as np

from optimizer.segments import rfm_score, stage_codes, stage_names


def test_stage_boundaries():
    days = np.array([0, 30, 31, 90, 91, 180, 181, 5000])
    assert stage_codes(days).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert stage_names(np.array([181])).tolist() == ["dormant"]


def test_rfm_known_scores():
    score = rfm_score(
        np.array([10, 30, 31, 400, 200]),
        np.array([0, 1, 10, 3, 5]),
        np.array([59.0, 60.0, 300.0, np.nan, 179.99]),
    )
    # r + f + m: (5+1+1), (5+2+2), (4+5+5), (1+3+1), (2+4+3)
    assert score.tolist() == [7, 9, 14, 5, 9]
