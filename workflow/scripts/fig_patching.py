"""Fig 3 (last-token) or Figs 6/7/9 (criss-cross object / strip swap; Fig 9 under the ordering ablation) for every
(model, setting) cell of the rule, one PDF each."""
from dualmech import snake
from dualmech.plots.patching import patching_cell

log = snake.start(snakemake)
par, inp = snakemake.params, snakemake.input
stats = inp.stats if hasattr(inp, "stats") else [None] * len(par.cells)   # Fig 3 has none
for i, (model, setting) in enumerate(par.cells):
    patching_cell(par.fig, model, setting, inp.pairs[i], inp.curves[i], stats[i], par.directions, par.min_pairs,
                  snakemake.output[i])
    log.info("Fig %s: %s on %s", par.fig, model, setting)
