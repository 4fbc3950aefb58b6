"""Real randomized datasets from ../shared/data: loaders map them onto the log contract, and the
models run on them. Skipped, with the reason, when the shared data folder is absent."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.evaluation.metrics import qini_coefficient
from optimizer.io.datasets import data_dir, load_criteo, load_hillstrom, load_starbucks
from optimizer.models.coupon import CouponConversionModel
from optimizer.models.natural import NaturalConversionModel

pytestmark = pytest.mark.skipif(
    not data_dir().is_dir(), reason=f"shared data folder {data_dir()} is absent"
)


def test_hillstrom_matches_the_published_figures():
    mens = load_hillstrom("mens", "visit")
    assert len(mens.y) == 21_307 + 21_306
    assert int(mens.treatment.sum()) == 21_307
    assert mens.y[mens.treatment == 1].mean() == pytest.approx(0.1828, abs=5e-4)
    assert mens.y[mens.treatment == 0].mean() == pytest.approx(0.1062, abs=5e-4)
    womens = load_hillstrom("womens", "conversion")
    assert int(womens.treatment.sum()) == 21_387
    assert womens.y[womens.treatment == 1].mean() == pytest.approx(0.00884, abs=5e-5)


def test_starbucks_and_criteo_match_the_published_figures():
    sb = load_starbucks()
    assert len(sb.y) == 84_534 and int(sb.treatment.sum()) == 42_364
    assert sb.y[sb.treatment == 1].mean() == pytest.approx(0.01702, abs=5e-5)
    cr = load_criteo("visit")
    assert len(cr.y) == 10_000 and int(cr.treatment.sum()) == 8_534 and int(cr.y.sum()) == 480


def test_training_rows_follow_the_log_contract():
    ds = load_hillstrom("womens", "visit")
    rows = ds.training_rows()
    assert set(rows["denomination"]) == {"womens_email", "none"}
    assert rows["user_id"].is_unique
    assert rows["converted"].sum() == ds.y.sum()
    assert ds.menu.names == ("womens_email",)


def test_our_models_find_uplift_on_hillstrom_visits():
    ds = load_hillstrom("womens", "visit")
    rng = np.random.default_rng(0)
    test = rng.random(len(ds.y)) < 0.3
    train = ~test
    cols = {"numeric": ds.numeric, "categorical": ds.categorical, "max_epochs": 8}
    control, treated = train & (ds.treatment == 0), train & (ds.treatment == 1)
    natural = NaturalConversionModel(**cols).fit(ds.X[control], ds.y[control])
    coupon = CouponConversionModel(head="per_denomination", basket_column=None, **cols).fit(
        ds.X[treated], np.full(treated.sum(), ds.arm), ds.y[treated], menu=ds.menu
    )
    uplift = coupon.predict_proba(ds.X[test])[:, 0] - natural.predict_proba(ds.X[test])
    # The e-mail lifts visits by ~4.5 points on average: predictions agree in sign and size.
    assert 0.02 < uplift.mean() < 0.08
    # And the ranking beats random on held-out users (the split and the fit are seeded).
    qini = qini_coefficient(ds.y[test], uplift, ds.treatment[test])
    print(f"hillstrom womens visit qini {qini:.4f}")
    assert qini > 0.02
