"""The entities of the three synthetic settings (paper §3.2–§3.4) and their sprites.

Every entity is drawn as an RGBA sprite of exactly `object_px` x `object_px` pixels, so a scene is
three sprites pasted onto a white canvas at token-aligned positions (see `render.compose`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SETTINGS = ("squares", "shapes", "objects")

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "black": (0, 0, 0),
           "brown": (150, 75, 0), "gray": (128, 128, 128), "orange": (255, 165, 0)}
# Pixtral's palette replaces Brown (confused with the red cross sprite) with Orange (paper §3.2).
PALETTES = {"standard": ("red", "green", "blue", "black", "brown", "gray"),
            "orange": ("red", "green", "blue", "black", "orange", "gray")}
SHAPES = ("square", "circle", "triangle", "star", "cross", "heart")
OBJECTS = ("orange", "apple", "pot", "bell", "hat", "rose", "key", "bomb")
# The counterfactual pairs of the patching experiments (Figs 3, 6, 7, 9) draw Squares from a 7-colour pool, the
# six colours plus Orange, whatever the model's palette (paper §3.2, §5.3). config: patching.colour_pool.
PAIR_COLOURS = ("red", "green", "blue", "black", "brown", "gray", "orange")
COLOUR_POOLS = ("paper", "palette")
ASSETS = Path(__file__).resolve().parents[3] / "assets" / "objects"

TEMPLATES = {
    "squares": "The color of the square {prep} the {mention} square is ",
    "shapes": "The color of the shape {prep} the {mention} is ",
    "objects": "The object {prep} the {mention} is a(n) ",
    "whatsup": "The object on the floor {prep} the {mention} is a(n) ",    # paper §4.2; composites, not rendered
}
PREPOSITIONS = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
SYSTEM_PROMPT = "You are a helpful assistant. You respond in one token."
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Entity:
    setting: str
    name: str      # unique within the setting, e.g. "red", "green circle", "apple"
    answer: str    # the word the model must produce when this entity is the target
    mention: str   # how a prompt refers to it when it is the reference (middle) entity
    shape: str     # "square" for squares, the shape for shapes, "object" for objects
    colour: str | None


def entities(setting: str, palette: str = "standard", exclude=()) -> tuple[Entity, ...]:
    """The setting's entities; `exclude` drops objects by name (the paper drops "bomb" for Pixtral, §3.4)."""
    colours = PALETTES[palette]
    if setting == "squares":
        return tuple(Entity(setting, c, c, c, "square", c) for c in colours)
    if setting == "shapes":  # six fixed (shape, colour) pairs; the answer is the colour
        return tuple(Entity(setting, f"{c} {s}", c, f"{c} {s}", s, c) for s, c in zip(SHAPES, colours))
    if setting == "objects":
        return tuple(Entity(setting, o, o, o, "object", None) for o in OBJECTS if o not in exclude)
    raise ValueError(f"unknown setting {setting!r}; expected one of {SETTINGS}")


def pair_entities(setting: str, palette: str = "standard", pool: str = "paper", exclude=()) -> tuple[Entity, ...]:
    """Entities the counterfactual pairs draw from: for Squares with pool "paper" the 7-colour pool (the six
    colours plus Orange, paper §3.2/§5.3); otherwise the setting's own entities."""
    if pool not in COLOUR_POOLS:
        raise ValueError(f"unknown colour pool {pool!r}; expected one of {COLOUR_POOLS}")
    if setting == "squares" and pool == "paper":
        return tuple(Entity(setting, c, c, c, "square", c) for c in PAIR_COLOURS)
    return entities(setting, palette, exclude)


def prompt(entity_setting: str, direction: str, reference: Entity) -> str:
    return TEMPLATES[entity_setting].format(prep=PREPOSITIONS[direction], mention=reference.mention)


def sprite(entity: Entity, size: int) -> np.ndarray:
    """RGBA uint8 array (size, size, 4) for an entity."""
    return _sprite(entity.shape, entity.colour, entity.name, size).copy()


@lru_cache(maxsize=None)
def _sprite(shape: str, colour: str | None, name: str, size: int) -> np.ndarray:
    if shape == "object":
        path = ASSETS / f"{name}.png"
        if not path.exists():
            raise FileNotFoundError(f"object image {path} is missing; run scripts/make_object_assets.py")
        img = Image.open(path).convert("RGBA").resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(img, dtype=np.uint8)
    if shape == "square" and colour is not None and name == colour:   # Squares: a filled S x S block
        out = np.empty((size, size, 4), np.uint8)
        out[..., :3] = COLOURS[colour]
        out[..., 3] = 255
        return out
    big = size * SUPERSAMPLE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    _draw_shape(ImageDraw.Draw(img), shape, big, COLOURS[colour] + (255,))
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, side: int, fill) -> None:
    """Shape sprites as described in paper §3.3, inside a side x side cell."""
    c = side / 2
    if shape == "square":
        h = 0.8 * side / 2
        draw.rectangle([c - h, c - h, c + h, c + h], fill=fill)
    elif shape == "circle":
        r = 0.9 * side / 2
        draw.ellipse([c - r, c - r, c + r, c + r], fill=fill)
    elif shape == "triangle":
        h = side * math.sqrt(3) / 2
        draw.polygon([(c, 0), (0, h), (side, h)], fill=fill)
    elif shape == "star":
        outer, inner = side / 2, 0.381966 * side / 2
        pts = []
        for k in range(10):
            r = outer if k % 2 == 0 else inner
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((r * math.cos(a), r * math.sin(a)))
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        sx = side / (max(xs) - min(xs))          # stretch x to fill the cell
        sy = side / (max(ys) - min(ys))
        draw.polygon([((x - min(xs)) * sx, (y - min(ys)) * sy) for x, y in pts], fill=fill)
    elif shape == "cross":
        w = side // 3
        draw.rectangle([c - w / 2, 0, c + w / 2, side], fill=fill)
        draw.rectangle([0, c - w / 2, side, c + w / 2], fill=fill)
    elif shape == "heart":
        t = np.linspace(0, 2 * np.pi, 100)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        x = (x - x.min()) / (x.max() - x.min()) * (side - 1)
        y = (y - y.min()) / (y.max() - y.min()) * (side - 1)
        draw.polygon(list(zip(x.tolist(), y.tolist())), fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")
