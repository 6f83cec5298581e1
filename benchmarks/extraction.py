"""Benchmark: activation extraction (`extraction.extract`, every site) vs a bare batched forward.

Builds a random-weight model of the organism's shape (config.yaml's organism section), renders the
canonical Squares images at its geometry, and times, over the same images and batches:
  bare      `model(**inputs)` on the prepared inputs (full forward, logits), preprocessing included;
  extract   `extract(...)` for every site (vision_input, vision.l, lm_input, resid_post.l) into a fresh store,
            image loading, hooks, the early-stopping forward and the safetensors write included.
Prints both (best of interleaved repeats) and their ratio (aim: <= 1.15).

    .venv/bin/python benchmarks/extraction.py [--config config.yaml] [--threads 2] [--repeats 3]
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from PIL import Image

from dualmech import extraction, organism, runtime
from dualmech.config import load
from dualmech.models import ModelSpec
from dualmech.models import load as load_model
from dualmech.stimuli import relation_items

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--config", default="config.yaml")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()
torch.set_num_threads(args.threads)
cfg = load(args.config)
spec = organism.OrganismSpec.from_config(cfg)
work = Path(tempfile.mkdtemp(prefix="bench-extraction-"))
organism.save(organism.build_model(spec, cfg["seed"]), spec, work / "model", {"note": "random weights"})
adapter = load_model(ModelSpec(name="bench", path=str(work / "model")), device="cpu")
items = relation_items("squares", adapter.geometry, adapter.palette, work / "images")
images = items.drop_duplicates("image")[["image", "image_sha256"]].reset_index(drop=True)
sites = extraction.resolve_sites(adapter, ["vision", "lm_input", "lm"])
size = runtime.batch_size()


@torch.no_grad()
def bare():
    paths = images["image"].tolist()
    for s in range(0, len(paths), size):
        batch = [Image.open(work / "images" / p).convert("RGB") for p in paths[s:s + size]]
        prepared = adapter.prepare(batch, [extraction.PROMPT] * len(batch))
        adapter.model(**prepared.inputs)


def extract():
    store = extraction.ActivationStore(work / f"store-{time.perf_counter_ns()}")
    extraction.extract(adapter, images, work / "images", store, sites, batch_size=size, desc="bench")


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


bare(), extract()                                          # warm-up
pairs = [(timed(bare), timed(extract)) for _ in range(args.repeats)]   # interleaved: shared-machine drift cancels
t_bare, t_extract = min(p[0] for p in pairs), min(p[1] for p in pairs)
ratios = sorted(e / b for b, e in pairs)
print(json.dumps(dict(images=len(images), sites=sites, batch_size=size, threads=args.threads,
                      bare_forward_s=round(t_bare, 3), extract_all_sites_s=round(t_extract, 3),
                      ratio_of_best=round(t_extract / t_bare, 3), ratio_median=round(ratios[len(ratios) // 2], 3),
                      aim=1.15)))
