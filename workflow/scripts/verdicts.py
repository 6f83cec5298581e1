"""Verdicts table: each model's verdict per claim, and whether it counts (`validation.COUNT_RULE`): its detector
gave every model whose mechanism is known the expected verdict."""
import pandas as pd

from dualmech import snake, tables, validation

log = snake.start(snakemake)
known = pd.concat([pd.read_csv(f) for f in snakemake.input.known], ignore_index=True)
status = validation.detector_status(known)
result = validation.verdicts(pd.read_csv(snakemake.input.claims), status)
shown = validation.verdicts_display(result)
organisms = snakemake.params.organisms
known_models = (f"the planted fixtures and the model organisms ({', '.join(organisms)})" if organisms else
                "the planted fixtures only: this run analyses no model organism (keep them in config.yaml's models "
                "to add their known answers, the only ones on the causal claims)")
tables.write(result, shown, snakemake.output.csv[:-4],
             f"The paper's claims on each model run (the claims table's summary verdicts); {validation.COUNT_RULE}. "
             f"Known answers in this run: {known_models}. "
             f"Verdicts of {int(status['counts'].sum())} of {len(status)} claims count.")
log.info("\n%s", shown.to_string(index=False))
