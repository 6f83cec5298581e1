"""Benchmark: wall time for the model organism to reach the acceptance bar from scratch.

Runs exactly what `make organism` runs (`organism.train_and_accept` on config.yaml's organism section and
seed): training until the running evaluation's worst (setting, direction) cell reaches `stop_accuracy`,
then the acceptance check on every canonical item. Prints the training minutes and steps against the
15-minute aim; with --out the accepted checkpoint is kept there.

    .venv/bin/python benchmarks/organism_training.py [--config config.yaml] [--threads 2] [--out DIR]
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
parser.add_argument("--out", type=Path, default=None, help="keep the accepted checkpoint here")
args = parser.parse_args()
torch.set_num_threads(args.threads)
cfg = load(args.config)
out = args.out or Path(tempfile.mkdtemp()) / "organism"
out.parent.mkdir(parents=True, exist_ok=True)
start = time.perf_counter()
try:
    info = organism.train_and_accept(cfg, out, log=lambda s: print(s, flush=True))
    accepted, minutes, steps = True, info["train_minutes"], info["steps"]
except RuntimeError as e:
    print(e, flush=True)
    accepted, minutes, steps = False, (time.perf_counter() - start) / 60, None
print(json.dumps(dict(accepted=accepted, train_minutes=round(minutes, 2), steps=steps, threads=args.threads,
                      aim_minutes=15, ratio_to_aim=round(minutes / 15, 2))))
