"""Figs 6/7 data: object and strip criss-cross swaps + random-region nulls at every site, curves and tests.
With `references` in the input the ordering ablation is applied on both runs first (Fig 9, paper §5.6)."""
from pathlib import Path

import pandas as pd

from dualmech import ablation, models, naturalistic, pairs, patching, snake
from dualmech.tables import atomic_write

log = snake.start(snakemake)
model, cfg, seed = snakemake.wildcards.model, snakemake.params.patching, snakemake.params.seed
table = pd.read_parquet(snakemake.input.pairs)
golden = pairs.golden(table)
adapter = models.load(snake.model_spec(snakemake))
override = None
if "references" in snakemake.input.keys():
    refs = {k: v.to(adapter.device) for k, v in ablation.load_references(snakemake.input.references).items()}
    override = ablation.scene_values(adapter.geometry, refs)
whatsup = snakemake.wildcards.setting == "whatsup"      # per-reference regions (config/whatsup_regions.yaml)
directions = naturalistic.whatsup_directions(snakemake.params.directions) if whatsup else snakemake.params.directions
variants = patching.whatsup_criss_cross_variants(adapter.geometry, cfg["null_draws"], seed)[:2] if whatsup else None
sweep = patching.criss_cross(adapter, model, golden, Path(snakemake.input.images), cfg["strip_width"],
                             cfg["null_draws"], seed, lm_input_override=override, variants=variants)
curves = patching.curves(sweep, seed)
stats = patching.flip_tests(sweep, patching.pair_counts(table, directions), cfg["min_pairs"])
stats["model"], stats["setting"] = model, snakemake.wildcards.setting
regions = (patching.whatsup_region_table(adapter.geometry, cfg["null_draws"], seed, golden) if whatsup
           else patching.region_table(adapter.geometry, cfg["strip_width"], cfg["null_draws"], seed, golden))
for key, df in (("sweep", sweep), ("curves", curves), ("stats", stats), ("regions", regions)):
    atomic_write(snakemake.output[key], df.to_parquet(index=False))
log.info("%d golden pairs%s\n%s", len(golden), " (under ablation)" if override else "",
         stats[stats["direction"] == "all"].to_string(index=False))
