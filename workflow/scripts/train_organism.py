"""Train one model organism by its recipe; the job fails unless it passes its acceptance bars."""
from pathlib import Path

from dualmech import organism, snake

log = snake.start(snakemake)
stage1 = Path(snakemake.input.stage1) if "stage1" in snakemake.input.keys() else None
info = organism.train_and_accept(snakemake.config, Path(snakemake.output[0]), log.info,
                                 name=snakemake.wildcards.organism, stage1_dir=stage1)
log.info("%s accepted after %s min (%d steps); config digest %s", info["name"], info["stage_minutes"],
         info["steps"], info["config_digest"])
