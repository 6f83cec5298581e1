"""Table 1 (+ its figure): accuracy per model x setting x direction with Wilson 95% CIs."""
import pandas as pd

from dualmech import behaviour, plots, snake, tables

log = snake.start(snakemake)
preds = pd.concat([pd.read_parquet(p) for p in snakemake.input.predictions], ignore_index=True)
acc = behaviour.accuracy_table(preds)
skipped = snakemake.params.skipped
caption = "Table 1. Top-1 accuracy on the canonical stimuli [Wilson 95% CI]."
if skipped:
    caption += " Not shown: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "."
    for k, v in skipped.items():
        log.info("Table 1 column %s skipped: %s", k, v)
tables.write(acc, tables.table1_display(acc), snakemake.output.csv[:-4], caption)
plots.table1_figure(acc, snakemake.output.figure)
log.info("\n%s", acc.to_string(index=False))
