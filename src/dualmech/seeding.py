"""One root seed drives every random number generator, through named, stable sub-streams."""
from __future__ import annotations

import zlib

import numpy as np


def _key(*names) -> list[int]:
    return [zlib.crc32(str(n).encode()) for n in names]


def rng(seed: int, *names) -> np.random.Generator:
    """A numpy Generator for the sub-stream `names` of the root `seed` (stable across runs/processes)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *_key(*names)]))


def torch_seed(seed: int, *names) -> int:
    """A 63-bit integer seed for torch, derived like `rng`."""
    return int(np.random.SeedSequence([int(seed), *_key(*names)]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def torch_generator(seed: int, *names) -> "torch.Generator":
    import torch  # here, not at module level: parsing the workflow (which imports the stimuli) needs no torch

    return torch.Generator().manual_seed(torch_seed(seed, *names))
