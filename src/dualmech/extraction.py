"""Activation extraction: one forward pass per image set, every requested site, stored for reuse.

A store is a pair of files next to each other:
  `<stem>.safetensors`    one tensor per site, (n_images, N*N, D), rows in index order, grid cells row-major;
  `<stem>.index.parquet`  image -> row (plus the image's sha256, to detect stale stores).
The tensor file is written as it is computed (`StoreWriter`: header first, then each batch's rows at their
offsets, into a temporary file renamed when complete), so host memory holds one batch whatever the number of
sites and images; tensors are laid out in depth order and the metadata keys sorted, so the same extraction
gives the same bytes. Readers open it lazily (`safetensors.safe_open`: one site at a time).

Sites, in depth order (`site_order`):
  `vision_input`          input of the vision encoder's first block (patch + position embeddings);
  `vision.{l}`            output of vision-encoder block l, mapped to the grid by the adapter (`vision_grid`);
  `lm_input`              the LM input at the image positions = post-projector visual tokens (paper "Embed");
  `resid_post.{l}`        output of LM decoder layer l at the image positions.
Vision sites need an adapter with `vision_layers` and `vision_grid` (every supported family has them; an
adapter without raises `UnsupportedModel`). Config groups expand with `resolve_sites`: `vision` -> vision_input + every vision.l,
`lm` -> every resid_post.l.

`extract` only runs the model for sites the store does not hold yet: asking again for stored sites costs
nothing, and later analyses read the store instead of re-running images. LM-position activations do not
depend on the prompt text after the image (causal LM), so one fixed prompt serves every image.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
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
        """Write whole tensors at once (small stores, tests); `extract` streams through `StoreWriter`."""
        writer = StoreWriter(self.tensors, {s: (tuple(t.shape), t.dtype) for s, t in tensors.items()}, metadata)
        with writer:
            for site, t in tensors.items():
                writer.write(site, 0, t)
        self.write_index(images)

    def write_index(self, images: pd.DataFrame) -> None:
        index = images.reset_index(drop=True).assign(row=np.arange(len(images)))
        atomic_write(self.index_path, index.to_parquet(index=False))


_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
_FROM_NAME = {v: k for k, v in _DTYPES.items()}


class StoreWriter:
    """A safetensors file written in pieces: `write(site, first_row, rows)` puts rows at their final offsets.

    The header (sites in depth order, each with dtype, shape and byte range; metadata keys sorted) is fixed
    up front from `shapes` (site -> (shape, dtype)); the data goes to a temporary file in the target directory
    that replaces `path` on a clean exit from the `with` block, and is deleted otherwise. A temporary file left by
    a killed writer of the same `path` (as large as the store) is deleted when the next writer starts."""

    def __init__(self, path: Path, shapes: dict[str, tuple[tuple[int, ...], torch.dtype]], metadata: dict):
        self.path = Path(path)
        header: dict = {"__metadata__": {k: str(metadata[k]) for k in sorted(metadata)}}
        self.offsets, offset = {}, 0
        for site in sorted(shapes, key=_depth_key):
            shape, dtype = shapes[site]
            size = int(np.prod(shape)) * torch.tensor([], dtype=dtype).element_size()
            header[site] = {"dtype": _DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            self.offsets[site] = (offset, size // max(1, shape[0]), dtype)
            offset += size
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)
        self.start = 8 + len(blob)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.path.parent.glob(f".{self.path.name}.*"):
            stale.unlink()
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        self.f = os.fdopen(fd, "wb")
        self.f.write(struct.pack("<Q", len(blob)) + blob)
        self.f.truncate(self.start + offset)

    def write(self, site: str, first_row: int, rows: torch.Tensor) -> None:
        offset, row_bytes, dtype = self.offsets[site]
        data = rows.detach().to("cpu", dtype).contiguous().reshape(-1).view(torch.uint8).numpy()
        self.f.seek(self.start + offset + first_row * row_bytes)
        self.f.write(memoryview(data))

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, kind, *_) -> None:
        self.f.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


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
    if not len(images):
        raise ValueError(f"{store.tensors}: no images to extract")
    root = Path(image_root)
    paths = images["image"].tolist()
    keys = images[[c for c in ("image", "image_sha256") if c in images]]
    meta = dict(model=adapter.spec.name, family=adapter.family, grid=adapter.geometry.grid,
                dtype=str(adapter.model.dtype).removeprefix("torch."), prompt=PROMPT,
                sites=json.dumps(sorted(set(have) | set(todo), key=_depth_key)))
    writer: StoreWriter | None = None

    def batch(sl: slice):
        nonlocal writer
        out = capture(adapter, [Image.open(root / p).convert("RGB") for p in paths[sl]], todo)
        if writer is None:                 # the first batch fixes every site's width and dtype
            shapes = {s: ((len(paths),) + tuple(t.shape[1:]), t.dtype) for s, t in out.items()}
            if have:
                from safetensors import safe_open
                with safe_open(store.tensors, "pt") as f:
                    shapes |= {s: (tuple(f.get_slice(s).get_shape()), _FROM_NAME[f.get_slice(s).get_dtype()])
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
