"""Benchmark: the amplification rule on the committed organism with N random directions.

Builds the default synthetic (cluttered) testbed of config.yaml at the organism's geometry and runs
`amplification.run` once per requested number of random directions (everything else as configured),
printing wall and CPU time (CPU time: robust on a shared machine), forwards and the probe's fixes against
the random directions' on the evaluation split.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/amplification_random.py --n-random 20 100
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch

from dualmech import amplification
from dualmech.config import load
from dualmech.models import ModelSpec
from dualmech.models import load as load_model
from dualmech.stimuli.cluttered import Difficulty, cluttered_items

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--config", default="config.yaml")
parser.add_argument("--model", default="models/organism-lm")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--n-random", type=int, nargs="+", default=[20, 100])
args = parser.parse_args()
torch.set_num_threads(args.threads)
cfg = load(args.config)
amp = cfg["amplification"]
adapter = load_model(ModelSpec(name="organism", path=args.model), device="cpu")
work = Path(tempfile.mkdtemp(prefix="bench-amplification-"))
items = cluttered_items(cfg["settings"], cfg["directions"], adapter.geometry, adapter.palette,
                        amp["synthetic"]["items"], cfg["seed"], Difficulty.from_config(amp["synthetic"]), work)
testbed = amplification.Testbed("synthetic", items, work)
synthetic = (amplification.synthetic_probe_data(adapter, cfg["settings"], amp["synthetic_probe_images"], cfg["seed"])
             if amp["synthetic_probe_images"] > 0 else None)
for n in args.n_random:
    t0, c0 = time.perf_counter(), time.process_time()
    base, outcomes, meta = amplification.run(adapter, testbed, amp | {"n_random": n}, cfg["seed"], synthetic,
                                             log=lambda *_: None)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    t2 = amplification.summarise(base, outcomes, meta).set_index("row")
    probe, rnd = t2.loc["probe"], t2.loc["random"]
    print(f"n_random {n:4d}: {seconds:7.1f} s wall, {cpu:7.1f} s CPU, {meta['forwards']} forwards "
          f"({meta['engine'].get('mode')}); "
          f"{int(probe['n_fail'])} failures to fix of {int(probe['n'])}; probe fixes {probe['fixes']:.0f} "
          f"(p_null {probe.get('p_null', float('nan')):.3f}), random mean {rnd['fixes']:.2f}", flush=True)
