"""A randomly initialised copy of a model: same config, processor and seed, no training."""
from pathlib import Path

from dualmech import models, snake

log = snake.start(snakemake)
models.save_untrained_twin(snake.model_spec(snakemake), Path(snakemake.output[0]), snakemake.params.seed)
log.info("wrote %s", snakemake.output[0])
