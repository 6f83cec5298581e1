"""Pixtral family: Pixtral vision tower + Mistral LM inside LlavaForConditionalGeneration (Pixtral-12B).

One visual token per 16 px patch at the image's own resolution; the canvas is grid * patch_size px with
grid = 15 by default (the paper's geometry) or `geometry.grid`. In the sequence each row of N [IMG]
tokens is followed by [IMG_BREAK], the last by [IMG_END], so grid cell (r, c) sits at
start + r*(N+1) + c: the base `prepare` finds it by taking the [IMG] positions in order. PixtralProcessor
needs torchvision, so inputs are built here from the image processor + tokenizer exactly as it builds
them (pixel_values, image_sizes, the expanded placeholder rows).

Vision-encoder sites: the tower runs every image's patches as one sequence (1, B*P, D), row-major per
image, so grid cell (r, c) is patch (r, c) (Mistral 3 adds a k x k merge, see `merge`).
Naturalistic photos (COCO, paper §5.7) are seen at Pixtral's own resolution, as the authors run it: the
image processor's aspect-preserving resize (down to its longest edge, up to whole patches), a rows x cols
grid per photo (`native_grid`, `prepare(..., grid=(rows, cols))`).
"""
from __future__ import annotations

import torch

from .base import ImageTextProcessor, UnsupportedModel, VLMAdapter

DEFAULT_GRID = 15


class PixtralAdapter(VLMAdapter):
    family = "pixtral"
    resumable = True
    default_palette = "orange"     # paper §3.2: Pixtral confuses brown with the red cross
    default_exclude_objects = ("bomb",)   # paper §3.4: the authors drop "bomb" for Pixtral (840 Objects items)
    dynamic_resolution = True

    @classmethod
    def load_processor(cls, src: str, **kw):
        return ImageTextProcessor.from_pretrained(src, **kw)

    def _patch_px(self) -> int:
        cfg = self.processor.config
        return int(cfg.get("patch_size", self.model.config.vision_config.patch_size)) * int(
            cfg.get("spatial_merge_size", 1))

    def grid_and_pixels(self) -> tuple[int, int]:
        vc = self.model.config.vision_config
        grid, px = int(self.spec.geometry.get("grid", DEFAULT_GRID)), self._patch_px()
        if px != vc.patch_size:
            raise UnsupportedModel(f"{self.spec.name}: processor patch {px} px != vision patch_size {vc.patch_size}")
        if grid * px > vc.image_size:
            raise UnsupportedModel(f"{self.spec.name}: a {grid}x{grid} canvas of {px} px tokens exceeds the "
                                   f"tower's maximum image size {vc.image_size}")
        return grid, px

    def native_grid(self, width: int, height: int) -> tuple[int, int]:
        """(rows, cols) of visual tokens for a width x height photo at the tower's own resolution, as the image
        processor itself sizes it."""
        from PIL import Image
        p = self._patch_px()
        h, w = self.processor.image_processor(images=[Image.new("RGB", (width, height))], patch_size=p,
                                              return_tensors="pt")["image_sizes"][0].tolist()
        return h // p, w // p

    def processor_inputs(self, images, texts, native: bool = False) -> dict:
        """`native` changes nothing here: the image processor sizes each image itself (a canvas stays as it is)."""
        cfg, tok, p = self.processor.config, self.tokenizer, self._patch_px()
        img = cfg.get("image_token", "[IMG]")
        brk, end = cfg.get("image_break_token", "[IMG_BREAK]"), cfg.get("image_end_token", "[IMG_END]")
        if tok.convert_tokens_to_ids(img) != self.image_token_id:
            raise UnsupportedModel(f"{self.spec.name}: {img} is not the config's image token {self.image_token_id}")
        vision = dict(self.processor.image_processor(images=images, patch_size=p, return_tensors="pt"))
        rows = [((img * (w // p) + brk) * (h // p))[: -len(brk)] + end     # last break -> [IMG_END]
                for h, w in vision["image_sizes"].tolist()]
        return self.tokenize_with_images(texts, img, rows) | vision

    def merge(self) -> int:
        """Patches per side of one LM token (1: no merger)."""
        return 1

    @property
    def vision_layers(self):
        return self.model.model.vision_tower.transformer.layers

    def vision_grid(self, hidden):
        """Each grid cell is its k x k patches concatenated, in the merger's unfold order (k = `merge`)."""
        n, k = self.geometry.grid, self.merge()
        d = hidden.shape[-1]
        if hidden.numel() % ((n * k) ** 2 * d):
            raise UnsupportedModel(f"{self.spec.name}: vision encoder states {tuple(hidden.shape)} are not whole "
                                   f"{n * k}x{n * k}-patch images")
        x = hidden.reshape(-1, n * k, n * k, d).permute(0, 3, 1, 2)                       # (B, D, H, W)
        x = torch.nn.functional.unfold(x, kernel_size=k, stride=k)                      # (B, D*k*k, N*N)
        return x.transpose(1, 2)
