"""Scene rendering: sprites alpha-composited onto a white canvas at token-aligned positions.

One function renders both the canonical stimuli and the organism's jittered training scenes, so the
two are pixel-for-pixel the same kind of image.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .entities import Entity, sprite
from .geometry import Geometry


def compose(sprites: Sequence[np.ndarray], top_left_px: Sequence[tuple[int, int]], canvas_px: int,
            background: np.ndarray | None = None) -> np.ndarray:
    """Alpha-composite RGBA sprites onto a canvas (white, or `background`); returns uint8 (H, W, 3)."""
    canvas = (np.full((canvas_px, canvas_px, 3), 255.0) if background is None
              else background.astype(np.float64).copy())
    for spr, (y, x) in zip(sprites, top_left_px):
        h, w = spr.shape[:2]
        alpha = spr[..., 3:4].astype(np.float64) / 255.0
        region = canvas[y:y + h, x:x + w]
        region[:] = alpha * spr[..., :3] + (1.0 - alpha) * region
    return np.rint(canvas).astype(np.uint8)


def render_scene(entities: Sequence[Entity], layout: Sequence[tuple[int, int]], geometry: Geometry,
                 background: np.ndarray | None = None) -> Image.Image:
    """Entities at the given top-left grid cells (row, col), one per slot."""
    size = geometry.object_px
    sprites = [sprite(e, size) for e in entities]
    px = [(r * geometry.px_per_token, c * geometry.px_per_token) for r, c in layout]
    return Image.fromarray(compose(sprites, px, geometry.canvas_px, background))
