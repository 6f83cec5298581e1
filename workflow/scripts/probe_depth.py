"""Probe depth curves of one model, beside its untrained twin(s): ambiguous-token accuracy and strip score."""
import pandas as pd

from dualmech import plots, snake

log = snake.start(snakemake)
metrics = pd.concat([pd.read_parquet(p) for p in snakemake.input.metrics], ignore_index=True)
plots.probe_depth_figure(metrics, snakemake.output[0],
                         f"Where ordering lives \u2014 {', '.join(dict.fromkeys(metrics['model']))}")
log.info("%d rows", len(metrics))
