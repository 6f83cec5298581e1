"""Counterfactual pairs of one model and setting, golden-filtered (paper §5.3, §5.4); with `references` in the
input, golden under the ordering ablation and criss-cross design only (Fig 9, paper §5.6). Runs that are canonical
items take their prediction from `predictions` (Table 1's, or Table 5's under the ablation) instead of the model."""
from pathlib import Path

import pandas as pd

from dualmech import ablation, models, pairs, snake
from dualmech.stimuli import backgrounds
from dualmech.tables import atomic_write

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
cfg, setting, model = snakemake.params.patching, snakemake.wildcards.setting, snakemake.wildcards.model
images = Path(snakemake.output.images)
images.mkdir(parents=True, exist_ok=True)
override, column = None, "prediction"
if "references" in snakemake.input.keys():
    refs = {k: v.to(adapter.device) for k, v in ablation.load_references(snakemake.input.references).items()}
    override, column = ablation.scene_values(adapter.geometry, refs), "prediction_ablated"
designs = [d for d in pairs.DESIGNS if d in snakemake.output.keys()]
if setting == "whatsup":   # composites of side objects around a reference, left/right (paper §5.3, §5.4)
    tables = pairs.build_whatsup(adapter, snakemake.params.data["whatsup_dir"], snakemake.params.directions,
                                 snakemake.params.seed, cfg["pairs_per_direction"], cfg["max_attempts"], images,
                                 designs=designs)
else:
    bank, base = None, backgrounds.base_setting(setting)
    if base:             # App C.8: the setting's tuples and prompts, every scene on its background
        bank = backgrounds.load(snakemake.params.backgrounds, snakemake.params.seed, adapter.geometry.canvas_px)
        log.info("backgrounds: %s", bank.source)
    tables = pairs.build_all(adapter, base or setting, snakemake.params.directions, snakemake.params.seed,
                             cfg["pairs_per_direction"], cfg["max_attempts"], images, designs=designs,
                             lm_input_override=override, colour_pool=cfg["colour_pool"], backgrounds=bank,
                             known=pairs.known_predictions(pd.read_parquet(snakemake.input.stimuli),
                                                           pd.read_parquet(snakemake.input.predictions), column))
for design, df in tables.items():
    df.insert(0, "model", model)
    atomic_write(snakemake.output[design], df.to_parquet(index=False))
    by_dir = df.groupby("direction", sort=False)["golden"].agg(["sum", "size"])
    log.info("%s%s: golden/attempted per direction %s", design, " (under ablation)" if override else "",
             {d: f"{int(r['sum'])}/{int(r['size'])}" for d, r in by_dir.iterrows()})
