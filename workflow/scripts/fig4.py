"""Fig 4 (App C.5-C.7; grids: App C.6): probe class probabilities on every visual token at the LM input, one PDF
per (model, setting) cell."""
from dualmech import plots, snake

log = snake.start(snakemake)
for (model, setting), heatmaps, pdf in zip(snakemake.params.cells, snakemake.input.heatmaps, snakemake.output):
    meta, arrays = plots.load_heatmaps(heatmaps)
    plots.fig4_heatmaps(meta, arrays, pdf, f"Fig 4 \u2014 position probes, {model}, {setting}")
    log.info("%s on %s: sites available %s", model, setting, meta["sites"])
