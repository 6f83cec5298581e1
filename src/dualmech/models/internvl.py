"""InternVL family (InternVL2.5/3 "-hf" checkpoints): InternViT, pixel shuffle, MLP projector, Qwen2/Llama LM.

One 448 px tile (no dynamic tiling: `crop_to_patches` off at the canvas): (image_size / patch_size)^2
patches (CLS dropped), pixel-shuffled by `downsample_ratio` 0.5 into a 16x16 grid of tokens of 28 px.
The grid is fixed by the tower (canvas = image_size). The sequence holds <img> [IMG_CONTEXT]*N*N </img>;
InternVLProcessor needs torchvision (its video processor), so inputs are built here exactly as it builds
them for one tile.
"""
from __future__ import annotations

from .base import ImageTextProcessor, UnsupportedModel, VLMAdapter


class InternVLAdapter(VLMAdapter):
    family = "internvl"
    resumable = True

    @classmethod
    def load_processor(cls, src: str, **kw):
        return ImageTextProcessor.from_pretrained(src, **kw)

    def grid_and_pixels(self) -> tuple[int, int]:
        cfg = self.model.config
        (h, w), (ph, pw) = cfg.vision_config.image_size, cfg.vision_config.patch_size
        patches, ratio = h // ph, cfg.downsample_ratio
        grid = int(patches * ratio)
        if h != w or ph != pw or h % ph or grid != patches * ratio or grid * grid != cfg.image_seq_length:
            raise UnsupportedModel(f"{self.spec.name}: {h}x{w} px tiles of {ph}x{pw} px patches with downsample "
                                   f"ratio {ratio} do not give a square grid of image_seq_length "
                                   f"{cfg.image_seq_length} tokens")
        ip = self.processor.image_processor
        if (ip.size["height"], ip.size["width"]) != (h, w):
            raise UnsupportedModel(f"{self.spec.name}: the image processor resizes to {ip.size}, not the tower's "
                                   f"{h} px tile")
        return grid, h // grid

    def processor_inputs(self, images, texts) -> dict:
        tok = self.tokenizer
        ctx = tok.convert_ids_to_tokens(self.image_token_id)
        start, end = tok.start_image_token, tok.end_image_token
        vision = dict(self.processor.image_processor(images=images, crop_to_patches=False, return_tensors="pt"))
        if len(vision["pixel_values"]) != len(images):
            raise UnsupportedModel(f"{self.spec.name}: the image processor split the canvas into tiles")
        block = start + ctx * self.geometry.grid ** 2 + end
        enc = self.tokenize_with_images(texts, ctx, [block] * len(texts))
        return enc | {"pixel_values": vision["pixel_values"]}

    @property
    def vision_layers(self):
        return self.model.model.vision_tower.encoder.layer

    def vision_grid(self, hidden):
        """CLS dropped, then the model's own pixel shuffle: each grid cell holds its 2x2 patches' states."""
        cfg, n = self.model.config, self.geometry.grid
        side = int(n / cfg.downsample_ratio)
        if hidden.shape[1] != side * side + 1:
            raise UnsupportedModel(f"{self.spec.name}: vision encoder gives {hidden.shape[1]} tokens, expected "
                                   f"CLS + {side}x{side} patches")
        x = hidden[:, 1:].reshape(len(hidden), side, side, -1)
        return self.model.model.pixel_shuffle(x, scale_factor=cfg.downsample_ratio).reshape(len(hidden), n * n, -1)
