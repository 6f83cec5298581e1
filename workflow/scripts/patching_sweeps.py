"""Figs 3, 6, 7 data of one model and setting (paper §5.3, §5.4), on one loaded model: golden-filtered
counterfactual pairs (canonical runs take Table 1's prediction instead of the model's), then the last-token
interchange (Fig 3; not for the App C.8 background settings) and the criss-cross swaps (Figs 6, 7)."""
from pathlib import Path

import pandas as pd

from dualmech import models, pairs, snake, sweeps

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
out, par = snakemake.output, snakemake.params
model, setting, images = snakemake.wildcards.model, snakemake.wildcards.setting, Path(out.images)
designs = [d for d in pairs.DESIGNS if f"pairs_{d}" in out.keys()]
known = pairs.known_predictions(pd.read_parquet(snakemake.input.stimuli), pd.read_parquet(snakemake.input.predictions))
tables = sweeps.build_pairs(adapter, model, setting, designs, {d: out[f"pairs_{d}"] for d in designs}, images,
                            par.patching, par.seed, par.directions, par.data, par.backgrounds, known=known)
if "last_token" in tables:
    sweeps.last_token(adapter, model, tables["last_token"], images, par.seed, sweeps.outputs_of(out, "last_token"))
sweeps.criss_cross(adapter, model, setting, tables["criss_cross"], images, par.patching, par.directions, par.seed,
                   sweeps.outputs_of(out, "criss_cross"))
