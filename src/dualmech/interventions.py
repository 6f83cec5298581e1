"""Capture and edit the LM residual stream with plain torch forward hooks.

Sites: `lm_input` (input of decoder layer 0 = post-projector visual tokens at image positions; the
paper's "Embed") and `resid_post.{l}` (output of decoder layer l). An edit is a function
(B, T, D) -> (B, T, D) applied at its site; the helpers below build the paper's operations
(replace, swap, add) from per-row position lists so that one batched forward can carry a different
intervention in every row (a whole layer sweep in one pass).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .models.base import Prepared, VLMAdapter

Edit = Callable[[torch.Tensor], torch.Tensor]
LM_INPUT = "lm_input"


def resid_post(layer: int) -> str:
    return f"resid_post.{layer}"


def all_sites(n_layers: int) -> list[str]:
    """Embed followed by every layer output: the x-axis of every patching figure."""
    return [LM_INPUT] + [resid_post(layer) for layer in range(n_layers)]


def site_label(site: str) -> str:
    return "Embed" if site == LM_INPUT else site.split(".")[1]


class _Stop(Exception):
    pass


@dataclass
class Result:
    logits: torch.Tensor | None          # (B, V) next-token logits at each row's final position, float32
    captured: dict[str, torch.Tensor]    # site -> (B, T, D) activations (after edits at that site)


def _parse(site: str, n_layers: int) -> int:
    """Layer index whose hook serves `site` (-1 for lm_input)."""
    if site == LM_INPUT:
        return -1
    kind, _, idx = site.partition(".")
    if kind != "resid_post" or not idx.isdigit() or not 0 <= int(idx) < n_layers:
        raise ValueError(f"unknown site {site!r}; use '{LM_INPUT}' or 'resid_post.<0..{n_layers - 1}>'")
    return int(idx)


@torch.no_grad()
def run(adapter: VLMAdapter, prepared: Prepared, edits: dict[str, Edit] | None = None,
        capture: Iterable[str] = (), logits: bool = True) -> Result:
    """One forward pass with edits applied and activations captured; `logits=False` stops right after
    the last captured site, skipping the rest of the model."""
    edits, capture = dict(edits or {}), list(capture)
    layers = adapter.layers
    for site in list(edits) + capture:
        _parse(site, len(layers))
    captured: dict[str, torch.Tensor] = {}
    last_needed = max((_parse(s, len(layers)) for s in capture), default=-2)

    def apply(site: str, hidden: torch.Tensor) -> torch.Tensor:
        if site in edits:
            hidden = edits[site](hidden)
        if site in capture:
            captured[site] = hidden.detach().clone()
        if not logits and _parse(site, len(layers)) == last_needed and len(captured) == len(capture):
            raise _Stop
        return hidden

    def pre_hook(module, args, kwargs):
        if args:
            return (apply(LM_INPUT, args[0]),) + tuple(args[1:]), kwargs
        kwargs["hidden_states"] = apply(LM_INPUT, kwargs["hidden_states"])
        return args, kwargs

    def post_hook(layer: int):
        def hook(module, args, output):
            if isinstance(output, tuple):
                return (apply(resid_post(layer), output[0]),) + tuple(output[1:])
            return apply(resid_post(layer), output)
        return hook

    handles = []
    sites = set(edits) | set(capture)
    if LM_INPUT in sites:
        handles.append(layers[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
    for layer in range(len(layers)):
        if resid_post(layer) in sites:
            handles.append(layers[layer].register_forward_hook(post_hook(layer)))
    out = None
    try:
        out = final_logits(adapter, prepared)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return Result(out, captured)


@torch.no_grad()
def final_logits(adapter: VLMAdapter, prepared: Prepared) -> torch.Tensor:
    """Plain forward: next-token logits at each row's final position (right padding is exact for causal LMs)."""
    keep, inverse = torch.unique(prepared.final_position, return_inverse=True)
    out = adapter.model(**prepared.inputs, use_cache=False, logits_to_keep=keep)
    return out.logits[torch.arange(len(inverse), device=inverse.device), inverse].float()


# ---------------------------------------------------------------- edit builders
def replace_at(rows: torch.Tensor, positions: torch.Tensor, values: torch.Tensor) -> Edit:
    """hidden[rows[i], positions[i]] <- values[i]  (rows, positions: (K,), values: (K, D))."""
    def edit(hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden.clone()
        hidden[rows, positions] = values.to(hidden.dtype)
        return hidden
    return edit


def add_at(rows: torch.Tensor, positions: torch.Tensor, deltas: torch.Tensor) -> Edit:
    """hidden[rows[i], positions[i]] += deltas[i]."""
    def edit(hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden.clone()
        hidden[rows, positions] += deltas.to(hidden.dtype)
        return hidden
    return edit


def identity(hidden: torch.Tensor) -> torch.Tensor:
    return hidden.clone()


def then(first: Edit, second: Edit) -> Edit:
    """The edit `second` applied after `first` at the same site."""
    return lambda hidden: second(first(hidden))


def replace_grid(prepared: Prepared, values: torch.Tensor) -> Edit:
    """Overwrite every visual-token grid cell of every row with `values` (B, N*N, D); text untouched."""
    b, n = prepared.grid_positions.shape
    rows = torch.arange(b, device=prepared.grid_positions.device).repeat_interleave(n)
    return replace_at(rows, prepared.grid_positions.reshape(-1), values.reshape(b * n, -1))


def repeat_rows(prepared: Prepared, k: int) -> Prepared | None:
    """Every example repeated k times (rows i*k .. i*k+k-1 are example i), without re-running the processor.

    Valid when every tensor input is per-example (first dimension = batch size); returns None otherwise
    (e.g. Qwen2-VL's flattened patch list), and the caller prepares the repeated examples instead."""
    n = len(prepared)
    if any(torch.is_tensor(v) and (v.dim() == 0 or v.shape[0] != n) for v in prepared.inputs.values()):
        return None
    inputs = {key: (v.repeat_interleave(k, 0) if torch.is_tensor(v) else v) for key, v in prepared.inputs.items()}
    return Prepared(inputs, prepared.grid_positions.repeat_interleave(k, 0), prepared.final_position.repeat_interleave(k, 0))
