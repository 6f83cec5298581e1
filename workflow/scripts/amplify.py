"""Amplification sweep of one model on one testbed: baseline, probes, alpha chosen on the development split,
every evaluation item re-evaluated (Table 2, paper §5.7)."""
import json
import math
from pathlib import Path

import pandas as pd

from dualmech import amplification, models, naturalistic, snake
from dualmech.tables import atomic_write

log = snake.start(snakemake)
p = snakemake.params
adapter = models.load(snake.model_spec(snakemake))
testbed = snakemake.wildcards.testbed
queries = pd.read_parquet(snakemake.input.table)
tb = amplification.Testbed(testbed, queries, Path(snakemake.input.images), system=None if testbed == "coco" else True,
                           classes=2 if testbed == "coco" else 3)
synthetic = None
if p.amp["synthetic_probe_images"] > 0:
    synthetic = amplification.synthetic_probe_data(adapter, p.settings, p.amp["synthetic_probe_images"], p.seed)
controls = naturalistic.coco_controls(queries, p.seed) if testbed == "coco" else None   # image shuffle, subject/object swap
base, outcomes, meta = amplification.run(adapter, tb, p.amp, p.seed, synthetic, log=log.info, controls=controls)


def clean(x):   # strict JSON: NaN -> null
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return None if isinstance(x, float) and math.isnan(x) else x


log.info("%d forwards (%s) in %.1f s", meta["forwards"], meta["engine"].get("mode"), meta.pop("seconds"))  # wall time goes to the log only: outputs stay byte-identical across runs
atomic_write(snakemake.output.baseline, base.to_parquet(index=False))
atomic_write(snakemake.output.outcomes, outcomes.to_parquet(index=False))
atomic_write(snakemake.output.meta, json.dumps(clean(meta), indent=1, sort_keys=True) + "\n")
summary = amplification.summarise(base, outcomes, meta)
log.info("\n%s", amplification.table2_display(summary).to_string(index=False))
