"""Planted-mechanism fixtures: a real LLaVA checkpoint (by default the committed organism) with a module on the
projector output that writes a slot code into the visual tokens, so the mechanism is known by construction.

The module looks only at the image: it finds the entities' tokens from the pixels (tokens whose patch differs
from the background colour), orders them along the layout's axis and adds one of three orthonormal code
vectors (scaled to each token's own norm) to the post-projector tokens. Kinds:

- ``strips``: every token of the full-height column band (horizontal) / full-width row band (vertical) through
  an entity gets that entity's relative slot, background included (the paper's vision-side mechanism);
- ``objects``: only the entities' own tokens get their relative slot;
- ``absolute``: every token gets the slot of the canvas third it lies in (the authors' tiling strips), wherever
  the entities are: a position code, not an ordering;
- ``none``: no code (the base checkpoint as it is).

The fixture is an ordinary `VLMAdapter` (the LLaVA one) whose model carries the hooks, so extraction, probing
and the claims run on it exactly as on any checkpoint. The LM never learnt to read the code, so only the claims
about what the visual tokens carry (2, 3, 9) can be checked on these fixtures; `SPEAKS_TO` says which.
"""
from __future__ import annotations

import torch

from .seeding import torch_generator
from .stimuli.geometry import Geometry

KINDS = ("strips", "objects", "absolute", "none")
SPEAKS_TO = (2, 3, 9)      # the causal claims (1, 4-7) need an LM that reads the code; 8 needs a trained model
STRENGTH = 2.0             # code norm / token norm
TOLERANCE = 0.05           # normalised-pixel difference that counts as "not background"


def locate(pixel_values: torch.Tensor, geometry: Geometry) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From the processor's pixels (B, 3, H, W) of relation scenes: per image and grid cell (row-major), the
    entity's relative slot on its own tokens, on its strip (background included) and the absolute third the
    cell lies in along the layout's axis; -1 where none. Returns three (B, N*N) long tensors."""
    n, p = geometry.grid, geometry.px_per_token
    b = pixel_values.shape[0]
    diff = (pixel_values - pixel_values[:, :, :1, :1]).abs().amax(1)             # background = top-left pixel
    occupied = diff.reshape(b, n, p, n, p).amax(dim=(2, 4)) > TOLERANCE          # (B, n, n)
    obj = torch.full((b, n, n), -1, dtype=torch.long)
    strip = torch.full((b, n, n), -1, dtype=torch.long)
    absolute = torch.full((b, n, n), -1, dtype=torch.long)
    for i in range(b):
        cols = occupied[i].any(0).nonzero().flatten().tolist()
        rows = occupied[i].any(1).nonzero().flatten().tolist()
        horizontal = len(cols) >= len(rows)
        along = cols if horizontal else rows
        runs = _runs(along)
        orientation = "horizontal" if horizontal else "vertical"
        for third, cells in enumerate(geometry.strip_cells(orientation)):
            for r, c in cells:
                absolute[i, r, c] = third
        for slot, run in enumerate(runs):
            band = torch.tensor(run)
            if horizontal:
                strip[i][:, band] = slot
                obj[i][:, band] = torch.where(occupied[i][:, band], slot, obj[i][:, band])
            else:
                strip[i][band, :] = slot
                obj[i][band, :] = torch.where(occupied[i][band, :], slot, obj[i][band, :])
    return obj.reshape(b, -1), strip.reshape(b, -1), absolute.reshape(b, -1)


def _runs(indices: list[int]) -> list[list[int]]:
    """Consecutive runs of sorted indices: one run per entity along the axis."""
    runs: list[list[int]] = []
    for k in indices:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


class SlotCode:
    """Hooks on `adapter`'s vision tower (to see the pixels) and projector (to write the code)."""

    def __init__(self, adapter, kind: str, seed: int = 0, strength: float = STRENGTH, background: float = 1.0):
        if kind not in KINDS:
            raise ValueError(f"unknown planted code {kind!r}; kinds are {KINDS}")
        self.adapter, self.kind, self.strength, self.background = adapter, kind, strength, background
        dim = adapter.model.config.text_config.hidden_size
        g = torch_generator(seed, "planted-code", kind)
        q, _ = torch.linalg.qr(torch.randn(dim, 3, generator=g, dtype=torch.float64))
        self.codes = q.T.float()                                                  # (3, D) orthonormal
        self.handles = []
        self._pixels = None
        if kind != "none":
            m = adapter.model.model
            self.handles = [m.vision_tower.register_forward_pre_hook(self._see, with_kwargs=True),
                            m.multi_modal_projector.register_forward_hook(self._write)]

    def _see(self, module, args, kwargs):
        self._pixels = (args[0] if args else kwargs["pixel_values"]).detach()

    def _write(self, module, args, output):
        obj, strip, absolute = locate(self._pixels.float().cpu(), self.adapter.geometry)
        slot = {"strips": strip, "objects": obj, "absolute": absolute}[self.kind].to(output.device)
        if output.shape[:2] != slot.shape:
            raise RuntimeError(f"projector output {tuple(output.shape)} is not one token per grid cell {slot.shape}")
        code = self.codes.to(output.device, output.dtype)[slot.clamp(min=0)]       # (B, T, D)
        scale = self.strength * output.norm(dim=-1, keepdim=True) * (slot >= 0)[..., None]
        if self.background != 1.0:                                  # a fainter code on the background tokens
            scale = scale * torch.where(obj.to(output.device) >= 0, 1.0, self.background)[..., None]
        return output + scale * code

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def planted(adapter, kind: str, seed: int = 0, strength: float = STRENGTH, background: float = 1.0) -> SlotCode:
    """Plant a `kind` slot code into `adapter` (in place; `.remove()` undoes it): code norm `strength` times the
    token's own norm on the entities' tokens, `background` times that on every other token it reaches."""
    return SlotCode(adapter, kind, seed, strength, background)
