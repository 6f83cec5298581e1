"""Gemma 3 family: SigLIP tower, patch embeddings average-pooled to mm_tokens_per_image tokens, Gemma 3 LM.

The grid is sqrt(mm_tokens_per_image) tokens per side (16 for Gemma-3 at 896 px), the canvas is the
tower's image_size, and a pooled token covers image_size / grid px (56). Gemma3Processor builds
without torchvision and returns `token_type_ids` (1 at image tokens: bidirectional attention over the
image); it wants the images nested per prompt ([[img], [img], ...]).

Vision-encoder sites: the SigLIP tower gives one state per patch (no CLS), row-major; each grid cell is the
projector's own k x k average pool of its patches (k = patches per side / grid, 4 for Gemma-3), i.e. the
vector the projector normalises and projects into that cell's LM token.
"""
from __future__ import annotations

import math

from .base import UnsupportedModel, VLMAdapter


class Gemma3Adapter(VLMAdapter):
    family = "gemma3"
    resumable = True

    def grid_and_pixels(self) -> tuple[int, int]:
        cfg = self.model.config
        n, size = cfg.mm_tokens_per_image, cfg.vision_config.image_size
        grid = math.isqrt(n)
        if grid * grid != n or size % grid:
            raise UnsupportedModel(f"{self.spec.name}: mm_tokens_per_image {n} is not a square grid dividing "
                                   f"the {size} px image")
        ip_size = dict(getattr(self.processor.image_processor, "size", None) or {})
        if (ip_size.get("height", size), ip_size.get("width", size)) != (size, size):
            raise UnsupportedModel(f"{self.spec.name}: the image processor resizes to {ip_size}, not the "
                                   f"tower's {size} px canvas")
        return grid, size // grid

    def processor_inputs(self, images, texts) -> dict:
        return dict(self.processor(images=[[im] for im in images], text=texts, return_tensors="pt", padding=True,
                                   **self.text_kwargs(texts)))

    @property
    def vision_layers(self):
        return self.model.model.vision_tower.encoder.layers

    def vision_grid(self, hidden):
        proj, n = self.model.model.multi_modal_projector, self.geometry.grid
        side = proj.patches_per_image
        if hidden.shape[1] != side * side:
            raise UnsupportedModel(f"{self.spec.name}: vision encoder gives {hidden.shape[1]} tokens, expected "
                                   f"{side}x{side} patches")
        x = hidden.transpose(1, 2).reshape(len(hidden), -1, side, side)
        return proj.avg_pool(x).reshape(len(hidden), -1, n * n).transpose(1, 2)
