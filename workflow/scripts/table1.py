"""Table 1 (+ its figure): accuracy per model x setting x direction with Wilson 95% CIs."""
import pandas as pd

from dualmech import behaviour, plots, snake, tables

log = snake.start(snakemake)
preds = pd.concat([pd.read_parquet(p) for p in snakemake.input], ignore_index=True)
acc = behaviour.accuracy_table(preds)
tables.write(acc, tables.table1_display(acc), snakemake.output.csv[:-4],
             "Table 1. Top-1 accuracy on the canonical stimuli [Wilson 95% CI].")
plots.table1_figure(acc, snakemake.output.figure)
log.info("\n%s", acc.to_string(index=False))
