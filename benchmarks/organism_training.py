"""Benchmark: wall time of each training stage of the model organisms, from scratch.

Runs exactly what `make organisms` runs, on config.yaml's organism section and seed: stage 1
(`organism.pretrain_and_save`: the vision tower alone, until its slot probe on position-ambiguous tokens
reaches `stop_probe_accuracy`) once, then each organism (`organism.train_and_accept`: end to end, or stage 2
on the frozen stage-1 tower) until the running evaluation's worst cell reaches `stop_accuracy`, then its
acceptance check. Prints the minutes of every stage against the 15-minute aim per organism; with --out the
stage-1 tower and the accepted checkpoints are kept there.

    .venv/bin/python benchmarks/organism_training.py [--config config.yaml] [--threads 2] [--out DIR]
        [--organisms organism-vision organism-dual]
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from dualmech import organism
from dualmech.config import load

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--config", default="config.yaml")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--out", type=Path, default=None, help="keep the stage-1 tower and the checkpoints here")
parser.add_argument("--organisms", nargs="*", default=None, help="default: every organism.variants entry")
args = parser.parse_args()
torch.set_num_threads(args.threads)
cfg = load(args.config)
names = args.organisms or list(cfg["organism"]["variants"])
out = args.out or Path(tempfile.mkdtemp())
out.mkdir(parents=True, exist_ok=True)
log = lambda s: print(s, flush=True)      # noqa: E731
rows, stage1 = [], None
if any(organism.variant(cfg, n)["recipe"] == "two-stage" for n in names):
    info = organism.pretrain_and_save(cfg, out / "organism-stage1", log)
    stage1 = out / "organism-stage1"
    rows.append(dict(stage="stage1", minutes=info["minutes"], steps=info["steps"],
                     probe=info["history"][-1] if info["history"] else None))
for name in names:
    start = time.perf_counter()
    try:
        info = organism.train_and_accept(cfg, out / name, log, name=name, stage1_dir=stage1)
        rows.append(dict(organism=name, accepted=True, stage_minutes=info["stage_minutes"], steps=info["steps"],
                         diagnostics={c: d["min"] for c, d in info["diagnostics"].items()}))
    except RuntimeError as e:
        log(str(e))
        rows.append(dict(organism=name, accepted=False, minutes=round((time.perf_counter() - start) / 60, 2)))
for r in rows:
    print(json.dumps(r | dict(threads=args.threads, aim_minutes=15)))
