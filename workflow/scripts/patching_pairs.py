"""Counterfactual pairs of one model and setting, both designs, golden-filtered (paper §5.3, §5.4)."""
from pathlib import Path

from dualmech import models, pairs, snake
from dualmech.tables import atomic_write

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
cfg, setting, model = snakemake.params.patching, snakemake.wildcards.setting, snakemake.wildcards.model
images = Path(snakemake.output.images)
images.mkdir(parents=True, exist_ok=True)
tables = pairs.build_all(adapter, setting, snakemake.params.directions, snakemake.params.seed,
                         cfg["pairs_per_direction"], cfg["max_attempts"], images)
for design, df in tables.items():
    df.insert(0, "model", model)
    atomic_write(snakemake.output[design], df.to_parquet(index=False))
    by_dir = df.groupby("direction", sort=False)["golden"].agg(["sum", "size"])
    log.info("%s: golden/attempted per direction %s", design,
             {d: f"{int(r['sum'])}/{int(r['size'])}" for d, r in by_dir.iterrows()})
