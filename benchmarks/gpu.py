"""GPU benchmark: extraction + the Fig 3 sweep on a full-size, random-weight Qwen2-VL-7B-shaped model.

The model is built from its config directly on the device in bf16 (no download, no checkpoint on disk) and
wrapped in the project's Qwen2-VL adapter, so extraction (`extraction.capture`, every LM site) and the Fig 3
last-token sweep (`patching.sweep_group` through the engine: one traced clean forward, one cf capture, then one
resumed forward per site) run exactly the pipeline's code. It prints, per phase, wall time, model FLOPs (counted
once per phase shape with torch's FlopCounterMode, outside the timed runs) and achieved TFLOP/s against the
device's dense bf16 peak (aim: >= 50% on the forward batches, i.e. extraction and the traced/captured full
forwards). Must finish in < 5 minutes on one H100/H200-class GPU.

    python benchmarks/gpu.py [--pairs 64] [--batch 16] [--peak-tflops 989]
    python benchmarks/gpu.py --tiny --device cpu      # smoke test of the script itself (narrow model, CPU)
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import transformers as T

from dualmech import interventions as iv
from dualmech import extraction, patching, pairs, tiny
from dualmech.models.base import ImageTextProcessor, ModelSpec
from dualmech.models.qwen2vl import Qwen2VLAdapter
from dualmech.stimuli import DIRECTIONS, ORIENTATION_OF, entities, prompt, render_scene

# Qwen2-VL-7B-Instruct's shape (config.json of the release)
SEVEN_B = dict(hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4, vocab=152064,
               vision_depth=32, vision_width=1280, vision_heads=16)
TINY = dict(hidden=64, intermediate=128, layers=4, heads=2, kv_heads=2, vocab=None,
            vision_depth=2, vision_width=32, vision_heads=2)
PEAK_BF16 = {"H200": 989.0, "H100": 989.0, "GH200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0,
             "A10": 125.0, "RTX 4090": 165.0, "RTX 3090": 71.0}     # dense bf16 TFLOP/s (SXM where it varies)


def build(shape: dict, device: str, dtype, out: Path):
    """(adapter, processor dir): random-weight Qwen2-VL of `shape`, built on `device`, word-level tokenizer."""
    tok = tiny.word_tokenizer(["<|endoftext|>", "<unk>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                               "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"], ["system", "user", "assistant"],
                              tiny.QWEN_TEMPLATE, unk_token="<unk>", pad_token="<|endoftext|>",
                              eos_token="<|im_end|>", image_token="<|image_pad|>", video_token="<|video_pad|>")
    head_dim = shape["hidden"] // shape["heads"]
    vc = T.Qwen2VLVisionConfig(depth=shape["vision_depth"], embed_dim=shape["vision_width"],
                               hidden_size=shape["hidden"], num_heads=shape["vision_heads"], mlp_ratio=4,
                               patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
    tc = T.Qwen2VLTextConfig(vocab_size=shape["vocab"] or len(tok), hidden_size=shape["hidden"],
                             intermediate_size=shape["intermediate"], num_hidden_layers=shape["layers"],
                             num_attention_heads=shape["heads"], num_key_value_heads=shape["kv_heads"],
                             max_position_embeddings=32768, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id,
                             rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [
                                 head_dim // 8, head_dim * 3 // 16, head_dim * 3 // 16]})
    img, vid, vs, ve = (tok.convert_tokens_to_ids(t) for t in
                        ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"))
    cfg = T.Qwen2VLConfig(text_config=tc.to_dict(), vision_config=vc.to_dict(), image_token_id=img,
                          video_token_id=vid, vision_start_token_id=vs, vision_end_token_id=ve)
    torch.manual_seed(0)
    with torch.device(device):
        model = T.Qwen2VLForConditionalGeneration._from_config(cfg, dtype=dtype).eval()
    ip = T.Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2)
    ip.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2VLProcessor"}) + "\n")
    processor = ImageTextProcessor(ip, tok, tiny.QWEN_TEMPLATE)
    return Qwen2VLAdapter(model, processor, ModelSpec(name="qwen2vl-7b-shaped", path=str(out), dtype="bfloat16"))


def last_token_pairs(adapter, n: int):
    """n Fig 3 pairs (clean image/prompt, cf image/prompt, candidate words), directions in turn."""
    g, ents = adapter.geometry, entities("squares", adapter.palette)
    out = dict(clean_images=[], clean_prompts=[], cf_images=[], cf_prompts=[], words=[])
    size = pairs.TUPLE_SIZE["last_token"]
    for i in range(n):
        direction = DIRECTIONS[i % len(DIRECTIONS)]
        tup = [ents[(i + j) % len(ents)] for j in range(size)]
        clean, cf, cf_dir = pairs.scenes("last_token", direction, tup)
        o = ORIENTATION_OF[direction]
        out["clean_images"].append(render_scene(clean, g.canonical_layout(o), g))
        out["cf_images"].append(render_scene(cf, g.canonical_layout(o), g))
        out["clean_prompts"].append(prompt("squares", direction, tup[1]))
        out["cf_prompts"].append(prompt("squares", cf_dir, tup[1]))
        out["words"].append([e.answer for e in tup])
    return out


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16, help="pairs (and images) per forward")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="narrow model (smoke test of this script on a CPU)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak (default: by device name)")
    a = ap.parse_args()
    t_start = time.perf_counter()
    dtype = torch.float32 if a.tiny and a.device == "cpu" else torch.bfloat16
    if torch.device(a.device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    adapter = build(TINY if a.tiny else SEVEN_B, a.device, dtype, Path(tempfile.mkdtemp(prefix="gpu-bench-")))
    n_params = sum(p.numel() for p in adapter.model.parameters())
    name = torch.cuda.get_device_name(a.device) if torch.device(a.device).type == "cuda" else "cpu"
    peak = a.peak_tflops or next((v for k, v in PEAK_BF16.items() if k in name), None)
    print(json.dumps(dict(device=name, params_b=round(n_params / 1e9, 3), dtype=str(dtype), grid=adapter.geometry.grid,
                          build_s=round(time.perf_counter() - t_start, 1), peak_bf16_tflops=peak)), flush=True)
    b = last_token_pairs(adapter, a.pairs)
    sites = iv.all_sites(adapter.n_layers)
    batches = [slice(s, min(a.pairs, s + a.batch)) for s in range(0, a.pairs, a.batch)]

    def extract(sl):
        return extraction.capture(adapter, b["clean_images"][sl], sites)

    def sweep(sl):
        return patching.sweep_group(adapter, b["clean_images"][sl], b["clean_prompts"][sl], b["cf_images"][sl],
                                    b["cf_prompts"][sl], [[(patching.FINAL, patching.FINAL)] * (sl.stop - sl.start)],
                                    sites, b["words"][sl], engine=True)

    def full_forward(sl):        # the plain forward of one batch: the yardstick for the forward-batch efficiency
        return iv.final_logits(adapter, adapter.prepare(b["clean_images"][sl], b["clean_prompts"][sl]))

    rows = []
    with torch.inference_mode():
        for phase, fn in (("forward", full_forward), ("extraction", extract), ("fig3_sweep", sweep)):
            fn(batches[0])                                       # warm-up (kernels, allocator)
            per_batch = flops(lambda: fn(batches[0]))            # every batch has the same shape but the last
            sync(a.device)
            t = time.perf_counter()
            for sl in batches:
                fn(sl)
            sync(a.device)
            dt = time.perf_counter() - t
            total = per_batch * a.pairs / (batches[0].stop - batches[0].start)
            tflops = total / dt / 1e12
            row = dict(phase=phase, pairs=a.pairs, batch=a.batch, seconds=round(dt, 3), tflop=round(total / 1e12, 2),
                       tflops=round(tflops, 1), fraction_of_peak=round(tflops / peak, 3) if peak else None)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps(dict(total_s=round(time.perf_counter() - t_start, 1), aim_fraction=0.5,
                          forward_batches_fraction={r["phase"]: r["fraction_of_peak"] for r in rows},
                          peak_gib=round(torch.cuda.max_memory_allocated() / 2 ** 30, 1)
                          if torch.device(a.device).type == "cuda" else None)))


if __name__ == "__main__":
    main()
