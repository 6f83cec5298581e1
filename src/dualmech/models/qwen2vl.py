"""Qwen2-VL family: ViT over 14 px patches, 2x2 patch merger, Qwen2 LM with M-RoPE.

One visual token per merged 2x2 block, so a token covers patch_size * spatial_merge_size px (28 for
Qwen2-VL-7B). The resolution is dynamic: the canvas is grid * 28 px with grid = 12 by default (paper
Table 4) or `geometry.grid`, and the image processor is told min = max pixels = canvas area, so it keeps
the canvas as is. Qwen2VLProcessor needs torchvision (its video processor), so inputs are built here from
the image processor + tokenizer exactly as the processor builds them, plus `mm_token_type_ids`
(1 at image tokens), which transformers 5 needs for the M-RoPE position ids.
"""
from __future__ import annotations

import torch

from .base import ImageTextProcessor, UnsupportedModel, VLMAdapter

DEFAULT_GRID = 12


class Qwen2VLAdapter(VLMAdapter):
    family = "qwen2vl"
    resumable = True

    @classmethod
    def handles(cls, config) -> bool:
        return config.model_type == "qwen2_vl"

    @classmethod
    def load_processor(cls, src: str, **kw):
        return ImageTextProcessor.from_pretrained(src, **kw)

    def grid_and_pixels(self) -> tuple[int, int]:
        vc, ip = self.model.config.vision_config, self.processor.image_processor
        if (ip.patch_size, ip.merge_size) != (vc.patch_size, vc.spatial_merge_size):
            raise UnsupportedModel(f"{self.spec.name}: image processor patch/merge {ip.patch_size}/{ip.merge_size} "
                                   f"!= vision config {vc.patch_size}/{vc.spatial_merge_size}")
        return int(self.spec.geometry.get("grid", DEFAULT_GRID)), vc.patch_size * vc.spatial_merge_size

    def processor_inputs(self, images, texts) -> dict:
        ip, tok = self.processor.image_processor, self.tokenizer
        area = self.geometry.canvas_px ** 2
        vision = dict(ip(images=images, size={"shortest_edge": area, "longest_edge": area}, return_tensors="pt"))
        placeholder = tok.convert_ids_to_tokens(self.image_token_id)
        counts = (vision["image_grid_thw"].prod(-1) // ip.merge_size ** 2).tolist()
        expanded = []
        for text, n in zip(texts, counts):     # one image per prompt: its placeholder -> n image tokens
            if text.count(placeholder) != 1:
                raise ValueError(f"{self.spec.name}: expected one {placeholder} in the prompt, got {text!r}")
            expanded.append(text.replace(placeholder, placeholder * n))
        enc = dict(tok(expanded, padding=True, return_tensors="pt", **self.text_kwargs(texts)))
        enc["mm_token_type_ids"] = (enc["input_ids"] == self.image_token_id).to(torch.long)
        return enc | vision
