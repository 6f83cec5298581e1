"""Activation extraction: one forward pass per image set, every requested site, stored for reuse.

The activations go to an activation store (`dualmech.store`): one safetensors file of every site's tensor,
(n_images, N*N, D), written as it is computed, and an index of its images.

Sites, in depth order (`dualmech.sites`):
  `vision_input`          input of the vision encoder's first block (patch + position embeddings);
  `vision.{l}`            output of vision-encoder block l, mapped to the grid by the adapter (`vision_grid`);
  `lm_input`              the LM input at the image positions = post-projector visual tokens (paper "Embed");
  `resid_post.{l}`        output of LM decoder layer l at the image positions.
Vision sites need an adapter with `vision_layers` and `vision_grid` (every supported family has them; an
adapter without raises `UnsupportedModel`). Config groups expand with `resolve_sites`: `vision` -> vision_input
+ every vision.l, `lm` -> every resid_post.l.

`extract` only runs the model for sites the store does not hold yet: asking again for stored sites costs
nothing, and later analyses read the store instead of re-running images. LM-position activations do not
depend on the prompt text after the image (causal LM), so one fixed prompt serves every image.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from . import interventions as iv
from . import runtime
from .sites import (LM_INPUT, VISION_INPUT, depth_key, is_vision, resid_post,  # noqa: F401 - also extraction.*
                    site_order, vision_site)
from .store import ActivationStore, StoreWriter, torch_dtype  # noqa: F401 - the store, also as extraction.*

GROUPS = ("vision", "lm_input", "lm")
PROMPT = "The color of the square to the left of the red square is "   # any prompt: image positions precede it


def resolve_sites(adapter, groups: Sequence[str]) -> list[str]:
    """Config entries (groups `vision`, `lm_input`, `lm`, or explicit site names) -> ordered site names."""
    wanted: list[str] = []
    for g in groups:
        if g == "vision":
            wanted += [VISION_INPUT] + [vision_site(i) for i in range(len(adapter.vision_layers))]
        elif g == "lm":
            wanted += [resid_post(i) for i in range(adapter.n_layers)]
        else:
            wanted.append(g)
    n_vision = len(adapter.vision_layers) if any(is_vision(s) for s in wanted) else 0
    order = site_order(n_vision, adapter.n_layers)
    unknown = [s for s in wanted if s not in order]
    if unknown:
        raise ValueError(f"unknown site(s) {unknown}; known: {order} or the groups {list(GROUPS)}")
    return [s for s in order if s in wanted]


# ------------------------------------------------------------------ extraction
def extract(adapter, images: pd.DataFrame, image_root: Path | str, store: ActivationStore, sites: Sequence[str],
            batch_size: int | None = None, desc: str = "extract") -> list[str]:
    """Make `store` hold `sites` for `images` (columns `image` [path under image_root], optional
    `image_sha256`); run the model only for sites it lacks. Returns the sites computed now."""
    from PIL import Image
    sites = list(dict.fromkeys(sites))
    reuse = store.matches(images)
    have = store.sites() if reuse else []
    todo = [s for s in sites if s not in have]
    if not todo:
        return []
    if not len(images):
        raise ValueError(f"{store.tensors}: no images to extract")
    root = Path(image_root)
    paths = images["image"].tolist()
    keys = images[[c for c in ("image", "image_sha256") if c in images]]
    meta = dict(model=adapter.spec.name, family=adapter.family, grid=adapter.geometry.grid,
                dtype=str(adapter.model.dtype).removeprefix("torch."), prompt=PROMPT,
                sites=json.dumps(sorted(set(have) | set(todo), key=depth_key)))
    writer: StoreWriter | None = None

    def batch(sl: slice):
        nonlocal writer
        out = capture(adapter, [Image.open(root / p).convert("RGB") for p in paths[sl]], todo)
        if writer is None:                 # the first batch fixes every site's width and dtype
            shapes = {s: ((len(paths),) + tuple(t.shape[1:]), t.dtype) for s, t in out.items()}
            if have:
                from safetensors import safe_open
                with safe_open(store.tensors, "pt") as f:
                    shapes |= {s: (tuple(f.get_slice(s).get_shape()), torch_dtype(f.get_slice(s).get_dtype()))
                               for s in have}
            writer = StoreWriter(store.tensors, shapes, meta)
        for site, t in out.items():
            writer.write(site, sl.start, t)
    try:
        runtime.batched(len(paths), batch_size or runtime.batch_size(adapter), desc, batch)
        if have:                           # sites already stored: copied over a batch of rows at a time
            from safetensors import safe_open
            with safe_open(store.tensors, "pt") as f:
                for s in have:
                    rows = f.get_slice(s)
                    for start in range(0, len(paths), 256):
                        writer.write(s, start, rows[start:start + 256])
    except BaseException:
        if writer is not None:
            writer.__exit__(RuntimeError)
        raise
    writer.__exit__(None)
    store.write_index(keys)
    return todo


@torch.inference_mode()
def capture(adapter, images: list, sites: Sequence[str]) -> dict[str, torch.Tensor]:
    """One batched forward capturing `sites` at the grid cells: site -> (B, N*N, D) in the model's dtype.

    The forward stops after the deepest requested LM site (vision-only requests stop at the LM input)."""
    prepared = adapter.prepare(images, [PROMPT] * len(images))
    lm_sites = [s for s in sites if not is_vision(s)]
    vis_sites = [s for s in sites if is_vision(s)]
    out: dict[str, torch.Tensor] = {}
    handles = []
    if vis_sites:
        layers = adapter.vision_layers
        for s in vis_sites:
            if s != VISION_INPUT and not (s.startswith("vision.") and s[7:].isdigit() and int(s[7:]) < len(layers)):
                raise ValueError(f"unknown vision site {s!r}: the encoder has {len(layers)} blocks")

        def keep(site):
            def save_grid(hidden):
                out[site] = adapter.vision_grid(hidden.detach()).clone()
            return save_grid
        if VISION_INPUT in vis_sites:
            save_input = keep(VISION_INPUT)
            handles.append(layers[0].register_forward_pre_hook(lambda m, args, kw: save_input(
                args[0] if args else kw["hidden_states"]), with_kwargs=True))
        for s in vis_sites:
            if s != VISION_INPUT:
                save_out = keep(s)
                handles.append(layers[int(s[7:])].register_forward_hook(
                    lambda m, args, output, f=save_out: f(output[0] if isinstance(output, tuple) else output)))
    try:
        result = iv.run(adapter, prepared, capture=lm_sites or [LM_INPUT], logits=False)
    finally:
        for h in handles:
            h.remove()
    rows = torch.arange(len(images), device=prepared.grid_positions.device)[:, None]
    for s in lm_sites:
        out[s] = result.captured[s][rows, prepared.grid_positions]
    missing = [s for s in sites if s not in out]
    if missing:
        raise RuntimeError(f"{adapter.spec.name}: sites {missing} were never reached by the forward")
    return {s: out[s] for s in sites}
