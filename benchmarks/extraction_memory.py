"""Host-memory benchmark: a paper-size extraction (every site of a Qwen2-VL-7B-shaped model, canonical Objects).

Builds a random-weight Qwen2-VL with Qwen2-VL-7B's depth (28 LM layers, 32 vision blocks, patch 14, 2x2
merge, 12x12 visual tokens on a 336-px canvas) but narrow widths, wrapped in the project's Qwen2-VL adapter
(the builder of `benchmarks/gpu.py`), renders the canonical Objects stimuli at its geometry (1,344 items: 336
ordered triples x 4 directions, shown on 672 distinct images, which is what the pipeline's Objects store
holds), and runs the pipeline's `extraction.extract` for the requested sites into a store in a temporary
directory (deleted afterwards). It prints, as JSON: images, sites, store bytes, the process's resident-set
size before extraction, its high-water mark during extraction (Linux VmHWM, reset just before extraction
through /proc/self/clear_refs; `getrusage` ru_maxrss as well), the peak increase over the pre-extraction
baseline, that increase over the store bytes, and over one batch of the store (batch x one image's rows at
every requested site).

Bound: the peak increase stays under FIXED_MIB (200 MiB) + BATCHES (2) batches of the store, whatever the
number of sites and images; the script prints whether it held. What grows with the batch is the forward's own
working set and `extraction.capture`, which holds one batch of every requested site (and, at the captured LM
layers, the hidden states over the whole sequence) until it is written. Measured on the project's 2-core CPU
machine (shared with other jobs, run under nice 19, one torch thread), default widths (LM 128, vision 64, fp32):
  every site (62), 672 images, batch 8: store 4,489 MiB, peak increase 169 MiB (0.038 of the store);
  every site (62), 16 images, batch 8:  store 107 MiB, peak increase 147 MiB;
  every site (62), 64 images, batch 2:  store 428 MiB, peak increase 60 MiB;
  the LM input alone (1 site), 672 images, batch 8: store 47 MiB, peak increase 98 MiB.
So the peak follows the batch, not the store's size (sites x images).

    python benchmarks/extraction_memory.py [--images N] [--sites vision lm_input lm] [--hidden 128]
                                           [--vision-width 64] [--batch 8] [--threads 1]
    python benchmarks/extraction_memory.py --images 16            # smoke test (about 25 CPU-seconds)
    python benchmarks/extraction_memory.py --sites lm_input       # one site: a 95x smaller store, 71 MiB less peak
"""
import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch

from dualmech import extraction
from dualmech.stimuli import relation_items
from gpu import build          # this script's directory is on sys.path when it runs: the shared builder

# Qwen2-VL-7B's depth and geometry, narrow widths (the heads keep 32-wide LM and 16-wide vision head dims)
LAYERS, VISION_DEPTH = 28, 32
FIXED_MIB, BATCHES = 200, 2          # the stated bound: peak increase <= FIXED_MIB + BATCHES batches of the store


def status_kb(field: str) -> int:
    """One `VmXXX:  N kB` line of /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> bool:
    """Reset the kernel's resident-set high-water mark (VmHWM) to the current RSS; False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def mib(n_bytes: float) -> float:
    return round(n_bytes / 2 ** 20, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=None,
                    help="first N distinct images of the canonical Objects set (default: all 672, the 1,344 items)")
    ap.add_argument("--sites", nargs="+", default=list(extraction.GROUPS),
                    help="site groups or names, as in config.yaml's probing.sites (default: every site)")
    ap.add_argument("--hidden", type=int, default=128, help="LM width (Qwen2-VL-7B: 3584)")
    ap.add_argument("--vision-width", type=int, default=64, help="vision-tower width (Qwen2-VL-7B: 1280)")
    ap.add_argument("--batch", type=int, default=8, help="images per forward")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-extraction-memory-"))
    try:
        t0 = time.perf_counter()
        shape = dict(hidden=a.hidden, intermediate=2 * a.hidden, layers=LAYERS, heads=a.hidden // 32,
                     kv_heads=max(1, a.hidden // 64), vocab=None, vision_depth=VISION_DEPTH,
                     vision_width=a.vision_width, vision_heads=a.vision_width // 16)
        adapter = build(shape, "cpu", torch.float32, work / "model")
        items = relation_items("objects", adapter.geometry, adapter.palette, work / "images")
        images = items.drop_duplicates("image")[["image", "image_sha256"]].reset_index(drop=True)
        if a.images is not None:
            if a.images > len(images):
                raise SystemExit(f"--images {a.images}: the canonical Objects set has {len(images)} images")
            images = images.iloc[:a.images]
        sites = extraction.resolve_sites(adapter, a.sites)
        setup_s = time.perf_counter() - t0
        print(f"free disk under {work.parent}: {shutil.disk_usage(work).free / 2 ** 30:.1f} GiB", flush=True)
        store = extraction.ActivationStore(work / "store")
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss      # kB on Linux
        hwm_reset = reset_peak()
        baseline = status_kb("VmRSS")
        print(json.dumps(dict(images=len(images), sites=len(sites), rss_before_mib=mib(baseline * 1024))), flush=True)
        t = time.perf_counter()
        extraction.extract(adapter, images, work / "images", store, sites, batch_size=a.batch, desc="extract")
        extract_s = time.perf_counter() - t
        peak = status_kb("VmHWM") if hwm_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        store_bytes = store.tensors.stat().st_size
        increase = (peak - baseline) * 1024
        one_batch = store_bytes * min(a.batch, len(images)) / len(images)
        bound = FIXED_MIB * 2 ** 20 + BATCHES * one_batch
        print(json.dumps(dict(
            images=len(images), items=int(items["image"].isin(images["image"]).sum()), sites=len(sites),
            site_groups=a.sites, lm_hidden=a.hidden, vision_width=a.vision_width, lm_layers=LAYERS,
            vision_blocks=VISION_DEPTH, grid=adapter.geometry.grid, dtype=str(adapter.model.dtype),
            batch=a.batch, threads=a.threads, setup_s=round(setup_s, 1), extract_s=round(extract_s, 1),
            store_bytes=store_bytes, store_mib=mib(store_bytes), one_batch_of_store_mib=mib(one_batch),
            rss_before_mib=mib(baseline * 1024), peak_rss_mib=mib(peak * 1024), peak_increase_mib=mib(increase),
            peak_source="VmHWM (reset before extraction)" if hwm_reset else "ru_maxrss",
            ru_maxrss_before_mib=mib(maxrss_before * 1024), ru_maxrss_after_mib=mib(maxrss_after * 1024),
            increase_over_store=round(increase / store_bytes, 4),
            increase_over_one_batch=round(increase / one_batch, 2),
            bound_mib=mib(bound), within_bound=increase <= bound)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
