"""LLaVA family: CLIP-style vision tower + MLP projector + Llama-style LM (LLaVA-1.5, the organism).

One visual token per patch, CLS dropped (`vision_feature_select_strategy="default"`), so the grid is
image_size / patch_size per side and the canvas is the tower's native image size.
"""
from __future__ import annotations

from .base import UnsupportedModel, VLMAdapter


class LlavaAdapter(VLMAdapter):
    family = "llava"
    resumable = True

    def grid_and_pixels(self) -> tuple[int, int]:
        return self.patch_grid()

    @property
    def vision_layers(self):
        return self.model.model.vision_tower.encoder.layers

    def vision_grid(self, hidden):
        """One encoder token per patch, row-major, after CLIP's CLS token (SigLIP towers have none)."""
        n = self.geometry.grid ** 2
        if hidden.shape[1] == n + 1:
            return hidden[:, 1:]
        if hidden.shape[1] == n:
            return hidden
        raise UnsupportedModel(f"{self.spec.name}: vision encoder gives {hidden.shape[1]} tokens, expected "
                               f"{n} patches (+ CLS) for a {self.geometry.grid}x{self.geometry.grid} grid")
