"""Scoring (paper §4.3) and Wilson intervals."""
import numpy as np
import pandas as pd
import pytest

from dualmech.behaviour import accuracy_table, normalise
from dualmech.stats import wilson


@pytest.mark.parametrize("raw,expected", [(" Red", "red"), ("red.", "red"), ("a(n)", "an"), ("\u2581Blue", "blue")])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


def test_wilson_matches_closed_form():
    lo, hi = wilson(45, 50)
    p, n, z = 0.9, 50, 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert lo == pytest.approx(centre - half) and hi == pytest.approx(centre + half)
    assert wilson(50, 50)[1] == pytest.approx(1.0) and wilson(50, 50)[0] < 1


@pytest.mark.parametrize("n", [50, 120, 336, 1000])
def test_wilson_holds_a_perfect_or_null_score_exactly(n):
    assert wilson(n, n)[1] == 1.0 and wilson(0, n)[0] == 0.0   # plain statsmodels gives 0.9999999999999999 at 336


def test_table1_figure_draws_a_perfect_model(tmp_path):
    from dualmech.plots import table1_figure
    preds = pd.DataFrame(dict(model=["perfect"] * 336 + ["chance"] * 336, setting="objects", direction="left",
                              correct=[True] * 336 + [True, False, False] * 112))
    table1_figure(accuracy_table(preds), tmp_path / "t1.pdf")
    assert (tmp_path / "t1.pdf").stat().st_size > 0


def test_accuracy_table():
    preds = pd.DataFrame(dict(model="m", setting="squares", direction=["left"] * 4 + ["right"] * 2,
                              correct=[True, True, True, False, False, True]))
    t = accuracy_table(preds).set_index("direction")
    assert t.loc["left", "accuracy"] == 0.75 and t.loc["left", "n"] == 4
    assert t.loc["all", "correct"] == 4 and t.loc["all", "n"] == 6
    assert t.loc["left", "ci_low"] < 0.75 < t.loc["left", "ci_high"]
