"""LLaVA-OneVision family: SigLIP tower (no CLS), MLP projector, Qwen2 LM, a learned `image_newline`.

One view of the image, no anyres tiling: the base view the tower sees at its image_size (384 px), one
token per patch (27x27 of 14 px for the 7B/0.5B "ov" checkpoints), followed in the image-token run by one
image_newline token, which `prepare` leaves out of the grid (`trailing_image_tokens`). The model tiles a
single image into the base view plus anyres crops; it sees an image of a multi-image prompt as its base
view only, so every row is marked that way (`batch_num_images` 2 per row: the model only asks whether it
is 1). The tower's patches cover grid * patch_size px (378 of 384): the canvas is that, padded on the
right and bottom with its own edge pixels to image_size, so the processor's resize is a no-op and the
unseen strip never reaches a token. LlavaOnevisionProcessor needs torchvision (its video processor), so
inputs are built here as it builds them for a multi-image prompt.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .base import ImageTextProcessor, UnsupportedModel
from .llava import LlavaAdapter


class LlavaOnevisionAdapter(LlavaAdapter):
    family = "llava_onevision"
    trailing_image_tokens = 1       # image_newline after the base view

    @classmethod
    def load_processor(cls, src: str, **kw):
        return ImageTextProcessor.from_pretrained(src, **kw)

    def grid_and_pixels(self) -> tuple[int, int]:
        cfg = self.model.config
        if cfg.vision_feature_select_strategy != "full" or cfg.vision_config.model_type != "siglip_vision_model":
            raise UnsupportedModel(f"{self.spec.name}: expected a SigLIP tower with all patch tokens kept, got "
                                   f"{cfg.vision_config.model_type} / '{cfg.vision_feature_select_strategy}'")
        size, patch = cfg.vision_config.image_size, cfg.vision_config.patch_size
        ip_size = dict(self.processor.image_processor.size)
        if (ip_size.get("height"), ip_size.get("width")) != (size, size):
            raise UnsupportedModel(f"{self.spec.name}: the image processor resizes to {ip_size}, not the "
                                   f"tower's {size} px")
        return size // patch, patch

    @property
    def vision_layers(self):
        return self.model.model.vision_tower.encoder.layers

    def processor_inputs(self, images, texts) -> dict:
        size = self.model.config.vision_config.image_size
        pad = size - self.geometry.canvas_px
        padded = [Image.fromarray(np.pad(np.asarray(im.convert("RGB")), ((0, pad), (0, pad), (0, 0)), mode="edge"))
                  for im in images]
        vision = dict(self.processor.image_processor(images=padded, return_tensors="pt"))
        img = self.tokenizer.convert_ids_to_tokens(self.image_token_id)
        block = img * (self.geometry.grid ** 2 + self.trailing_image_tokens)
        enc = self.tokenize_with_images(texts, img, [block] * len(texts))
        return enc | {"pixel_values": vision["pixel_values"][:, :1],             # the base view
                      "image_sizes": vision["image_sizes"],
                      "batch_num_images": torch.full((len(images),), 2)}       # != 1: base view only
