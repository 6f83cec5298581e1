"""Top-1 accuracy of one model on one setting's canonical items (one row per item)."""
from pathlib import Path

import pandas as pd

from dualmech import behaviour, models, snake
from dualmech.tables import atomic_write

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
items = pd.read_parquet(snakemake.input.table)
preds = behaviour.predict(adapter, items, Path(snakemake.input.images), desc=f"{adapter.spec.name} {snakemake.wildcards.setting}")
atomic_write(snakemake.output[0], preds.to_parquet(index=False))
log.info("accuracy %.4f over %d items", preds["correct"].mean(), len(preds))
