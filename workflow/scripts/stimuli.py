"""Render the canonical stimuli of one setting (or k x k grid) for one model; for a relation setting with
`shifted_table` among the outputs, also its shifted-layout control (the canonical triple translated by +-k tokens)."""
from pathlib import Path

from dualmech import naturalistic, snake
from dualmech.stimuli import backgrounds, grid_items, relation_items
from dualmech.stimuli.shifted import shifted_items
from dualmech.tables import atomic_write

log = snake.start(snakemake)
geometry, palette, exclude = snake.canvas(snakemake.input.check)      # the model's, from its check report
setting = snakemake.wildcards.setting
out = Path(snakemake.output.images)
if setting == "whatsup":   # Table 1's What'sUp column: every composite of side objects the model names in one token
    from dualmech import models     # the tokenizer decides which names are one token
    adapter = models.describe_adapter(snake.model_spec(snakemake))
    items = naturalistic.whatsup_items(snakemake.params.data["whatsup_dir"], geometry, out, adapter.is_one_token_name,
                                       strict=False)
elif backgrounds.base_setting(setting):   # App C.8: the canonical layouts on photo-like backgrounds
    bank = backgrounds.load(snakemake.params.backgrounds, snakemake.params.seed, geometry.canvas_px)
    items = relation_items(backgrounds.base_setting(setting), geometry, palette, out, snakemake.params.directions,
                           exclude=exclude, backgrounds=bank).assign(setting=setting)
    log.info("backgrounds: %s", bank.source)
elif setting.startswith("grid"):
    items = grid_items(int(setting[4:]), snakemake.params.grid_images, geometry, palette, out, snakemake.params.seed)
else:
    items = relation_items(setting, geometry, palette, out, snakemake.params.directions, exclude=exclude)
items.insert(0, "model", snakemake.wildcards.model)
atomic_write(snakemake.output.table, geometry.stamp(items).to_parquet(index=False))
log.info("%d items, %d images, geometry %s, palette %s, objects left out %s", len(items), items["image"].nunique(),
         geometry, palette, list(exclude))

if "shifted_table" in snakemake.output.keys():
    out = Path(snakemake.output.shifted_images)
    out.mkdir(parents=True, exist_ok=True)
    shifts = snakemake.params.shifts
    items = shifted_items(setting, geometry, palette, out, shifts, snakemake.params.directions)
    items.insert(0, "model", snakemake.wildcards.model)
    atomic_write(snakemake.output.shifted_table, geometry.stamp(items).to_parquet(index=False))
    used = sorted(set(items["shift"])) if len(items) else []
    log.info("shifted control: %d items, %d images, shifts used %s of %s", len(items), items["image"].nunique(), used,
             shifts)
    if not used:
        log.warning("no requested shift keeps every object on the canvas: no position-ambiguous tokens for this model")
