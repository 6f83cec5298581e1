"""Validation of the claims table on the model organisms: observed verdicts against those their diagnostics
predict (config/expected_verdicts.yaml `organisms`)."""
import pandas as pd

from dualmech import snake, tables, validation

log = snake.start(snakemake)
spec = validation.load_expected(snakemake.input.expected)
claims = pd.read_csv(snakemake.input.claims).fillna({"reason": "", "note": ""})     # empty reason: no NaN
result = validation.compare_organisms(spec, claims)
tables.write(result, validation.display(result).rename(columns={"Fixture": "Organism"}), snakemake.output.csv[:-4],
             f"Validation on the model organisms (expected verdicts v{spec['version']}, derived from each organism's "
             "diagnostics before the claims were run): per organism and claim, the claims table's summary rule "
             f"over the settings the organisms were trained on ({', '.join(validation.ORGANISM_SETTINGS)}; grids and "
             "backgrounds were never in training); "
             f"{int(result['agree'].sum())} of {len(result)} rows agree.")
log.info("\n%s", validation.display(result).to_string(index=False))
if not result["agree"].all():
    log.warning("%d organism validation rows disagree", int((~result["agree"]).sum()))
