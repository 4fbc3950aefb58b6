"""The training loop's automatic batch size: the small logs keep theirs, large logs step less."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.models.natural import NaturalConversionModel
from optimizer.models.training import auto_batch


@pytest.mark.parametrize(
    ("rows", "batch"),
    [(10, 1024), (99_999, 1024), (100_000, 2048), (199_999, 2048), (200_000, 4096),
     (800_000, 16384), (50_000_000, 16384)],
)  # fmt: skip
def test_auto_batch_doubles_with_the_rows(rows, batch):
    assert auto_batch(rows) == batch


def test_auto_batch_scales_the_learning_rate_by_its_square_root(monkeypatch):
    """A log of 200,000 rows trains with batch 4096 at twice the given learning rate."""
    import optimizer.models.base as base

    seen = {}

    def recording(net, forward, inputs, y, **kwargs):
        seen.update(kwargs, rows=y.size)
        raise RuntimeError("stop")

    monkeypatch.setattr(base, "fit_logits", recording)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.random(200_000), "b": rng.random(200_000)})
    y = (rng.random(200_000) < 0.3).astype(np.int8)
    with pytest.raises(RuntimeError, match="stop"):
        NaturalConversionModel(learning_rate=1e-3).fit(X, y)
    assert seen["rows"] == 200_000
    assert seen["batch_size"] == 4096 and seen["learning_rate"] == pytest.approx(2e-3)
    seen.clear()
    with pytest.raises(RuntimeError, match="stop"):
        NaturalConversionModel(learning_rate=1e-3, batch_size=512).fit(X, y)
    assert seen["batch_size"] == 512 and seen["learning_rate"] == pytest.approx(1e-3)
