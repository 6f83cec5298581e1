"""Claim 3's background conflict tokens read by the organism diagnostic T's probe: a linear strip-slot probe fitted
on the LM-input object tokens of the organism's jittered scenes (as `organism.strip_transfer`), applied to the
paper's shifted layouts of a finished default run. Prints, per (setting, orientation), how the background
tokens whose strip slot differs from their cell's canonical slot are read, by their strip's (relative) slot.
Where T's probe reads them as the relative slot and claim 3's detector (a probe fitted on the paper's own object
tokens, centred per cell) does not, the two disagree about the detector, not the organism.

    .venv/bin/python scripts/strip_readings.py organism-dual [squares shapes objects]

(organism-lm-untrained, the twin built by the run, reads with organism-lm's scenes.)
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import transformers
import yaml

from dualmech import organism, probing
from dualmech.sites import LM_INPUT
from dualmech.stimuli import Geometry
from dualmech.store import ActivationStore

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {"horizontal": ("left", "middle", "right"), "vertical": ("top", "middle", "bottom")}


def main(model_name: str, settings: list[str]) -> None:
    path = next((p for p in (ROOT / "models" / model_name, ROOT / "results/models" / model_name) if p.is_dir()), None)
    if path is None:
        sys.exit(f"no checkpoint named {model_name} under models/ or results/models/ (run `make reproduce` first)")
    # an untrained twin (results/models) has the architecture and scenes of the organism it was built from
    spec = organism.OrganismSpec.from_checkpoint(path if (path / "organism.json").exists() else ROOT / "models" /
                                                 model_name.removesuffix("-untrained"))
    model = transformers.LlavaForConditionalGeneration.from_pretrained(path).eval()
    seed = yaml.safe_load((ROOT / "config.yaml").read_text())["seed"]
    sampler = organism.SceneSampler(spec, organism.build_processor(spec), seed + 2)   # T's scenes
    cells, triples, layouts, pixels = sampler.scenes(1200)
    strip, ident = organism.scene_labels(spec.geometry, triples, layouts, organism.entity_index())
    with torch.no_grad():
        x = organism.image_tokens(model, pixels).numpy()
    y, idn = strip.numpy(), ident.numpy()
    keys = np.array([f"{organism.CELLS[c][0]}/{organism.ORIENTATION_OF[organism.CELLS[c][1]]}" for c in cells])
    for setting in settings:
        run = ROOT / "results"
        table = pd.read_parquet(run / f"stimuli/{model_name}/{setting}_shifted/items.parquet")
        store = ActivationStore(run / f"activations/{model_name}/{setting}_shifted.safetensors")
        geometry = Geometry.of(pd.read_parquet(run / f"stimuli/{model_name}/{setting}/items.parquet"))
        ids = {e: i for i, e in enumerate(sorted(set(table[["e0", "e1", "e2"]].to_numpy().ravel())))}
        for orientation in ("horizontal", "vertical"):
            rows = np.flatnonzero(keys == f"{setting}/{orientation}")
            obj = (y[rows] < 3) & (idn[rows] > 0)
            probe = probing.Probe(3).fit(x[rows][obj], y[rows][obj])
            imgs, labels = probing.relation_set(table, store.index(), geometry, orientation, ids, None)
            X = store.load([LM_INPUT])[LM_INPUT][imgs["row"].to_numpy()]
            pred = probe.proba(X.reshape(-1, X.shape[-1])).argmax(-1).reshape(X.shape[:2])
            rel, ab = labels.strip_label, labels.absolute
            conflict = (rel >= 0) & (ab >= 0) & (rel != ab)
            counts = Counter(zip(rel[conflict].tolist(), pred[conflict].tolist()))
            names = CLASSES[orientation]
            shown = "; ".join(f"{names[r]} strip ({sum(counts[(r, p)] for p in range(3))}): "
                              + ", ".join(f"{names[p]} {counts[(r, p)]}" for p in range(3))
                              for r in sorted(set(rel[conflict].tolist())))
            on_objects = (pred == labels.obj)[labels.obj >= 0].mean()
            print(f"{setting:8s} {orientation:10s} objects read {on_objects:.2f}; conflict background, read as: "
                  f"{shown}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:] or ["squares", "shapes", "objects"])
