"""Qwen2.5-VL family: Qwen2-VL's layout (14 px patches, 2x2 patch merger, M-RoPE) with a windowed ViT.

The vision encoder attends within windows of `window_size` px (full attention in `fullatt_block_indexes`)
and reorders patches by window internally, but the merger restores the row-major order of the merged
tokens, so the LM sees exactly Qwen2-VL's sequence: one token per 28 px (patch_size * spatial_merge_size),
the canvas grid * 28 px with grid = 12 by default (as for Qwen2-VL) or `geometry.grid`. Inputs are built
as for Qwen2-VL (Qwen2_5_VLProcessor needs torchvision for its video processor).
"""
from __future__ import annotations

from .qwen2vl import Qwen2VLAdapter


class Qwen25VLAdapter(Qwen2VLAdapter):
    family = "qwen2_5vl"

    @classmethod
    def handles(cls, config) -> bool:
        return config.model_type == "qwen2_5_vl"
