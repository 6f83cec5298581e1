"""Train the model organism from scratch; the job fails unless it passes the acceptance bar."""
from pathlib import Path

from dualmech import organism, snake

log = snake.start(snakemake)
info = organism.train_and_accept(snakemake.config, Path(snakemake.output[0]), log.info)
log.info("accepted after %.1f min (%d steps); config digest %s", info["train_minutes"], info["steps"],
         info["config_digest"])
