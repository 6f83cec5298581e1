"""Table 2: amplification of ordering directions vs none / random directions, on the evaluation split."""
import json

import pandas as pd

from dualmech import amplification_tables, snake, tables

log = snake.start(snakemake)
inp = snakemake.input
rows = []
for b, o, m in zip(inp.baseline, inp.outcomes, inp.meta):
    rows.append(amplification_tables.summarise(pd.read_parquet(b), pd.read_parquet(o), json.loads(open(m).read())))
long = pd.concat(rows, ignore_index=True)
tables.write(long, amplification_tables.table2_display(long), snakemake.output.csv[:-4],
             "Table 2. Amplifying probe (ordering) directions at the LM input over all image tokens, on held-out "
             "evaluation items (α chosen on a separate development split; probes trained on its correct items). "
             "Accuracy [Wilson 95% CI]; failures to fix: ordering failures only (the answer names another entity "
             "of the scene); Random: mean (2.5–97.5% range) over random directions, each moving every token by "
             "exactly the probe's per-token step, each with its own α; Probe*: per-item oracle over α, an upper "
             "bound only. Breaks: correct items made "
             "wrong. p: exact McNemar vs none, and vs random (the largest p over random directions).")
for r in long.itertuples():
    if r.note:
        log.info("%s / %s: %s", r.model, r.testbed, r.note)
log.info("\n%s", amplification_tables.table2_display(long).to_string(index=False))
