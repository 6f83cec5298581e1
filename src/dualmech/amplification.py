"""Table 2: amplifying vision-derived ordering directions at the LM input (paper §5.7), with honest selection.

Method (paper §5.7, App A.4). Linear ordering probes W (D x C, one column per ordinal class) are trained per
axis on the post-projector features of objects (mean over each object's visual tokens) of correctly answered
items. For an item asked about axis a, every image-token embedding e at the LM input is amplified along the
probe columns of that axis only:

    c_k = <e, w_k> / ||w_k||^2,    e <- e + alpha * sum_k c_k w_k

(the projection form, invariant to rescaling any column of W). Class mapping: synthetic and What'sUp items
(three entities, query about the middle one) use 3-class probes, class k = slot k (0 left/top, 1 middle,
2 right/bottom); COCO questions (two objects) use 2-class probes, class 0 = the object that is left/above,
class 1 = the other one. Every column of the axis' probe is amplified.

What this reproduction adds:
* items are split (seeded, before anything is measured) into a development split, whose correctly answered
  items train the probes and on which alpha is chosen, and an evaluation split on which everything is
  reported: the evaluation items are seen by neither the probe nor the alpha selection;
* every item (also the already-correct ones) is re-evaluated under amplification: fixes, breaks, net accuracy;
* random directions (config: 100; Gaussian subspaces of the probe's shape, seeded) give a null distribution,
  each with its own alpha chosen on the development split the same way. Each moves every token by exactly
  the probe's step on that token (`perturbation` with `match`): the projection form cancels a column's norm,
  so rescaling columns to the probe's norms would match nothing;
* only ordering failures are failures to fix: where the testbed lists the scene's entities (`scene`), an
  item whose wrong answer names no entity of the scene (e.g. a colour absent from it) is not one;
* the per-item oracle over alpha ("Probe*") is reported only as an upper bound;
* variants: amplification restricted to object tokens or to background tokens (is the effect really
  global?), and probes trained only on clean canonical synthetic stimuli (label-free transfer).

Engine: one forward per (query, direction, alpha) row; rows are batched. The LM input at the image positions
is cached per item (one full forward), so the amplified rows normally skip the vision tower
(`interventions.without_vision`: a parity check against the plain forward decides this once per model, and the
full forward is used otherwise).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from . import interventions as iv
from . import runtime
from .amplification_tables import (AXES, CONTROL_ALPHA, CONTROLS, LABELS, STRICT_CHANCE,  # noqa: F401 (API)
                                   control_row, curves, summarise, table2_display)
from .behaviour import normalise
from .models.base import Prepared, VLMAdapter
from .seeding import rng, torch_generator

PROBE_KINDS = ("probe", "probe_objects", "probe_background", "synthetic_probe")
REGION = {"probe": "all", "probe_objects": "objects", "probe_background": "background",
          "synthetic_probe": "all", "random": "all"}
LOG = logging.getLogger("dualmech.amplification")


# ------------------------------------------------------------------ the intervention
def projection(values: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """sum_k <e, w_k>/||w_k||^2 w_k for every row vector e of `values` (..., D); W is (D, C) or batched (B, D, C)
    with values (B, N, D). Zero columns contribute nothing."""
    W = W.to(values.dtype)
    sq = W.pow(2).sum(-2) + 1e-8                                      # (C,) or (B, C)
    if W.dim() == 2:
        return ((values @ W) / sq) @ W.T
    coeff = torch.einsum("bnd,bdc->bnc", values, W) / sq[:, None, :]
    return torch.einsum("bnc,bdc->bnd", coeff, W)


def perturbation(values: torch.Tensor, W: torch.Tensor, match: torch.Tensor | None = None) -> torch.Tensor:
    """The per-token step of the amplification: projection(values, W); with `match` (shaped like W), each token's
    step is rescaled to the norm of projection(values, match), so that W moves every token by exactly as much as
    `match` (the probe) does. A token whose own step is zero stays put."""
    p = projection(values, W)
    if match is None:
        return p
    own = p.norm(dim=-1, keepdim=True)
    ref = projection(values, match).norm(dim=-1, keepdim=True)
    return torch.where(own > 0, p * (ref / torch.where(own > 0, own, torch.ones_like(own))), torch.zeros_like(p))


def amplify(values: torch.Tensor, W: torch.Tensor, alpha, mask: torch.Tensor | None = None,
            match: torch.Tensor | None = None) -> torch.Tensor:
    """e <- e + alpha * perturbation(e, W, match) at the tokens selected by `mask` (..., N), all tokens when None.

    `values` (N, D) or (B, N, D); `alpha` a number or (B,); alpha = 0 returns `values` unchanged (exactly)."""
    p = perturbation(values, W, match)
    a = torch.as_tensor(alpha, dtype=values.dtype, device=values.device)
    scale = a.reshape(-1, *([1] * (values.dim() - 1))) if a.dim() else a
    if mask is not None:
        scale = scale * mask.to(values.dtype).unsqueeze(-1)
    return values + scale * p


def random_directions(reference: torch.Tensor, n: int, seed: int, *names) -> list[torch.Tensor]:
    """`n` Gaussian matrices shaped like `reference` (D, C), from the named seed stream. Their scale does not
    matter: in the projection form a column's norm cancels, and the engine rescales every token's step to the
    probe's (`perturbation` with `match`), so a random direction differs from the probe in direction only."""
    out = []
    for k in range(n):
        g = torch_generator(seed, "amplification-random", *names, k)
        out.append(torch.randn(reference.shape, generator=g, dtype=torch.float64).float())
    return out


# ------------------------------------------------------------------ probes
@dataclass
class Probe:
    W: torch.Tensor                    # (D, C)
    b: torch.Tensor                    # (C,)
    n_train: int
    train_accuracy: float
    classes: int
    heldout_accuracy: float = float("nan")
    n_heldout: int = 0

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        return (X @ self.W + self.b).argmax(-1)


def train_probe(X: torch.Tensor, y: torch.Tensor, n_classes: int, seed: int, *names, epochs: int = 200,
                lr: float = 1e-3, weight_decay: float = 1e-4) -> Probe:
    """Linear probe (paper §5.2.1/§5.7): W, b ~ N(0, 1)/sqrt(D), full-batch cross-entropy, AdamW, seeded."""
    X, y = X.float(), y.long()
    d = X.shape[1]
    g = torch_generator(seed, "amplification-probe", *names)
    W = (torch.randn(d, n_classes, generator=g) / d ** 0.5).requires_grad_()
    b = (torch.randn(n_classes, generator=g) / d ** 0.5).requires_grad_()
    opt = torch.optim.AdamW([W, b], lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(epochs):
            loss = torch.nn.functional.cross_entropy(X @ W + b, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    W, b = W.detach(), b.detach()
    acc = float(((X @ W + b).argmax(-1) == y).float().mean())
    return Probe(W, b, len(y), acc, n_classes)


def object_features(visual: torch.Tensor, cells: list[list[int]]) -> torch.Tensor:
    """Mean visual token over each object's cells: (C, D); NaN rows for objects with no cells."""
    out = torch.full((len(cells), visual.shape[-1]), float("nan"))
    for k, c in enumerate(cells):
        if c:
            out[k] = visual[c].float().mean(0).cpu()
    return out


# ------------------------------------------------------------------ evaluation engine
@dataclass
class Testbed:
    """Queries (one row per (item, question)); an item is correct when all its queries are answered correctly.

    Required columns: item, prompt, answer, orientation, image, cells (JSON list of per-class cell lists).
    Optional: query, allowed (JSON list of answer words; an answer outside it drops the item at baseline,
    the "strict both listings" protocol), scene (JSON list of the answer words of the scene's entities: a wrong
    answer among them is an ordering error, one outside them, e.g. a colour absent from the scene, is not; without
    it every wrong answer counts as an ordering error), probe_ok (False: the item gives no probe training rows), native +
    grid_rows + grid_cols (True: the image is seen at the model's dynamic resolution on that token grid)."""
    name: str
    queries: pd.DataFrame
    image_root: Path
    system: str | None | bool = True     # True: the adapter's default system prompt; None: no system message
    classes: int = 3

    def __post_init__(self):
        q = self.queries.reset_index(drop=True).copy()
        if "query" not in q:
            q["query"] = "q"
        if "allowed" not in q:
            q["allowed"] = None
        if "scene" not in q:
            q["scene"] = None
        if "probe_ok" not in q:
            q["probe_ok"] = True
        if "native" not in q:
            q["native"] = False
        self.queries = q
        self.items = list(dict.fromkeys(q["item"]))

    def grid_of(self, rows: pd.DataFrame) -> tuple[int, int] | None:
        """The (rows, cols) grid of a batch seen at dynamic resolution (one grid per batch), None on the canvas."""
        if not rows["native"].any():
            return None
        grids = set(zip(rows["grid_rows"].astype(int), rows["grid_cols"].astype(int)))
        if len(grids) != 1 or not rows["native"].all():
            raise ValueError(f"{self.name}: a batch mixes token grids {sorted(grids)}")
        return grids.pop()

    def groups(self, items: list[str]) -> list[list[str]]:
        """Items in runs that share a token grid (all of them at once on the square canvas)."""
        if not self.queries["native"].any():
            return [items]
        first = self.queries.drop_duplicates("item").set_index("item")
        key = {it: (int(first.at[it, "grid_rows"]), int(first.at[it, "grid_cols"])) for it in items}
        return [[it for it in items if key[it] == k] for k in dict.fromkeys(key[it] for it in items)]

    def prepare(self, adapter: VLMAdapter, rows: pd.DataFrame, images: dict[str, Image.Image]) -> Prepared:
        imgs = [images[p] for p in rows["image"]]
        kw = {} if self.system is True else {"system": self.system}
        grid = self.grid_of(rows)
        if grid is not None:
            kw["grid"] = grid
        return adapter.prepare(imgs, rows["prompt"].tolist(), **kw)


@dataclass
class Direction:
    name: str
    kind: str                              # probe | probe_objects | probe_background | synthetic_probe | random
    W: dict[str, torch.Tensor]             # axis -> (D, C)
    region: str = "all"                    # all | objects | background
    match: str | None = None               # each token moves by exactly as much as under this direction


@dataclass
class Engine:
    adapter: VLMAdapter
    testbed: Testbed
    batch_size: int = 64
    chunk_items: int = 16
    mode: str = ""                         # "text_only" or "full", decided by the first parity check
    forwards: int = 0
    parity: dict = field(default_factory=dict)

    def _chunks(self, items: list[str]):
        q = self.testbed.queries
        for group in self.testbed.groups(items):
            for s in range(0, len(group), self.chunk_items):
                chunk = group[s:s + self.chunk_items]
                rows = q[q["item"].isin(set(chunk))].reset_index(drop=True)
                root = self.testbed.image_root
                images = {p: Image.open(root / p).convert("RGB") for p in dict.fromkeys(rows["image"])}
                yield rows, images

    def _predict(self, logits: torch.Tensor) -> list[str]:
        return [normalise(t) for t in self.adapter.decode(logits.argmax(-1).tolist())]

    def _capture(self, rows, images):
        """Plain forward of a chunk (capturing the LM input): predictions, logits, grid visual tokens (Q, N, D)."""
        prepared = self.testbed.prepare(self.adapter, rows, images)
        res = iv.run(self.adapter, prepared, capture=[iv.LM_INPUT])
        self.forwards += len(rows)
        hidden = res.captured[iv.LM_INPUT]
        visual = hidden[torch.arange(len(rows), device=hidden.device)[:, None], prepared.grid_positions]
        return prepared, res.logits, visual

    def baseline(self, items: list[str]) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
        """Per-query predictions without intervention, and per-item object features (C, D)."""
        out, feats = [], {}
        for rows, images in self._chunks(items):
            _, logits, visual = self._capture(rows, images)
            preds = self._predict(logits)
            for i, row in rows.iterrows():
                correct = preds[i] == normalise(row["answer"])
                out.append(dict(item=row["item"], query=row["query"], prediction=preds[i], correct=correct,
                                ordering_error=not correct and _in_scene(preds[i], row["scene"]),
                                off_axis=_off_axis(preds[i], row["allowed"])))
                if row["item"] not in feats:
                    feats[row["item"]] = object_features(visual[i], json.loads(row["cells"]))
        return pd.DataFrame(out), feats

    def evaluate(self, jobs: pd.DataFrame, directions: dict[str, Direction]) -> pd.DataFrame:
        """Item-level correctness for every job (item, direction, alpha): all of the item's queries correct."""
        if jobs.empty:
            return jobs.assign(correct=pd.Series(dtype=bool))
        names = list(directions)
        axes = {a: i for i, a in enumerate(AXES)}
        d_model = next(w for d in directions.values() for w in d.W.values()).shape[0]
        c_max = max(w.shape[1] for d in directions.values() for w in d.W.values())
        bank = torch.zeros(len(names) * len(AXES), d_model, c_max)
        for i, n in enumerate(names):
            for a, w in directions[n].W.items():
                bank[i * len(AXES) + axes[a], :, :w.shape[1]] = w
        bank = bank.to(self.adapter.device)
        index = {n: i for i, n in enumerate(names)}
        # the bank row whose per-token step size each direction takes (its own, or its `match`'s)
        ref = torch.tensor([index[directions[n].match or n] * len(AXES) + k for n in names for k in range(len(AXES))],
                           device=bank.device)
        by_item = {it: g for it, g in jobs.groupby("item", sort=False)}
        results = []
        for rows, images in self._chunks(list(by_item)):
            prepared, base_logits, visual = self._capture(rows, images)
            self._check_parity(prepared, base_logits, visual, rows, images)
            n_grid = visual.shape[1]
            obj_mask = torch.zeros(len(rows), n_grid, dtype=torch.bool)
            for i, c in enumerate(rows["cells"]):
                idx = [x for cs in json.loads(c) for x in cs]
                obj_mask[i, idx] = True
            masks = {"all": torch.ones_like(obj_mask), "objects": obj_mask, "background": ~obj_mask}
            # one row per (query, job)
            q_idx, dir_idx, alphas, region_rows, job_ref = [], [], [], [], []
            for qi, row in rows.iterrows():
                for j in by_item[row["item"]].itertuples():
                    q_idx.append(qi)
                    dir_idx.append(index[j.direction] * len(AXES) + axes[row["orientation"]])
                    alphas.append(float(j.alpha))
                    region_rows.append(masks[directions[j.direction].region][qi])
                    job_ref.append((row["item"], j.direction, float(j.alpha), qi))
            correct = np.zeros(len(q_idx), dtype=bool)
            for s in range(0, len(q_idx), self.batch_size):
                sl = slice(s, s + self.batch_size)
                qi = torch.tensor(q_idx[sl], device=visual.device)
                d = torch.tensor(dir_idx[sl], device=bank.device)
                new = amplify(visual[qi], bank[d], torch.tensor(alphas[sl], device=visual.device),
                              torch.stack(region_rows[sl]).to(visual.device), match=bank[ref[d]])
                logits = self._forward_rows(prepared, rows, images, qi, new)
                preds = self._predict(logits)
                for k, p in enumerate(preds):
                    correct[s + k] = p == normalise(rows.at[q_idx[s + k], "answer"])
            df = pd.DataFrame(job_ref, columns=["item", "direction", "alpha", "q"]).assign(correct=correct)
            results.append(df.groupby(["item", "direction", "alpha"], sort=False)["correct"].all().reset_index())
        out = pd.concat(results, ignore_index=True)
        return jobs.merge(out, on=["item", "direction", "alpha"], how="left")

    # -------------------------------------------------------------- forwards with replaced LM input
    def _forward_rows(self, prepared: Prepared, rows, images, qi: torch.Tensor, new_visual: torch.Tensor):
        sub = self._rows(prepared, rows, images, qi)
        r = torch.arange(len(qi), device=new_visual.device).repeat_interleave(new_visual.shape[1])
        pos = sub.grid_positions.reshape(-1)
        self.forwards += len(qi)
        edit = iv.replace_at(r, pos, new_visual.reshape(-1, new_visual.shape[-1]))
        return iv.run(self.adapter, sub, edits={iv.LM_INPUT: edit}).logits

    def _rows(self, prepared: Prepared, rows, images, qi: torch.Tensor) -> Prepared:
        if self.mode == "text_only":
            return iv.select_rows(iv.text_only(self.adapter, prepared), qi)
        try:
            return iv.select_rows(prepared, qi)
        except iv.CannotSelect:
            sel = rows.iloc[qi.cpu().numpy()]
            return self.testbed.prepare(self.adapter, sel, images)

    def _check_parity(self, prepared, base_logits, visual, rows, images) -> None:
        """Decide whether rows may skip the vision tower (`interventions.without_vision`, once per model: the
        text-only forward with the cached LM input written back must reproduce the plain forward's logits and
        predictions); in full mode, writing the cached LM input back must itself change nothing."""
        if self.mode:
            return
        run_on, _ = iv.without_vision(self.adapter, prepared, visual, reference=base_logits)
        self.mode = "full" if run_on is prepared else "text_only"
        if self.mode == "full":
            qi = torch.arange(len(rows), device=visual.device)
            full = float((self._forward_rows(prepared, rows, images, qi, visual) - base_logits).abs().max())
            assert full <= iv.PARITY_TOL * (1 + float(base_logits.abs().max())), (
                f"writing the captured LM input back changes the logits by {full:.3g}")
        decided = iv.vision_skip(self.adapter)
        self.parity = dict(mode=self.mode, text_only_max_abs_diff=decided.max_abs_diff if decided else float("nan"))


def _in_scene(prediction: str, scene) -> bool:
    """The answer names an entity of the scene (always True where the testbed does not list them)."""
    if scene is None or (isinstance(scene, float) and np.isnan(scene)):
        return True
    return prediction in {normalise(w) for w in json.loads(scene)}


def _off_axis(prediction: str, allowed) -> bool:
    if allowed is None or (isinstance(allowed, float) and np.isnan(allowed)):
        return False
    return prediction not in json.loads(allowed)


# ------------------------------------------------------------------ the experiment
def split_items(items: list[str], dev_fraction: float, seed: int, *names) -> dict[str, str]:
    """item -> "dev" | "eval", a seeded permutation fixed before any model output is seen."""
    order = rng(seed, "amplification-split", *names).permutation(len(items))
    n_dev = int(round(dev_fraction * len(items)))
    return {items[i]: ("dev" if k < n_dev else "eval") for k, i in enumerate(order)}


def select_alpha(outcomes: pd.DataFrame, by: str = "net") -> dict[str, float]:
    """Per direction, the alpha > 0 maximising fixes - breaks ("net") or fixes ("fixes") on the given rows
    (columns direction, alpha, correct, baseline_correct); ties go to the smaller alpha."""
    df = outcomes[outcomes["alpha"] > 0].assign(
        fix=lambda d: d["correct"] & ~d["baseline_correct"], brk=lambda d: ~d["correct"] & d["baseline_correct"])
    agg = df.groupby(["direction", "alpha"], sort=True)[["fix", "brk"]].sum().reset_index()
    agg["score"] = agg["fix"] - agg["brk"] if by == "net" else agg["fix"]
    best = agg.sort_values(["direction", "score", "alpha"], ascending=[True, False, True]).groupby("direction").head(1)
    return dict(zip(best["direction"], best["alpha"].astype(float)))


def synthetic_probe_data(adapter: VLMAdapter, settings, n_images: int, seed: int) -> dict[str, tuple]:
    """Object-mean features of clean canonical synthetic scenes (white background, canonical layout), labelled
    by slot, per axis: the label-free probe training set (no model output involved)."""
    from .stimuli import ORIENTATIONS, entities, render_scene
    g = adapter.geometry
    out = {}
    for orientation in ORIENTATIONS:
        cells = [g.index(c) for c in g.object_cells(orientation)]
        layout = g.canonical_layout(orientation)
        X, y = [], []
        for setting in settings:
            ents = entities(setting, adapter.palette)
            r = rng(seed, "amplification-synthetic-probe", setting, orientation)
            images = [render_scene([ents[k] for k in r.choice(len(ents), 3, replace=False)], layout, g)
                      for _ in range(n_images)]
            for s in range(0, len(images), 32):
                vis = adapter.visual_tokens(images[s:s + 32])
                for v in vis:
                    X.append(object_features(v, cells))
                    y.append(torch.arange(3))
        out[orientation] = (torch.cat(X), torch.cat(y))
    return out


def run(adapter: VLMAdapter, testbed: Testbed, cfg: dict, seed: int,
        synthetic: dict[str, tuple] | None = None, log: Callable = LOG.info,
        controls: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The whole experiment on one model and testbed. Returns (baseline per item, outcomes, meta).

    `cfg` is config["amplification"]; `synthetic` the canonical-stimulus probe data (None skips that variant);
    `controls` extra queries of the items with a `control` column (`naturalistic.coco_controls`), answered
    without intervention: the baseline gains `<control>_correct` per item (all its queries right)."""
    t0 = time.perf_counter()
    alphas = [float(a) for a in cfg["alphas"]]
    assert 0.0 in alphas, "the alpha grid must contain 0 (the no-op check)"
    engine = Engine(adapter, testbed, batch_size=runtime.batch_size(adapter))
    split = split_items(testbed.items, cfg["dev_fraction"], seed, testbed.name)

    # 1. baseline on every item, and the object features for the probes
    per_query, feats = engine.baseline(testbed.items)
    q = testbed.queries
    per_query["ok_or_ordering"] = per_query["correct"] | per_query["ordering_error"]
    base = (per_query.groupby("item", sort=False).agg(correct=("correct", "all"), off_axis=("off_axis", "any"),
                                                      ordering=("ok_or_ordering", "all"),
                                                      n_queries=("query", "size")).reset_index())
    # a failure to fix is an ordering failure: every wrong answer names another entity of the scene
    base["ordering_failure"] = ~base["correct"] & base["ordering"]
    meta_cols = q.drop_duplicates("item").set_index("item")
    base["split"] = base["item"].map(split)
    base["axis"] = base["item"].map(meta_cols["orientation"])
    base["probe_ok"] = base["item"].map(meta_cols["probe_ok"]).astype(bool)
    base["dropped"] = base["off_axis"]
    kept = base[~base["dropped"]]
    log(f"{testbed.name}: {len(base)} items, {int(base['dropped'].sum())} dropped (answer off the axis), baseline "
        f"accuracy {kept['correct'].mean():.3f} ({int((~kept['correct']).sum())} failures, "
        f"{int(kept['ordering_failure'].sum())} of them ordering failures)")

    # 2. probes on correct development items
    pcfg = cfg["probe"]
    probes, diag = {}, {}
    for axis in AXES:
        train = kept[(kept["split"] == "dev") & kept["correct"] & kept["probe_ok"] & (kept["axis"] == axis)]
        held = kept[(kept["split"] == "eval") & kept["correct"] & kept["probe_ok"] & (kept["axis"] == axis)]
        X, y = _rows(train["item"], feats)
        if len(set(y.tolist())) < 2:
            diag[axis] = dict(available=False, n_train_items=len(train),
                              note=f"no probe: {len(train)} correct development items on this axis")
            continue
        p = train_probe(X, y, testbed.classes, seed, adapter.spec.name, testbed.name, axis, epochs=pcfg["epochs"],
                        lr=pcfg["lr"], weight_decay=pcfg["weight_decay"])
        Xh, yh = _rows(held["item"], feats)
        if len(yh):
            p.heldout_accuracy, p.n_heldout = float((p.predict(Xh) == yh).float().mean()), len(yh)
        probes[axis] = p
        diag[axis] = dict(available=True, n_train_items=len(train), train_accuracy=p.train_accuracy,
                          heldout_accuracy=p.heldout_accuracy, n_heldout_rows=p.n_heldout)
    d_model = next(iter(feats.values())).shape[1]
    W = {a: probes[a].W if a in probes else torch.zeros(d_model, testbed.classes) for a in AXES}
    directions = {k: Direction(k, k, W, REGION[k]) for k in ("probe", "probe_objects", "probe_background")}
    if synthetic is not None:
        sW, sdiag = {}, {}
        for axis, (X, y) in synthetic.items():
            ok = ~torch.isnan(X).any(1)
            sp = train_probe(X[ok], y[ok], 3, seed, adapter.spec.name, "synthetic", axis, epochs=pcfg["epochs"],
                             lr=pcfg["lr"], weight_decay=pcfg["weight_decay"])
            sW[axis] = sp.W
            sdiag[axis] = dict(n_train_rows=sp.n_train, train_accuracy=sp.train_accuracy)
        directions["synthetic_probe"] = Direction("synthetic_probe", "synthetic_probe", sW, "all")
        diag["synthetic_probe"] = sdiag
    rand = {a: random_directions(W[a], cfg["n_random"], seed, testbed.name, a) for a in AXES}
    for k in range(cfg["n_random"]):
        name = f"random_{k:02d}"
        directions[name] = Direction(name, "random", {a: rand[a][k] for a in AXES}, "all", match="probe")

    # 3. development split: every direction x alpha > 0; alpha = 0 with the probe on every item (no-op check)
    dev_items = kept.loc[kept["split"] == "dev", "item"].tolist()
    eval_items = kept.loc[kept["split"] == "eval", "item"].tolist()
    positive = [a for a in alphas if a > 0]
    assert positive, "the alpha grid needs at least one alpha > 0"
    jobs = [_jobs(dev_items, list(directions), positive), _jobs(kept["item"].tolist(), ["probe"], [0.0])]
    dev = engine.evaluate(pd.concat(jobs, ignore_index=True), directions)
    dev = dev.merge(base[["item", "correct"]].rename(columns={"correct": "baseline_correct"}), on="item")
    zero = dev[dev["alpha"] == 0]
    changed = zero[zero["correct"] != zero["baseline_correct"]]
    assert changed.empty, f"alpha = 0 changed the answer of {len(changed)} item(s): {changed['item'].tolist()[:5]}"
    chosen = select_alpha(dev[dev["item"].isin(set(dev_items))], cfg["select_by"])
    chosen = {d: chosen.get(d, positive[0]) for d in directions}     # no development items: smallest alpha
    log(f"alpha chosen on {len(dev_items)} development items ({cfg['select_by']}): probe {chosen.get('probe')}, "
        f"objects {chosen.get('probe_objects')}, background {chosen.get('probe_background')}, synthetic "
        f"{chosen.get('synthetic_probe')}")

    # 4. evaluation split: each direction at its chosen alpha; the probe family over every alpha on the
    #    failures (the per-item oracle, an upper bound only)
    eval_fail = kept.loc[(kept["split"] == "eval") & ~kept["correct"], "item"].tolist()
    jobs = [pd.DataFrame([(i, d, chosen[d]) for i in eval_items for d in directions],
                         columns=["item", "direction", "alpha"]),
            _jobs(eval_fail, [d for d in directions if directions[d].kind != "random"], positive)]
    ev = pd.concat(jobs, ignore_index=True).drop_duplicates(["item", "direction", "alpha"])
    ev = engine.evaluate(ev, directions)
    ev = ev.merge(base[["item", "correct"]].rename(columns={"correct": "baseline_correct"}), on="item")
    out = pd.concat([dev, ev], ignore_index=True)
    out["split"] = out["item"].map(split)
    out["kind"] = out["direction"].map({n: d.kind for n, d in directions.items()})
    out["selected"] = out["alpha"] == out["direction"].map(chosen)
    out = out[["item", "split", "direction", "kind", "alpha", "selected", "baseline_correct", "correct"]]
    out = out.sort_values(["split", "direction", "alpha", "item"], kind="stable").reset_index(drop=True)
    meta = dict(testbed=testbed.name, model=adapter.spec.name, items=len(base), dropped=int(base["dropped"].sum()),
                dev_items=len(dev_items), eval_items=len(eval_items), eval_failures=len(eval_fail),
                selected_alpha=chosen, select_by=cfg["select_by"], alphas=alphas, n_random=cfg["n_random"],
                probes=diag, engine=engine.parity, forwards=engine.forwards, box_status=_box_status(q),
                seconds=round(time.perf_counter() - t0, 1))
    columns = ["item", "split", "axis", "n_queries", "correct", "ordering_failure", "dropped", "probe_ok"]
    if controls is not None and len(controls):
        for name, c in control_results(adapter, testbed, controls).items():
            base[f"{name}_correct"] = base["item"].map(c)
            columns.append(f"{name}_correct")
            log(f"control {name}: {int(c.sum())}/{len(c)} items answered as the control expects")
    base = base[columns]
    return base.sort_values("item").reset_index(drop=True), out, meta


def control_results(adapter: VLMAdapter, testbed: Testbed, controls: pd.DataFrame) -> dict[str, pd.Series]:
    """control -> per-item correctness (every query of the item answered with the control's answer)."""
    q = controls.assign(item=controls["item"] + "|" + controls["control"])
    tb = Testbed(f"{testbed.name}-controls", q, testbed.image_root, testbed.system, testbed.classes)
    per_query, _ = Engine(adapter, tb, batch_size=runtime.batch_size(adapter)).baseline(tb.items)
    per_item = per_query.groupby("item", sort=False)["correct"].all()
    split = per_item.index.str.rsplit("|", n=1)
    frame = pd.DataFrame({"item": split.str[0], "control": split.str[1], "correct": per_item.to_numpy()})
    return {c: g.set_index("item")["correct"] for c, g in frame.groupby("control", sort=True)}


def _box_status(queries: pd.DataFrame) -> dict[str, int]:
    """Items per box status (COCO: why an item gives no probe rows); empty for testbeds without boxes."""
    if "box_status" not in queries:
        return {}
    return {k: int(v) for k, v in queries.drop_duplicates("item")["box_status"].value_counts().sort_index().items()}


def _rows(items, feats) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = [], []
    for it in items:
        f = feats[it]
        for k in range(f.shape[0]):
            if not torch.isnan(f[k]).any():
                X.append(f[k])
                y.append(k)
    if not X:
        return torch.zeros(0, next(iter(feats.values())).shape[1]), torch.zeros(0, dtype=torch.long)
    return torch.stack(X), torch.tensor(y)


def _jobs(items, directions, alphas) -> pd.DataFrame:
    return pd.DataFrame([(i, d, a) for i in items for d in directions for a in alphas],
                        columns=["item", "direction", "alpha"])


# ------------------------------------------------------------------ Table 2 and curves (pure table code)
