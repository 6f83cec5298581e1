"""Items and images of one amplification testbed (synthetic cluttered / What'sUp / COCO) for one model."""
import json
from pathlib import Path

from dualmech import naturalistic, snake
from dualmech.stimuli.cluttered import Difficulty, cluttered_items
from dualmech.tables import atomic_write

log = snake.start(snakemake)
geometry, palette, _ = snake.canvas(snakemake.input.check)      # the model's, from its check report
testbed, p = snakemake.wildcards.testbed, snakemake.params
out = Path(snakemake.output.images)
if testbed == "synthetic":
    cfg = p.amp["synthetic"]
    items = cluttered_items(p.settings, p.directions, geometry, palette, cfg["items"], p.seed,
                            Difficulty.from_config(cfg), out)
elif testbed == "whatsup":
    import transformers as T
    from dualmech import models
    spec = snake.model_spec(snakemake)
    tok = T.AutoTokenizer.from_pretrained(models.registry._source(spec), revision=spec.revision,
                                          local_files_only=True, trust_remote_code=spec.trust_remote_code)

    def known(word):
        variants = (word, word.capitalize(), " " + word, " " + word.capitalize())
        return any(len(ids := tok(v, add_special_tokens=False)["input_ids"]) == 1 and ids[0] != tok.unk_token_id
                   for v in variants)
    items = naturalistic.whatsup_items(p.data["whatsup_dir"], geometry, out, known, p.amp["whatsup"]["max_items"],
                                       p.seed)
else:
    from dualmech import models     # whether the model sees photos at their own resolution, and its grid there
    adapter = models.describe_adapter(snake.model_spec(snakemake))
    style = next(m["prompt"] for m in p.amp["coco"]["models"] if m["name"] == snakemake.wildcards.model)
    native = p.amp["coco"]["resolution"] == "native" and adapter.dynamic_resolution
    items = naturalistic.coco_items(p.data["coco_dir"], geometry, out, style,
                                    native_grid=adapter.native_grid if native else None)
    per_item = items.drop_duplicates("item")
    log.info("COCO: %s resolution; probe rows per box status %s", "dynamic" if native else "square-canvas",
             per_item["box_status"].value_counts().to_dict())
items.insert(0, "model", snakemake.wildcards.model)
atomic_write(snakemake.output.table, items.to_parquet(index=False))
log.info("%s: %d queries over %d items, geometry %s", testbed, len(items), items["item"].nunique(),
         json.dumps(geometry.as_dict()))
