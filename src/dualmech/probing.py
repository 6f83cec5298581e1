"""Linear position probes on visual tokens (paper §5.2.1, Fig 4, App C.5-C.7), with the controls a raw
probe accuracy needs (organism-notes §2.1).

Probe: multinomial logistic regression (scikit-learn, standardised features, L2) trained on the tokens
of object regions to predict the object's ordinal slot (0 left/top, 1 middle, 2 right/bottom; for k x k
grids the column index for horizontal, the row index for vertical), split by triple / grid image
(seeded, the same split for a model and its untrained twin), several seeds. It is then applied to every
visual token (Fig 4 heat maps = mean class probability per cell over held-out images).

Controls and statistics, per (model, setting, orientation, site), pooled over seeds, CIs by bootstrap
over held-out images:
- position-only baseline: the same probe on a one-hot grid cell instead of the activation;
- selectivity (Hewitt & Liang): accuracy minus that of a control task where every entity identity gets a
  random label; sign-flip test over images;
- strip score: for each class k, P(probe says k | background token in k's strip) minus
  P(probe says k | background token outside k's strip), averaged over classes (0 = no strip, 1 = perfect
  strips); a strip is the full-height columns (horizontal) / full-width rows (vertical) of the object,
  `strip_width` tokens wide (default: the object's own width; `Geometry.strip_cells`); permutation test
  shuffling the probe's predictions among the background tokens of each image, Holm across sites. Read on
  held-out canonical images, by the probe trained on canonical + shifted layouts where the setting has the
  shifted control (`strip_probe`): on canonical layouts slot = cell, so a canonical-only probe may read the
  cell rather than the ordering code and then miss strips the code draws on background tokens (the Fig 4
  heat maps stay the canonical probe's, as in the paper);
- position-ambiguous tokens: with the canonical (fixed) layout every object token's label is a function of
  its cell, so these exist only with varied layouts. The shifted-layout control (triple translated by
  +-k tokens) supplies them: a probe trained on canonical + shifted images (split by triple) is scored on
  held-out tokens whose label differs from the majority label of their cell in training, or that lie in a
  cell without a strict majority (object tokens, and strip-background tokens with the strip's label). The
  position-only probe gets ~0 there by construction where majorities are strict, and ~1/m at cells tied
  between m classes (symmetric shifts such as +-1 tie every overlapping cell: `pos_ambiguous_acc` reports
  the actual baseline). Undefined (NaN, explained in `note`) when there are no such tokens;
- absolute vs relative: the canonical probe applied to shifted images' object tokens whose relative slot
  differs from the slot the canonical layout assigns to that column/row (the authors' tiling strips):
  fraction of predictions following the relative order vs the absolute position, each beside its chance
  level (`conflict_chance`), and the test on the contrast beyond chance (`follow_excess`, sign-flip p
  `absrel_p`). The chance levels matter because the conflict tokens are not symmetric: on a 7-token grid
  shifted by one, every conflict token's absolute slot is the middle one and its relative slot an outer one,
  so a probe that rarely says "middle" reads them "relative" whatever it sees;
- the same on background: held-out shifted images' background tokens in exactly one strip whose strip slot
  differs from their cell's canonical slot, read by the strip score's probe refitted on position-centred
  features (canonical + shifted object tokens less their cell's mean over the training images' object tokens;
  the background tokens it reads less their cell's mean over the training images' background tokens; no
  background token is ever a training target): `strip_relative` vs
  `strip_absolute`, each beside its chance level, the contrast beyond chance `strip_excess` with sign-flip p
  `strip_absrel_p` (descriptive since v8); and what claim 3 decides on, the same tokens at a fixed cell
  (`follow_pairs`): the share `strip_follow` of pairs (conflict token, the same cell in the triple's other
  layout, where its strip has the cell's own slot) in which the probe's evidence for the strip's slot over the
  cell's is higher at the conflict token (1/2: nothing follows the entities), sign-flip p `strip_follow_p`
  over held-out triples. Argmax readings of a faint background code are decided by the probe's intercepts and
  by whatever else the tokens carry; at a fixed cell both are the same in the two layouts. That evidence is a
  reading of the objects' code only if the probe reads it on the objects: `object_follow` is the same share
  on the held-out object tokens (an object whose slot differs from its cell's canonical slot against the same
  cell in the triple's other layout, where an object of the cell's slot lies; centred on the objects' training
  mean there), sign-flip p `object_follow_p`. An untrained model's probe reads nothing there, yet its blank
  background at a fixed cell moves consistently with the layout by thousandths of a nat (a random tower mixes
  where the entities are into every token), which the background's share alone counts as following. On canonical
  layouts a strip is a canvas third, so the strip
  score alone cannot tell the entities' ordering code from a code for the canvas position (an untrained
  model's position embeddings give the same strips); these tokens can, if the probe cannot read the position:
  fitted where most object tokens' slot is their cell's canonical one, the uncentred probe learns the
  position too, and then reads a smooth position code (a column ramp, no ordering at all) as relative.
  Centring removes everything that is the same at a cell in every image, so only what moves with the layout
  is left to read.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .seeding import rng
from .stimuli.geometry import Geometry

CLASS_NAMES = {"horizontal": ("Left", "Middle", "Right"), "vertical": ("Top", "Middle", "Bottom")}
UNDEFINED_AMBIGUOUS = "ambiguous-token accuracy undefined: no position-ambiguous tokens (fixed layout)"
UNDEFINED_CONFLICT = "absolute-vs-relative undefined: no shifted tokens whose absolute and relative labels differ"
UNDEFINED_STRIP_CONFLICT = ("background absolute-vs-relative undefined: no shifted background tokens whose strip "
                            "and absolute labels differ")


def class_names(orientation: str, k: int) -> list[str]:
    if k == 3:
        return list(CLASS_NAMES[orientation])
    return [f"{'col' if orientation == 'horizontal' else 'row'} {i}" for i in range(k)]


# ------------------------------------------------------------------ token labels
@dataclass
class Labels:
    """Per-token labels of one image set (rows = images, columns = grid cells r*N + c)."""
    obj: np.ndarray        # (n, T) int: class of the object covering the cell, -1 background
    entity: np.ndarray     # (n, T) int: entity id of that object, -1 background
    strip: np.ndarray      # (n, T, K) bool: background cell inside the strip of class k
    absolute: np.ndarray   # (n, T) int: class the canonical layout gives the cell's column/row (-1: none)
    k: int

    @property
    def background(self) -> np.ndarray:
        return self.obj < 0

    @property
    def strip_label(self) -> np.ndarray:
        """(n, T) class of the single strip a background cell lies in, -1 if none or several."""
        one = self.strip.sum(-1) == 1
        return np.where(one, self.strip.argmax(-1), -1)

    def take(self, rows) -> "Labels":
        return Labels(self.obj[rows], self.entity[rows], self.strip[rows], self.absolute[rows], self.k)

    @staticmethod
    def concat(parts: list["Labels"]) -> "Labels":
        return Labels(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("obj", "entity", "strip", "absolute")),
                      parts[0].k)


def strip_band(start: int, s: int, n: int, width: int | None) -> range:
    """Along-axis tokens of the strip of an object starting at `start` (same rule as Geometry.strip_cells
    with an integer width; None = the object's own width)."""
    w = s if width is None else width
    if w < s:
        raise ValueError(f"strip width {w} is narrower than an object ({s} tokens)")
    lo = start - (w - s) // 2
    return range(max(0, lo), min(n, lo + w))


def image_labels(objects, geometry: Geometry, orientation: str, k: int, strip_width: int | None = None):
    """Labels of one image from its objects [(top-left (row, col), class, entity id), ...].

    Returns (obj (T,), entity (T,), strip (T, K)) in row-major cell order."""
    n, s = geometry.grid, geometry.object_tokens
    obj = np.full((n, n), -1, np.int64)
    ent = np.full((n, n), -1, np.int64)
    strip = np.zeros((n, n, k), bool)
    for (r, c), label, entity in objects:
        if not (0 <= r <= n - s and 0 <= c <= n - s):
            raise ValueError(f"object at {(r, c)} does not fit the {n}x{n} grid")
        obj[r:r + s, c:c + s] = label
        ent[r:r + s, c:c + s] = entity
        if orientation == "horizontal":
            strip[:, list(strip_band(c, s, n, strip_width)), label] = True
        else:
            strip[list(strip_band(r, s, n, strip_width)), :, label] = True
    strip &= (obj < 0)[..., None]
    return obj.reshape(-1), ent.reshape(-1), strip.reshape(n * n, k)


def absolute_labels(geometry: Geometry, orientation: str) -> np.ndarray:
    """(T,) the slot the canonical layout's tiling strips (the authors' strips) give each cell."""
    out = np.full(geometry.grid ** 2, -1, np.int64)
    for label, cells in enumerate(geometry.strip_cells(orientation)):
        out[geometry.index(cells)] = label
    return out


def relation_labels(images: pd.DataFrame, geometry: Geometry, orientation: str, entity_ids: dict[str, int],
                    strip_width: int | None = None) -> Labels:
    """Labels for relation images (one row per image: `slots` JSON of top-left cells, `e0`..`e2`)."""
    parts = [image_labels([(tuple(tl), slot, entity_ids[row[f"e{slot}"]])
                           for slot, tl in enumerate(json.loads(row["slots"]))], geometry, orientation, 3, strip_width)
             for _, row in images.iterrows()]
    absolute = np.broadcast_to(absolute_labels(geometry, orientation), (len(parts), geometry.grid ** 2)).copy()
    return Labels(*(np.stack(x) for x in zip(*parts)), absolute=absolute, k=3)


def grid_labels(images: pd.DataFrame, geometry: Geometry, orientation: str, entity_ids: dict[str, int],
                strip_width: int | None = None) -> Labels:
    """Labels for k x k grid images (`cells` JSON: row, col, entity, top_left); class = column index
    (horizontal) or row index (vertical)."""
    k = int(images["k"].iloc[0])
    axis = "col" if orientation == "horizontal" else "row"
    parts = [image_labels([(tuple(c["top_left"]), c[axis], entity_ids[c["entity"]]) for c in json.loads(cells)],
                          geometry, orientation, k, strip_width) for cells in images["cells"]]
    absolute = np.full((len(parts), geometry.grid ** 2), -1, np.int64)
    return Labels(*(np.stack(x) for x in zip(*parts)), absolute=absolute, k=k)


def whatsup_labels(images: pd.DataFrame, geometry: Geometry, entity_ids: dict[str, int]) -> Labels:
    """Labels for What'sUp composites (App C.7; one row per image: `cells` JSON of the three slots' box cells
    from config/whatsup_regions.yaml, `e0`..`e2`): slot k's cells have class k; the strip of class k is the
    background of the full-height columns of box k. A cell two boxes claim belongs to neither."""
    n = geometry.grid
    parts = []
    for _, row in images.iterrows():
        boxes = [np.asarray(c, np.int64) for c in json.loads(row["cells"])]
        claims = np.bincount(np.concatenate(boxes), minlength=n * n) if any(len(b) for b in boxes) else np.zeros(n * n)
        obj, ent = np.full(n * n, -1, np.int64), np.full(n * n, -1, np.int64)
        strip = np.zeros((n * n, 3), bool)
        for k, cells in enumerate(boxes):
            own = cells[claims[cells] == 1]
            obj[own], ent[own] = k, entity_ids[row[f"e{k}"]]
            cols = np.unique(cells % n)
            strip[np.isin(np.arange(n * n) % n, cols), k] = True
        strip &= ((obj < 0) & (claims == 0))[:, None]
        parts.append((obj, ent, strip))
    absolute = np.full((len(parts), n * n), -1, np.int64)
    return Labels(*(np.stack(x) for x in zip(*parts)), absolute=absolute, k=3)


# ------------------------------------------------------------------ probes
class Probe:
    """Multinomial logistic regression over K classes (classes absent from training get probability 0)."""

    def __init__(self, k: int, C: float = 1.0, standardize: bool = True):
        self.k, self.C, self.standardize = k, C, standardize

    def fit(self, X: np.ndarray, y: np.ndarray) -> "Probe":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        self.classes = np.unique(y)
        if len(self.classes) < 2:
            self.model = None
            return self
        clf = LogisticRegression(C=self.C, max_iter=2000)
        self.model = make_pipeline(StandardScaler(), clf) if self.standardize else clf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # convergence warnings on separable data are expected
            self.model.fit(X, y)
        return self

    def proba(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), self.k))
        if self.model is None:
            out[:, self.classes[0]] = 1.0
        else:
            out[:, self.classes] = self.model.predict_proba(X)
        return out


def one_hot_cells(n_images: int, n_cells: int) -> np.ndarray:
    """Position-only features: (n, T, T) one-hot grid cell."""
    return np.broadcast_to(np.eye(n_cells, dtype=np.float32), (n_images, n_cells, n_cells))


def split(groups: np.ndarray, test_fraction: float, seed: int, *names) -> np.ndarray:
    """Boolean test mask over rows: whole groups (triples / grid images) held out, seeded by `names`."""
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise ValueError("need at least two triples / images to split into train and test")
    n_test = min(len(uniq) - 1, max(1, int(round(test_fraction * len(uniq)))))
    test = rng(seed, "probe-split", *names).permutation(uniq)[:n_test]
    return np.isin(groups, test)


def majority(labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell over images (labels (n, T), -1 ignored): (majority class (T,), seen (T,)); ties -> lower class."""
    counts = np.stack([(labels == c).sum(0) for c in range(k)], -1)
    return counts.argmax(-1), counts.sum(-1) > 0


def tied(labels: np.ndarray, k: int) -> np.ndarray:
    """(T,) cells whose most frequent class among `labels` (n, T) is shared by another class."""
    counts = np.stack([(labels == c).sum(0) for c in range(k)], -1)
    top = counts.max(-1)
    return (top > 0) & ((counts == top[:, None]).sum(-1) > 1)


def ambiguous(labels: np.ndarray, train_labels: np.ndarray, k: int) -> np.ndarray:
    """(n, T) tokens whose label differs from the majority label of their cell among `train_labels`, or whose
    cell has no strict majority there (whatever their label: a tie broken arbitrarily would make the
    position-only baseline arbitrary); cells never labelled in training are not counted."""
    maj, seen = majority(train_labels, k)
    return (labels >= 0) & seen[None] & ((labels != maj[None]) | tied(train_labels, k)[None])


# ------------------------------------------------------------------ statistics over images
def _boot_weights(n: int, n_boot: int, seed: int, *names) -> np.ndarray:
    """(n_boot, n) multiplicities of each image in each bootstrap resample."""
    g = rng(seed, "bootstrap", *names)
    idx = g.integers(0, n, size=(n_boot, n))
    w = np.zeros((n_boot, n))
    np.add.at(w, (np.arange(n_boot)[:, None], idx), 1.0)
    return w


def ratio(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Pooled ratio sum(num)/sum(den) over images with its percentile bootstrap 95% CI."""
    if den.sum() == 0:
        return np.nan, np.nan, np.nan
    b = (weights @ num) / np.maximum(weights @ den, 1e-12)
    b = b[(weights @ den) > 0]
    return float(num.sum() / den.sum()), *map(float, np.percentile(b, [2.5, 97.5]))


def strip_stat(hit_in, n_in, hit_out, n_out) -> np.ndarray:
    """Strip score from per-class counts (..., K): mean_k [hit_in/n_in - hit_out/n_out] over classes with both."""
    ok = (n_in > 0) & (n_out > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(ok, hit_in / np.where(ok, n_in, 1) - hit_out / np.where(ok, n_out, 1), 0.0)
        return np.where(ok.any(-1), d.sum(-1) / ok.sum(-1), np.nan)


def strip_counts(pred: np.ndarray, strip: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per image (pred (n, T), strip (n, T, K), background (n, T)): hit_in, n_in, hit_out, n_out, each (n, K)."""
    k = strip.shape[-1]
    said = (pred[..., None] == np.arange(k)) & background[..., None]
    inside, outside = strip & background[..., None], ~strip & background[..., None]
    return ((said & inside).sum(1), inside.sum(1), (said & outside).sum(1), outside.sum(1))


def strip_permutation_p(pred: np.ndarray, strip: np.ndarray, background: np.ndarray, n_perm: int, seed: int,
                        *names) -> float:
    """p-value of the strip score against shuffling predictions among each image's background tokens."""
    obs = strip_stat(*(c.sum(0) for c in strip_counts(pred, strip, background)))
    if np.isnan(obs) or n_perm == 0:
        return np.nan
    g = rng(seed, "strip-permutation", *names)
    n, t = pred.shape
    pos = np.argsort(~background, axis=1, kind="stable")          # background cells first, in order
    null = np.empty(n_perm)
    for start in range(0, n_perm, 100):
        m = min(100, n_perm - start)
        keys = g.random((m, n, t)) + (~background)[None] * 2.0     # non-background sorted last
        order = np.argsort(keys, axis=2)
        shuffled = np.empty((m, n, t), pred.dtype)
        rows = np.arange(n)[None, :, None]
        shuffled[np.arange(m)[:, None, None], rows, pos[None]] = pred[rows, order]
        counts = [c.sum(1) for c in _strip_counts_batched(shuffled, strip, background)]
        null[start:start + m] = strip_stat(*counts)
    return float((1 + np.sum(null >= obs - 1e-12)) / (1 + n_perm))


def _strip_counts_batched(pred, strip, background):
    k = strip.shape[-1]
    inside, outside = strip & background[..., None], ~strip & background[..., None]
    said = pred[..., None] == np.arange(k)
    return ((said & inside).sum(2), inside.sum(1)[None].repeat(len(pred), 0),
            (said & outside).sum(2), outside.sum(1)[None].repeat(len(pred), 0))


def sign_flip_p(diffs: np.ndarray, n_flip: int, seed: int, *names) -> float:
    """Two-sided paired randomisation test of sum(diffs) = 0 (per-image differences, signs flipped)."""
    diffs = np.asarray(diffs, float)
    if len(diffs) == 0 or n_flip == 0:
        return np.nan
    obs = abs(diffs.sum())
    signs = rng(seed, "sign-flip", *names).choice([-1.0, 1.0], size=(n_flip, len(diffs)))
    return float((1 + np.sum(np.abs(signs @ diffs) >= obs - 1e-12)) / (1 + n_flip))


def conflict_counts(n: int, k: int) -> dict[str, np.ndarray]:
    """Per-image accumulators of conflict tokens (`add_conflicts`): their number, readings of their relative and
    of their absolute slot, and per class (n, k) the tokens whose relative / absolute slot it is and the readings
    of it (`conflict_chance`)."""
    return {key: np.zeros(n) for key in ("n", "rel", "abs")} | {key: np.zeros((n, k)) for key in ("rel_c", "abs_c",
                                                                                                "pred_c")}


def conflicts(rel: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The conflict tokens: relative slot `rel` and absolute slot `ab` both defined (>= 0) and different."""
    return (rel >= 0) & (ab >= 0) & (rel != ab)


def add_conflicts(acc: dict, rows: np.ndarray, rel: np.ndarray, ab: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Count the conflict tokens (`conflicts`) of images `rows` ((len(rows), T) slots `rel` and `ab`) with the
    probe's readings `pred`; returns the conflict mask."""
    conflict = conflicts(rel, ab)
    np.add.at(acc["n"], rows, conflict.sum(1))
    np.add.at(acc["rel"], rows, (conflict & (pred == rel)).sum(1))
    np.add.at(acc["abs"], rows, (conflict & (pred == ab)).sum(1))
    for c in range(acc["rel_c"].shape[1]):
        for key, labels in (("rel_c", rel), ("abs_c", ab), ("pred_c", pred)):
            np.add.at(acc[key][:, c], rows, (conflict & (labels == c)).sum(1))
    return conflict


def conflict_chance(acc: dict, pick) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit (`pick`), the readings of the relative and of the absolute slot that a reading independent of the
    token would give, and the contrast beyond them, relative - absolute - (their chance levels' difference). A
    token's chance is the share of all conflict-token readings that name its slot's class (the probe's own class
    shares), so the contrast is zero in expectation for a probe that does not look at the token, however lopsided
    its classes or the conflict tokens' slots."""
    q = acc["pred_c"].sum(0) / max(acc["n"].sum(), 1)
    rel, ab = pick(acc["rel_c"]) @ q, pick(acc["abs_c"]) @ q
    return rel, ab, pick(acc["rel"]) - rel - (pick(acc["abs"]) - ab)


def conflict_metrics(row: dict, prefix: str, stream: str, acc: dict, pick, w: np.ndarray, n_perm: int, seed: int,
                     *names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write the conflict tokens' metrics into `row`: `{prefix}_relative` (with its bootstrap CI) and
    `{prefix}_absolute`, each with its chance level (`_chance`), the contrast beyond chance `{prefix}_excess` and its
    two-sided sign-flip p over units (`absrel_p` for prefix "follow", else `{prefix}_absrel_p`; random stream
    `stream`). Returns the per-unit chance levels and contrast (`conflict_chance`) for the control gate's units."""
    n = pick(acc["n"])
    rel = ratio(pick(acc["rel"]), n, w)
    row[f"{prefix}_relative"], row[f"{prefix}_relative_lo"], row[f"{prefix}_relative_hi"] = rel
    row[f"{prefix}_absolute"] = ratio(pick(acc["abs"]), n, w)[0]
    chance = conflict_chance(acc, pick)
    for key, v in zip(("relative_chance", "absolute_chance", "excess"), chance):
        row[f"{prefix}_{key}"] = ratio(v, n, w)[0]
    p_key = "absrel_p" if prefix == "follow" else f"{prefix}_absrel_p"
    row[p_key] = sign_flip_p(chance[2][n > 0], n_perm, seed, *names[:2], stream, *names[2:]) if n.sum() else np.nan
    return chance


def pair_metrics(row: dict, prefix: str, stream: str, acc: dict, pick, w: np.ndarray, n_perm: int, seed: int,
                 *names) -> np.ndarray:
    """Write the fixed-cell pairs' metrics (`follow_pairs` hits and counts in `acc`) into `row`:
    `n_{prefix}_pairs`, the share `{prefix}_follow` with its bootstrap CI, and the sign-flip p of the hits beyond
    one half over units `{prefix}_follow_p` (random stream `stream`). Returns the per-unit hits beyond one half."""
    n = pick(acc["n"])
    excess = pick(acc["hit"]) - 0.5 * n
    row[f"n_{prefix}_pairs"] = int(acc["n"].sum())
    row[f"{prefix}_follow"], row[f"{prefix}_follow_lo"], row[f"{prefix}_follow_hi"] = ratio(pick(acc["hit"]), n, w)
    row[f"{prefix}_follow_p"] = (sign_flip_p(excess[n > 0], n_perm, seed, *names[:2], stream, *names[2:])
                                 if row[f"n_{prefix}_pairs"] else np.nan)
    return excess


def fixed_cell_pairs(groups: np.ndarray, rel: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, ...]:
    """The pairs `follow_pairs` compares: (i, j, t) for every conflict token (`conflicts`) of image i at cell t
    and every other image j of the same group whose token at t has label `ab[i, t]` (the cell's own slot)."""
    n = len(groups)
    i, j = np.nonzero((groups[:, None] == groups[None, :]) & ~np.eye(n, dtype=bool))
    pair, t = np.nonzero(conflicts(rel, ab)[i] & (rel[j] == ab[i]))
    return i[pair], j[pair], t


def follow_pairs(groups: np.ndarray, rel: np.ndarray, ab: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, ...]:
    """The background conflict tokens read at a fixed cell. For every conflict token (`conflicts`) of image i at
    cell t, relative slot r and absolute slot a, and every other image j of the same group (the triple's other
    layouts) whose token at t lies in a strip of slot a (the cell's own slot there; `fixed_cell_pairs`): the
    probe's evidence for r over a, log p(r) - log p(a), is compared at (i, t) and at (j, t); a hit is 1 if it is
    larger at the conflict token, 1/2 if equal. Each conflict token counts once (its hits averaged over its
    matches; without a match it is left out). Returns per image (hits, matched conflict tokens). For a
    multinomial logistic probe the evidence is linear in the token (the softmax normaliser cancels), so the
    comparison is the sign of (w_r - w_a) . (x_i - x_j): position, centring, the probe's intercepts and whatever
    else is the same at the cell in both layouts cancel exactly; only what moves with the entities can raise the
    evidence, so no code gives 1/2 in expectation and a code that follows the entities gives 1."""
    i, j, t = fixed_cell_pairs(groups, rel, ab)
    hits, count = np.zeros(rel.shape), np.zeros(rel.shape)
    if len(i):
        logp = np.log(np.maximum(proba, 1e-300))
        r, a = rel[i, t], ab[i, t]
        ei, ej = logp[i, t, r] - logp[i, t, a], logp[j, t, r] - logp[j, t, a]
        np.add.at(hits, (i, t), (ei > ej) + 0.5 * (ei == ej))
        np.add.at(count, (i, t), 1.0)
    has = count > 0
    return np.where(has, hits / np.maximum(count, 1), 0.0).sum(1), has.sum(1).astype(float)


# ------------------------------------------------------------------ one probe site
@dataclass
class ImageSet:
    """Activations of one site for one image set plus its labels; `group` is the split and bootstrap unit
    (triple for relation sets: its canonical and shifted images together; image for grids)."""
    X: np.ndarray | None   # (n, T, D); None = position-only features (one-hot grid cell)
    labels: Labels
    group: np.ndarray      # (n,)
    canonical: np.ndarray  # (n,) bool: canonical (unshifted) layout
    centre: np.ndarray | None = None   # (T, D) subtracted from every image's tokens (`centred`)

    def positions(self) -> "ImageSet":
        return ImageSet(None, self.labels, self.group, self.canonical)

    def centred(self, rows: np.ndarray, tokens: np.ndarray) -> "ImageSet":
        """The same set with each token position's mean over the `tokens` ((n, T) bool) of images `rows`
        subtracted (positions without any: the mean over all of their tokens): whatever is the same at a cell in
        every image (position embeddings, a code for the canvas third) is gone, and what is left varies with
        the layout."""
        w = np.zeros(tokens.shape, np.float64)            # weights over (image, position): no copy of X
        w[rows] = tokens[rows]
        count = w.sum(0)[:, None]
        centre = np.einsum("nt,ntd->td", w, self.X, dtype=np.float64) / np.maximum(count, 1)
        if (count == 0).any():                            # the fallback costs another pass: only when needed
            every = np.zeros(len(tokens), np.float64)
            every[rows] = 1.0 / len(rows)
            centre = np.where(count > 0, centre, np.einsum("n,ntd->td", every, self.X, dtype=np.float64))
        return ImageSet(self.X, self.labels, self.group, self.canonical, centre.astype(self.X.dtype))

    def features(self, rows: np.ndarray) -> np.ndarray:
        """The tokens of images `rows` (integer indices; a copy), centred if the set is."""
        X = np.take(self.X, rows, axis=0)
        if self.centre is not None:
            X -= self.centre
        return X


def fit_tokens(data: ImageSet, rows: np.ndarray, y: np.ndarray, C: float) -> Probe:
    """Probe on the tokens of images `rows` that have a target in y (n, T; -1: none, as every background token)."""
    mask = y[rows] >= 0
    if data.X is None:     # position-only probes do not depend on the site: fit once per label set
        cache = data.labels.__dict__.setdefault("_position_probes", {})
        key = (rows.tobytes(), y[rows][mask].tobytes(), C)
        if key not in cache:
            X = np.eye(mask.shape[1], dtype=np.float32)[np.nonzero(mask)[1]]
            cache[key] = Probe(data.labels.k, C, standardize=False).fit(X, y[rows][mask])
        return cache[key]
    return Probe(data.labels.k, C).fit(data.features(rows)[mask], y[rows][mask])


def token_proba(probe: Probe, data: ImageSet, rows: np.ndarray) -> np.ndarray:
    """(len(rows), T, K) class probabilities at every token of images `rows`."""
    t = data.labels.obj.shape[1]
    if data.X is None:                               # position-only: the same answer for every image
        return np.broadcast_to(probe.proba(np.eye(t, dtype=np.float32)), (len(rows), t, probe.k))
    X = data.features(rows)
    return probe.proba(X.reshape(-1, X.shape[-1])).reshape(len(rows), t, -1)


def analyse_site(data: ImageSet, setting: str, orientation: str, seeds: int, test_fraction: float, C: float,
                 root_seed: int, n_entities: int, n_boot: int, n_perm: int,
                 tag: tuple = ()) -> tuple[dict, np.ndarray, pd.DataFrame]:
    """All metrics of one (model, setting, orientation, site). `data` holds canonical and (optionally)
    shifted images. Returns (metrics row, heat map (K, T) = mean class probability over held-out canonical
    images, per-unit counts: one row per held-out triple / grid image with its ambiguous-token hits and count,
    strip score and relative-slot hits on conflict tokens, the units a paired comparison with a control runs on).
    Random streams depend on (setting, orientation, seed index, `tag`), not on the model, so a
    model and its untrained twin get the same splits, control labels and resamples."""
    lab, k = data.labels, data.labels.k
    positions = data.positions()
    n, t = lab.obj.shape
    canon = np.flatnonzero(data.canonical)
    shifted_any = bool((~data.canonical).any())
    acc = dict(hit=np.zeros(n), n=np.zeros(n), ctrl=np.zeros(n), pos=np.zeros(n))
    strip_c = [np.zeros((n, k)) for _ in range(4)]
    pos_strip_c = [np.zeros((n, k)) for _ in range(4)]
    amb = {key: np.zeros(n) for key in ("n", "hit", "pos", "sn", "shit", "spos", "shifted_n", "shifted_hit")}
    conf = conflict_counts(n, k) | {"pos_rel": np.zeros(n)}
    bg_conf = conflict_counts(n, k)
    pairs = dict(hit=np.zeros(n), n=np.zeros(n))
    object_pairs = dict(hit=np.zeros(n), n=np.zeros(n))
    perm_pred, perm_rows = [], []
    heat, heat_n = np.zeros((k, t)), 0

    def add_strips(rows, pred, pos_pred):
        sub = lab.take(rows)
        for acc_c, p in ((strip_c, pred), (pos_strip_c, pos_pred)):
            for a, c in zip(acc_c, strip_counts(p, sub.strip, sub.background)):
                np.add.at(a, rows, c)
        perm_pred.append(pred)
        perm_rows.append(rows)
    for s in range(seeds):
        test = split(data.group, test_fraction, root_seed, setting, s)
        tr_c, te_c = canon[~test[canon]], canon[test[canon]]
        # canonical probe, its control task and the position-only baseline
        probe = fit_tokens(data, tr_c, lab.obj, C)
        P = token_proba(probe, data, te_c)
        pred = P.argmax(-1)
        heat += P.sum(0).T
        heat_n += len(te_c)
        obj = lab.obj[te_c]
        np.add.at(acc["hit"], te_c, ((pred == obj) & (obj >= 0)).sum(1))
        np.add.at(acc["n"], te_c, (obj >= 0).sum(1))
        cmap = rng(root_seed, "control-task", setting, orientation, s).integers(0, k, size=n_entities)
        y_ctrl = np.where(lab.entity >= 0, cmap[np.maximum(lab.entity, 0)], -1)
        ctrl_pred = token_proba(fit_tokens(data, tr_c, y_ctrl, C), data, te_c).argmax(-1)
        np.add.at(acc["ctrl"], te_c, ((ctrl_pred == y_ctrl[te_c]) & (obj >= 0)).sum(1))
        pos_probe = fit_tokens(positions, tr_c, lab.obj, C)
        pos_pred = token_proba(pos_probe, positions, te_c).argmax(-1)
        np.add.at(acc["pos"], te_c, ((pos_pred == obj) & (obj >= 0)).sum(1))
        if not shifted_any:
            add_strips(te_c, pred, pos_pred)
            continue
        # shifted control: the canonical probe on shifted test images (absolute vs relative) ...
        te_s = np.flatnonzero(test & ~data.canonical)
        so = lab.obj[te_s]
        sp = token_proba(probe, data, te_s).argmax(-1)
        spp = token_proba(pos_probe, positions, te_s).argmax(-1)
        conflict = add_conflicts(conf, te_s, so, lab.absolute[te_s], sp)
        np.add.at(conf["pos_rel"], te_s, (conflict & (spp == so)).sum(1))
        # ... and a probe trained on canonical + shifted layouts, scored on position-ambiguous tokens
        tr, te = np.flatnonzero(~test), np.flatnonzero(test)
        mp = token_proba(fit_tokens(data, tr, lab.obj, C), data, te).argmax(-1)
        mpp = token_proba(fit_tokens(positions, tr, lab.obj, C), positions, te).argmax(-1)
        o, sl = lab.obj[te], lab.strip_label[te]
        a_obj = ambiguous(o, lab.obj[tr], k)
        a_strip = ambiguous(sl, lab.strip_label[tr], k)
        np.add.at(amb["shifted_n"], te, (o >= 0).sum(1))
        np.add.at(amb["shifted_hit"], te, ((mp == o) & (o >= 0)).sum(1))
        np.add.at(amb["n"], te, a_obj.sum(1))
        np.add.at(amb["hit"], te, (a_obj & (mp == o)).sum(1))
        np.add.at(amb["pos"], te, (a_obj & (mpp == o)).sum(1))
        np.add.at(amb["sn"], te, a_strip.sum(1))
        np.add.at(amb["shit"], te, (a_strip & (mp == sl)).sum(1))
        np.add.at(amb["spos"], te, (a_strip & (mpp == sl)).sum(1))
        # the strip score reads the canonical held-out images with this probe: trained where slot != cell, it
        # cannot pass the cell off as the order (a canonical-only probe can, and then misses strips)
        on_canon = data.canonical[te]
        add_strips(te[on_canon], mp[on_canon], mpp[on_canon])
        # ... and on shifted background: does the strip follow the entities or stay with the canvas third? Read
        # by the same probe refitted with each cell's training mean removed (object tokens centred on the
        # objects' mean there, background tokens on the background's), so it cannot lean on the position
        bs = te[~on_canon]
        objects_c = data.centred(tr, lab.obj >= 0)
        probe_c = fit_tokens(objects_c, tr, lab.obj, C)
        bp_all = token_proba(probe_c, data.centred(tr, lab.background), te)
        # ... which must read the objects' slot at a fixed cell, or its evidence there reads no code of theirs
        hit, m = follow_pairs(data.group[te], o, lab.absolute[te], token_proba(probe_c, objects_c, te))
        np.add.at(object_pairs["hit"], te, hit)
        np.add.at(object_pairs["n"], te, m)
        add_conflicts(bg_conf, bs, lab.strip_label[bs], lab.absolute[bs], bp_all[~on_canon].argmax(-1))
        # ... and, what claim 3 decides on, at a fixed cell: the same token in the triple's other layouts
        hit, m = follow_pairs(data.group[te], lab.strip_label[te], lab.absolute[te], bp_all)
        np.add.at(pairs["hit"], te, hit)
        np.add.at(pairs["n"], te, m)

    # bootstrap / sign-flip units: groups (a triple's canonical + shifted images; a grid image)
    units, unit_of = np.unique(data.group, return_inverse=True)
    used = np.zeros(len(units), bool)
    np.logical_or.at(used, unit_of, (acc["n"] > 0) | (amb["shifted_n"] > 0))
    keep = np.flatnonzero(used)
    w = _boot_weights(len(keep), n_boot, root_seed, setting, orientation, *tag)

    def pick(a):
        out = np.zeros((len(units),) + a.shape[1:])
        np.add.at(out, unit_of, a)
        return out[keep]
    row = dict(n_seeds=seeds, n_test_images=int((acc["n"] > 0).sum()))
    row["acc"], row["acc_lo"], row["acc_hi"] = ratio(pick(acc["hit"]), pick(acc["n"]), w)
    row["pos_acc"] = ratio(pick(acc["pos"]), pick(acc["n"]), w)[0]
    row["ctrl_acc"] = ratio(pick(acc["ctrl"]), pick(acc["n"]), w)[0]
    row["selectivity"], row["selectivity_lo"], row["selectivity_hi"] = ratio(
        pick(acc["hit"] - acc["ctrl"]), pick(acc["n"]), w)
    row["selectivity_p"] = sign_flip_p(pick(acc["hit"] - acc["ctrl"]), n_perm, root_seed, setting, orientation, *tag)
    sc = [pick(a) for a in strip_c]
    row["strip_in"] = float(np.nanmean(np.where(sc[1].sum(0) > 0, sc[0].sum(0) / np.maximum(sc[1].sum(0), 1), np.nan)))
    row["strip_out"] = float(np.nanmean(np.where(sc[3].sum(0) > 0, sc[2].sum(0) / np.maximum(sc[3].sum(0), 1), np.nan)))
    row["strip_score"] = float(strip_stat(*(a.sum(0) for a in sc)))
    boot = strip_stat(*(np.einsum("bn,nk->bk", w, a) for a in sc))
    boot = boot[~np.isnan(boot)]
    row["strip_lo"], row["strip_hi"] = (map(float, np.percentile(boot, [2.5, 97.5])) if len(boot) else (np.nan, np.nan))
    rows_p = np.concatenate(perm_rows)
    row["strip_p"] = strip_permutation_p(np.concatenate(perm_pred), lab.strip[rows_p], lab.background[rows_p],
                                         n_perm, root_seed, setting, orientation, *tag)
    row["pos_strip_score"] = float(strip_stat(*(pick(a).sum(0) for a in pos_strip_c)))
    row["strip_probe"] = "canonical+shifted" if shifted_any else "canonical"
    notes = []
    row["shifted_acc"] = ratio(pick(amb["shifted_hit"]), pick(amb["shifted_n"]), w)[0] if shifted_any else np.nan
    row["n_ambiguous"] = int(amb["n"].sum())
    row["ambiguous_acc"], row["ambiguous_lo"], row["ambiguous_hi"] = ratio(pick(amb["hit"]), pick(amb["n"]), w)
    row["pos_ambiguous_acc"] = ratio(pick(amb["pos"]), pick(amb["n"]), w)[0]
    row["n_ambiguous_strip"] = int(amb["sn"].sum())
    row["ambiguous_strip_acc"], row["ambiguous_strip_lo"], row["ambiguous_strip_hi"] = ratio(
        pick(amb["shit"]), pick(amb["sn"]), w)
    row["pos_ambiguous_strip_acc"] = ratio(pick(amb["spos"]), pick(amb["sn"]), w)[0]
    if row["n_ambiguous"] == 0:
        notes.append(UNDEFINED_AMBIGUOUS)
    row["n_conflict"] = int(conf["n"].sum())
    conf_chance = conflict_metrics(row, "follow", "absrel", conf, pick, w, n_perm, root_seed, setting, orientation,
                                   *tag)
    row["pos_follow_relative"] = ratio(pick(conf["pos_rel"]), pick(conf["n"]), w)[0]
    if row["n_conflict"] == 0:
        notes.append(UNDEFINED_CONFLICT)
    row["n_strip_conflict"] = int(bg_conf["n"].sum())
    bg_chance = conflict_metrics(row, "strip", "strip-absrel", bg_conf, pick, w, n_perm, root_seed, setting,
                                 orientation, *tag)
    if shifted_any and row["n_strip_conflict"] == 0:
        notes.append(UNDEFINED_STRIP_CONFLICT)
    pair_excess = pair_metrics(row, "strip", "strip-follow", pairs, pick, w, n_perm, root_seed, setting, orientation,
                               *tag)
    pair_metrics(row, "object", "object-follow", object_pairs, pick, w, n_perm, root_seed, setting, orientation, *tag)
    row["note"] = "; ".join(notes)
    units_df = pd.DataFrame(dict(unit=units[keep], amb_hit=pick(amb["hit"]), amb_n=pick(amb["n"]),
                                 strip_score=strip_stat(*sc), conf_rel=pick(conf["rel"]), conf_abs=pick(conf["abs"]),
                                 conf_rel_chance=conf_chance[0], conf_abs_chance=conf_chance[1],
                                 conf_excess=conf_chance[2], conf_n=pick(conf["n"]), strip_rel=pick(bg_conf["rel"]),
                                 strip_abs=pick(bg_conf["abs"]), strip_rel_chance=bg_chance[0],
                                 strip_abs_chance=bg_chance[1], strip_excess=bg_chance[2],
                                 strip_conf_n=pick(bg_conf["n"]), strip_follow_excess=pair_excess,
                                 strip_follow_n=pick(pairs["n"])))
    return row, heat / max(heat_n, 1), units_df


# ------------------------------------------------------------------ one (model, setting): every orientation x site
def holm_by(df: pd.DataFrame, column: str, by: list[str]) -> pd.Series:
    from .stats import holm
    out = pd.Series(np.nan, index=df.index)
    for _, g in df.groupby(by, sort=False):
        out[g.index] = holm(g[column].to_numpy())
    return out


def relation_set(table: pd.DataFrame, index: pd.DataFrame, geometry: Geometry, orientation: str,
                 entity_ids: dict[str, int], strip_width: int | None) -> tuple[pd.DataFrame, Labels]:
    """One row per image of `orientation` in store-row order, with its labels."""
    imgs = table[table["orientation"] == orientation].drop_duplicates("image")
    imgs = index[["image", "row"]].merge(imgs, on="image", how="inner", validate="one_to_one").sort_values("row")
    if len(imgs) != len(table[table["orientation"] == orientation]["image"].unique()):
        raise ValueError("the activation store does not index every image of the stimulus table (stale store?)")
    return imgs.reset_index(drop=True), relation_labels(imgs, geometry, orientation, entity_ids, strip_width)


@dataclass
class ProbeImages:
    """The images of one (setting, orientation) that the probes see, across their activation stores: labels,
    split unit, canonical flag, and where each image's activations are (`parts`: (store, rows) in order)."""
    labels: Labels
    group: np.ndarray
    canonical: np.ndarray
    parts: list
    n_entities: int

    def at(self, site: str) -> ImageSet:
        """The activations of `site` for every image."""
        X = np.concatenate([store.load([site])[site][r] for store, r in self.parts])
        return ImageSet(X, self.labels, self.group, self.canonical)


def probe_images(setting: str, geometry: Geometry, orientation: str, canonical: tuple, shifted: tuple | None,
                 strip_width: int | None) -> ProbeImages:
    """The probe set of one setting and orientation: canonical = (stimulus table, ActivationStore); shifted: the
    same for the shifted layouts (relation settings; None where there are none). Relation sets group an image
    with its triple's other images (canonical and shifted); grid and What'sUp images are their own group."""
    table, store = canonical
    index = store.index()
    if setting == "whatsup":     # composites: slot regions from the per-reference boxes (App C.7)
        imgs = index[["image", "row"]].merge(table.drop_duplicates("image"), on="image",
                                             validate="one_to_one").sort_values("row").reset_index(drop=True)
        ids = {e: i for i, e in enumerate(sorted(set(imgs[["e0", "e1", "e2"]].to_numpy().ravel())))}
        return ProbeImages(whatsup_labels(imgs, geometry, ids), np.arange(len(imgs)), np.ones(len(imgs), bool),
                           [(store, imgs["row"].to_numpy())], len(ids))
    if setting.startswith("grid"):
        imgs = index[["image", "row"]].merge(table, on="image", validate="one_to_one").sort_values("row")
        ids = {e: i for i, e in enumerate(sorted({c["entity"] for cells in imgs["cells"] for c in json.loads(cells)}))}
        return ProbeImages(grid_labels(imgs, geometry, orientation, ids, strip_width), np.arange(len(imgs)),
                           np.ones(len(imgs), bool), [(store, imgs["row"].to_numpy())], len(ids))
    tables = [table] + ([shifted[0]] if shifted is not None else [])
    ids = {e: i for i, e in enumerate(sorted(set().union(*(set(t[["e0", "e1", "e2"]].to_numpy().ravel())
                                                           for t in tables))))}
    imgs, labels = relation_set(table, index, geometry, orientation, ids, strip_width)
    group, canon = imgs["triple"].to_numpy(), np.ones(len(imgs), bool)
    parts = [(store, imgs["row"].to_numpy())]
    if shifted is not None and len(shifted[0]):
        s_table, s_store = shifted
        s_imgs, s_labels = relation_set(s_table, s_store.index(), geometry, orientation, ids, strip_width)
        labels = Labels.concat([labels, s_labels])
        group = np.concatenate([group, s_imgs["triple"].to_numpy()])
        canon = np.concatenate([canon, np.zeros(len(s_imgs), bool)])
        parts.append((s_store, s_imgs["row"].to_numpy()))
    return ProbeImages(labels, group, canon, parts, len(ids))


def probe_setting(setting: str, geometry: Geometry, canonical: dict, shifted: dict, cfg: dict, root_seed: int,
                  log=None) -> tuple[pd.DataFrame, dict[str, np.ndarray], pd.DataFrame]:
    """Every orientation x site of one model on one setting.

    canonical / shifted: orientation -> (stimulus table, ActivationStore); for grid settings `canonical`
    maps both orientations to the same (table, store) and `shifted` is empty.
    cfg: the `probing` config section. Returns (metrics, arrays for the heat-map file, per-unit counts of every
    orientation x site: `analyse_site`'s units)."""
    rows, arrays, units = [], {}, []
    for orientation, (table, store) in canonical.items():
        images = probe_images(setting, geometry, orientation, (table, store), shifted.get(orientation),
                              cfg["strip_width"])
        labels, canon = images.labels, images.canonical
        shifts = sorted(set(shifted[orientation][0]["shift"])) if orientation in shifted else []
        n = geometry.grid
        first = np.flatnonzero(canon)[0]
        arrays[f"{orientation}/objects"] = labels.obj[first].reshape(n, n).astype(np.int32)
        for depth, site in enumerate(store.sites()):
            row, heat, per_unit = analyse_site(images.at(site), setting, orientation, cfg["seeds"],
                                               cfg["test_fraction"], cfg["C"], root_seed, images.n_entities,
                                               cfg["bootstrap"], cfg["permutations"], tag=(site,))
            units.append(per_unit.assign(setting=setting, orientation=orientation, site=site))
            rows.append(dict(setting=setting, orientation=orientation, site=site, depth=depth,
                             shifts=",".join(f"{k:+d}" for k in shifts)) | row)
            arrays[f"{orientation}/{site}"] = heat.reshape(labels.k, n, n).astype(np.float32)
            if log:
                log.info("%s %s %-14s acc %.3f pos %.3f strip %.3f ambiguous %s (n=%d)", setting, orientation, site,
                         row["acc"], row["pos_acc"], row["strip_score"],
                         f"{row['ambiguous_acc']:.3f}" if row["n_ambiguous"] else "undefined", row["n_ambiguous"])
    metrics = pd.DataFrame(rows)
    metrics.insert(metrics.columns.get_loc("strip_p") + 1, "strip_p_holm",
                   holm_by(metrics, "strip_p", ["setting", "orientation"]))
    units = pd.concat(units, ignore_index=True)
    return metrics, arrays, units[["setting", "orientation", "site", *[c for c in units if c not in
                                                                     ("setting", "orientation", "site")]]]


# ------------------------------------------------------------------ the probe table
TABLE_COLUMNS = ["model", "setting", "orientation", "site", "depth", "acc", "acc_lo", "acc_hi", "pos_acc",
                 "ambiguous_acc", "ambiguous_lo", "ambiguous_hi", "pos_ambiguous_acc", "strip_score", "strip_lo",
                 "strip_hi", "strip_p", "strip_p_holm", "selectivity", "selectivity_lo",
                 "selectivity_hi", "selectivity_p", "follow_relative", "follow_absolute", "strip_relative",
                 "strip_absolute", "object_follow", "object_follow_lo", "object_follow_hi", "object_follow_p",
                 "strip_follow", "strip_follow_lo", "strip_follow_hi", "strip_follow_p", "note"]
SHORT_NOTES = {UNDEFINED_AMBIGUOUS: "fixed layout: no ambiguous tokens",
               UNDEFINED_CONFLICT: "no shifted control",
               UNDEFINED_STRIP_CONFLICT: "no background conflict tokens"}


def probe_table(metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(long table: the headline columns first, then every other metric; display table: formatted cells)."""
    long = metrics[TABLE_COLUMNS + [c for c in metrics.columns if c not in TABLE_COLUMNS]].reset_index(drop=True)

    def ci(v, lo, hi):
        return "n/a" if not np.isfinite(v) else f"{v:.2f} [{lo:.2f}, {hi:.2f}]"

    def num(v, fmt=".2f"):
        return "n/a" if not np.isfinite(v) else format(v, fmt)

    def pval(p, holm):
        return "n/a" if not np.isfinite(p) else f"{p:.3f} ({holm:.3f})"

    def with_pos(cells, pos):                     # text cells: Markdown renderers must not re-format numbers
        return [c if c == "n/a" else f"{c} / {num(p)}" for c, p in zip(cells, pos)]

    display = pd.DataFrame({
        "Model": long["model"], "Setting": long["setting"], "Orientation": long["orientation"],
        "Site": long["site"],
        "Acc [95% CI] / position-only": with_pos([ci(*r) for r in long[["acc", "acc_lo", "acc_hi"]].to_numpy()],
                                                 long["pos_acc"]),
        "Ambiguous acc [95% CI] / position-only": with_pos(
            [ci(*r) for r in long[["ambiguous_acc", "ambiguous_lo", "ambiguous_hi"]].to_numpy()],
            long["pos_ambiguous_acc"]),
        "Strip score [95% CI]": [ci(*r) for r in long[["strip_score", "strip_lo", "strip_hi"]].to_numpy()],
        "Strip p (Holm)": [pval(*r) for r in long[["strip_p", "strip_p_holm"]].to_numpy()],
        "Selectivity [95% CI], p": [c if c == "n/a" else f"{c}, p={num(p, '.3f')}" for c, p in zip(
            [ci(*r) for r in long[["selectivity", "selectivity_lo", "selectivity_hi"]].to_numpy()],
            long["selectivity_p"])],
        "Relative / absolute": [f"{num(r)} / {num(a)}" for r, a in long[["follow_relative", "follow_absolute"]].to_numpy()],
        "Background relative / absolute": [f"{num(r)} / {num(a)}"
                                           for r, a in long[["strip_relative", "strip_absolute"]].to_numpy()],
        "Objects at a fixed cell [95% CI], p": [c if c == "n/a" else f"{c}, p={num(p, '.3f')}" for c, p in zip(
            [ci(*r) for r in long[["object_follow", "object_follow_lo", "object_follow_hi"]].to_numpy()],
            long["object_follow_p"])],
        "Background at a fixed cell [95% CI], p": [c if c == "n/a" else f"{c}, p={num(p, '.3f')}" for c, p in zip(
            [ci(*r) for r in long[["strip_follow", "strip_follow_lo", "strip_follow_hi"]].to_numpy()],
            long["strip_follow_p"])],
        "Note": long["note"].map(lambda note: "; ".join(SHORT_NOTES.get(n, n) for n in note.split("; ") if n)),
    })
    return long, display
