"""Capture and edit the LM residual stream with plain torch forward hooks.

Sites: `lm_input` (input of decoder layer 0 = post-projector visual tokens at image positions; the
paper's "Embed"; for Qwen3-VL it also carries each position's DeepStack features, see
`VLMAdapter.lm_input_site`) and `resid_post.{l}` (output of decoder layer l). An edit is a function
(B, T, D) -> (B, T, D) applied at its site; the helpers below build the paper's operations
(replace, swap, add) from per-row position lists so that one batched forward can carry a different
intervention in every row (a whole layer sweep in one pass).

`trace` + `resume` are the patching engine: `trace` runs the model once and keeps, per decoder layer, its
input, the keyword arguments the LM gave it (attention mask, rotary cos/sin: M-RoPE, sliding windows and
bidirectional image attention included, exactly as the model built them) and its keys/values; `resume`
restarts rows of that run at any layer with an edit applied, recomputing only the positions of each row from
the first one that the edit can reach to its final position (the rest attend through the recorded
keys/values), and `resume_sites` does that for many sites at once, each decoder layer running once for the
sites that have reached it.

`without_vision` serves forwards that overwrite every visual token at the LM input (Table 5's ablation and its
control, Fig 9's patching under the ablation, Table 2's amplified rows): the vision tower's output would be
overwritten, so where the family allows it exactly (checked once per model) the tower is skipped.
"""
from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from . import runtime
from .models.base import Prepared, VLMAdapter
from .sites import LM_INPUT, all_sites, resid_post, site_label  # noqa: F401 - the site names, also as iv.*

Edit = Callable[[torch.Tensor], torch.Tensor]
log = logging.getLogger(__name__)


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

    def at_input(hidden: torch.Tensor) -> torch.Tensor:
        return adapter.lm_input_apply(apply(LM_INPUT, adapter.lm_input_site(hidden)))

    def pre_hook(module, args, kwargs):
        if args:
            return (at_input(args[0]),) + tuple(args[1:]), kwargs
        kwargs["hidden_states"] = at_input(kwargs["hidden_states"])
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


# ---------------------------------------------------------------- the patching engine: trace once, resume rows
def start_layer(site: str, n_layers: int) -> int:
    """Index of the decoder layer whose input `site` is (n_layers: the last layer's output)."""
    return _parse(site, n_layers) + 1


class _Record:
    """Stand-in for a KV cache during `trace`: keeps each layer's keys/values and returns them unchanged."""

    def __init__(self):
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}

    def update(self, keys, values, layer_idx, *args, **kwargs):
        self.keys[layer_idx], self.values[layer_idx] = keys, values
        return keys, values


class _Written:
    """Stand-in for a KV cache during `resume`: the traced run's keys/values of the batch's rows (`rows`, (N,)),
    with the recomputed positions' own written in (`positions`, (N, m): each batch row's query positions)."""

    def __init__(self, trace: "Trace", rows: torch.Tensor, positions: torch.Tensor):
        self.trace, self.rows, self.positions = trace, rows, positions

    def update(self, keys, values, layer_idx, *args, **kwargs):
        out, at = [], (torch.arange(len(self.rows), device=self.rows.device)[:, None], self.positions)
        for traced, new in ((self.trace.record.keys[layer_idx], keys), (self.trace.record.values[layer_idx], values)):
            full = traced.index_select(0, self.rows)                          # (N, H, T, d), a copy
            full.transpose(1, 2)[at] = new.transpose(1, 2).to(full.dtype)      # (N, m) positions of (N, T, H, d)
            out.append(full)
        return tuple(out)


def _rows(x, rows: torch.Tensor, batch: int):
    """x with its batch dimension (0, of size `batch`) indexed by `rows`; a tensor whose first dimension is 1
    (broadcast) or not the batch passes unchanged (e.g. LLaVA-OneVision hands `logits_to_keep` to every decoder
    layer)."""
    if torch.is_tensor(x):
        if x.dim() == 0 or x.shape[0] == 1 or x.shape[0] != batch:
            return x
        return x.index_select(0, rows)
    if isinstance(x, tuple):
        return tuple(_rows(v, rows, batch) for v in x)
    return x


def _at(x, rows: torch.Tensor, positions: torch.Tensor, batch: int, length: int):
    """x (or each tensor of a tuple), laid out (batch or 1, length, ...), at batch rows `rows` and positions
    `positions` (N, m): (N, m, ...)."""
    if isinstance(x, tuple):
        return tuple(_at(v, rows, positions, batch, length) for v in x)
    if x.dim() < 2 or x.shape[1] != length or x.shape[0] not in (1, batch):
        raise ValueError(f"a positional argument of shape {tuple(x.shape)} is not laid out (batch, positions, ...)")
    return x[0][positions] if x.shape[0] == 1 else x[rows[:, None], positions]


@dataclass
class Trace:
    """One forward of a batch, kept so that its rows can be resumed at any layer (see `resume`)."""
    prepared: Prepared
    inputs: list[torch.Tensor]     # inputs[j]: (B, T, D) input of decoder layer j (j = 0: the lm_input site's value);
    #                                inputs[L]: the last layer's output
    kwargs: list[dict]             # kwargs[j]: what the LM passed to layer j besides the hidden states
    record: _Record                # keys/values of every layer
    captured: dict[str, torch.Tensor]
    _kept: dict = field(default_factory=dict)

    def layer_kwargs(self, layer: int, rows: torch.Tensor, positions: torch.Tensor) -> dict:
        """What the LM passed to decoder `layer`, for batch rows `rows` (N,) (trace rows, may repeat) with query
        positions `positions` (N, m): the mask's query rows over every key (no mask = plain causal), rotary
        cos/sin and position ids at those positions, any other per-row argument at those rows."""
        B, T = self.inputs[layer].shape[:2]
        kw = {}
        for k, v in self.kwargs[layer].items():
            if k == "attention_mask":
                if v is None:
                    v = (torch.arange(T, device=positions.device) <= positions[..., None])[:, None]
                else:
                    v = (v[0, 0][positions] if v.shape[0] == 1 else v[rows[:, None], 0, positions])[:, None]
            elif k in ("position_embeddings", "position_ids") and v is not None:
                v = _at(v, rows, positions, B, T)
            else:
                v = _rows(v, rows, B)
            kw[k] = v
        return kw

    def end(self, layer: int) -> torch.Tensor:
        """(B,) one past the last position each row's final position can depend on, from layer `layer` on: the
        final position + 1, or T where the mask lets a position up to it see a later one."""
        reach = self.reach(layer)
        T = reach.shape[1]
        final = self.prepared.final_position.to(reach.device)
        upto = torch.arange(T, device=reach.device)[None, :] <= final[:, None]               # (B, T) queries
        sees = torch.where(upto, reach, -1).max(1).values > final
        return torch.where(sees, torch.full_like(final, T), final + 1)

    def suffix_start(self, first: int, layer: int) -> int:
        """First position whose states can change, from layer `layer` on, when positions >= `first` change.

        Causal attention keeps every earlier position as traced; a mask that lets an earlier query see a later
        key (Gemma 3's bidirectional attention over the image) moves the start back to that query."""
        reach = self.reach(layer).max(0).values                                        # over the rows
        start = first
        while start > 0:
            sees = (reach[:start] >= start).nonzero()
            if not len(sees):
                break
            start = int(sees[0])
        return start

    def reach(self, layer: int) -> torch.Tensor:
        """(B, T) the last key position each row's query positions may attend to, from layer `layer` on (its own
        position under causal attention; kept): what `suffix_start` and `end` read of the masks."""
        key = ("reach", layer)
        if key not in self._kept:
            B, T = self.inputs[layer].shape[:2]
            positions = torch.arange(T, device=self.inputs[layer].device)
            mask = self.kwargs[layer].get("attention_mask") if layer < len(self.kwargs) else None
            if torch.is_tensor(mask):
                allowed = (mask if mask.dtype == torch.bool else mask == 0)
                allowed = allowed.reshape(allowed.shape[0], -1, T, T).any(1)                 # (B or 1, T, T)
                here = torch.where(allowed, positions, -1).max(-1).values.expand(B, T)
            else:
                here = positions.expand(B, T)
            self._kept[key] = here if layer + 1 >= len(self.kwargs) else torch.maximum(here, self.reach(layer + 1))
        return self._kept[key]


def resumable(adapter: VLMAdapter) -> bool:
    """Whether the engine may resume this adapter's family mid-model; otherwise callers run plain full
    forwards (and say so in the log)."""
    ok = bool(getattr(adapter, "resumable", False))
    if not ok:
        log.warning("%s (family %r) is not `resumable`: patching runs plain full forwards (one row per site)",
                    adapter.spec.name, adapter.family)
    return ok


@torch.inference_mode()
def trace(adapter: VLMAdapter, prepared: Prepared, edits: dict[str, Edit] | None = None,
          capture: Iterable[str] = ()) -> Trace:
    """One forward with `edits` applied, keeping every layer's input, arguments and keys/values (no logits)."""
    edits, capture = dict(edits or {}), list(capture)
    layers = adapter.layers
    L = len(layers)
    for site in list(edits) + capture:
        _parse(site, L)
    by_layer = {start_layer(s, L): s for s in set(edits) | set(capture)}
    inputs: list = [None] * (L + 1)
    kwargs: list = [None] * L
    record, captured = _Record(), {}

    def at(j: int, hidden: torch.Tensor) -> torch.Tensor:
        site = by_layer.get(j)
        if j == 0:
            hidden = adapter.lm_input_site(hidden)
        if site in edits:
            hidden = edits[site](hidden)
        if site in capture:
            captured[site] = hidden
        inputs[j] = hidden
        return adapter.lm_input_apply(hidden) if j == 0 else hidden

    def pre_hook(j: int):
        def hook(module, args, kw):
            kwargs[j] = {k: v for k, v in kw.items() if k not in ("hidden_states", "cache", "past_key_values")}
            kw = dict(kw, cache=record)
            if args:
                return (at(j, args[0]),) + tuple(args[1:]), kw
            kw["hidden_states"] = at(j, kw["hidden_states"])
            return args, kw
        return hook

    def last_hook(module, args, output):
        at(L, output[0] if isinstance(output, tuple) else output)
        raise _Stop

    handles = [layers[j].register_forward_pre_hook(pre_hook(j), with_kwargs=True) for j in range(L)]
    handles.append(layers[L - 1].register_forward_hook(last_hook))
    try:
        final_logits(adapter, prepared)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return Trace(prepared, inputs, kwargs, record, captured)


def resume(adapter: VLMAdapter, tr: Trace, layer: int, rows: torch.Tensor, edit: Edit | None,
           first_changed: int | torch.Tensor) -> torch.Tensor:
    """Final-position logits (R, V) of traced rows `rows` (a row may repeat) with `edit` applied to the input of
    decoder `layer` (layer = L: the last layer's output), running only layers >= `layer` and only the
    positions the edit can reach on the way to each row's final position; `first_changed` = the smallest
    position the edit writes, per row (R,) or for every row. Equal to the full forward with the same edit at
    that site, up to float reordering."""
    return resume_sites(adapter, tr, rows, [(layer, edit, first_changed)])[0]


# Jobs (sites) per staircase batch. Each copy of the rows attends to the keys/values of the whole sequence (with
# grouped queries expanded: 2 x T x the width a row); 4 copies stay under what one layer of a full forward of the
# rows holds in its MLP (2 x T x the MLP width a row: 8-10.6 x the width in Qwen2-VL-7B, Gemma-3-4b, Pixtral-12B),
# and a sweep over K sites makes about K * L / 8 layer calls instead of K * L / 2.
STAIRCASE_COPIES = 4


@torch.inference_mode()
def resume_sites(adapter: VLMAdapter, tr: Trace, rows: torch.Tensor,
                 jobs: Sequence[tuple[int, Edit | None, int | torch.Tensor]]) -> list[torch.Tensor]:
    """`resume` of the same `rows` for each job (layer, edit, first_changed): one (R, V) logits per job.

    Each row recomputes its own positions: from where the edit can first change it (`Trace.suffix_start` of its
    first written position) to its final position (`Trace.end`), m positions for every row of a job (a row
    that needs fewer starts earlier, which recomputes traced values exactly). The jobs run as a staircase: from
    the lowest layer up, each job's rows join the batch at its own layer, so every decoder layer runs once for
    all the jobs that have reached it. A batch holds at most STAIRCASE_COPIES copies of `rows` and at most as
    many rows x positions as a full forward of `rows` (a last-token job adds one position a row, one that writes
    the first image token most of the sequence)."""
    T = tr.inputs[0].shape[1]
    final = tr.prepared.final_position.to(rows.device).index_select(0, rows)
    spans = []
    for layer, _, first in jobs:
        first = torch.as_tensor(first, device=rows.device).expand(len(rows))
        starts = {f: tr.suffix_start(f, layer) for f in sorted(set(first.tolist()))}
        start = torch.tensor([starts[f] for f in first.tolist()], device=rows.device)
        spans.append((torch.minimum(start, final), tr.end(layer).to(rows.device).index_select(0, rows)))
    width = [int((e - s).max()) for s, e in spans]
    order = sorted(range(len(jobs)), key=lambda i: (width[i], jobs[i][0]))
    out: list[torch.Tensor | None] = [None] * len(jobs)
    c = 0
    while c < len(order):
        chunk = [order[c]]
        while (c + len(chunk) < len(order) and len(chunk) < STAIRCASE_COPIES
               and (len(chunk) + 1) * width[order[c + len(chunk)]] <= T):
            chunk.append(order[c + len(chunk)])
        m = max(width[i] for i in chunk)
        positions = [torch.clamp(spans[i][0], max=T - m)[:, None] + torch.arange(m, device=rows.device)
                     for i in chunk]
        for i, logits in zip(chunk, _staircase(adapter, tr, rows, [jobs[i][:2] for i in chunk], positions)):
            out[i] = logits
        c += len(chunk)
    return out


def _staircase(adapter: VLMAdapter, tr: Trace, rows: torch.Tensor, jobs: Sequence[tuple[int, Edit | None]],
               positions: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Final-position logits of `rows` for each (layer, edit) of `jobs` (sorted by layer), job i recomputing
    positions[i] (R, m) of each row: the batch is one copy of `rows` per job that has joined, in job order."""
    L, R = adapter.n_layers, len(rows)
    feeds_later = type(adapter).lm_input_apply is not VLMAdapter.lm_input_apply     # what the LM input carries
    h, feeds, at, joined = None, [], [], 0                                          # for later layers (DeepStack)
    for j in range(jobs[0][0], L + 1):
        while joined < len(jobs) and jobs[joined][0] == j:
            edit, pos = jobs[joined][1], positions[joined]
            hidden = tr.inputs[j].index_select(0, rows)
            if edit is not None:
                hidden = edit(hidden)
            if feeds_later:
                feeds.append(hidden if j == 0 else tr.inputs[0].index_select(0, rows))
            if j == 0:
                hidden = adapter.lm_input_apply(hidden)
            hidden = hidden[torch.arange(R, device=pos.device)[:, None], pos]
            h = hidden if h is None else torch.cat([h, hidden])
            at.append(pos)
            joined += 1
        if j == L:
            break
        batch_rows, batch_at = rows.repeat(joined), torch.cat(at)
        if feeds_later:
            adapter.lm_input_apply(torch.cat(feeds)[torch.arange(len(batch_rows))[:, None], batch_at])
        out = adapter.layers[j](h, **tr.layer_kwargs(j, batch_rows, batch_at),
                                cache=_Written(tr, batch_rows, batch_at))
        h = out[0] if isinstance(out, tuple) else out
    batch_at = torch.cat(at)
    final = tr.prepared.final_position.to(rows.device).index_select(0, rows).repeat(joined) - batch_at[:, 0]
    logits = adapter.head_logits(h[torch.arange(len(final), device=h.device), final]).float()
    return list(logits.split(R))


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


# ---------------------------------------------------------------- forwards that skip the vision tower
PARITY_TOL = 1e-4      # text-only vs full forward: max |logit difference| <= PARITY_TOL * (1 + max |logit|)


class CannotSelect(Exception):
    """A prepared input has no per-example first dimension (e.g. Qwen2-VL's flattened patch list)."""


def select_rows(prepared: Prepared, idx: torch.Tensor | None = None, drop: Iterable[str] = ()) -> Prepared:
    """Rows `idx` (may repeat; None: all) of a prepared batch, every batch-first tensor indexed, the `drop` keys
    left out; CannotSelect when a kept tensor is not batch-first."""
    n, drop = len(prepared), set(drop)
    inputs = {}
    for k, v in prepared.inputs.items():
        if k in drop:
            continue
        if idx is not None and torch.is_tensor(v) and v.dim() > 0:
            if v.shape[0] != n:
                raise CannotSelect(k)
            v = v.index_select(0, idx.to(v.device))
        inputs[k] = v
    if idx is None:
        return Prepared(inputs, prepared.grid_positions, prepared.final_position)
    idx = idx.to(prepared.grid_positions.device)
    return Prepared(inputs, prepared.grid_positions[idx], prepared.final_position[idx])


def text_only(adapter: VLMAdapter, prepared: Prepared) -> Prepared:
    """`prepared` without the inputs only the vision tower reads (`adapter.vision_inputs`): its forward skips the
    tower and the image positions hold the image token's embedding until an edit overwrites them."""
    return select_rows(prepared, drop=adapter.vision_inputs)


@dataclass(frozen=True)
class VisionSkip:
    """The once-per-model decision of `without_vision`."""
    skip: bool
    max_abs_diff: float      # text-only vs full forward on the checked rows (nan: the text-only forward failed)


_DECIDED: "weakref.WeakKeyDictionary[VLMAdapter, VisionSkip]" = weakref.WeakKeyDictionary()


def vision_skip(adapter: VLMAdapter) -> VisionSkip | None:
    """This model's decision, None before its first `without_vision` call."""
    return _DECIDED.get(adapter)


def without_vision(adapter: VLMAdapter, prepared: Prepared, values: torch.Tensor,
                   reference: torch.Tensor | None = None) -> tuple[Prepared, Edit]:
    """For a forward whose LM input has every visual-token grid cell replaced by `values` (B, N*N, D): the batch to
    run and the `lm_input` edit writing the values (`replace_grid`). The batch is `text_only(prepared)`, which
    skips the vision tower, where that is exact for this model, and `prepared` itself otherwise.

    Decided once per model, on its first batch: the text-only forward with the edit must reproduce the full
    forward with it (`reference`: its logits, when the caller has them; otherwise computed on the batch's first
    row, or the whole batch where rows cannot be selected) within PARITY_TOL and in every argmax. A family fails
    it where the tower also feeds something besides the grid cells (LLaVA-OneVision's image_newline token);
    it then runs full forwards, said in the log. DUALMECH_SKIP_VISION=0 forces full forwards."""
    edit = replace_grid(prepared, values)
    if not runtime.skip_vision():
        return prepared, edit
    if adapter not in _DECIDED:
        _DECIDED[adapter] = _check_text_only(adapter, prepared, values, reference)
    return (text_only(adapter, prepared) if _DECIDED[adapter].skip else prepared), edit


def _check_text_only(adapter: VLMAdapter, prepared: Prepared, values: torch.Tensor,
                     reference: torch.Tensor | None) -> VisionSkip:
    if reference is None:
        try:
            first = torch.zeros(1, dtype=torch.long)
            prepared, values = select_rows(prepared, first), values[:1]
        except CannotSelect:
            pass
        reference = run(adapter, prepared, edits={LM_INPUT: replace_grid(prepared, values)}).logits
    try:
        logits = run(adapter, text_only(adapter, prepared), edits={LM_INPUT: replace_grid(prepared, values)}).logits
        diff = float((logits - reference).abs().max())
        same = bool((logits.argmax(-1) == reference.argmax(-1)).all())
        ok = same and diff <= PARITY_TOL * (1 + float(reference.abs().max()))
    except Exception as e:  # noqa: BLE001 (the family needs its vision inputs in the forward)
        log.warning("%s: a forward without %s fails (%s: %s); forwards with every visual token overwritten run "
                    "the vision tower", adapter.spec.name, "/".join(adapter.vision_inputs), type(e).__name__, e)
        return VisionSkip(False, float("nan"))
    if ok:
        log.info("%s: forwards with every visual token overwritten skip the vision tower (text-only forward "
                 "max |logit difference| %.3g)", adapter.spec.name, diff)
    else:
        log.warning("%s (family %r): the text-only forward differs from the full one (max |logit difference| "
                    "%.3g, same argmax: %s); forwards with every visual token overwritten run the vision tower",
                    adapter.spec.name, adapter.family, diff, same)
    return VisionSkip(ok, diff)
