"""Interchange interventions on the LM residual stream: last-token (Fig 3) and criss-cross (Figs 6/7).

A *sweep* patches one counterfactual (cf) run into one clean run at every site (`lm_input` = "Embed",
then `resid_post.l` for every layer). It runs as ONE batched forward per group of pairs: the cf run is
captured once at all sites, and the clean batch holds one row per (pair, variant, site), row i carrying
the intervention at its own site only. A *variant* says what moves where, as (dest, src): clean[dest] <-
cf[src], with dest/src grid-cell indices (row-major, mapped to sequence positions through each run's
`Prepared.grid_positions`, so Pixtral break tokens are skipped), `FINAL` (the final position) or `ALL`
(every position). Last-token interchange is (FINAL, FINAL); a criss-cross swap of regions A, B is
(A + B, B + A).

Metric (paper §4.4): softmax over the full vocabulary at the final position, summing the single-token
variants of each candidate word. The "top answer" is the argmax token, decoded and normalised as in
behaviour scoring, matched against the candidate words ("other" when it is none of them).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from . import interventions as iv
from . import runtime
from .behaviour import normalise
from .models import VLMAdapter
from .pairs import ROLES
from .patching_tables import (ALPHA, KINDS, curves, flip_tests, pair_counts,  # noqa: F401 (this module's API)
                              site_ranges, summary_table, transfer_ranges)
from .seeding import rng
from .stimuli import Geometry

FINAL, ALL = "final", "all"
SWEEP_COLUMNS = ["model", "setting", "kind", "draw", "direction", "pair", "site", "site_index", "site_label",
                 "candidate", "word", "probability", "top", "flipped"]


# ------------------------------------------------------------------ regions
def swap_regions(geometry: Geometry, orientation: str, kind: str, strip_width: int | None = None
                 ) -> tuple[list[int], list[int]]:
    """Grid indices (a, b) of the two side regions, paired cell by cell: clean[a[i]] <-> cf[b[i]].

    A = slot 0 (left/top), B = slot 2 (right/bottom); kind 'object' = the S x S object blocks, 'strip' =
    the full-height columns (horizontal) or full-width rows (vertical) of `Geometry.strip_cells`. Equal
    regions pair by translation; regions clipped unequally by the grid border pair by the translation
    that maps object 0 onto object 2, over the cells both regions contain."""
    if kind == "object":
        cells = geometry.object_cells(orientation)
    elif kind == "strip":
        cells = geometry.strip_cells(orientation, strip_width)
    else:
        raise ValueError(f"unknown region kind {kind!r}; expected one of {KINDS}")
    a, b = cells[0], cells[2]
    if len(a) == len(b):
        dr, dc = min(b)[0] - min(a)[0], min(c for _, c in b) - min(c for _, c in a)
    else:
        (r0, c0), _, (r2, c2) = geometry.canonical_layout(orientation)
        dr, dc = r2 - r0, c2 - c0
    b_set = set(b)
    pairs = [(cell, (cell[0] + dr, cell[1] + dc)) for cell in a if (cell[0] + dr, cell[1] + dc) in b_set]
    if not pairs:
        raise ValueError(f"{kind} regions of {geometry} ({orientation}) do not overlap after translation")
    return geometry.index([p[0] for p in pairs]), geometry.index([p[1] for p in pairs])


def null_regions(geometry: Geometry, orientation: str, size: int, draws: int, generator: np.random.Generator,
                 exclude: Sequence[int], objects: set[int] | None = None) -> tuple[list[tuple[list[int], list[int]]], str]:
    """`draws` random region pairs (a', b') of `size` cells each, disjoint from each other and from every
    object cell. They also avoid `exclude` (the swapped regions A u B) whenever the grid leaves room for
    2 * size such cells; tiling strips never do, and then the background cells of A and B are eligible
    too. `objects` overrides the object cells (default: the canonical layout's). Returns the draws and which
    pool they came from."""
    if objects is None:      # the canonical layout's object cells (What'sUp passes its boxes)
        objects = {i for cells in geometry.object_cells(orientation) for i in geometry.index(cells)}
    everything = range(geometry.grid ** 2)
    pools = [("outside swapped regions and objects", [i for i in everything if i not in objects | set(exclude)]),
             ("outside objects", [i for i in everything if i not in objects]),
             ("anywhere", list(everything))]
    label, pool = next((p for p in pools if len(p[1]) >= 2 * size), (None, None))
    if pool is None:
        raise ValueError(f"a {geometry.grid}x{geometry.grid} grid cannot hold two disjoint regions of {size} cells")
    out = []
    for _ in range(draws):
        pick = generator.choice(len(pool), size=2 * size, replace=False)
        cells = [pool[i] for i in pick]
        out.append((sorted(cells[:size]), sorted(cells[size:])))
    return out, label


# ------------------------------------------------------------------ the batched sweep
def _positions(spec, prepared, row: int) -> torch.Tensor:
    if isinstance(spec, str):
        if spec == FINAL:
            return prepared.final_position[row:row + 1]
        if spec == ALL:
            return torch.arange(prepared.inputs["input_ids"].shape[1], device=prepared.final_position.device)
        raise ValueError(f"unknown position spec {spec!r}")
    return prepared.grid_positions[row, torch.as_tensor(spec, dtype=torch.long, device=prepared.grid_positions.device)]


def candidate_index(adapter: VLMAdapter, words: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of shape (P, C, V): the single-token variants of each pair's candidate words."""
    cache: dict[str, list[int]] = {}
    lists = [[cache.setdefault(w, adapter.candidate_token_ids(w)) for w in ws] for ws in words]
    width = max(len(ids) for ws in lists for ids in ws)
    ids = torch.zeros(len(lists), len(lists[0]), width, dtype=torch.long)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for p, ws in enumerate(lists):
        for c, t in enumerate(ws):
            ids[p, c, :len(t)] = torch.tensor(t)
            mask[p, c, :len(t)] = True
    return ids, mask


def _replacements(clean, cf, captured: torch.Tensor, variants, row) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, positions, values) writing cf[src] into clean[dest] for every (pair p, variant v), at row row(p, v)."""
    rows, pos, vals = [], [], []
    for p in range(len(variants[0])):
        for v, variant in enumerate(variants):
            dest, src = variant[p]
            d, s = _positions(dest, clean, p), _positions(src, cf, p)
            if len(d) != len(s):
                raise ValueError(f"variant {v} of pair {p}: {len(d)} destination but {len(s)} source positions")
            rows.append(torch.full_like(d, row(p, v)))
            pos.append(d)
            vals.append(captured[p, s])
    return torch.cat(rows), torch.cat(pos), torch.cat(vals)


@torch.inference_mode()
def sweep_group(adapter: VLMAdapter, clean_images, clean_prompts, cf_images, cf_prompts,
                variants: Sequence[Sequence[tuple]], sites: Sequence[str], words: Sequence[Sequence[str]],
                lm_input_values: tuple[torch.Tensor, torch.Tensor] | None = None, engine: bool | None = None):
    """Every variant x every site for a group of P pairs.

    variants[v][p] = (dest, src) for pair p. lm_input_values = (clean, cf), each (P, N*N, D): visual tokens
    that replace the LM input on both runs before any swap (patching under the ablation, Fig 9; the runs skip
    the vision tower where that is exact, `interventions.without_vision`). Returns
    (probs (P, V, K, C), top (P, V, K) index of the candidate that is the top-1 answer, -1 for none).

    engine (default: whenever the family is `resumable`): one traced forward of the cf runs and one of the
    clean runs (vision tower once per image), then every site's (pair, variant) rows resumed from the patched
    layer, each row over its positions from its first patched one to its final one
    (`interventions.resume_sites`: a decoder layer runs once for several sites that have reached it).
    engine=False: the plain path, one batched full forward holding a row per (pair, variant, site)."""
    P, V, K = len(clean_images), len(variants), len(sites)
    L = adapter.n_layers
    cf = adapter.prepare(list(cf_images), list(cf_prompts))
    clean = adapter.prepare(list(clean_images), list(clean_prompts))
    if not torch.equal(clean.final_position, cf.final_position):
        raise AssertionError("clean and counterfactual runs differ in token length: the patched positions would "
                             "not correspond")
    dev = adapter.device
    base_cf, base_clean = {}, {}
    if lm_input_values is not None:     # every visual token is overwritten: the vision tower is skipped
        cf, base_cf[iv.LM_INPUT] = iv.without_vision(adapter, cf, lm_input_values[1].to(dev))
        clean, base_clean[iv.LM_INPUT] = iv.without_vision(adapter, clean, lm_input_values[0].to(dev))
    captured = iv.run(adapter, cf, edits=base_cf, capture=sites, logits=False).captured
    if engine is None:
        engine = iv.resumable(adapter)
    if engine:
        tr = iv.trace(adapter, clean, edits=base_clean)
        rows = torch.arange(P, device=dev).repeat_interleave(V)                   # row p*V + v = pair p
        final = clean.final_position.to(dev).repeat_interleave(V)
        jobs = []
        for site in sites:
            r, pos, vals = _replacements(clean, cf, captured[site], variants, lambda p, v: p * V + v)
            first = final.scatter_reduce(0, r, pos, "amin")                      # each row's first patched position
            jobs.append((iv.start_layer(site, L), iv.replace_at(r, pos, vals), first))
        logits = torch.stack(iv.resume_sites(adapter, tr, rows, jobs), 1).reshape(P * V * K, -1)  # (p*V + v)*K + k
    else:
        reps = V * K
        rep = iv.repeat_rows(clean, reps) or adapter.prepare([im for im in clean_images for _ in range(reps)],
                                                             [p for p in clean_prompts for _ in range(reps)])
        edits = {}
        for k, site in enumerate(sites):
            edits[site] = iv.replace_at(*_replacements(clean, cf, captured[site], variants,
                                                       lambda p, v, k=k: (p * V + v) * K + k))
        if lm_input_values is not None:
            base = iv.replace_grid(rep, lm_input_values[0].to(dev).repeat_interleave(reps, 0))
            edits[iv.LM_INPUT] = iv.then(base, edits[iv.LM_INPUT]) if iv.LM_INPUT in edits else base
        logits = iv.run(adapter, rep, edits=edits).logits                         # (P*V*K, vocab), float32
    return _score(adapter, logits, words, V * K, (P, V, K))


def _score(adapter: VLMAdapter, logits: torch.Tensor, words, reps: int, shape: tuple[int, int, int]):
    """(probs (P, V, K, C), top (P, V, K)) from the rows' logits; row r belongs to pair r // reps."""
    probs = torch.softmax(logits, -1)
    ids, mask = candidate_index(adapter, words)
    ids, mask = ids.repeat_interleave(reps, 0).to(probs.device), mask.repeat_interleave(reps, 0).to(probs.device)
    cand = (probs.gather(1, ids.flatten(1)).view(ids.shape) * mask).sum(-1)       # (P*V*K, C)
    top_ids = logits.argmax(-1).tolist()
    decoded = dict(zip(sorted(set(top_ids)), adapter.decode(sorted(set(top_ids)))))
    top = np.full(len(top_ids), -1)
    for r, t in enumerate(top_ids):
        norm = normalise(decoded[t])
        ws = [normalise(w) for w in words[r // reps]]
        if norm in ws:
            top[r] = ws.index(norm)
    C = cand.shape[1]
    return cand.cpu().numpy().reshape(*shape, C), top.reshape(shape)


def load_images(paths: Sequence[str], root: Path, cache: dict | None = None) -> list[Image.Image]:
    cache = {} if cache is None else cache
    return [cache.setdefault(p, Image.open(Path(root) / p).convert("RGB")) for p in paths]


def run_sweeps(adapter: VLMAdapter, pairs: pd.DataFrame, image_root: Path, variants_of, n_variants: int,
               sites: Sequence[str] | None = None, rows_per_forward: int | None = None, desc: str = "sweep",
               lm_input_override=None, engine: bool | None = None):
    """Sweep every pair (grouped so that one forward holds about `rows_per_forward` rows: a (pair, variant)
    row per resumed forward with the engine, a (pair, variant, site) row per full forward without).

    variants_of(pair row) -> list of n_variants (dest, src). lm_input_override(scenes, orientations) ->
    (B, N*N, D) replaces the visual tokens of both runs first (see `sweep_group`). Returns (probs (N, V, K, C),
    top (N, V, K)) in the order of `pairs`, or (None, None) when there are no pairs."""
    sites = list(sites or iv.all_sites(adapter.n_layers))
    rows = rows_per_forward or runtime.batch_size(adapter)
    if engine is None:
        engine = iv.resumable(adapter)
    per = max(1, rows // (n_variants * (1 if engine else len(sites))))
    cache: dict = {}

    def group(sl: slice):
        chunk = pairs.iloc[sl]
        per_pair = [variants_of(row) for _, row in chunk.iterrows()]
        variants = [[vs[v] for vs in per_pair] for v in range(n_variants)]
        values = None
        if lm_input_override is not None:
            orientations = list(chunk["orientation"])
            values = tuple(lm_input_override([json.loads(s) for s in chunk[col]], orientations)
                           for col in ("clean_scene", "cf_scene"))
        return sweep_group(adapter, load_images(chunk["clean_image"], image_root, cache), list(chunk["clean_prompt"]),
                           load_images(chunk["cf_image"], image_root, cache), list(chunk["cf_prompt"]), variants,
                           sites, [json.loads(c) for c in chunk["candidates"]], values, engine)
    done = runtime.batched(len(pairs), per, desc, group)
    probs, tops = [p for p, _ in done], [t for _, t in done]
    if not probs:
        return None, None
    return np.concatenate(probs), np.concatenate(tops)


def sweep_table(model: str, pairs: pd.DataFrame, probs: np.ndarray, top: np.ndarray, kinds: Sequence[tuple[str, int]],
                sites: Sequence[str], flip_to: str | None) -> pd.DataFrame:
    """Tidy rows (pair, kind, draw, site, candidate) with probability, top answer and flipped flag.

    kinds[v] = (kind, draw) names variant v. flipped: the top answer is `flip_to` (criss-cross: c2), or,
    when flip_to is None (last-token), the top answer is no longer the clean answer."""
    cols = {c: [] for c in SWEEP_COLUMNS}
    if probs is None or not len(pairs):
        return pd.DataFrame(cols)
    design = pairs["design"].iloc[0]
    roles = list(ROLES[design])
    N, V, K, C = probs.shape
    words = [json.loads(c) for c in pairs["candidates"]]
    idx = np.indices((N, V, K, C)).reshape(4, -1)
    n, v, k, c = idx
    top_role = np.where(top >= 0, np.array(roles + ["other"])[top], "other")     # (N, V, K); -1 -> other
    tr = top_role[n, v, k]
    flipped = (tr == flip_to) if flip_to else (tr != roles[0])
    return pd.DataFrame(dict(
        model=model, setting=pairs["setting"].to_numpy()[n], kind=np.array([kd for kd, _ in kinds])[v],
        draw=np.array([d for _, d in kinds])[v], direction=pairs["direction"].to_numpy()[n],
        pair=pairs["pair"].to_numpy()[n], site=np.array(sites)[k], site_index=k,
        site_label=np.array([iv.site_label(s) for s in sites])[k], candidate=np.array(roles)[c],
        word=[words[i][j] for i, j in zip(n, c)], probability=probs.reshape(-1).astype(np.float64), top=tr,
        flipped=flipped))


# ------------------------------------------------------------------ the two experiments
def last_token(adapter: VLMAdapter, model: str, pairs: pd.DataFrame, image_root: Path,
               rows_per_forward: int | None = None) -> pd.DataFrame:
    """Fig 3: overwrite the clean run's final position with the cf value, at each site."""
    sites = iv.all_sites(adapter.n_layers)
    probs, top = run_sweeps(adapter, pairs, image_root, lambda row: [(FINAL, FINAL)], 1, sites, rows_per_forward,
                            f"{model} last-token")
    return sweep_table(model, pairs, probs, top, [("last_token", 0)], sites, flip_to=None)


def criss_cross_variants(geometry: Geometry, strip_width: int | None, null_draws: int, seed: int):
    """variants_of(pair) for the criss-cross experiment and the names of its variants: object swap,
    strip swap, then `null_draws` random-region swaps of each one's size (seeded per pair)."""
    kinds = [(k, 0) for k in KINDS] + [(f"{k}_null", d) for k in KINDS for d in range(null_draws)]
    regions = {(o, k): swap_regions(geometry, o, k, strip_width) for o in ("horizontal", "vertical") for k in KINDS}

    def variants_of(row) -> list[tuple]:
        out = []
        for k in KINDS:
            a, b = regions[row["orientation"], k]
            out.append((a + b, b + a))
        for k in KINDS:
            a, b = regions[row["orientation"], k]
            draws, _ = null_regions(geometry, row["orientation"], len(a), null_draws,
                                    rng(seed, "null", k, row["pair"]), a + b)
            out += [(na + nb, nb + na) for na, nb in draws]
        return out
    return variants_of, kinds


def whatsup_criss_cross_variants(geometry: Geometry, null_draws: int, seed: int):
    """variants_of(pair) for What'sUp pairs: the regions of the pair's reference (c1) from
    config/whatsup_regions.yaml (`naturalistic.whatsup_swap_regions`), nulls avoiding its three boxes."""
    from .naturalistic import whatsup_slot_cells, whatsup_swap_regions
    kinds = [(k, 0) for k in KINDS] + [(f"{k}_null", d) for k in KINDS for d in range(null_draws)]

    def regions(row, k):
        ref = row["c1"]
        a, b = whatsup_swap_regions(ref, geometry.grid, k)
        boxes = {i for cells in whatsup_slot_cells(ref, geometry.grid) for i in cells}
        draws, pool = null_regions(geometry, row["orientation"], len(a), null_draws, rng(seed, "null", k, row["pair"]),
                                   a + b, objects=boxes)
        return a, b, draws, pool

    def variants_of(row) -> list[tuple]:
        out, nulls = [], []
        for k in KINDS:
            a, b, draws, _ = regions(row, k)
            out.append((a + b, b + a))
            nulls += [(na + nb, nb + na) for na, nb in draws]
        return out + nulls
    return variants_of, kinds, regions


def whatsup_region_table(geometry: Geometry, null_draws: int, seed: int, pairs: pd.DataFrame) -> pd.DataFrame:
    """The cells each What'sUp criss-cross variant swaps, per pair (regions depend on the pair's reference)."""
    _, _, regions = whatsup_criss_cross_variants(geometry, null_draws, seed)
    rows = []
    for _, row in pairs.iterrows():
        for k in KINDS:
            a, b, draws, pool = regions(row, k)
            rows.append(dict(pair=row["pair"], orientation=row["orientation"], kind=k, draw=0, a=json.dumps(a),
                             b=json.dumps(b), pool="swap"))
            rows += [dict(pair=row["pair"], orientation=row["orientation"], kind=f"{k}_null", draw=d,
                          a=json.dumps(na), b=json.dumps(nb), pool=pool) for d, (na, nb) in enumerate(draws)]
    return pd.DataFrame(rows, columns=["pair", "orientation", "kind", "draw", "a", "b", "pool"])


def criss_cross(adapter: VLMAdapter, model: str, pairs: pd.DataFrame, image_root: Path, strip_width: int | None,
                null_draws: int, seed: int, rows_per_forward: int | None = None,
                lm_input_override=None, variants=None) -> pd.DataFrame:
    """Figs 6/7: clean[A] <- cf[B], clean[B] <- cf[A] for object blocks, strips and random-region nulls.
    With `lm_input_override` (the ordering ablation on both runs) this is Fig 9. `variants` = (variants_of,
    kinds) replaces the canonical regions (What'sUp: `whatsup_criss_cross_variants`)."""
    sites = iv.all_sites(adapter.n_layers)
    variants_of, kinds = variants or criss_cross_variants(adapter.geometry, strip_width, null_draws, seed)
    probs, top = run_sweeps(adapter, pairs, image_root, variants_of, len(kinds), sites, rows_per_forward,
                            f"{model} criss-cross", lm_input_override)
    return sweep_table(model, pairs, probs, top, kinds, sites, flip_to="c2")


def region_table(geometry: Geometry, strip_width: int | None, null_draws: int, seed: int,
                 pairs: pd.DataFrame) -> pd.DataFrame:
    """The exact cells each criss-cross variant swaps, per pair (for tracing and the figures' captions)."""
    rows = []
    for k in KINDS:
        for o in ("horizontal", "vertical"):
            a, b = swap_regions(geometry, o, k, strip_width)
            rows.append(dict(pair=None, orientation=o, kind=k, draw=0, a=json.dumps(a), b=json.dumps(b), pool="swap"))
    for _, row in pairs.iterrows():
        for k in KINDS:
            a, b = swap_regions(geometry, row["orientation"], k, strip_width)
            draws, pool = null_regions(geometry, row["orientation"], len(a), null_draws,
                                       rng(seed, "null", k, row["pair"]), a + b)
            rows += [dict(pair=row["pair"], orientation=row["orientation"], kind=f"{k}_null", draw=d,
                          a=json.dumps(na), b=json.dumps(nb), pool=pool) for d, (na, nb) in enumerate(draws)]
    return pd.DataFrame(rows, columns=["pair", "orientation", "kind", "draw", "a", "b", "pool"])
