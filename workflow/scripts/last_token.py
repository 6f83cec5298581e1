"""Fig 3 data: last-token interchange at every site, one row per (pair, site, candidate) + mean curves."""
from pathlib import Path

import pandas as pd

from dualmech import models, pairs, patching, snake
from dualmech.tables import atomic_write

log = snake.start(snakemake)
model = snakemake.wildcards.model
golden = pairs.golden(pd.read_parquet(snakemake.input.pairs))
adapter = models.load(snake.model_spec(snakemake))
sweep = patching.last_token(adapter, model, golden, Path(snakemake.input.images))
curves = patching.curves(sweep, snakemake.params.seed)
atomic_write(snakemake.output.sweep, sweep.to_parquet(index=False))
atomic_write(snakemake.output.curves, curves.to_parquet(index=False))
log.info("%d golden pairs; transfer ranges %s", len(golden), patching.transfer_ranges(curves))
