"""Benchmark: Table 5's ablated forwards (`ablation.predict_ablated`) with the vision tower skipped vs run.

Every visual token is overwritten at the LM input, so the forwards skip the tower where that is exact
(`interventions.without_vision`); DUALMECH_SKIP_VISION=0 forces the full forward. Times, per item and over the
same Squares items and batches (references computed once, untimed), both paths on the committed organism and on
a tiny random-weight Gemma 3 (`dualmech.tiny`), checks that their predictions agree, and prints the ratio.

    .venv/bin/python benchmarks/ablation.py [--threads 1] [--items 64] [--repeats 3]
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from dualmech import ablation, interventions, models
from dualmech.stimuli import relation_items
from dualmech.tiny import make_tiny

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--items", type=int, default=64)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()
torch.set_num_threads(args.threads)
work = Path(tempfile.mkdtemp(prefix="bench-ablation-"))


def predict(adapter, items, refs, skip: bool):
    os.environ["DUALMECH_SKIP_VISION"] = "1" if skip else "0"
    t = time.perf_counter()
    out = ablation.predict_ablated(adapter, items, work / "images", refs)
    return time.perf_counter() - t, out


def bench(name: str, path: str) -> dict:
    adapter = models.load(models.ModelSpec(name=name, path=path), device="cpu")
    items = relation_items("squares", adapter.geometry, adapter.palette, work / "images").iloc[:args.items]
    refs = ablation.reference_tokens(adapter, "squares")
    predict(adapter, items.iloc[:2], refs, True), predict(adapter, items.iloc[:2], refs, False)   # warm-up, check
    runs = [(predict(adapter, items, refs, False), predict(adapter, items, refs, True)) for _ in range(args.repeats)]
    (_, full_pred), (_, fast_pred) = runs[0]
    t_full, t_fast = min(f[0] for f, _ in runs), min(s[0] for _, s in runs)
    per_item = {k: round(1e3 * t / len(items), 2)
                for k, t in (("full_ms_per_item", t_full), ("skip_ms_per_item", t_fast))}
    return dict(model=name, items=len(items), skips_tower=interventions.vision_skip(adapter).skip, **per_item,
                speed_up=round(t_full / t_fast, 2), same_predictions=bool(full_pred.equals(fast_pred)))


rows = [bench("organism-lm", "models/organism-lm"), bench("gemma3-tiny", str(make_tiny("gemma3", work / "gemma3")))]
for r in rows:
    print(json.dumps(r | dict(threads=args.threads)))
