"""Runtime knobs that are not science parameters: threads, batch size, device (environment variables)."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def setup(threads: int | None = None) -> None:
    """Deterministic, bounded torch settings for every pipeline step."""
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # DUALMECH_TF32=1 lets fp32 models use TF32 matmuls on NVIDIA GPUs (about 3x faster, 10-bit mantissa in the
    # products): a speed switch, not a science parameter; off by default so fp32 results stay exact.
    tf32 = os.environ.get("DUALMECH_TF32", "0") == "1"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32


def skip_vision() -> bool:
    """Whether forwards whose visual tokens are all overwritten at the LM input may skip the vision tower
    (`interventions.without_vision`, where exact). DUALMECH_SKIP_VISION=0 forces full forwards: a check of the
    shortcut, not a science parameter (the results are the same either way)."""
    return os.environ.get("DUALMECH_SKIP_VISION", "1") != "0"


DEFAULT_BATCH = 64
TEXT_TOKENS = 96            # prompt + chat template around the image, a generous bound for the memory estimate


def free_memory(device) -> int:
    """Bytes free on `device`: CUDA's own count, or the host's available memory (MemAvailable)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
        return kb * 1024
    except (OSError, StopIteration):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def row_bytes(adapter) -> int:
    """Memory one row of a forward may hold at its peak in the patching engine (the heaviest user): every decoder
    layer's input and its keys/values for the whole sequence, in float32."""
    width = adapter.model.get_input_embeddings().embedding_dim
    tokens = adapter.geometry.grid ** 2 + TEXT_TOKENS
    return 3 * (adapter.n_layers + 1) * tokens * width * 4


def batch_size(adapter=None, default: int = DEFAULT_BATCH) -> int:
    """Rows (images, or (pair, variant) rows) per forward. DUALMECH_BATCH_SIZE when set; otherwise `default`,
    lowered to what half of the model's device's free memory holds (`row_bytes` a row), never raised, so a
    machine with room runs the default and a small one starts where it fits (`batched` still halves on
    out-of-memory). The choice is logged."""
    if "DUALMECH_BATCH_SIZE" in os.environ:
        return int(os.environ["DUALMECH_BATCH_SIZE"])
    if adapter is None:
        return default
    free, per_row = free_memory(adapter.device), row_bytes(adapter)
    size = max(1, min(default, free // 2 // per_row))
    log.info("batch size %d: %.1f GB free on %s, about %.1f MB a row (DUALMECH_BATCH_SIZE overrides)", size,
             free / 1e9, adapter.device, per_row / 1e6)
    return size


def batches(n: int, size: int, desc: str) -> Iterator[slice]:
    """Slices covering range(n) in chunks of `size`, with a progress bar on stderr."""
    starts: Sequence[int] = range(0, n, size)
    for s in tqdm(starts, desc=desc, unit="batch", leave=False, mininterval=2.0):
        yield slice(s, min(n, s + size))


def is_out_of_memory(err: BaseException) -> bool:
    """A CUDA or host allocation failure (torch raises both as RuntimeError subclasses or MemoryError)."""
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text
                                              or "failed to allocate" in text)


def batched(n: int, size: int, desc: str, step: Callable[[slice], object]) -> list:
    """[step(chunk) for the chunks of range(n)], `size` at a time; on out-of-memory the size is halved and the
    chunk retried (down to 1; the size in use is logged). Results depend only on what `step` computes per item,
    so the caller's output is the same whatever size ends up used."""
    out, start, size = [], 0, max(1, min(size, n))
    log.info("%s: %d items, batch size %d", desc, n, size)
    with tqdm(total=n, desc=desc, unit="item", leave=False, mininterval=2.0) as bar:
        while start < n:
            sl = slice(start, min(n, start + size))
            try:
                out.append(step(sl))
            except (RuntimeError, MemoryError) as err:
                if size == 1 or not is_out_of_memory(err):
                    raise
                size = max(1, size // 2)
                log.warning("%s: out of memory at batch size %d; retrying with %d", desc, sl.stop - sl.start, size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            bar.update(sl.stop - sl.start)
            start = sl.stop
    return out
