"""Table 5 (+ figure): accuracy under the ablation beside the clean accuracy, Wilson CIs, McNemar."""
import pandas as pd

from dualmech import ablation_tables, plots, snake, tables

log = snake.start(snakemake)
clean = pd.concat([pd.read_parquet(p) for p in snakemake.input.clean], ignore_index=True)
ablated = pd.concat([pd.read_parquet(p) for p in snakemake.input.ablated], ignore_index=True)
t5 = ablation_tables.table5(clean, ablated)
tables.write(t5, ablation_tables.table5_display(t5), snakemake.output.csv[:-4],
             "Table 5. Top-1 accuracy with vision-derived ordering removed at the LM input "
             "[Wilson 95% CI]; McNemar test against the clean accuracy; chance = 1/3.")
plots.table5_figure(t5, snakemake.output.figure)
log.info("\n%s", t5.to_string(index=False))
