"""Top-1 accuracy of one model on one setting's canonical items (one row per item)."""
from pathlib import Path

import pandas as pd

from dualmech import behaviour, models, snake
from dualmech.tables import atomic_write

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
items = pd.read_parquet(snakemake.input.table)
if items.empty:   # e.g. What'sUp for a model that names none of the side objects in one token
    preds = items.assign(prediction=pd.Series(dtype=str), correct=pd.Series(dtype=bool), p_answer=pd.Series(dtype=float))
    log.warning("no items: this model names none of the %s entities in one token", snakemake.wildcards.setting)
else:
    preds = behaviour.predict(adapter, items, Path(snakemake.input.images),
                              desc=f"{adapter.spec.name} {snakemake.wildcards.setting}")
    log.info("accuracy %.4f over %d items", preds["correct"].mean(), len(preds))
atomic_write(snakemake.output[0], preds.to_parquet(index=False))
