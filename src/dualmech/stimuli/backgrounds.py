"""Realistic-background control (paper App C.8, reimplemented: the authors' code is unreleased): the canonical
three-entity layouts pasted on photo-like backgrounds, run through the probes and the criss-cross swaps.

A background setting is named `<setting>_bg` (e.g. `squares_bg`): the entities, prompts, canonical layout and
counterfactual tuples of `<setting>`, only the white canvas is replaced. Backgrounds come from a bank:

* procedural (default): `count` smooth random colour fields with pixel noise (`cluttered.background`, the
  texture of the amplification testbed), each a pure function of the root seed and its index;
* or every image (`.jpg`, `.jpeg`, `.png`) of a user directory, centre-cropped to a square and resized to the
  canvas (bilinear).

Either is blended over white with weight `blend` (1 = the background as it is). A scene's background is drawn
from the bank by the root seed and the scene's *set* of entities and orientation, so the clean and the
counterfactual scene of a criss-cross pair (the same entities, side objects exchanged) stand on the same
background and the swaps move the same pixels they move on white.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..seeding import rng

SUFFIX = "_bg"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PROCEDURAL_NOISE = 0.05      # per-pixel Gaussian noise of the procedural fields (std, 0..1 intensity range)


def base_setting(setting: str) -> str | None:
    """'squares_bg' -> 'squares'; None for a setting that is not a background setting."""
    return setting[: -len(SUFFIX)] if setting.endswith(SUFFIX) else None


def background_settings(settings: Sequence[str]) -> list[str]:
    return [f"{s}{SUFFIX}" for s in settings]


@dataclass(frozen=True)
class Backgrounds:
    """A bank of float (canvas, canvas, 3) backgrounds in 0..255 and the rule that picks one per scene."""
    images: tuple[np.ndarray, ...]
    seed: int
    source: str

    def for_scene(self, names: Sequence[str], orientation: str) -> np.ndarray:
        """The background of a scene: seeded by the set of its entity names and its orientation."""
        k = int(rng(self.seed, "background", *sorted(names), orientation).integers(len(self.images)))
        return self.images[k]


def _blend(img: np.ndarray, blend: float) -> np.ndarray:
    return (1.0 - blend) * 255.0 + blend * img


def procedural(seed: int, size: int, count: int, blend: float) -> Backgrounds:
    from .cluttered import Difficulty, background
    diff = Difficulty(background=1.0, noise=PROCEDURAL_NOISE)
    images = tuple(_blend(background(rng(seed, "background-field", k), size, diff), blend) for k in range(count))
    return Backgrounds(images, seed, f"procedural ({count} fields)")


def image_files(image_dir: Path | str) -> list[Path]:
    """The background photos of a directory, sorted by name; ValueError naming the directory if there are none."""
    root = Path(image_dir)
    if not root.is_dir():
        raise ValueError(f"backgrounds.image_dir: {root} is not a directory")
    files = sorted(f for f in root.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"backgrounds.image_dir: no {'/'.join(IMAGE_SUFFIXES)} image in {root}")
    return files


def _square(img: Image.Image, size: int) -> np.ndarray:
    w, h = img.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    return np.asarray(img.convert("RGB").crop(box).resize((size, size), Image.Resampling.BILINEAR), float)


def from_directory(image_dir: Path | str, seed: int, size: int, blend: float) -> Backgrounds:
    images = []
    for f in image_files(image_dir):
        try:
            with Image.open(f) as img:
                images.append(_blend(_square(img, size), blend))
        except OSError as e:
            raise ValueError(f"{f}: not a readable image ({e})") from e
    return Backgrounds(tuple(images), seed, f"{len(images)} images from {image_dir}")


def load(cfg: dict, seed: int, size: int) -> Backgrounds:
    """The bank a `backgrounds:` config section describes, for a canvas of `size` px."""
    if cfg.get("image_dir"):
        return from_directory(cfg["image_dir"], seed, size, cfg["blend"])
    return procedural(seed, size, cfg["count"], cfg["blend"])
