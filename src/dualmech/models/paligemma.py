"""PaliGemma family (PaliGemma 1/2): SigLIP tower, one token per patch, linear projector, Gemma LM.

The grid is image_size / patch_size per side (16x16 of 14 px at 224 px), the canvas the tower's image
size. There is no chat template: the sequence is <image>*N*N <bos> prompt "\n" (PaliGemmaProcessor builds
it from the plain prompt; the system prompt, if any, is put before the prompt), and the image and prompt
form a prefix with bidirectional attention (token_type_ids 0).
"""
from __future__ import annotations

from ..stimuli import SYSTEM_PROMPT
from .base import UnsupportedModel, VLMAdapter


class PaliGemmaAdapter(VLMAdapter):
    family = "paligemma"
    # the prefix (image + prompt) attends bidirectionally: every prefix position sees the patched one, so the
    # engine's resumed rows restart at the first position (`Trace.suffix_start`), from the patched layer on
    resumable = True

    def grid_and_pixels(self) -> tuple[int, int]:
        return self.patch_grid()

    def chat_text(self, prompt: str, system: str | None = SYSTEM_PROMPT) -> str:
        return prompt if system is None else f"{system}\n{prompt}"

    def processor_inputs(self, images, texts) -> dict:
        enc = self.processor(images=images, text=texts, return_tensors="pt", padding=True)
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids", "pixel_values")}   # no labels

    @property
    def vision_layers(self):
        return self.model.model.vision_tower.encoder.layers

    def vision_grid(self, hidden):
        n = self.geometry.grid ** 2
        if hidden.shape[1] != n:
            raise UnsupportedModel(f"{self.spec.name}: vision encoder gives {hidden.shape[1]} tokens, expected {n}")
        return hidden
