"""Qwen3-VL family: ViT over 16 px patches, 2x2 patch merger, DeepStack, Qwen3 LM with interleaved M-RoPE.

The layout is Qwen2-VL's (one token per merged 2x2 block: 32 px; canvas grid * 32 px, grid = 12 by default
or `geometry.grid`; inputs built from the image processor + tokenizer, as Qwen3VLProcessor needs
torchvision). DeepStack: the merged states of some vision blocks (`deepstack_visual_indexes`, k of them)
are added to the outputs of LM layers 0..k-1 at the image positions, so the LM input alone does not
determine what the LM sees of the image. The adapter makes that explicit and patchable:

- the model's own DeepStack addition is switched off and done instead by forward hooks on LM layers
  0..k-1, from a dense (B, T, k, D) tensor (zeros at text positions): the same sums, so the logits are
  bit-identical, and `resid_post.l` (l < k) is layer l's output after its DeepStack addition, the input of
  layer l + 1 as for every other family;
- the `lm_input` site is (B, T, (k+1) D): the LM input followed by the k DeepStack features of each
  position (`lm_input_site`). Whatever patches, ablates or amplifies a visual token at `lm_input` moves its
  DeepStack features with it (a counterfactual's visual tokens arrive with its DeepStack features); the
  patching engine's traced runs keep them in the traced LM input, and a resumed row adds its own.
  Probes and stores at `lm_input` see the (k+1) D vector;
- edits at `resid_post.l` with l < k - 1 leave the DeepStack features that later layers add as the run's
  own image gave them (the residual is patched, the image features are not).
"""
from __future__ import annotations

import torch

from .qwen2vl import Qwen2VLAdapter


class Qwen3VLAdapter(Qwen2VLAdapter):
    family = "qwen3vl"

    def __init__(self, model, processor, spec):
        super().__init__(model, processor, spec)
        self.deepstack_layers = len(model.config.vision_config.deepstack_visual_indexes)
        self._deepstack: torch.Tensor | None = None      # (B, T, k, D) of the forward in progress
        self.language_model.register_forward_pre_hook(self._take_deepstack, with_kwargs=True)
        for layer in range(self.deepstack_layers):
            self.layers[layer].register_forward_hook(self._add_deepstack(layer))

    def _take_deepstack(self, module, args, kwargs):
        """Before the LM runs: its DeepStack inputs -> the dense (B, T, k, D) tensor; the LM's own addition off."""
        embeds = kwargs["inputs_embeds"]
        dense = embeds.new_zeros(*embeds.shape[:2], self.deepstack_layers, embeds.shape[-1])
        mask, features = kwargs.get("visual_pos_masks"), kwargs.get("deepstack_visual_embeds")
        if features is not None:
            dense[mask.to(embeds.device)] = torch.stack(features, 1).to(embeds.device, embeds.dtype)
        self._deepstack = dense
        return args, kwargs | {"visual_pos_masks": None, "deepstack_visual_embeds": None}

    def _add_deepstack(self, layer: int):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            hidden = hidden + self._deepstack[:, -hidden.shape[1]:, layer]    # a resumed suffix: its positions
            return (hidden,) + tuple(output[1:]) if isinstance(output, tuple) else hidden
        return hook

    def lm_input_site(self, hidden):
        return torch.cat([hidden, self._deepstack.flatten(2).to(hidden.dtype)], -1)

    def lm_input_apply(self, value):
        d = value.shape[-1] // (self.deepstack_layers + 1)
        self._deepstack = value[..., d:].unflatten(-1, (self.deepstack_layers, d))
        return value[..., :d]
