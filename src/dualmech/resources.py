"""Cluster resources of a job that loads a model: the memory scales with the checkpoint's weights.

A job loads the weights once in the configured dtype and runs batches of activations next to them, so it
asks for 4 GB (interpreter, torch, data) plus 1.25x the loaded weights, and that much again on each retry.
Checkpoint files are taken as 2 bytes per parameter (bf16/fp16, how VLMs are published; a float32 file
errs on the large side). Qwen2-VL-7B in float32 asks for ~46 GB, Pixtral-12B in bfloat16 ~35 GB, the
organism 4 GB. Override per rule with `--set-resources RULE:mem_mb=N` (or in a profile).
No torch here: the workflow evaluates this while it builds the DAG.
"""
from __future__ import annotations

from pathlib import Path

BASE_MB = 4096
HEADROOM = 1.25
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
FILE_BYTES_PER_PARAM = 2
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def is_hub_id(path: str) -> bool:
    """`owner/name`: a Hugging Face id, not a local path."""
    return not path.startswith((".", "/")) and path.count("/") == 1


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The folder of a Hugging Face id's snapshot in the local cache (None when it is not there)."""
    if not is_hub_id(repo_id):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return Path(found).parent if isinstance(found, str) else None


def checkpoint_dir(path: str, revision: str | None = None) -> Path | None:
    """The local directory of a checkpoint: `path` itself, or its snapshot in the Hugging Face cache."""
    p = Path(path)
    return p if p.is_dir() else hub_snapshot(path, revision)


def weights_bytes(path: str, revision: str | None = None) -> int:
    """Bytes of weight files in the checkpoint (0 when it is not there yet, e.g. built by the pipeline)."""
    d = checkpoint_dir(path, revision)
    if d is None:
        return 0
    return sum(f.stat().st_size for f in d.rglob("*") if f.name.endswith(WEIGHT_SUFFIXES) and f.is_file())


def model_mem_mb(entry: dict, attempt: int = 1) -> int:
    """Memory (MB) for a job that loads the model of config entry `entry` (keys path, revision, dtype)."""
    params = weights_bytes(entry["path"], entry.get("revision")) / FILE_BYTES_PER_PARAM
    loaded_mb = params * DTYPE_BYTES.get(entry.get("dtype") or "float32", 4) / 2**20
    return int(attempt * (BASE_MB + HEADROOM * loaded_mb))
