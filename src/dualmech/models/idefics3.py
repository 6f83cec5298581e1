"""Idefics3 and SmolVLM families: SigLIP-style tower, pixel shuffle by `scale_factor`, linear connector, LM.

No image splitting at the canvas (`do_image_splitting` off): one global image of the tower's image_size,
(image_size / patch_size / scale_factor)^2 tokens, each covering patch_size * scale_factor px
(Idefics3-8B: 13x13 of 28 px; SmolVLM-256M/500M: 8x8 of 64 px). The grid is fixed by the tower. The
sequence holds <fake_token_around_image><global-img><image>*N*N<fake_token_around_image>, built here
as the processors build it for an unsplit image (SmolVLMProcessor needs torchvision for its video part).
The LM is `model.model.text_model`.
"""
from __future__ import annotations

from .base import ImageTextProcessor, UnsupportedModel, VLMAdapter

FAKE_IMAGE, GLOBAL_IMAGE = "<fake_token_around_image>", "<global-img>"     # fixed in Idefics3Processor


class Idefics3Adapter(VLMAdapter):
    family = "idefics3"

    @classmethod
    def load_processor(cls, src: str, **kw):
        return ImageTextProcessor.from_pretrained(src, **kw)

    resumable = True

    @property
    def language_model(self):
        return self.model.model.text_model

    def grid_and_pixels(self) -> tuple[int, int]:
        cfg = self.model.config
        size, patch, k = cfg.vision_config.image_size, cfg.vision_config.patch_size, cfg.scale_factor
        if size % (patch * k):
            raise UnsupportedModel(f"{self.spec.name}: image_size {size} is not a multiple of patch_size {patch} "
                                   f"x scale_factor {k}")
        edge = self.processor.image_processor.max_image_size["longest_edge"]
        if edge != size:
            raise UnsupportedModel(f"{self.spec.name}: the image processor's max_image_size {edge} px is not the "
                                   f"tower's {size} px")
        return size // (patch * k), patch * k

    def processor_inputs(self, images, texts) -> dict:
        tok = self.tokenizer
        img = tok.convert_ids_to_tokens(self.image_token_id)
        edge = {"longest_edge": self.geometry.canvas_px}     # no upscaling to `size` and back
        vision = dict(self.processor.image_processor(images=[[im] for im in images], do_image_splitting=False,
                                                     size=edge, max_image_size=edge, return_tensors="pt"))
        if vision["pixel_values"].shape[1] != 1:
            raise UnsupportedModel(f"{self.spec.name}: the image processor split the canvas")
        block = FAKE_IMAGE + GLOBAL_IMAGE + img * self.geometry.grid ** 2 + FAKE_IMAGE
        enc = self.tokenize_with_images(texts, img, [block] * len(texts))
        return enc | {k: vision[k] for k in ("pixel_values", "pixel_attention_mask")}

    @property
    def vision_layers(self):
        return self.model.model.vision_model.encoder.layers

    def vision_grid(self, hidden):
        """One token per patch (no CLS), then the connector's own pixel shuffle (without its projection)."""
        k, n = self.model.config.scale_factor, self.geometry.grid
        if hidden.shape[1] != (n * k) ** 2:
            raise UnsupportedModel(f"{self.spec.name}: vision encoder gives {hidden.shape[1]} tokens, expected "
                                   f"{n * k}x{n * k} patches")
        return self.model.model.connector.pixel_shuffle(hidden.contiguous(), k)


class SmolVLMAdapter(Idefics3Adapter):
    family = "smolvlm"
