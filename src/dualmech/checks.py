"""`check_model`: the parity checks every adapter must pass before its numbers are trusted.

On a couple of canonical stimuli it verifies
1. one image token per grid cell (grid**2 per example) at the positions the adapter reports;
2. hooks are transparent: identity edits at every site + capturing every site give the plain logits
   (exactly for float32, within 1e-6 for bf16/fp16 checkpoints);
3. the LM input determines the rest: writing a counterfactual run's captured `lm_input` into the clean
   run (at every position, and at the grid positions only) reproduces the counterfactual logits (1e-5);
4. the image matters at all (the counterfactual changes the logits), otherwise 3 would be vacuous;
5. right padding is harmless: each row's logits in the padded batch equal that example run alone
   (1e-4, float32 only: batched half-precision matmuls legitimately differ more).
"""
from __future__ import annotations

import torch

from . import interventions as iv
from .models.base import UnsupportedModel, VLMAdapter
from .stimuli import ORIENTATION_OF, entities, prompt, render_scene

STIMULI = (("squares", "left"), ("shapes", "above"))   # different prompt lengths: exercises right padding
PATCH_TOL = 1e-5
BATCH_TOL = 1e-4


def _stimuli(adapter: VLMAdapter):
    """Clean scenes (entities 0,1,2 at the canonical layout), counterfactuals (order reversed), prompts
    about the middle entity: same token ids, different images."""
    g, clean, cf, prompts = adapter.geometry, [], [], []
    for setting, direction in STIMULI:
        ents = list(entities(setting, adapter.palette)[:3])
        layout = g.canonical_layout(ORIENTATION_OF[direction])
        clean.append(render_scene(ents, layout, g))
        cf.append(render_scene(ents[::-1], layout, g))
        prompts.append(prompt(setting, direction, ents[1]))
    return clean, cf, prompts


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def canvas(adapter: VLMAdapter) -> dict:
    """What the stimulus rules need of a model (its canvas geometry, palette and excluded objects), written into
    the check report so that they read it there instead of loading the model's code (`snake.canvas`)."""
    return dict(geometry=adapter.geometry.as_dict(), palette=adapter.palette,
                exclude_objects=list(adapter.exclude_objects))


@torch.no_grad()
def check_model(adapter: VLMAdapter) -> dict:
    """Run the checks; return the measured numbers, raise AssertionError naming the failed check."""
    name, n = adapter.spec.name, adapter.geometry.grid ** 2
    clean_imgs, cf_imgs, prompts = _stimuli(adapter)
    try:
        clean, cf = adapter.prepare(clean_imgs, prompts), adapter.prepare(cf_imgs, prompts)
    except UnsupportedModel as e:     # e.g. the image-token count does not match the grid
        raise AssertionError(f"{name}: prepare failed: {e}") from e

    # 1. token layout
    ids = clean.inputs["input_ids"]
    counts = (ids == adapter.image_token_id).sum(1).tolist()
    extra = adapter.trailing_image_tokens
    assert counts == [n + extra] * len(prompts), (f"{name}: image tokens per example {counts}, expected {n + extra} "
                                                  f"(grid**2 + {extra} after the grid)")
    assert tuple(clean.grid_positions.shape) == (len(prompts), n), f"{name}: grid_positions {clean.grid_positions.shape}"
    at_grid = ids.gather(1, clean.grid_positions)
    assert bool((at_grid == adapter.image_token_id).all()), f"{name}: grid_positions point at non-image tokens"
    assert torch.equal(ids, cf.inputs["input_ids"]), f"{name}: counterfactual token ids differ from the clean ones"

    # 2. parity of the hooked forward
    sites = iv.all_sites(adapter.n_layers)
    plain = iv.final_logits(adapter, clean)
    hooked = iv.run(adapter, clean, edits={s: iv.identity for s in sites}, capture=sites)
    missing = [s for s in sites if s not in hooked.captured]
    assert not missing, f"{name}: sites never reached by the forward: {missing}"
    half = adapter.model.dtype in (torch.float16, torch.bfloat16)
    parity_tol = 1e-6 if half else 0.0
    parity = _max_diff(hooked.logits, plain)
    assert parity <= parity_tol, (f"{name}: hooked forward with identity edits differs from the plain forward by "
                                  f"{parity:.3g} (tolerance {parity_tol})")

    # 3-4. the image matters, and the counterfactual LM input patched into the clean run gives its logits
    cf_run = iv.run(adapter, cf, capture=[iv.LM_INPUT])
    cf_input = cf_run.captured[iv.LM_INPUT]
    effect = _max_diff(cf_run.logits, plain)
    assert effect > 0, f"{name}: the image does not affect the logits (counterfactual == clean); projector dead?"
    patched_all = iv.run(adapter, clean, edits={iv.LM_INPUT: lambda h: cf_input.to(h.dtype)}).logits
    rows = torch.arange(len(prompts), device=clean.grid_positions.device).repeat_interleave(n)
    pos = clean.grid_positions.reshape(-1)
    patched_grid = iv.run(adapter, clean, edits={iv.LM_INPUT: iv.replace_at(rows, pos, cf_input[rows, pos])}).logits
    d_all, d_grid = _max_diff(patched_all, cf_run.logits), _max_diff(patched_grid, cf_run.logits)
    assert d_all <= PATCH_TOL, f"{name}: patching the counterfactual lm_input everywhere is off by {d_all:.3g}"
    assert d_grid <= PATCH_TOL, (f"{name}: patching the counterfactual lm_input at the grid positions is off by "
                                 f"{d_grid:.3g}: some image tokens are missing from grid_positions")

    # 5. padding: batched == one example at a time
    single = torch.cat([iv.final_logits(adapter, adapter.prepare([im], [p])) for im, p in zip(clean_imgs, prompts)])
    d_batch = _max_diff(plain, single)
    assert half or d_batch <= BATCH_TOL, (f"{name}: logits of the padded batch differ from single-example runs by "
                                          f"{d_batch:.3g}: padding or the final position is mishandled")
    return dict(model=name, family=adapter.family, dtype=str(adapter.model.dtype).removeprefix("torch."),
                grid=adapter.geometry.grid, **canvas(adapter), examples=len(prompts), image_tokens=counts,
                parity_max_abs_diff=parity, parity_tolerance=parity_tol, image_effect_max_abs_diff=effect,
                patch_all_max_abs_diff=d_all, patch_grid_max_abs_diff=d_grid, patch_tolerance=PATCH_TOL,
                batch_vs_single_max_abs_diff=d_batch)
