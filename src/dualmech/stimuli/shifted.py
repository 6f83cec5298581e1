"""Shifted layouts for the absolute-vs-relative control (paper §3.8, reimplemented: the authors' code is
unreleased): the canonical triple translated by k whole tokens along its axis, order and spacing kept.

With the canonical (fixed) layout an object's ordinal slot is a function of its grid cell, so a probe
cannot tell "absolute column" from "relative order". Translating the triple breaks that tie: the same
cell holds different slots in different images.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd

from .entities import entities, prompt
from .geometry import ANSWER_SLOT, DIRECTIONS, ORIENTATION_OF, Geometry
from .items import _save
from .render import render_scene


def shifted_layout(geometry: Geometry, orientation: str, shift: int) -> tuple[tuple[int, int], ...]:
    """The canonical layout moved by `shift` tokens along the axis (+ = right/down); ValueError if an
    object would leave the canvas."""
    layout = geometry.canonical_layout(orientation)
    moved = tuple((r, c + shift) if orientation == "horizontal" else (r + shift, c) for r, c in layout)
    s, n = geometry.object_tokens, geometry.grid
    if any(min(r, c) < 0 or max(r, c) + s > n for r, c in moved):
        raise ValueError(f"shift {shift} moves an object off the {n}x{n} canvas ({orientation}, layout {layout})")
    return moved


def feasible_shifts(geometry: Geometry, orientation: str, shifts) -> list[int]:
    """The non-zero shifts of `shifts` that keep every object on the canvas, sorted."""
    ok = []
    for k in sorted(set(int(x) for x in shifts) - {0}):
        try:
            shifted_layout(geometry, orientation, k)
        except ValueError:
            continue
        ok.append(k)
    return ok


def conflict_tokens(geometry: Geometry, orientation: str, shift: int) -> int:
    """Object tokens of the layout shifted by `shift` whose relative slot differs from the slot the canonical
    layout's tiling strips give their column / row (what the absolute-vs-relative test scores)."""
    layout = shifted_layout(geometry, orientation, shift)
    strips = [set(cells) for cells in geometry.strip_cells(orientation)]
    return sum(cell not in strips[slot] for slot, tl in enumerate(layout) for cell in geometry.cells(tl))


def conflict_shifts(geometry: Geometry, orientation: str) -> list[int]:
    """The smallest feasible shift on each side that gives conflict tokens ([] when no feasible shift does: the
    triple spans the canvas too tightly to cross a strip boundary, e.g. 12 tokens, objects 2, gaps 2)."""
    out = []
    for sign in (-1, 1):
        for k in range(1, geometry.grid):
            try:
                if conflict_tokens(geometry, orientation, sign * k):
                    out.append(sign * k)
                    break
            except ValueError:
                break
    return sorted(out)


def resolve_shifts(geometry: Geometry, orientation: str, shifts) -> list[int]:
    """`shifts` from the config: a list of shifts (the feasible ones), or "auto" (`conflict_shifts`)."""
    if shifts == "auto":
        return conflict_shifts(geometry, orientation)
    return feasible_shifts(geometry, orientation, shifts)


def shifted_items(setting: str, geometry: Geometry, palette: str, out_dir: Path, shifts,
                  directions=DIRECTIONS) -> pd.DataFrame:
    """Like `relation_items`, at every feasible non-zero shift (`resolve_shifts`: a list, or "auto"): one row
    per (triple, direction, shift), one image per (triple, orientation, shift); `shift` and `slots` (top-left
    cells) say where objects are.
    Shifts that do not fit the canvas are skipped (the table lists the ones used)."""
    ents = entities(setting, palette)
    rows = []
    images: dict[tuple, tuple[str, str]] = {}
    orientations = list(dict.fromkeys(ORIENTATION_OF[d] for d in directions))
    ok = {o: resolve_shifts(geometry, o, shifts) for o in orientations}
    for t, triple in enumerate(itertools.permutations(ents, 3)):
        for direction in directions:
            orientation = ORIENTATION_OF[direction]
            for k in ok[orientation]:
                layout = shifted_layout(geometry, orientation, k)
                key = (t, orientation, k)
                if key not in images:
                    rel = f"{orientation}/shift{k:+d}/{t:04d}.png"
                    images[key] = rel, _save(render_scene(triple, layout, geometry), out_dir / rel)
                rel, sha = images[key]
                rows.append(dict(item=f"{setting}-{direction}-{t:04d}-shift{k:+d}", setting=setting,
                                 direction=direction, orientation=orientation, triple=t, shift=k,
                                 e0=triple[0].name, e1=triple[1].name, e2=triple[2].name,
                                 reference=triple[1].name, answer=triple[ANSWER_SLOT[direction]].answer,
                                 prompt=prompt(setting, direction, triple[1]),
                                 slots=json.dumps([list(c) for c in layout]), image=rel, image_sha256=sha))
    columns = ["item", "setting", "direction", "orientation", "triple", "shift", "e0", "e1", "e2", "reference",
               "answer", "prompt", "slots", "image", "image_sha256"]
    return pd.DataFrame(rows, columns=columns)
