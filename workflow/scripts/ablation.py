"""Top-1 accuracy of one model on one setting with the ordering ablation applied at the LM input."""
from pathlib import Path

import pandas as pd

from dualmech import ablation, models, snake

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
items = pd.read_parquet(snakemake.input.table)
refs = {k: v.to(adapter.device) for k, v in ablation.load_references(snakemake.input.references).items()}
preds = ablation.predict_ablated(adapter, items, Path(snakemake.input.images), refs,
                                 desc=f"{adapter.spec.name} {snakemake.wildcards.setting} ablated")
preds.insert(0, "model", snakemake.wildcards.model)
ablation.write_predictions(preds, snakemake.output[0])
log.info("accuracy under ablation %.4f over %d items", preds["correct_ablated"].mean(), len(preds))
