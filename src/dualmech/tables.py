"""Render tidy result tables as CSV (full precision), Markdown and booktabs LaTeX."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd


def atomic_write(path: Path | str, data: str | bytes) -> None:
    """Write via a temporary file in the same directory, then rename: no half-written outputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def write(long: pd.DataFrame, display: pd.DataFrame, stem: Path | str, caption: str) -> None:
    """`long` (tidy, full precision) -> stem.csv; `display` (formatted strings) -> stem.md and stem.tex."""
    stem = Path(stem)
    atomic_write(stem.with_suffix(".csv"), long.to_csv(index=False))
    atomic_write(stem.with_suffix(".md"), f"{caption}\n\n{display.to_markdown(index=False)}\n")
    latex = display.style.hide(axis="index").to_latex(hrules=True, column_format="l" * display.shape[1])
    atomic_write(stem.with_suffix(".tex"), latex.replace("_", r"\_").replace("%", r"\%"))


def fmt_ci(value: float, lo: float, hi: float, digits: int = 2) -> str:
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table1_display(acc: pd.DataFrame) -> pd.DataFrame:
    """Models x settings, overall accuracy with its Wilson 95% CI (as in the paper's Table 1, plus CIs)."""
    overall = acc[acc["direction"] == "all"]
    cells = overall.assign(cell=[fmt_ci(a, lo, hi) for a, lo, hi in
                                 zip(overall["accuracy"], overall["ci_low"], overall["ci_high"])])
    wide = cells.pivot(index="model", columns="setting", values="cell")
    wide = wide.reindex(index=list(dict.fromkeys(overall["model"])), columns=list(dict.fromkeys(overall["setting"])))
    return wide.fillna("\u2014").reset_index().rename(columns=str.capitalize)   # a model without items there: —
