"""Benchmark: wall time for the model organism to reach the acceptance bar from scratch.

Runs the same training as `make organism` (config.yaml's organism section and seed) and prints the
minutes and steps until held-out canonical accuracy reaches the target in every setting x direction
(the running evaluation on `eval_per_cell` items per cell), against the 15-minute aim.

    .venv/bin/python benchmarks/organism_training.py [--config config.yaml] [--threads 2]
"""
import argparse
import json
import time

import torch

from dualmech import organism
from dualmech.config import load

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--config", default="config.yaml")
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)
cfg = load(args.config)
spec = organism.OrganismSpec.from_config(cfg)
train = cfg["organism"]["train"]
evaluate = organism.running_evaluator(spec, train["eval_per_cell"], cfg["seed"])
start = time.perf_counter()
_, history = organism.train(spec, train, cfg["seed"], evaluate, log=lambda s: print(s, flush=True))
minutes = (time.perf_counter() - start) / 60
reached = bool(history) and history[-1]["min_cell_accuracy"] >= train["target_accuracy"]
print(json.dumps(dict(reached=reached, minutes=round(minutes, 2), steps=history[-1]["step"] if history else 0,
                      threads=args.threads, aim_minutes=15, ratio_to_aim=round(minutes / 15, 2))))
