"""Stage 1 of the two-stage organisms: pretrain the vision tower alone (slot-probe curve in stage1.json)."""
from pathlib import Path

from dualmech import organism, snake

log = snake.start(snakemake)
info = organism.pretrain_and_save(snakemake.config, Path(snakemake.output[0]), log.info)
log.info("stage 1 done after %.1f min (%d steps); last slot probe %s", info["minutes"], info["steps"],
         info["history"][-1] if info["history"] else None)
