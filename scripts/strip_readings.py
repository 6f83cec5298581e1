"""Claim 3's background conflict tokens read by the organism diagnostic T's probe: a linear strip-slot probe fitted
on the LM-input object tokens of the organism's jittered scenes (as `organism.strip_transfer`), applied to the
paper's shifted layouts of a finished default run. Prints, per (setting, orientation), how the background
tokens whose strip slot differs from their cell's canonical slot are read, by their strip's (relative) slot.
Where T's probe reads them as the relative slot and claim 3's detector (a probe fitted on the paper's own object
tokens, centred per cell) does not, the two disagree about the detector, not the organism. Beside it, the same
tokens read by probes fitted on the paper's own layouts (the first split of the probes rule): claim 3's centred
probe, the same fitted only on the object tokens of cells whose slot varies across the training images (not a
rule of the pipeline: at a cell whose slot never varies, centring leaves nothing of the slot to learn), the
uncentred probe (v4's), and the canonical-only one.

    .venv/bin/python scripts/strip_readings.py organism-dual [squares shapes objects]

(organism-lm-untrained, the twin built by the run, reads with organism-lm's scenes.)
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import transformers
import yaml

from dualmech import organism, probing
from dualmech.probing import fit_tokens, split, token_proba
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
    x, y, idn, keys = organism.transfer_scenes(model, spec, seed)                     # T's scenes
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
            conflict = probing.conflicts(rel, ab)
            counts = Counter(zip(rel[conflict].tolist(), pred[conflict].tolist()))
            names = CLASSES[orientation]
            shown = "; ".join(f"{names[r]} strip ({sum(counts[(r, p)] for p in range(3))}): "
                              + ", ".join(f"{names[p]} {counts[(r, p)]}" for p in range(3))
                              for r in sorted(set(rel[conflict].tolist())))
            on_objects = (pred == labels.obj)[labels.obj >= 0].mean()
            print(f"{setting:8s} {orientation:10s} T's probe: objects read {on_objects:.2f}; conflict background, "
                  f"read as: {shown}")
            for name, objects, read in paper_probes(run, model_name, setting, orientation, geometry):
                print(f"{'':19s} {name}: held-out shifted objects read {objects:.2f}; conflict background, read as: "
                      + "; ".join(f"{names[r]} strip: " + ", ".join(f"{names[p]} {n}" for p, n in enumerate(row))
                                  for r, row in read.items()))


def paper_probes(run: Path, model_name: str, setting: str, orientation: str, geometry: Geometry):
    """The paper's canonical + shifted layouts, split as the probes rule's first seed: per probe (claim 3's
    centred one, the same fitted at varying-slot cells only, the uncentred one, the canonical-only one), its
    accuracy on held-out shifted object tokens (for the second, at varying-slot cells) and its readings of the
    held-out conflict background tokens, {relative slot: counts per class read}."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    sets = [(pd.read_parquet(run / f"stimuli/{model_name}/{name}/items.parquet"),
             ActivationStore(run / f"activations/{model_name}/{name}.safetensors"))
            for name in (setting, f"{setting}_shifted")]
    data = probing.probe_images(setting, geometry, orientation, *sets, None).at(LM_INPUT)
    labels, canonical = data.labels, data.canonical
    test = split(data.group, cfg["probing"]["test_fraction"], cfg["seed"], setting, 0)
    train, held = np.flatnonzero(~test), np.flatnonzero(test & ~canonical)
    C = cfg["probing"]["C"]
    rel, ab, obj = labels.strip_label[held], labels.absolute[held], labels.obj[held]
    conflict = probing.conflicts(rel, ab)
    centred = data.centred(train, labels.obj >= 0)
    background = data.centred(train, labels.background)
    seen = labels.obj[train]
    lo, hi = np.where(seen >= 0, seen, 99).min(0), seen.max(0)
    at_varying = np.where((hi >= 0) & (lo < hi), labels.obj, -1)       # object tokens of varying-slot cells
    probes = [("centred (claim 3)", fit_tokens(centred, train, labels.obj, C), centred, background),
              ("centred, varying-slot cells only", fit_tokens(centred, train, at_varying, C), centred, background),
              ("uncentred", fit_tokens(data, train, labels.obj, C), data, data),
              ("canonical-only", fit_tokens(data, train[canonical[train]], labels.obj, C), data, data)]
    for name, probe, on_objects, on_background in probes:
        scored = (at_varying[held] if name.startswith("centred, varying") else obj) >= 0
        objects = (token_proba(probe, on_objects, held).argmax(-1) == obj)[scored].mean()
        pred = token_proba(probe, on_background, held).argmax(-1)
        yield name, objects, {r: [int(((pred == p) & conflict & (rel == r)).sum()) for p in range(3)]
                              for r in sorted(set(rel[conflict].tolist()))}


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:] or ["squares", "shapes", "objects"])
