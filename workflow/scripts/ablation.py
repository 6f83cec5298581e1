"""Everything under the ordering ablation for one model and setting, on one loaded model. Table 5: top-1 accuracy
with vision-derived ordering removed at the LM input (the references - each entity alone in the middle slot, and
the empty canvas - are computed first and saved), and under the own-slot control. Fig 9 (paper §5.6): criss-cross
pairs golden under the same ablation (canonical runs take the Table 5 prediction just made), and the object / strip
swaps with the ablation on both runs."""
from pathlib import Path

import pandas as pd

from dualmech import ablation, models, pairs, snake, sweeps

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
out, par = snakemake.output, snakemake.params
model, setting = snakemake.wildcards.model, snakemake.wildcards.setting
items = pd.read_parquet(snakemake.input.table)
refs = ablation.reference_tokens(adapter, setting, par.patching["colour_pool"])
ablation.save_references(refs, out.references)
log.info("%d references of shape %s", len(refs), tuple(next(iter(refs.values())).shape))
refs = {k: v.to(adapter.device) for k, v in ablation.load_references(out.references).items()}  # as saved (lossless)
root, name = Path(snakemake.input.images), f"{adapter.spec.name} {setting}"
preds = ablation.predict_ablated(adapter, items, root, refs, desc=f"{name} ablated")
# the own-slot control: each entity re-encoded alone at its own slot (identity and position kept)
own = {k: v.to(adapter.device) for k, v in ablation.own_slot_references(adapter, setting).items()}
preds = preds.merge(ablation.predict_ablated(adapter, items, root, own, desc=f"{name} own-slot control",
                                             grid=ablation.own_slot_grid, name="control"), on="item")
preds.insert(0, "model", model)
ablation.write_predictions(preds, out.predictions)
log.info("accuracy under ablation %.4f, under the own-slot control %.4f, over %d items",
         preds["correct_ablated"].mean(), preds["correct_control"].mean(), len(preds))

# Fig 9: pairs golden under the ablation, then the swaps with the ablation applied on both runs
override = ablation.scene_values(adapter.geometry, refs)
known = pairs.known_predictions(items, pd.read_parquet(out.predictions), "prediction_ablated")
table = sweeps.build_pairs(adapter, model, setting, ["criss_cross"], dict(criss_cross=out.pairs_criss_cross),
                           Path(out.pair_images), par.patching, par.seed, par.directions, known=known,
                           lm_input_override=override)["criss_cross"]
sweeps.criss_cross(adapter, model, setting, table, Path(out.pair_images), par.patching, par.directions, par.seed,
                   sweeps.outputs_of(out, "criss_cross"), lm_input_override=override)
