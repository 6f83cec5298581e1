"""Qwen2.5-VL family: Qwen2-VL's layout (14 px patches, 2x2 patch merger, M-RoPE) with a windowed ViT.

The vision encoder attends within windows of `window_size` px (full attention in `fullatt_block_indexes`)
and reorders patches by window internally, but the merger restores the row-major order of the merged
tokens, so the LM sees exactly Qwen2-VL's sequence: one token per 28 px (patch_size * spatial_merge_size),
the canvas grid * 28 px with grid = 12 by default (as for Qwen2-VL) or `geometry.grid`. Inputs are built
as for Qwen2-VL (Qwen2_5_VLProcessor needs torchvision for its video processor).

Vision-encoder sites: the ViT runs every image of a batch as one (B * patches, D) sequence, patches in
2x2 merge-block order and then permuted by attention window; `vision_grid` undoes the window permutation
(as the model does after its merger) and concatenates each merged token's four patch states.
"""
from __future__ import annotations

import torch

from .qwen2vl import Qwen2VLAdapter


class Qwen25VLAdapter(Qwen2VLAdapter):
    family = "qwen2_5vl"

    def _merge_order(self, hidden):
        """Undo the window permutation, as the model does after its merger."""
        from transformers.vision_utils import get_vision_window_index   # imports torch.distributed: not at start-up
        vis, n = self.model.model.visual, self.geometry.grid
        k = vis.spatial_merge_size
        b = hidden.shape[0] // (n * k) ** 2
        thw = torch.tensor([[1, n * k, n * k]] * b)
        window_index, _ = get_vision_window_index(thw, spatial_merge_size=k, window_size=vis.window_size,
                                                  patch_size=vis.patch_size)
        units = hidden.reshape(-1, k * k * hidden.shape[-1])[torch.argsort(window_index.to(hidden.device))]
        return units.reshape(hidden.shape)
