"""Shifted-layout control stimuli for one model and setting: the canonical triple translated by +-k tokens."""
from pathlib import Path

from dualmech import models, snake
from dualmech.stimuli.shifted import shifted_items
from dualmech.tables import atomic_write

log = snake.start(snakemake)
geometry, palette = models.describe(snake.model_spec(snakemake))
out = Path(snakemake.output.images)
out.mkdir(parents=True, exist_ok=True)
items = shifted_items(snakemake.wildcards.setting, geometry, palette, out, snakemake.params.shifts,
                      snakemake.params.directions)
items.insert(0, "model", snakemake.wildcards.model)
atomic_write(snakemake.output.table, items.to_parquet(index=False))
used = sorted(set(items["shift"])) if len(items) else []
log.info("%d items, %d images, shifts used %s of %s (geometry %s)", len(items), items["image"].nunique(), used,
         snakemake.params.shifts, geometry)
if not used:
    log.warning("no requested shift keeps every object on the canvas: no position-ambiguous tokens for this model")
