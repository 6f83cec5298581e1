"""Does this machine retrain a committed organism? Retrains it from scratch by config.yaml's recipe, on the given
thread count, and compares each running evaluation with the training curve its organism.json carries, up to
--steps (default: the first 5 evaluations), stopping at the first that differs. One differing floating-point sum
changes the whole trajectory, so a full `make organisms` reproduces a committed checkpoint only where the replay
matches; where it does not, a retrain follows its own trajectory and may stop at another step or miss the bars.
Two-stage organisms replay stage 2 on the stage-1 tower in --stage1 (`snakemake results/models/organism-stage1`
builds it; its own stage1.json carries the stage-1 curve).

    .venv/bin/python scripts/organism_replay.py organism-lm [--threads 1] [--steps 1000] [--stage1 DIR]
"""
import argparse
import json
import sys
from pathlib import Path

import torch

from dualmech import organism
from dualmech.config import load

ROOT = Path(__file__).resolve().parents[1]
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("name", help="an organism.variants entry with a committed checkpoint under models/")
parser.add_argument("--threads", type=int, default=1, help="the training rules' count (1)")
parser.add_argument("--steps", type=int, default=None)
parser.add_argument("--stage1", type=Path, default=ROOT / "results/models/organism-stage1")
args = parser.parse_args()
torch.set_num_threads(args.threads)
config = load(ROOT / "config.yaml")
info = json.loads((ROOT / "models" / args.name / "organism.json").read_text())
two_stage = organism.variant(config, args.name)["recipe"] == "two-stage"
if two_stage and not (args.stage1 / "stage1.json").exists():
    sys.exit(f"{args.name} is a two-stage organism: build its stage-1 tower first "
             f"(snakemake results/models/organism-stage1) or name one with --stage1")
steps = args.steps or 5 * config["organism"]["train"]["eval_every"]
print(f"{args.name}: committed on {info.get('threads', 'an unrecorded number of')} thread(s), torch "
      f"{info['torch']}; replaying on {args.threads} with torch {torch.__version__}", flush=True)
rows = organism.replay(config, args.name, info["history"], steps, args.stage1 if two_stage else None)
for r in rows:
    print(f"step {r['step']:6d}  worst cell {r['score']:.4f}  committed {r['committed']}  "
          f"{'same' if r['same'] else 'DIFFERENT'}")
same = rows and all(r["same"] for r in rows)
print(f"{'reproduced' if same else 'not reproduced'}: the committed curve "
      + ("is followed" if same else f"differs from step {rows[-1]['step']}"))
sys.exit(0 if same else 1)
