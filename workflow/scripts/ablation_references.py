"""Reference LM-input tokens for the ablation: each entity alone in the middle slot, and the empty canvas."""
from dualmech import ablation, models, snake

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
refs = ablation.reference_tokens(adapter, snakemake.wildcards.setting, snakemake.params.colour_pool)
ablation.save_references(refs, snakemake.output[0])
log.info("%d references of shape %s", len(refs), tuple(next(iter(refs.values())).shape))
