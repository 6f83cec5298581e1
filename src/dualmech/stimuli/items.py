"""Canonical stimulus sets: every ordered triple x four directions (paper §3), and k x k grids (§3.7)."""
from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pandas as pd

from ..seeding import rng
from .entities import entities, prompt
from .geometry import ANSWER_SLOT, DIRECTIONS, ORIENTATION_OF, Geometry
from .render import render_scene

def _save(img, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return hashlib.sha256(path.read_bytes()).hexdigest()

def relation_items(setting: str, geometry: Geometry, palette: str, out_dir: Path,
                   directions=DIRECTIONS, exclude=(), backgrounds=None) -> pd.DataFrame:
    """One row per (ordered triple, direction); one image per (triple, orientation).

    The reference is always the middle entity; the answer sits in slot 0 (left/above) or slot 2
    (right/below). Image paths in the table are relative to `out_dir`. `exclude` drops objects by name.
    `backgrounds` (`backgrounds.Backgrounds`, App C.8) replaces the white canvas by the scene's background.
    """
    ents = entities(setting, palette, exclude)
    rows = []
    images: dict[tuple[int, str], tuple[str, str]] = {}
    for t, triple in enumerate(itertools.permutations(ents, 3)):
        for direction in directions:
            orientation = ORIENTATION_OF[direction]
            layout = geometry.canonical_layout(orientation)
            if (t, orientation) not in images:
                rel = f"{orientation}/{t:04d}.png"
                bg = None if backgrounds is None else backgrounds.for_scene([e.name for e in triple], orientation)
                images[t, orientation] = rel, _save(render_scene(triple, layout, geometry, bg), out_dir / rel)
            rel, sha = images[t, orientation]
            rows.append(dict(item=f"{setting}-{direction}-{t:04d}", setting=setting, direction=direction,
                             orientation=orientation, triple=t,
                             e0=triple[0].name, e1=triple[1].name, e2=triple[2].name,
                             reference=triple[1].name, answer=triple[ANSWER_SLOT[direction]].answer,
                             prompt=prompt(setting, direction, triple[1]),
                             slots=json.dumps([list(c) for c in layout]), image=rel, image_sha256=sha))
    return pd.DataFrame(rows)

def grid_items(k: int, n_images: int, geometry: Geometry, palette: str, out_dir: Path, seed: int) -> pd.DataFrame:
    """k x k grids of (shape, colour) cells drawn uniformly from the six Shapes entities (paper §3.7).

    Cells are `object_tokens` wide with `gap_tokens` gaps, centred. Each row lists every cell with its
    row/column index (the probe labels for vertical/horizontal ordering).
    """
    s, sp, n = geometry.object_tokens, geometry.gap_tokens, geometry.grid
    span = k * s + (k - 1) * sp
    if span > n:
        raise ValueError(f"a {k}x{k} grid needs {span} tokens per side but the canvas has {n}")
    origin = (n - span) // 2
    ents = entities("shapes", palette)
    g = rng(seed, "grid", k)
    rows = []
    for i in range(n_images):
        picks = g.integers(0, len(ents), size=k * k)
        cells, layout, chosen = [], [], []
        for idx, (r, c) in enumerate(itertools.product(range(k), range(k))):
            top_left = (origin + r * (s + sp), origin + c * (s + sp))
            layout.append(top_left)
            chosen.append(ents[picks[idx]])
            cells.append(dict(row=r, col=c, entity=ents[picks[idx]].name, top_left=list(top_left)))
        rel = f"grid{k}/{i:04d}.png"
        sha = _save(render_scene(chosen, layout, geometry), out_dir / rel)
        rows.append(dict(item=f"grid{k}-{i:04d}", setting=f"grid{k}x{k}", k=k, cells=json.dumps(cells),
                         image=rel, image_sha256=sha))
    return pd.DataFrame(rows)
