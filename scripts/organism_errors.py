"""Where an organism checkpoint errs: per (setting, direction) cell, its accuracy on the training distribution's
jittered layouts beside the running evaluation's canonical items; per entity of one setting, how often it is
answered wrongly, and the most frequent confusions (answer -> prediction). Separates an ordering failure (the
prediction is another entity of the scene) from a recognition one (an entity that is not in the scene).

    .venv/bin/python scripts/organism_errors.py CHECKPOINT [--setting objects] [--batches 60]
"""
import argparse
from collections import Counter

import numpy as np
import torch
import transformers

from dualmech import organism as O
from dualmech.stimuli import ANSWER_SLOT

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoint")
parser.add_argument("--setting", default="objects")
parser.add_argument("--batches", type=int, default=60, help="batches of 64 jittered scenes (every setting)")
parser.add_argument("--seed", type=int, default=7, help="the scenes' seed (not the training seed)")
args = parser.parse_args()
torch.set_num_threads(1)
spec = O.OrganismSpec.from_checkpoint(args.checkpoint)
model = transformers.LlavaForConditionalGeneration.from_pretrained(args.checkpoint).eval()
tok = O.build_processor(spec).tokenizer
sampler = O.SceneSampler(spec, O.build_processor(spec), args.seed)
hits, kinds, wrong, seen, confusions = {}, Counter(), Counter(), Counter(), Counter()
with torch.no_grad():
    _, canonical = O.running_evaluator(spec, 120, 0)(model)
    for _ in range(args.batches):
        inputs, positions, answers, cells = sampler.batch(64, None, 1)
        predicted = O.answer_logits(model, inputs, positions)[:, 0].argmax(-1).tolist()
        for c, p, a, triple in zip(cells, predicted, answers[:, 0].tolist(), sampler.last_scenes[0]):
            setting, direction = O.CELLS[c]
            hits.setdefault(f"{setting}/{direction}", []).append(p == a)
            if setting != args.setting:
                continue
            answer = triple[ANSWER_SLOT[direction]].answer
            seen[answer] += 1
            scene = [tok.convert_tokens_to_ids(e.answer) for e in triple]
            kinds["right" if p == a else "another entity of the scene" if p in scene else "an entity not in the scene"] += 1
            if p != a:
                wrong[answer] += 1
                confusions[(answer, tok.convert_ids_to_tokens(p))] += 1
for key in sorted(hits):
    print(f"{key:16s} jittered {np.mean(hits[key]):.3f} (n={len(hits[key])})  canonical {canonical[key]:.3f}")
print(f"{args.setting}: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
print("wrong per answer: " + ", ".join(f"{e} {wrong[e]}/{n}" for e, n in seen.items()))
print("confusions: " + ", ".join(f"{a} -> {p} {n}" for (a, p), n in confusions.most_common(6)))
