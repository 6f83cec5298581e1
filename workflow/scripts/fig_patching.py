"""Fig 3 (last-token) or Figs 6/7 (criss-cross object / strip swap) for one model and setting."""
import pandas as pd

from dualmech import patching_tables, snake
from dualmech.plots.patching import fig3_last_token, fig_criss_cross

log = snake.start(snakemake)
model, setting, fig = snakemake.wildcards.model, snakemake.wildcards.setting, snakemake.wildcards.fig
directions, min_pairs = snakemake.params.directions, snakemake.params.min_pairs
if setting == "whatsup":   # What'sUp composites are horizontal: left/right panels only
    directions = [d for d in directions if d in ("left", "right")]
counts = patching_tables.pair_counts(pd.read_parquet(snakemake.input.pairs), directions)
curves = pd.read_parquet(snakemake.input.curves)
if fig == "3":
    ranges = {d: patching_tables.transfer_ranges(curves, d) for d in list(directions) + ["all"]}
    fig3_last_token(curves, counts, ranges, snakemake.output[0],
                    f"Fig 3 \u2014 last-token interchange, {model}, {setting}", min_pairs)
else:
    kind = {"6": "object", "7": "strip", "9": "object"}[fig]
    under = " under the ordering ablation" if fig == "9" else ""
    fig_criss_cross(curves, pd.read_parquet(snakemake.input.stats), kind, counts, snakemake.output[0],
                    f"Fig {fig} \u2014 {kind} swap (criss-cross){under}, {model}, {setting}", min_pairs)
