"""Mistral 3 family (Mistral-Small-3.1/3.2): Pixtral vision tower, 2x2 patch merger, projector, Mistral LM.

One visual token per merged 2x2 block of patches: patch_size * spatial_merge_size px (28 for 14 px
patches). The canvas is grid * 28 px with grid = 12 by default, or the checkpoint's `dualmech.json` geometry.grid,
or config.yaml's `geometry.grid` (dynamic resolution).
The sequence layout is Pixtral's: each row of N [IMG] tokens ends with [IMG_BREAK], the last with
[IMG_END]; inputs are built as for Pixtral with the processor's merged patch size.
"""
from __future__ import annotations

from .base import UnsupportedModel, sidecar
from .pixtral import PixtralAdapter

DEFAULT_GRID = 12


class Mistral3Adapter(PixtralAdapter):
    family = "mistral3"
    default_palette = "standard"

    def grid_and_pixels(self) -> tuple[int, int]:
        cfg = self.model.config
        vc, merge = cfg.vision_config, cfg.spatial_merge_size
        grid = int({**sidecar(self.spec.path).get("geometry", {}), **self.spec.geometry}.get("grid", DEFAULT_GRID))
        px = self._patch_px()
        if px != vc.patch_size * merge:
            raise UnsupportedModel(f"{self.spec.name}: processor token size {px} px != vision patch_size "
                                   f"{vc.patch_size} x spatial_merge_size {merge}")
        if grid * px > vc.image_size:
            raise UnsupportedModel(f"{self.spec.name}: a {grid}x{grid} canvas of {px} px tokens exceeds the "
                                   f"tower's maximum image size {vc.image_size}")
        return grid, px

    def merge(self) -> int:
        return self.model.config.spatial_merge_size
