"""Adapter gate: parity of hooked vs plain forward and image-token layout, before any analysis. The report also
carries the model's canvas (geometry, palette, objects left out), which the stimulus rules read from it."""
import json

from dualmech import checks, models, snake
from dualmech.tables import atomic_write

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
report = checks.check_model(adapter)
log.info("%s", report)
atomic_write(snakemake.output[0], json.dumps(report, indent=1, sort_keys=True) + "\n")
