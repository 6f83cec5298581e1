"""Visual-token activations of one model on one image set, every configured site, in one store; for a relation
setting with `shifted_tensors` among the outputs, its shifted-layout control's store too (same loaded model)."""
from pathlib import Path

import pandas as pd

from dualmech import extraction, models, snake
from dualmech.models import UnsupportedModel

log = snake.start(snakemake)
adapter = models.load(snake.model_spec(snakemake))
groups = list(snakemake.params.sites)
try:
    sites = extraction.resolve_sites(adapter, groups)
except UnsupportedModel as e:          # families without vision-encoder sites (README)
    log.warning("%s; probing the LM-side sites only", e)
    groups = [g for g in groups if g != "vision" and not g.startswith("vision")]
    if not groups:
        raise
    sites = extraction.resolve_sites(adapter, groups)
inp, out, imageset = snakemake.input, snakemake.output, snakemake.wildcards.imageset
sets = [("", imageset)] + ([("shifted_", f"{imageset}_shifted")] if "shifted_tensors" in out.keys() else [])
for prefix, name in sets:
    images = pd.read_parquet(inp[f"{prefix}table"]).drop_duplicates("image")[["image", "image_sha256"]]
    store = extraction.ActivationStore(out[f"{prefix}tensors"])
    if len(images):
        done = extraction.extract(adapter, images.reset_index(drop=True), Path(inp[f"{prefix}images"]), store, sites,
                                  desc=f"{adapter.spec.name} {name}")
    else:                              # e.g. no shift fits the canvas: an empty store keeps the DAG uniform
        store.write(images, {}, dict(model=adapter.spec.name, family=adapter.family, sites="[]"))
        done = []
    log.info("%s: %d images on %s: sites %s computed (store holds %s)", name, len(images), adapter.device, done,
             store.sites())
