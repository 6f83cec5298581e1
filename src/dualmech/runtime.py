"""Runtime knobs that are not science parameters: threads, batch size, device (environment variables)."""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import torch
from tqdm.auto import tqdm


def setup(threads: int | None = None) -> None:
    """Deterministic, bounded torch settings for every pipeline step."""
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def batch_size(default: int = 64) -> int:
    return int(os.environ.get("DUALMECH_BATCH_SIZE", default))


def batches(n: int, size: int, desc: str) -> Iterator[slice]:
    """Slices covering range(n) in chunks of `size`, with a progress bar on stderr."""
    starts: Sequence[int] = range(0, n, size)
    for s in tqdm(starts, desc=desc, unit="batch", leave=False, mininterval=2.0):
        yield slice(s, min(n, s + size))
