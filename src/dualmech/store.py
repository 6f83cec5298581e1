"""The activation store: one `<stem>.safetensors` + `<stem>.index.parquet` pair per (model, image set).

  `<stem>.safetensors`    one tensor per site (`dualmech.sites`), (n_images, N*N, D), rows in index order, grid
                          cells row-major, in depth order, metadata keys sorted: the same extraction gives the same
                          bytes;
  `<stem>.index.parquet`  image -> row (plus the image's sha256, to detect stale stores).

`StoreWriter` writes the tensor file as it is computed (header first, then each batch's rows at their offsets,
into a temporary file renamed when complete), so host memory holds one batch whatever the number of sites and
images; readers open it lazily (`safetensors.safe_open`: one site at a time). Reading needs no torch (the probes
start without it) unless the store is in bfloat16, which numpy lacks; torch comes in with the tensors a writer
is given.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .sites import depth_key
from .tables import atomic_write

if TYPE_CHECKING:
    import torch

_NAMES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}   # torch dtype -> safetensors


def dtype_name(dtype: torch.dtype) -> str:
    """The safetensors name of a torch dtype."""
    return _NAMES[str(dtype).removeprefix("torch.")]


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a safetensors dtype name."""
    import torch
    return getattr(torch, next(k for k, v in _NAMES.items() if v == name))


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
            return sorted(f.keys(), key=depth_key)         # safetensors lists names alphabetically

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
        """site -> (n_images, N*N, D) float32 array, whatever the stored dtype (bfloat16 through torch)."""
        from safetensors import safe_open
        with safe_open(self.tensors, "np") as f:
            names = list(sites or f.keys())
            missing = [s for s in names if s not in f.keys()]
            if missing:
                raise KeyError(f"{self.tensors}: sites {missing} were not extracted (have {list(f.keys())})")
            if any(f.get_slice(s).get_dtype() == "BF16" for s in names):
                return {s: t.float().numpy() for s, t in self.load_tensors(names).items()}
            return {s: f.get_tensor(s).astype(np.float32, copy=False) for s in names}

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
        for site in sorted(shapes, key=depth_key):
            shape, dtype = shapes[site]
            size = int(np.prod(shape)) * dtype.itemsize
            header[site] = {"dtype": dtype_name(dtype), "shape": list(shape), "data_offsets": [offset, offset + size]}
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
        import torch
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
