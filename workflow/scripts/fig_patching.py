"""Fig 3 (last-token) or Figs 6/7/9 (criss-cross object / strip swap; Fig 9 under the ordering ablation) for every
(model, setting) cell of the rule, one PDF each."""
import pandas as pd

from dualmech import patching_tables, snake
from dualmech.plots.patching import fig3_last_token, fig_criss_cross

log = snake.start(snakemake)
fig, par, inp = snakemake.params.fig, snakemake.params, snakemake.input
kind = {"6": "object", "7": "strip", "9": "object"}.get(fig)
under = " under the ordering ablation" if fig == "9" else ""
for i, (model, setting) in enumerate(par.cells):
    directions = par.directions
    if setting == "whatsup":   # What'sUp composites are horizontal: left/right panels only
        directions = [d for d in directions if d in ("left", "right")]
    counts = patching_tables.pair_counts(pd.read_parquet(inp.pairs[i]), directions)
    curves = pd.read_parquet(inp.curves[i])
    if fig == "3":
        ranges = {d: patching_tables.transfer_ranges(curves, d) for d in list(directions) + ["all"]}
        fig3_last_token(curves, counts, ranges, snakemake.output[i],
                        f"Fig 3 \u2014 last-token interchange, {model}, {setting}", par.min_pairs)
    else:
        fig_criss_cross(curves, pd.read_parquet(inp.stats[i]), kind, counts, snakemake.output[i],
                        f"Fig {fig} \u2014 {kind} swap (criss-cross){under}, {model}, {setting}", par.min_pairs)
    log.info("Fig %s: %s on %s", fig, model, setting)
