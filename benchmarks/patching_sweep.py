"""Benchmark: the patching engine against the plain batched path, on the organism and 28-layer models of each family.

Models (random weights, saved as checkpoints and loaded through `dualmech.models.load`, so the sweep runs the
same code path as on any model):

* organism-shaped: config.yaml's default organism architecture (3 LM layers);
* for each supported family, its tiny random instance (`dualmech.tiny`) with the LM deepened to `--layers`
  decoder layers (28 = Qwen2-VL-7B's depth) at the tiny width, so it runs on 2 CPU cores.

On the same pairs (every attempted tuple, golden or not: timing does not depend on the answers) it times
`patching.run_sweeps` exactly as `patching.last_token` (Fig 3) and `patching.criss_cross` (Figs 6/7 with one
random-region null draw per kind) call it, with

* plain (`engine=False`, the path before the engine): one capture forward of the cf runs, then full forwards
  (vision tower included) holding one row per (pair, variant, site);
* engine (`engine=True`): one traced forward of the clean runs and one capture of the cf runs, then the (pair,
  variant) rows of every site resumed from the patched layer, each row over its positions from the first patched
  one to its final one, the sites as a staircase (`interventions.trace` / `interventions.resume_sites`),

checks that both give the same candidate probabilities (max abs difference printed) and top answers, and prints
the speed-up per (model, design). Aims (issue 14): >= 10x for the Fig 3 sweep at 28 layers, >= 2x criss-cross.

    .venv/bin/python benchmarks/patching_sweep.py [--pairs 16] [--organism-pairs 50] [--layers 28] [--threads 1]
                                                  [--families llava,pixtral,qwen2vl,gemma3] [--repeats 1]
                                                  [--width 256] [--skip-organism]
                                                  [--designs last_token,criss_cross]

`--width` widens the deep models' LM (more heads of the tiny head size, a 2x MLP): at the tiny width a forward
is mostly per-call overhead, which the engine cannot save, so the speed-up there understates what a full-size
model gets.
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dualmech import interventions as iv
from dualmech import models, organism, pairs, patching, tiny
from dualmech.seeding import torch_seed
from dualmech.stimuli import DIRECTIONS

SPEC = organism.OrganismSpec(10, 8, 2, 1, 64, 2, 4, 64, 2, 4, 0.16)


# the vision-side config keys that must equal the LM width (the tower's merger / projection writes LM-width tokens)
VISION_OUT_WIDTH = {"qwen2vl": "hidden_size", "qwen2_5vl": "out_hidden_size", "qwen3vl": "out_hidden_size",
                    "paligemma": "projection_dim"}


def widen(cfg: dict, family: str, width: int) -> None:
    """Set the LM width of a family's config dict in place: more heads of the same head size (so rotary
    sections stay valid), a 2x MLP, and the vision output that feeds the LM."""
    tc = cfg["text_config"]
    head_dim = tc.get("head_dim") or tc["hidden_size"] // tc["num_attention_heads"]
    if width % head_dim:
        raise ValueError(f"--width must be a multiple of the head size {head_dim}")
    heads, kv = tc["num_attention_heads"], tc.get("num_key_value_heads", tc["num_attention_heads"])
    tc.update(hidden_size=width, intermediate_size=2 * width, num_attention_heads=width // head_dim)
    if kv > 1:                                           # grouped queries keep their group size; MQA stays MQA
        tc["num_key_value_heads"] = tc["num_attention_heads"] // (heads // kv)
    if family in VISION_OUT_WIDTH:
        cfg["vision_config"][VISION_OUT_WIDTH[family]] = width


def deep_checkpoint(family: str, layers: int, out: Path, seed: int = 0, width: int | None = None) -> Path:
    """The family's tiny random checkpoint with `layers` LM decoder layers (vision tower, projector, embeddings
    and the first layers kept from the tiny instance where their shapes allow; the added layers random), at LM
    width `width` (None: the tiny width)."""
    model, save_processor = tiny.build(family, seed)
    cfg = model.config.to_dict()
    cfg["text_config"]["num_hidden_layers"] = layers
    cfg["text_config"].pop("layer_types", None)          # rebuilt for the new depth
    if width and width != cfg["text_config"]["hidden_size"]:
        widen(cfg, family, width)
    with torch.random.fork_rng():
        torch.manual_seed(torch_seed(seed, "bench", family, layers))
        deep = type(model)(type(model.config).from_dict(cfg)).eval()
    own = deep.state_dict()
    deep.load_state_dict({k: v for k, v in model.state_dict().items() if k in own and own[k].shape == v.shape},
                         strict=False)
    deep.save_pretrained(out)
    save_processor(out)
    return out


def timed(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_model(name, adapter, n_pairs, args, tmp):
    sites = iv.all_sites(adapter.n_layers)
    per_dir = -(-n_pairs // len(DIRECTIONS))
    root = tmp / f"images-{name}"
    tables = pairs.build_all(adapter, "squares", list(DIRECTIONS), args.seed, target=10 ** 6, max_attempts=per_dir,
                             image_dir=root)
    rows = []
    for design in args.designs.split(","):
        df = tables[design].iloc[:n_pairs].reset_index(drop=True)
        if design == "criss_cross":
            variants_of, kinds = patching.criss_cross_variants(adapter.geometry, None, 1, args.seed)
            n_variants = len(kinds)
        else:
            variants_of, n_variants = (lambda row: [(patching.FINAL, patching.FINAL)]), 1

        def sweep(engine):
            return patching.run_sweeps(adapter, df, root, variants_of, n_variants, sites, args.rows_per_forward,
                                       engine=engine)

        sweep(True)                                                   # warm-up (image cache, allocator)
        t_new, (pn, tn) = timed(lambda: sweep(True), args.repeats)
        t_old, (po, to) = timed(lambda: sweep(False), args.repeats)
        row = dict(model=name, layers=adapter.n_layers, design=design, pairs=len(df), variants=n_variants,
                   sites=len(sites), plain_s=round(t_old, 3), engine_s=round(t_new, 3),
                   speedup=round(t_old / t_new, 2), max_abs_diff=float(np.abs(pn - po).max()),
                   same_top=bool(np.array_equal(tn, to)))
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=16, help="pairs per design on the deep models")
    parser.add_argument("--organism-pairs", type=int, default=50)
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--families", default=",".join(tiny.FAMILIES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rows-per-forward", type=int, default=64, help="the pipeline default (DUALMECH_BATCH_SIZE)")
    parser.add_argument("--width", type=int, default=None,
                        help=f"LM width of the deep models (default: the tiny width, {tiny.D_LM})")
    parser.add_argument("--skip-organism", action="store_true", help="deep models only")
    parser.add_argument("--designs", default="last_token,criss_cross", help="Fig 3 (last_token) and/or criss_cross")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="patching-bench-"))
    runs = []
    if not args.skip_organism:
        organism.save(organism.build_model(SPEC, args.seed), SPEC, tmp / "organism", {"trained": False})
        runs.append(("organism-shaped", tmp / "organism", args.organism_pairs))
    suffix = f"-w{args.width}" if args.width else ""
    for family in [f for f in args.families.split(",") if f]:
        runs.append((f"{family}-{args.layers}L{suffix}",
                     deep_checkpoint(family, args.layers, tmp / family, width=args.width), args.pairs))
    results = []
    for name, path, n in runs:
        adapter = models.load(models.ModelSpec(name=name, path=str(path)), device="cpu")
        results += bench_model(name, adapter, n, args, tmp)
    aims = {"last_token": 10.0, "criss_cross": 2.0}
    deep = [r for r in results if r["layers"] == args.layers]
    print(json.dumps(dict(threads=args.threads, aims=aims,
                          speedup={f"{r['model']} {r['design']}": r["speedup"] for r in results},
                          meets_aims_at_depth={f"{r['model']} {r['design']}": r["speedup"] >= aims[r["design"]]
                                               for r in deep})))


if __name__ == "__main__":
    main()
