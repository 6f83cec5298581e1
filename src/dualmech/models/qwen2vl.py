"""Qwen2-VL family: ViT over 14 px patches, 2x2 patch merger, Qwen2 LM with M-RoPE.

One visual token per merged 2x2 block, so a token covers patch_size * spatial_merge_size px (28 for
Qwen2-VL-7B). The resolution is dynamic: the canvas is grid * 28 px with grid = 12 by default (paper
Table 4) or `geometry.grid`, and the image processor is told min = max pixels = canvas area, so it keeps
the canvas as is. Qwen2VLProcessor needs torchvision (its video processor), so inputs are built here from
the image processor + tokenizer exactly as the processor builds them, plus `mm_token_type_ids`
(1 at image tokens), which transformers 5 needs for the M-RoPE position ids.

Naturalistic photos (COCO, paper §5.7) can instead be seen at the model's own dynamic resolution, as the
authors do: the image processor's default min/max pixels and aspect-preserving `smart_resize`, a
rows x cols grid per image (`native_grid`, `prepare(..., grid=(rows, cols))`).

Vision-encoder sites: the ViT runs every image of a batch as one (B * patches, D) sequence whose patches
the image processor already put in 2x2 merge-block order (block by block, row-major), so each grid cell is
its merged token's k*k patch states concatenated, as the merger's MLP reads them.
"""
from __future__ import annotations

import torch

from .base import ImageTextProcessor, UnsupportedModel, VLMAdapter

DEFAULT_GRID = 12


class Qwen2VLAdapter(VLMAdapter):
    family = "qwen2vl"
    resumable = True
    dynamic_resolution = True

    @classmethod
    def load_processor(cls, src: str, **kw):
        return ImageTextProcessor.from_pretrained(src, **kw)

    def grid_and_pixels(self) -> tuple[int, int]:
        vc, ip = self.model.config.vision_config, self.processor.image_processor
        if (ip.patch_size, ip.merge_size) != (vc.patch_size, vc.spatial_merge_size):
            raise UnsupportedModel(f"{self.spec.name}: image processor patch/merge {ip.patch_size}/{ip.merge_size} "
                                   f"!= vision config {vc.patch_size}/{vc.spatial_merge_size}")
        return int(self.spec.geometry.get("grid", DEFAULT_GRID)), vc.patch_size * vc.spatial_merge_size

    @property
    def vision_layers(self):
        return self.model.model.visual.blocks

    def vision_grid(self, hidden):
        n, k = self.geometry.grid, self.model.model.visual.spatial_merge_size
        per_image = (n * k) ** 2
        if hidden.dim() != 2 or hidden.shape[0] % per_image:
            raise UnsupportedModel(f"{self.spec.name}: vision encoder states {tuple(hidden.shape)} are not whole "
                                   f"{n * k}x{n * k}-patch images")
        return self._merge_order(hidden).reshape(-1, n * n, k * k * hidden.shape[-1])

    def _merge_order(self, hidden):
        """(B * patches, D) encoder states in merge-block order (Qwen2-VL's own order)."""
        return hidden

    def _pixel_bounds(self) -> tuple[int, int]:
        """The image processor's own (min, max) pixel counts for dynamic resolution."""
        ip = self.processor.image_processor
        size = getattr(ip, "size", None) or {}
        lo = size.get("shortest_edge", getattr(ip, "min_pixels", None))
        hi = size.get("longest_edge", getattr(ip, "max_pixels", None))
        if lo is None or hi is None:
            raise UnsupportedModel(f"{self.spec.name}: image processor states no min/max pixels")
        return int(lo), int(hi)

    def native_grid(self, width: int, height: int) -> tuple[int, int]:
        """(rows, cols) of merged visual tokens for a width x height photo at dynamic resolution, as the image
        processor itself decides it (its `smart_resize` under the default min/max pixels)."""
        from PIL import Image
        ip = self.processor.image_processor
        lo, hi = self._pixel_bounds()
        thw = ip(images=[Image.new("RGB", (width, height))], size={"shortest_edge": lo, "longest_edge": hi},
                 return_tensors="pt")["image_grid_thw"][0].tolist()
        return thw[1] // ip.merge_size, thw[2] // ip.merge_size

    def processor_inputs(self, images, texts, native: bool = False) -> dict:
        ip, tok = self.processor.image_processor, self.tokenizer
        lo, hi = self._pixel_bounds() if native else (self.geometry.canvas_px ** 2,) * 2
        vision = dict(ip(images=images, size={"shortest_edge": lo, "longest_edge": hi}, return_tensors="pt"))
        placeholder = tok.convert_ids_to_tokens(self.image_token_id)
        counts = (vision["image_grid_thw"].prod(-1) // ip.merge_size ** 2).tolist()
        enc = self.tokenize_with_images(texts, placeholder, [placeholder * n for n in counts])
        enc["mm_token_type_ids"] = (enc["input_ids"] == self.image_token_id).to(torch.long)
        return enc | vision
