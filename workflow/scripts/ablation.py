"""Top-1 accuracy of one model on one setting with the ordering ablation applied at the LM input. The ablation's
references (each entity alone in the middle slot, and the empty canvas) are computed first and saved: the Fig 9
rules apply the same ablation."""
from pathlib import Path

import pandas as pd

from dualmech import ablation, models, snake

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
items = pd.read_parquet(snakemake.input.table)
refs = ablation.reference_tokens(adapter, snakemake.wildcards.setting, snakemake.params.colour_pool)
ablation.save_references(refs, snakemake.output.references)
log.info("%d references of shape %s", len(refs), tuple(next(iter(refs.values())).shape))
refs = {k: v.to(adapter.device) for k, v in refs.items()}     # saved losslessly: the Fig 9 rules read these values
root, name = Path(snakemake.input.images), f"{adapter.spec.name} {snakemake.wildcards.setting}"
preds = ablation.predict_ablated(adapter, items, root, refs, desc=f"{name} ablated")
# the own-slot control: each entity re-encoded alone at its own slot (identity and position kept)
own = {k: v.to(adapter.device) for k, v in ablation.own_slot_references(adapter, snakemake.wildcards.setting).items()}
preds = preds.merge(ablation.predict_ablated(adapter, items, root, own, desc=f"{name} own-slot control",
                                             grid=ablation.own_slot_grid, name="control"), on="item")
preds.insert(0, "model", snakemake.wildcards.model)
ablation.write_predictions(preds, snakemake.output.predictions)
log.info("accuracy under ablation %.4f, under the own-slot control %.4f, over %d items",
         preds["correct_ablated"].mean(), preds["correct_control"].mean(), len(preds))
