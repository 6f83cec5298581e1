"""Statistics functions against their reference implementations."""
import gc

import numpy as np
from statsmodels.stats.multitest import multipletests

from dualmech.stats import holm


def test_holm_is_statsmodels_bit_for_bit(monkeypatch):
    # statsmodels' multipletests calls gc.collect() on every call: half a second each in a test session that
    # holds many tiny models. The reference values do not depend on it.
    monkeypatch.setattr(gc, "collect", lambda *a: 0)   # statsmodels imports gc inside the function
    rng = np.random.default_rng(0)
    for n in (1, 2, 29, 41):
        for draw in range(20):
            p = rng.uniform(0, 0.2, n) ** rng.uniform(0.5, 3)
            p[rng.random(n) < 0.2] = p[0]                       # ties
            ref = multipletests(p, method="holm")[1]
            assert np.array_equal(holm(p), ref), (n, draw)
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan])
    out = holm(p)
    assert np.isnan(out[[1, 4]]).all()
    assert np.array_equal(out[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="holm")[1])
    assert np.isnan(holm([np.nan, np.nan])).all() and holm([]).shape == (0,)
