"""A harder synthetic testbed: the paper's entities and prompts on photo-like, cluttered backgrounds.

The question format stays exactly the synthetic one (three entities, a query about the middle one, the
templates of paper §4.2), so a model that only knows those words (the organism) can be asked; what changes is
the image: a smooth random colour field blended over the white canvas, per-pixel noise, small distractor
blobs in the free space, and token-aligned random layouts (at least one free token between neighbours).
This is the default amplification testbed (Table 2) when no COCO data is configured: a set on which a
competent model still fails sometimes. Every image is a pure function of (seed, item index, difficulty).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from ..seeding import rng
from .entities import entities, prompt, sprite
from .geometry import ANSWER_SLOT, ORIENTATION_OF, Geometry
from .render import compose


@dataclass(frozen=True)
class Difficulty:
    background: float = 0.6   # 0 = white canvas, 1 = the full random colour field
    noise: float = 0.1        # std of per-pixel Gaussian noise, in units of the 0..1 intensity range
    clutter: int = 3          # distractor blobs per image
    clutter_size: float = 0.5  # blob side as a fraction of an entity's side
    jitter: bool = True       # random token-aligned layouts instead of the canonical one

    @classmethod
    def from_config(cls, cfg: dict) -> "Difficulty":
        return cls(**{k: cfg[k] for k in asdict(cls()) if k in cfg})


def background(g: np.random.Generator, size: int, difficulty: Difficulty) -> np.ndarray:
    """Photo-like texture: two octaves of smooth random colour (3x3 and 9x9 control points, bicubic) blended
    over white with weight `background`, plus Gaussian pixel noise. float (size, size, 3) in 0..255."""
    field = np.zeros((size, size, 3))
    for cells, weight in ((3, 0.7), (9, 0.3)):
        ctrl = (g.uniform(0, 255, (cells, cells, 3))).astype(np.uint8)
        field += weight * np.asarray(Image.fromarray(ctrl).resize((size, size), Image.Resampling.BICUBIC), float)
    img = (1 - difficulty.background) * 255.0 + difficulty.background * field
    img += g.normal(0, difficulty.noise * 255.0, img.shape)
    return np.clip(img, 0, 255)


def _layout(g: np.random.Generator, geometry: Geometry, orientation: str, jitter: bool) -> list[tuple[int, int]]:
    if not jitter:
        return list(geometry.canonical_layout(orientation))
    s, n = geometry.object_tokens, geometry.grid
    while True:
        along = np.sort(g.choice(n - s + 1, size=3, replace=False))
        if np.all(np.diff(along) >= s + 1):
            across = int(g.integers(0, n - s + 1))
            return [(across, int(a)) if orientation == "horizontal" else (int(a), across) for a in along]


def _clutter(g: np.random.Generator, canvas: np.ndarray, boxes: list[tuple[int, int, int, int]], side: int,
             count: int) -> None:
    """Draw `count` random-colour rectangles/ellipses of `side` px where they overlap no entity box."""
    size = canvas.shape[0]
    img = Image.fromarray(np.rint(canvas).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    placed = 0
    for _ in range(50 * max(count, 1)):
        if placed == count:
            break
        y, x = (int(v) for v in g.integers(0, size - side + 1, size=2))
        if any(y < b[2] + 1 and b[0] - 1 < y + side and x < b[3] + 1 and b[1] - 1 < x + side for b in boxes):
            continue
        colour = tuple(int(c) for c in g.integers(0, 256, size=3))
        shape = draw.ellipse if g.random() < 0.5 else draw.rectangle
        shape([x, y, x + side - 1, y + side - 1], fill=colour)
        boxes.append((y, x, y + side, x + side))
        placed += 1
    canvas[:] = np.asarray(img, float)


def cluttered_items(settings, directions, geometry: Geometry, palette: str, n_items: int, seed: int,
                    difficulty: Difficulty, out_dir: Path) -> pd.DataFrame:
    """`n_items` items, balanced over settings x directions, each with its own image.

    `cells` holds the row-major grid cells of the entity in slot 0, 1, 2 (left/top to right/bottom); `scene` the
    answer words of the three entities (an answer among them but wrong is an ordering failure)."""
    g = geometry
    rows = []
    cells_of = [(s, d) for d in directions for s in settings]
    for i in range(n_items):
        setting, direction = cells_of[i % len(cells_of)]
        r = rng(seed, "cluttered", setting, direction, i)
        ents = entities(setting, palette)
        triple = [ents[k] for k in r.choice(len(ents), size=3, replace=False)]
        orientation = ORIENTATION_OF[direction]
        layout = _layout(r, g, orientation, difficulty.jitter)
        canvas = background(r, g.canvas_px, difficulty)
        boxes = [(a * g.px_per_token, b * g.px_per_token, a * g.px_per_token + g.object_px,
                  b * g.px_per_token + g.object_px) for a, b in layout]
        _clutter(r, canvas, boxes, max(2, int(round(difficulty.clutter_size * g.object_px))), difficulty.clutter)
        px = [(a * g.px_per_token, b * g.px_per_token) for a, b in layout]
        img = Image.fromarray(compose([sprite(e, g.object_px) for e in triple], px, g.canvas_px, canvas))
        rel = f"cluttered/{i:05d}.png"
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, format="PNG")
        rows.append(dict(item=f"cluttered-{i:05d}", setting=setting, direction=direction, orientation=orientation,
                         e0=triple[0].name, e1=triple[1].name, e2=triple[2].name, reference=triple[1].name,
                         answer=triple[ANSWER_SLOT[direction]].answer, prompt=prompt(setting, direction, triple[1]),
                         scene=json.dumps([e.answer for e in triple]),
                         slots=json.dumps([list(c) for c in layout]),
                         cells=json.dumps([g.index(g.cells(tl)) for tl in layout]), image=rel,
                         image_sha256=hashlib.sha256(path.read_bytes()).hexdigest()))
    return pd.DataFrame(rows)
