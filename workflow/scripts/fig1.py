"""Fig 1: one example stimulus per setting and orientation, plus the grid layouts."""
from pathlib import Path

import pandas as pd

from dualmech import plots, snake

log = snake.start(snakemake)
tables = {Path(p).parent.name: (pd.read_parquet(p), Path(p).parent / "images") for p in snakemake.input.tables}
plots.fig1_stimuli(tables, snakemake.output[0])
