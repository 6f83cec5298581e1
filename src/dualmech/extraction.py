"""Activation extraction: one forward pass per image set, every requested site, stored for reuse.

A store is a pair of files next to each other:
  `<stem>.safetensors`    one tensor per site, (n_images, N*N, D), rows in index order, grid cells row-major;
  `<stem>.index.parquet`  image -> row (plus the image's sha256, to detect stale stores).

Sites, in depth order (`site_order`):
  `vision_input`          input of the vision encoder's first block (patch + position embeddings);
  `vision.{l}`            output of vision-encoder block l, mapped to the grid by the adapter (`vision_grid`);
  `lm_input`              the LM input at the image positions = post-projector visual tokens (paper "Embed");
  `resid_post.{l}`        output of LM decoder layer l at the image positions.
Vision sites need an adapter with `vision_layers` (the LLaVA family, incl. the organism); others raise
`UnsupportedModel`. Config groups expand with `resolve_sites`: `vision` -> vision_input + every vision.l,
`lm` -> every resid_post.l.

`extract` only runs the model for sites the store does not hold yet: asking again for stored sites costs
nothing, and later analyses read the store instead of re-running images. LM-position activations do not
depend on the prompt text after the image (causal LM), so one fixed prompt serves every image.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import interventions as iv
from . import runtime
from .tables import atomic_write

VISION_INPUT = "vision_input"
GROUPS = ("vision", "lm_input", "lm")
PROMPT = "The color of the square to the left of the red square is "   # any prompt: image positions precede it


def vision_site(layer: int) -> str:
    return f"vision.{layer}"


def site_order(n_vision: int, n_lm: int) -> list[str]:
    """Every site of a model, shallow to deep (the x-axis of depth curves)."""
    return ([VISION_INPUT] + [vision_site(i) for i in range(n_vision)] + [iv.LM_INPUT]
            + [iv.resid_post(i) for i in range(n_lm)])


def resolve_sites(adapter, groups: Sequence[str]) -> list[str]:
    """Config entries (groups `vision`, `lm_input`, `lm`, or explicit site names) -> ordered site names."""
    wanted: list[str] = []
    for g in groups:
        if g == "vision":
            wanted += [VISION_INPUT] + [vision_site(i) for i in range(len(adapter.vision_layers))]
        elif g == "lm":
            wanted += [iv.resid_post(i) for i in range(adapter.n_layers)]
        else:
            wanted.append(g)
    n_vision = len(adapter.vision_layers) if any(_is_vision(s) for s in wanted) else 0
    order = site_order(n_vision, adapter.n_layers)
    unknown = [s for s in wanted if s not in order]
    if unknown:
        raise ValueError(f"unknown site(s) {unknown}; known: {order} or the groups {list(GROUPS)}")
    return [s for s in order if s in wanted]


def _is_vision(site: str) -> bool:
    return site == VISION_INPUT or site.startswith("vision.")


# ------------------------------------------------------------------ the store
class ActivationStore:
    """Read/write access to one `<stem>.safetensors` + `<stem>.index.parquet` pair."""

    def __init__(self, stem: Path | str):
        stem = str(stem)
        for suffix in (".safetensors", ".index.parquet"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        self.tensors = Path(stem + ".safetensors")
        self.index_path = Path(stem + ".index.parquet")

    @property
    def exists(self) -> bool:
        return self.tensors.exists() and self.index_path.exists()

    def index(self) -> pd.DataFrame:
        return pd.read_parquet(self.index_path)

    def sites(self) -> list[str]:
        if not self.exists:
            return []
        from safetensors import safe_open
        with safe_open(self.tensors, "np") as f:
            return sorted(f.keys(), key=_depth_key)         # safetensors lists names alphabetically

    def metadata(self) -> dict:
        from safetensors import safe_open
        with safe_open(self.tensors, "np") as f:
            return dict(f.metadata() or {})

    def load_tensors(self, sites: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """site -> (n_images, N*N, D) tensor, as stored (the model's dtype)."""
        from safetensors import safe_open
        out = {}
        with safe_open(self.tensors, "pt") as f:
            missing = [s for s in (sites or []) if s not in f.keys()]
            if missing:
                raise KeyError(f"{self.tensors}: sites {missing} were not extracted (have {list(f.keys())})")
            for s in sites or list(f.keys()):
                out[s] = f.get_tensor(s)
        return out

    def load(self, sites: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """site -> (n_images, N*N, D) float32 array, whatever the stored dtype."""
        return {s: t.float().numpy() for s, t in self.load_tensors(sites).items()}

    def matches(self, images: pd.DataFrame) -> bool:
        """True if the store indexes exactly these images (same order and content hashes)."""
        if not self.exists:
            return False
        idx = self.index()
        cols = [c for c in ("image", "image_sha256") if c in images and c in idx]
        return len(idx) == len(images) and all((idx[c].to_numpy() == images[c].to_numpy()).all() for c in cols)

    def write(self, images: pd.DataFrame, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
        from safetensors.torch import save
        data = save({s: tensors[s].contiguous() for s in sorted(tensors, key=_depth_key)},
                    metadata={k: str(v) for k, v in metadata.items()})
        index = images.reset_index(drop=True).assign(row=np.arange(len(images)))
        atomic_write(self.tensors, data)
        atomic_write(self.index_path, index.to_parquet(index=False))


def _depth_key(site: str) -> tuple:
    if site == VISION_INPUT:
        return (0, -1)
    kind, _, idx = site.partition(".")
    return ({"vision": 0, iv.LM_INPUT: 1, "resid_post": 2}[kind], int(idx) if idx else -1)


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
    kept = store.load_tensors(have) if have else {}
    root = Path(image_root)
    chunks: dict[str, list[torch.Tensor]] = {s: [] for s in todo}
    size = batch_size or runtime.batch_size()
    paths = images["image"].tolist()
    for sl in runtime.batches(len(paths), size, desc):
        batch = [Image.open(root / p).convert("RGB") for p in paths[sl]]
        for site, t in capture(adapter, batch, todo).items():
            chunks[site].append(t.cpu())
    new = {s: torch.cat(v) for s, v in chunks.items()}
    meta = dict(model=adapter.spec.name, family=adapter.family, grid=adapter.geometry.grid,
                dtype=str(adapter.model.dtype).removeprefix("torch."), prompt=PROMPT,
                sites=json.dumps(sorted(set(kept) | set(new), key=_depth_key)))
    store.write(images[[c for c in ("image", "image_sha256") if c in images]], kept | new, meta)
    return todo


@torch.no_grad()
def capture(adapter, images: list, sites: Sequence[str]) -> dict[str, torch.Tensor]:
    """One batched forward capturing `sites` at the grid cells: site -> (B, N*N, D) in the model's dtype.

    The forward stops after the deepest requested LM site (vision-only requests stop at the LM input)."""
    prepared = adapter.prepare(images, [PROMPT] * len(images))
    lm_sites = [s for s in sites if not _is_vision(s)]
    vis_sites = [s for s in sites if _is_vision(s)]
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
        result = iv.run(adapter, prepared, capture=lm_sites or [iv.LM_INPUT], logits=False)
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
