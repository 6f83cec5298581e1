"""Benchmark: the batched patching sweep against a per-site loop, on an organism-shaped LLaVA.

The model is the organism's architecture (config.yaml's default organism shape) with random weights, saved as a
checkpoint and loaded through `dualmech.models.load`, so the sweep runs the same code path as on any model. On
the same pairs (every attempted tuple, golden or not: the timing does not depend on the answers) it times

* batched: `patching.run_sweeps` exactly as `patching.criss_cross` / `patching.last_token` call it (one capture
  forward of the cf runs + one forward holding every (pair, variant, site) row per group of pairs);
* loop: the same groups of pairs, one cf capture forward per group, then one forward per (group, site) holding
  the (pair, variant) rows with that site's replacements;
* (with --per-pair) loop_per_pair: one capture and one forward per (pair, site), nothing batched,

checks that every path gives the same candidate probabilities and top answers, and prints the speed-up of the
batched path (the aim is >= 5x) for the criss-cross and the last-token design. With --profile it prints the
top functions of a cProfile of one batched group and one loop group.

    .venv/bin/python benchmarks/patching_sweep.py [--pairs 50] [--threads 1] [--repeats 3] [--per-pair]
"""
import argparse
import cProfile
import io
import json
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dualmech import interventions as iv
from dualmech import models, organism, pairs, patching
from dualmech.behaviour import normalise
from dualmech.stimuli import DIRECTIONS

SPEC = organism.OrganismSpec(10, 8, 2, 1, 64, 2, 4, 64, 2, 4, 0.16)


def positions(spec, prepared, row):
    """Sequence positions of a (dest or src) spec in one row, as `patching.sweep_group` resolves them."""
    if spec == patching.FINAL:
        return prepared.final_position[row:row + 1]
    if spec == patching.ALL:
        return torch.arange(prepared.inputs["input_ids"].shape[1], device=prepared.final_position.device)
    return prepared.grid_positions[row, torch.as_tensor(spec, dtype=torch.long)]


def candidates(adapter, logits, words):
    """(rows, C) summed candidate probabilities and (rows,) top candidate index (-1: none), as sweep_group scores."""
    probs = torch.softmax(logits, -1)
    ids, mask = patching.candidate_index(adapter, words)
    cand = (probs.gather(1, ids.flatten(1)).view(ids.shape) * mask).sum(-1)
    top = []
    for r, t in enumerate(logits.argmax(-1).tolist()):
        w = normalise(adapter.decode([t])[0])
        ws = [normalise(x) for x in words[r]]
        top.append(ws.index(w) if w in ws else -1)
    return cand.numpy(), np.array(top)


def loop_group(adapter, chunk, root, cache, variants_of, n_variants, sites, per_pair: bool):
    """The same replacements as one `sweep_group` call, one forward per site (per pair too with per_pair)."""
    P, K = len(chunk), len(sites)
    out = np.zeros((P, n_variants, K, 3 if chunk["design"].iloc[0] == "criss_cross" else 5), dtype=np.float32)
    tops = np.zeros((P, n_variants, K), dtype=int)
    groups = [[i] for i in range(P)] if per_pair else [list(range(P))]
    for members in groups:
        sub = chunk.iloc[members]
        clean_imgs = patching.load_images(sub["clean_image"], root, cache)
        cf_imgs = patching.load_images(sub["cf_image"], root, cache)
        words = [json.loads(c) for c in sub["candidates"]]
        per_variants = [variants_of(row) for _, row in sub.iterrows()]
        cf = adapter.prepare(cf_imgs, list(sub["cf_prompt"]))
        captured = iv.run(adapter, cf, capture=sites, logits=False).captured
        clean_imgs_rep = [im for im in clean_imgs for _ in range(n_variants)]
        clean_prompts_rep = [p for p in sub["clean_prompt"] for _ in range(n_variants)]
        clean = adapter.prepare(clean_imgs_rep, clean_prompts_rep)
        words_rep = [w for w in words for _ in range(n_variants)]
        for k, site in enumerate(sites):
            rows, pos, vals = [], [], []
            for p in range(len(members)):
                for v in range(n_variants):
                    dest, src = per_variants[p][v]
                    d, s = positions(dest, clean, p * n_variants + v), positions(src, cf, p)
                    rows.append(torch.full_like(d, p * n_variants + v))
                    pos.append(d)
                    vals.append(captured[site][p, s])
            edit = iv.replace_at(torch.cat(rows), torch.cat(pos), torch.cat(vals))
            logits = iv.run(adapter, clean, edits={site: edit}).logits
            cand, top = candidates(adapter, logits, words_rep)
            out[members, :, k] = cand.reshape(len(members), n_variants, -1)
            tops[members, :, k] = top.reshape(len(members), n_variants)
    return out, tops


def loop(adapter, df, root, variants_of, n_variants, sites, rows_per_forward, per_pair=False):
    per = max(1, rows_per_forward // (n_variants * len(sites)))       # the batched path's grouping
    cache, probs, tops = {}, [], []
    for s in range(0, len(df), per):
        p, t = loop_group(adapter, df.iloc[s:s + per], root, cache, variants_of, n_variants, sites, per_pair)
        probs.append(p)
        tops.append(t)
    return np.concatenate(probs), np.concatenate(tops)


def timed(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def profile(fn, n=12):
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(n)
    return s.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows-per-forward", type=int, default=64, help="the pipeline default (DUALMECH_BATCH_SIZE)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-pair", action="store_true", help="also time one forward per (pair, site)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="patching-bench-"))
    organism.save(organism.build_model(SPEC, args.seed), SPEC, tmp / "ckpt", {"trained": False})
    adapter = models.load(models.ModelSpec(name="organism-shaped", path=str(tmp / "ckpt")), device="cpu")
    sites = iv.all_sites(adapter.n_layers)
    per_dir = -(-args.pairs // len(DIRECTIONS))
    tables = pairs.build_all(adapter, "squares", list(DIRECTIONS), args.seed, target=10 ** 6, max_attempts=per_dir,
                             image_dir=tmp / "images")
    root = tmp / "images"
    results = {}
    for design in pairs.DESIGNS:
        df = tables[design].iloc[:args.pairs].reset_index(drop=True)
        if design == "criss_cross":
            variants_of, kinds = patching.criss_cross_variants(adapter.geometry, None, 1, args.seed)
            n_variants = len(kinds)
        else:
            variants_of, n_variants = (lambda row: [(patching.FINAL, patching.FINAL)]), 1

        def batched():
            return patching.run_sweeps(adapter, df, root, variants_of, n_variants, sites, args.rows_per_forward)

        def looped(per_pair=False):
            return loop(adapter, df, root, variants_of, n_variants, sites, args.rows_per_forward, per_pair)

        with torch.no_grad():
            batched()                                                      # warm-up (image cache, allocator)
            t_batch, (pb, tb) = timed(batched, args.repeats)
            t_loop, (pl, tl) = timed(looped, args.repeats)
            np.testing.assert_allclose(pb, pl, rtol=1e-4, atol=1e-7)
            same_top = bool(np.array_equal(tb, tl))
            row = dict(design=design, pairs=len(df), variants=n_variants, sites=len(sites),
                       rows_per_group=max(1, args.rows_per_forward // (n_variants * len(sites))) * n_variants * len(sites),
                       batched_s=round(t_batch, 3), loop_s=round(t_loop, 3), speedup=round(t_loop / t_batch, 2),
                       max_abs_diff=float(np.abs(pb - pl).max()), same_top=same_top)
            if args.per_pair:
                t_pp, (pp, tp) = timed(lambda: looped(True), 1)
                np.testing.assert_allclose(pb, pp, rtol=1e-4, atol=1e-7)
                row |= dict(loop_per_pair_s=round(t_pp, 3), speedup_vs_per_pair=round(t_pp / t_batch, 2),
                            same_top_per_pair=bool(np.array_equal(tb, tp)))
            results[design] = row
            print(json.dumps(row), flush=True)
            if args.profile:
                one = df.iloc[:max(1, args.rows_per_forward // (n_variants * len(sites)))]
                print(f"--- profile, batched, one group ({design})")
                print(profile(lambda: patching.run_sweeps(adapter, one, root, variants_of, n_variants, sites,
                                                          args.rows_per_forward)))
                print(f"--- profile, loop, one group ({design})")
                print(profile(lambda: loop(adapter, one, root, variants_of, n_variants, sites,
                                           args.rows_per_forward)))
    print(json.dumps(dict(threads=args.threads, aim=5.0,
                          speedup={d: r["speedup"] for d, r in results.items()},
                          meets_aim={d: r["speedup"] >= 5.0 for d, r in results.items()})))


if __name__ == "__main__":
    main()
