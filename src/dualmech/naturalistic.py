"""Naturalistic data sets, read from local directories named in config.yaml (nothing is downloaded here).

* **What'sUp** controlled images (Kamath et al. 2023; paper §3.5): photos `<obj>_left_of_<ref>.jpeg` /
  `<obj>_right_of_<ref>.jpeg` for the references chair, table and armchair. A stimulus is a composite: both
  photos resized to the canvas (bilinear), the left half of "<L>_left_of_<ref>" next to the right half of
  "<R>_right_of_<ref>", so the reference sits in the middle with one side object on each side. Known label
  errors are corrected through `WHATSUP_ERRATA` (the pillow/chair pair is swapped, whatsup_vlms issue #4).
* **COCO-spatial two-object** questions (paper §3.6): `coco_qa_two_obj.json` (a list of
  `[image_id, correct caption, distractor caption]`), COCO val2017 images `val2017/<id:012d>.jpg` and boxes
  from `annotations/instances_val2017.json`.

Layouts expected (the `download_whatsup` / `download_coco` rules create them):

    whatsup_dir/controlled_images/<obj>_{left,right}_of_<ref>.jpeg     (or the .jpeg files directly)
    coco_dir/coco_qa_two_obj.json
    coco_dir/annotations/instances_val2017.json
    coco_dir/val2017/000000xxxxxx.jpg

`check_*_dir` are the cheap checks run when the workflow is parsed (before any job); the loaders check the
rest before any model is loaded. Every problem raises `DataError` naming the offending file.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .stimuli import PREPOSITIONS, TEMPLATES, Geometry

WHATSUP_REFERENCES = ("chair", "table", "armchair")
# (object, reference) -> what is wrong with the published files. "swapped": the photo named
# <obj>_left_of_<ref> shows the object on the right and vice versa.
WHATSUP_ERRATA: dict[tuple[str, str], str] = {("pillow", "chair"): "swapped"}
WHATSUP_TEMPLATE = TEMPLATES["whatsup"].replace("{mention}", "{reference}")


def whatsup_directions(directions) -> list[str]:
    """The configured directions a What'sUp composite can be asked about: the photos are horizontal."""
    return [d for d in directions if d in ("left", "right")]

class DataError(ValueError):
    """Missing or malformed naturalistic data; the message names the file."""


# Hand-made object boxes per reference (paper §3.5), (row0, row1, col0, col1) in units of 1/64 of the image,
# for the left object, the reference (middle) and the right object: config/whatsup_regions.yaml.
WHATSUP_REGIONS = Path(__file__).resolve().parents[2] / "config" / "whatsup_regions.yaml"


def _load_boxes(path: Path = WHATSUP_REGIONS) -> dict[str, tuple[tuple[int, ...], ...]]:
    import yaml
    data = yaml.safe_load(path.read_text())
    if data.get("units") != 64:
        raise DataError(f"{path}: expected units: 64")
    return {ref: tuple(tuple(b[k]) for k in ("left", "reference", "right")) for ref, b in data["boxes"].items()}


WHATSUP_BOXES = _load_boxes()
_WHATSUP_FILE = re.compile(r"^([^_]+)_(left_of|right_of)_([^_.]+)\.jpe?g$", re.IGNORECASE)

COCO_QUESTIONS = "coco_qa_two_obj.json"
COCO_INSTANCES = "annotations/instances_val2017.json"
COCO_IMAGES = "val2017"
_CAPTION = re.compile(r"^\s*a photo of (?:(?:an?|the) )?(?P<subj>.+?) (?P<rel>to the left of|to the right of|above|below) "
                      r"(?:(?:an?|the) )?(?P<obj>.+?)\s*\.?\s*$", re.IGNORECASE)
_RELATION = {"to the left of": "left", "to the right of": "right", "above": "above", "below": "below"}
AXIS_OF = {"left": "horizontal", "right": "horizontal", "above": "vertical", "below": "vertical"}
AXIS_WORDS = {"horizontal": ("left", "right"), "vertical": ("above", "below")}
# COCO question styles (paper §4.2); each has two orderings of the answer options (§4.5).
COCO_PROMPTS = {
    "anchored": {   # Qwen2-VL-2B, Pixtral: reference-anchored
        "horizontal": ("Using the {obj} as the reference point, which side is the {subj} on? Answer with one word: "
                       "{a} or {b}."),
        "vertical": ("Using the {obj} as the reference point, where is the {subj} located? Answer with one word: "
                     "{a} or {b}."),
    },
    "direct": {     # Gemma-3-4b
        "horizontal": "Is the {subj} to the {a} or to the {b} of the {obj}? Answer with one word.",
        "vertical": "Is the {subj} {a} or {b} the {obj}? Answer with one word.",
    },
}


# ------------------------------------------------------------------ What'sUp
def whatsup_image_dir(whatsup_dir: Path | str) -> Path:
    root = Path(whatsup_dir)
    if not root.is_dir():
        raise DataError(f"data.whatsup_dir: {root} is not a directory (run `snakemake download_whatsup` or point "
                        f"data.whatsup_dir at the What'sUp data)")
    sub = root / "controlled_images"
    return sub if sub.is_dir() else root


def whatsup_index(whatsup_dir: Path | str) -> dict[str, dict[str, dict[str, Path]]]:
    """reference -> object -> {"left": photo with the object on the left, "right": ... on the right}.

    Only objects with both photos are kept; errata are applied (a swapped pair exchanges its two files)."""
    image_dir = whatsup_image_dir(whatsup_dir)
    index: dict[str, dict[str, dict[str, Path]]] = {}
    for f in sorted(image_dir.iterdir()):
        m = _WHATSUP_FILE.match(f.name)
        if not m or m.group(3).lower() not in WHATSUP_REFERENCES:
            continue
        obj, rel, ref = m.group(1).lower(), m.group(2).lower(), m.group(3).lower()
        index.setdefault(ref, {}).setdefault(obj, {})["left" if rel == "left_of" else "right"] = f
    for ref, objs in index.items():
        for obj in list(objs):
            if set(objs[obj]) != {"left", "right"}:
                del objs[obj]
            elif WHATSUP_ERRATA.get((obj, ref)) == "swapped":
                objs[obj] = {"left": objs[obj]["right"], "right": objs[obj]["left"]}
    return {ref: objs for ref, objs in sorted(index.items()) if len(objs) >= 2}


def check_whatsup_dir(whatsup_dir: Path | str) -> dict:
    """Cheap check at workflow parse time: usable photos exist and their headers decode."""
    index = whatsup_index(whatsup_dir)
    if not index:
        raise DataError(f"data.whatsup_dir: no usable What'sUp controlled images in {whatsup_image_dir(whatsup_dir)} "
                        f"(need <obj>_left_of_<ref>.jpeg and <obj>_right_of_<ref>.jpeg for at least two objects of "
                        f"a reference in {WHATSUP_REFERENCES})")
    for objs in index.values():
        for paths in objs.values():
            for p in paths.values():
                _open(p)
    return {ref: len(objs) for ref, objs in index.items()}


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
        img.size  # noqa: B018  (header decoded)
        return img
    except Exception as e:  # PIL raises several types for broken files
        raise DataError(f"{path}: not a readable image ({e})") from e


def _load_rgb(path: Path) -> Image.Image:
    try:
        return Image.open(path).convert("RGB")
    except Exception as e:
        raise DataError(f"{path}: not a readable image ({e})") from e


def whatsup_composite(left_photo: Image.Image, right_photo: Image.Image, size: int) -> Image.Image:
    """Left half of `left_photo` + right half of `right_photo`, both resized to size x size (bilinear)."""
    a = np.asarray(left_photo.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    b = np.asarray(right_photo.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    half = size // 2
    return Image.fromarray(np.concatenate([a[:, :half], b[:, half:]], axis=1))


def box_cells(box: tuple[float, float, float, float], grid) -> list[int]:
    """Row-major grid cells whose centre lies inside a box (y0, y1, x0, x1) given as fractions of the image.

    `grid` is N (an N x N grid) or (rows, cols)."""
    rows_n, cols_n = (grid, grid) if isinstance(grid, int) else grid
    y0, y1, x0, x1 = box
    rows = [r for r in range(rows_n) if y0 <= (r + 0.5) / rows_n <= y1]
    cols = [c for c in range(cols_n) if x0 <= (c + 0.5) / cols_n <= x1]
    return [r * cols_n + c for r in rows for c in cols]


def whatsup_slot_cells(reference: str, grid: int) -> list[list[int]]:
    """Grid cells of the left object, the reference and the right object from the hand-made boxes."""
    return [box_cells((r0 / 64, r1 / 64, c0 / 64, c1 / 64), grid) for r0, r1, c0, c1 in WHATSUP_BOXES[reference]]


WHATSUP_COLUMNS = ["item", "setting", "direction", "orientation", "reference", "e0", "e1", "e2", "answer", "prompt",
                   "cells", "image", "image_sha256"]


def whatsup_swap_regions(reference: str, grid: int, kind: str) -> tuple[list[int], list[int]]:
    """Grid cells (a, b) swapped cell by cell by the What'sUp criss-cross (config/whatsup_regions.yaml):
    kind "object" = the left and right object boxes, "strip" = the full-height columns left of the reference
    box and those right of it. The two regions pair by the column shift that maps the first onto the second,
    over the cells both contain."""
    left, ref, right = WHATSUP_BOXES[reference]
    centres = (np.arange(grid) + 0.5) / grid
    if kind == "object":
        a, b = box_cells(tuple(v / 64 for v in left), grid), box_cells(tuple(v / 64 for v in right), grid)
    elif kind == "strip":
        a = [r * grid + c for r in range(grid) for c in range(grid) if centres[c] < ref[2] / 64]
        b = [r * grid + c for r in range(grid) for c in range(grid) if centres[c] > ref[3] / 64]
    else:
        raise ValueError(f"unknown region kind {kind!r}; expected object or strip")
    if not a or not b:
        raise DataError(f"{WHATSUP_REGIONS}: the {kind} regions of '{reference}' cover no cell of a {grid}x{grid} grid")
    shift = min(c % grid for c in b) - min(c % grid for c in a)
    b_set = set(b)
    pairs = [(c, c + shift) for c in a if c + shift in b_set and (c % grid) + shift < grid]
    return [p for p, _ in pairs], [q for _, q in pairs]


def whatsup_items(whatsup_dir: Path | str, geometry: Geometry, out_dir: Path,
                  known: Callable[[str], bool] = lambda w: True, max_items: int | None = None,
                  seed: int = 0, strict: bool = True) -> pd.DataFrame:
    """Composite What'sUp items, one row per (reference, target, distractor, direction) (paper §3.5).

    `known(word)` filters side objects to words the model can answer in one token. `max_items` keeps a
    seeded random subset of the composites (both directions of a kept composite stay together). When no
    composite is left, `strict` raises `DataError`; otherwise an empty table (with the columns) is returned."""
    from .seeding import rng
    index = whatsup_index(whatsup_dir)
    size = geometry.canvas_px
    composites = []
    for ref, objs in index.items():
        names = [o for o in objs if known(o)]
        composites += [(ref, a, b) for a in names for b in names if a != b]
    if max_items is not None and 2 * len(composites) > max_items:
        keep = np.sort(rng(seed, "whatsup-subset").choice(len(composites), size=max_items // 2, replace=False))
        composites = [composites[i] for i in keep]
    rows = []
    for k, (ref, left, right) in enumerate(composites):
        rel = f"whatsup/{k:05d}.png"
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        whatsup_composite(_load_rgb(index[ref][left]["left"]), _load_rgb(index[ref][right]["right"]),
                          size).save(path, format="PNG")
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        cells = whatsup_slot_cells(ref, geometry.grid)
        for direction, answer in (("left", left), ("right", right)):
            rows.append(dict(item=f"whatsup-{direction}-{k:05d}", setting="whatsup", direction=direction,
                             orientation="horizontal", reference=ref, e0=left, e1=ref, e2=right, answer=answer,
                             prompt=WHATSUP_TEMPLATE.format(prep=PREPOSITIONS[direction], reference=ref),
                             cells=json.dumps(cells), image=rel, image_sha256=sha))
    if not rows and strict:
        raise DataError(f"{whatsup_image_dir(whatsup_dir)}: no What'sUp composite left after keeping side objects "
                        f"the model can name in one token")
    return pd.DataFrame(rows, columns=WHATSUP_COLUMNS)


# ------------------------------------------------------------------ COCO-spatial
def _coco_paths(coco_dir: Path | str) -> tuple[Path, Path, Path]:
    root = Path(coco_dir)
    if not root.is_dir():
        raise DataError(f"data.coco_dir: {root} is not a directory (run `snakemake download_coco` or point "
                        f"data.coco_dir at the COCO-spatial data)")
    return root / COCO_QUESTIONS, root / COCO_INSTANCES, root / COCO_IMAGES


def _read_json(path: Path):
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e


def parse_caption(caption: str) -> tuple[str, str, str] | None:
    """"A photo of a dog to the left of a chair" -> ("dog", "left", "chair"); None if it does not parse."""
    m = _CAPTION.match(caption)
    if not m:
        return None
    return m.group("subj").strip().lower(), _RELATION[m.group("rel").lower()], m.group("obj").strip().lower()


def coco_questions(coco_dir: Path | str) -> pd.DataFrame:
    """The two-object questions: one row per parseable entry (image_id, subj, relation, obj, axis)."""
    qpath, _, _ = _coco_paths(coco_dir)
    data = _read_json(qpath)
    if not isinstance(data, list) or not data:
        raise DataError(f"{qpath}: expected a non-empty JSON list of [image_id, correct caption, distractor caption]")
    rows = []
    for i, entry in enumerate(data):
        if (not isinstance(entry, list) or len(entry) < 2 or not isinstance(entry[1], str)
                or not str(entry[0]).isdigit()):
            raise DataError(f"{qpath}: entry {i} is {entry!r}, expected [image_id, correct caption, distractor caption]")
        parsed = parse_caption(entry[1])
        if parsed is None:
            continue
        subj, relation, obj = parsed
        rows.append(dict(index=i, image_id=int(entry[0]), subj=subj, relation=relation, obj=obj,
                         axis=AXIS_OF[relation], caption=entry[1]))
    if not rows:
        raise DataError(f"{qpath}: no caption parses as 'A photo of <subj> <to the left of|to the right of|above|"
                        f"below> <obj>'")
    return pd.DataFrame(rows)


def check_coco_dir(coco_dir: Path | str) -> int:
    """Cheap check at workflow parse time: questions parse, the instances file and every image exist."""
    qs = coco_questions(coco_dir)
    _, ipath, image_dir = _coco_paths(coco_dir)
    if not ipath.is_file():
        raise DataError(f"{ipath}: file is missing (COCO val2017 instances annotations)")
    if not image_dir.is_dir():
        raise DataError(f"{image_dir}: directory is missing (COCO val2017 images)")
    missing = [str(coco_image_path(coco_dir, i)) for i in sorted(set(qs["image_id"]))
               if not coco_image_path(coco_dir, i).is_file()]
    if missing:
        raise DataError(f"{len(missing)} COCO image(s) named in {COCO_QUESTIONS} are missing, e.g. {missing[:3]}")
    return len(qs)


def coco_image_path(coco_dir: Path | str, image_id: int) -> Path:
    return Path(coco_dir) / COCO_IMAGES / f"{int(image_id):012d}.jpg"


def coco_boxes(coco_dir: Path | str, image_ids) -> dict[int, dict]:
    """image_id -> {"width", "height", "boxes": {category name: largest-area [x, y, w, h]}} from the instances file."""
    _, ipath, _ = _coco_paths(coco_dir)
    data = _read_json(ipath)
    if not isinstance(data, dict) or not all(k in data for k in ("images", "annotations", "categories")):
        raise DataError(f"{ipath}: expected a COCO instances file with 'images', 'annotations' and 'categories'")
    wanted = {int(i) for i in image_ids}
    try:
        names = {c["id"]: c["name"].lower() for c in data["categories"]}
        out = {int(im["id"]): dict(width=int(im["width"]), height=int(im["height"]), boxes={})
               for im in data["images"] if int(im["id"]) in wanted}
        best: dict[tuple[int, str], float] = {}
        for a in data["annotations"]:
            iid = int(a["image_id"])
            if iid not in out:
                continue
            x, y, w, h = (float(v) for v in a["bbox"])
            key = (iid, names[a["category_id"]])
            if w * h > best.get(key, -1.0):
                best[key] = w * h
                out[iid]["boxes"][key[1]] = [x, y, w, h]
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{ipath}: malformed COCO instances entry ({type(e).__name__}: {e})") from e
    missing = sorted(wanted - set(out))
    if missing:
        raise DataError(f"{ipath}: no entry for image id(s) {missing[:5]} used by {COCO_QUESTIONS}")
    return out


def coco_box_cells(box_xywh, width: int, height: int, grid) -> list[int]:
    """Grid cells of a COCO box on the token grid the image is seen on (N, a square canvas the image is resized to
    without preserving its aspect, or (rows, cols) at dynamic resolution): the cells whose centre lies inside."""
    x, y, w, h = box_xywh
    return box_cells((y / height, (y + h) / height, x / width, (x + w) / width), grid)


def centroid(cells: list[int], grid) -> tuple[float, float]:
    cols = grid if isinstance(grid, int) else grid[1]
    rc = np.array([divmod(c, cols) for c in cells], dtype=float)
    return float(rc[:, 0].mean()), float(rc[:, 1].mean())


BOX_STATUS = ("ok", "missing box", "box covers no token", "side check failed")


def coco_items(coco_dir: Path | str, geometry: Geometry, out_dir: Path, style: str = "anchored",
               native_grid: Callable[[int, int], tuple[int, int]] | None = None) -> pd.DataFrame:
    """One row per (question, option ordering) (paper §4.5).

    Images are seen either on the model's square canvas (resized, not aspect-preserving: fixed-resolution
    families) or, with `native_grid(width, height) -> (rows, cols)`, at the model's dynamic resolution (the
    photo is kept as it is and the model's processor resizes it, as the authors run Qwen2-VL-2B; paper §5.7).
    `cells` lists the grid cells of the object that is left/above (class 0) and of the other one (class 1)
    from the largest-area COCO box of each label, on that grid (`grid_rows` x `grid_cols`). `box_status` says
    why an item gives no probe rows (`probe_ok` False): a label without a box ("missing box"), a box no token
    centre falls in, or token centroids that contradict the caption ("side check failed", paper §5.7). Such
    items are still asked."""
    if style not in COCO_PROMPTS:
        raise ValueError(f"unknown COCO prompt style {style!r}; expected one of {sorted(COCO_PROMPTS)}")
    qs = coco_questions(coco_dir)
    meta = coco_boxes(coco_dir, qs["image_id"].unique())
    size = geometry.canvas_px
    written: dict[int, tuple[str, tuple[int, int]]] = {}
    rows = []
    for q in qs.itertuples():
        m = meta[q.image_id]
        if q.image_id not in written:
            rel = f"coco/{q.image_id:012d}.png"
            path = out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            img = _load_rgb(coco_image_path(coco_dir, q.image_id))
            if native_grid is None:
                img, grid = img.resize((size, size), Image.Resampling.BILINEAR), (geometry.grid, geometry.grid)
            else:
                grid = tuple(int(v) for v in native_grid(*img.size))
            img.save(path, format="PNG")
            written[q.image_id] = rel, grid
        rel, grid = written[q.image_id]
        subj_box, obj_box = m["boxes"].get(q.subj), m["boxes"].get(q.obj)
        subj_cells = coco_box_cells(subj_box, m["width"], m["height"], grid) if subj_box else []
        obj_cells = coco_box_cells(obj_box, m["width"], m["height"], grid) if obj_box else []
        first_is_subj = q.relation in ("left", "above")
        cells = [subj_cells, obj_cells] if first_is_subj else [obj_cells, subj_cells]
        if subj_box is None or obj_box is None:
            status = "missing box"
        elif not (subj_cells and obj_cells):
            status = "box covers no token"
        else:
            k = 1 if q.axis == "horizontal" else 0
            status = "ok" if centroid(cells[0], grid)[k] < centroid(cells[1], grid)[k] else "side check failed"
        words = AXIS_WORDS[q.axis]
        for order, (a, b) in (("ab", words), ("ba", words[::-1])):
            rows.append(dict(item=f"coco-{q.index:04d}", query=order, setting="coco", direction=q.relation,
                             orientation=q.axis, image_id=q.image_id, subj=q.subj, obj=q.obj, answer=q.relation,
                             prompt=COCO_PROMPTS[style][q.axis].format(subj=q.subj, obj=q.obj, a=a, b=b),
                             cells=json.dumps(cells), probe_ok=status == "ok", box_status=status,
                             allowed=json.dumps(list(words)), image=rel, native=native_grid is not None,
                             grid_rows=grid[0], grid_cols=grid[1], style=style))
    return pd.DataFrame(rows)


OPPOSITE_RELATION = {"left": "right", "right": "left", "above": "below", "below": "above"}
COCO_CONTROLS = ("shuffle", "swap")


def coco_controls(items: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The authors' two sanity controls as extra queries of every COCO item, both orderings:

    * ``shuffle``: the same question about another photo (a seeded derangement over items, never the same
      image), scored against the original answer: without the right image the model should fall to chance;
    * ``swap``: subject and object exchanged on the same photo ("Is the cat ... of the dog?"), scored against
      the opposite relation: a model that reads the layout flips its answer.

    Rows keep the item id and gain `control`; a shuffled row takes the donor's image, grid and cells."""
    from .seeding import rng
    first = items.drop_duplicates("item").reset_index(drop=True)
    order = rng(seed, "coco-controls-shuffle").permutation(len(first))
    donor = {}
    for k, i in enumerate(order):
        for step in range(1, len(order)):
            j = order[(k + step) % len(order)]
            if first.at[j, "image_id"] != first.at[i, "image_id"]:
                donor[first.at[i, "item"]] = first.iloc[j]
                break
    out = []
    for r in items.itertuples(index=False):
        row = r._asdict()
        a, b = json.loads(r.allowed) if r.query == "ab" else json.loads(r.allowed)[::-1]
        swap = dict(row, control="swap", answer=OPPOSITE_RELATION[r.answer], direction=OPPOSITE_RELATION[r.answer],
                    subj=r.obj, obj=r.subj, cells=json.dumps(json.loads(r.cells)),
                    prompt=COCO_PROMPTS[r.style][r.orientation].format(subj=r.obj, obj=r.subj, a=a, b=b))
        out.append(swap)
        if r.item in donor:
            d = donor[r.item]
            out.append(dict(row, control="shuffle", image=d["image"], image_id=int(d["image_id"]),
                            grid_rows=int(d["grid_rows"]), grid_cols=int(d["grid_cols"]), native=bool(d["native"]),
                            cells=d["cells"], probe_ok=False, box_status="shuffled image"))
    return pd.DataFrame(out)
