"""Fig 4 (App C.5-C.7; grids: App C.6): probe class probabilities on every visual token at the LM input."""
from dualmech import plots, snake

log = snake.start(snakemake)
meta, arrays = plots.load_heatmaps(snakemake.input.heatmaps)
plots.fig4_heatmaps(meta, arrays, snakemake.output[0],
                    f"Fig 4 \u2014 position probes, {snakemake.wildcards.model}, {snakemake.wildcards.setting}")
log.info("sites available %s", meta["sites"])
