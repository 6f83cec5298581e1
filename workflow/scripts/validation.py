"""Validation table: the claim detectors on planted-mechanism fixtures against their expected verdicts."""
import tempfile
from pathlib import Path

from dualmech import snake, tables, validation

log = snake.start(snakemake)
par = snakemake.params
spec = validation.load_expected(snakemake.input.expected)
Path("results").mkdir(exist_ok=True)
with tempfile.TemporaryDirectory(dir="results", prefix=".validation-") as work:
    repo = Path(snakemake.scriptdir).resolve().parents[1]   # workflow/scripts -> the repository
    probes = validation.planted_probes(str(repo / spec["base"]), spec["fixtures"], spec["setting"],
                                       par.probing, par.seed, work, par.triples, log)
result = validation.compare(spec, validation.evaluate(spec, probes, par.min_pairs, par.seed))
expected = snakemake.config["validation"]["expected"]
tables.write(result, validation.display(result), snakemake.output.csv[:-4],
             f"Validation (expected verdicts v{spec['version']}, {expected}): each claim detector on planted-mechanism "
             f"fixtures built on {spec['base']} ({spec['setting']}); {int(result['agree'].sum())} of {len(result)} "
             "rows agree.")
log.info("\n%s", validation.display(result).to_string(index=False))
if not result["agree"].all():
    log.warning("%d validation rows disagree", int((~result["agree"]).sum()))
