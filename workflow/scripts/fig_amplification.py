"""Figure: % of failures fixed (and of correct items broken) vs alpha, probes against the random band."""
import json

import pandas as pd

from dualmech import amplification_tables, snake
from dualmech.plots.amplification import fig_amplification

log = snake.start(snakemake)
parts = []
for o, m in zip(snakemake.input.outcomes, snakemake.input.meta):
    meta = json.loads(open(m).read())
    c = amplification_tables.curves(pd.read_parquet(o), "dev")
    parts.append(c.assign(testbed=meta["testbed"], selected_alpha=c["direction"].map(meta["selected_alpha"])))
curves = pd.concat(parts, ignore_index=True)
fig_amplification(curves, snakemake.output[0], f"Amplification of ordering directions: {snakemake.wildcards.model}")
