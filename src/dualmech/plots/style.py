"""Shared figure style and atomic saving."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from ..tables import atomic_write  # noqa: E402

sns.set_theme(context="paper", style="whitegrid", font_scale=1.0)
# No timestamps or software versions in the files: same data -> byte-identical figures.
METADATA = {"pdf": {"CreationDate": None, "Producer": None, "Creator": None},
            "png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


def save(fig, path: Path | str) -> None:
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, bbox_inches="tight", metadata=METADATA.get(fmt), dpi=200)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
