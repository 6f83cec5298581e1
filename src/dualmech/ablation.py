"""Removing vision-derived ordering at the LM input (paper §5.5, Table 5).

Every entity's tokens are replaced by the same entity's tokens from an "isolated-middle" reference
(the entity alone in the middle slot: identity kept, position erased) and every other grid cell by the
same cell of an empty-canvas reference. Text tokens (and Pixtral's break tokens) are never touched.

The own-slot control does the same with each entity's reference rendered alone at its OWN slot (identity and
position kept, the other entities and any relation between them removed): what the ablation costs beyond
this control is what removing the vision-side ordering costs (claim 5), not damage to identity or context.
With RoPE LMs the LM-input slice of a reference depends only on its image, so each reference is
computed once per (model, entity) from the post-projector visual tokens.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from . import behaviour, interventions, runtime
from .models import Prepared, VLMAdapter
from .ablation_tables import table5, table5_display  # noqa: F401 (this module's API)
from .stimuli import Geometry, entities, pair_entities, render_scene
from .tables import atomic_write

EMPTY = "__empty__"


def reference_tokens(adapter: VLMAdapter, setting: str, colour_pool: str = "paper") -> dict[str, torch.Tensor]:
    """{entity name: (N*N, D) visual tokens of the entity alone in the middle slot, '__empty__': blank canvas},
    for the setting's entities and those its counterfactual pairs draw from (Fig 9 uses the same pool)."""
    g = adapter.geometry
    middle = g.canonical_layout("horizontal")[1]
    ents = tuple(dict.fromkeys(entities(setting, adapter.palette, adapter.exclude_objects)
                               + pair_entities(setting, adapter.palette, colour_pool, adapter.exclude_objects)))
    images = [render_scene([], [], g)] + [render_scene([e], [middle], g) for e in ents]
    tokens = torch.cat([adapter.visual_tokens(images[sl]).float().cpu()
                        for sl in runtime.batches(len(images), runtime.batch_size(adapter), f"references {setting}")])
    return {EMPTY: tokens[0], **{e.name: tokens[i + 1] for i, e in enumerate(ents)}}


def own_slot_key(name: str, top_left) -> str:
    return f"{name}@{int(top_left[0])},{int(top_left[1])}"


def own_slot_references(adapter: VLMAdapter, setting: str) -> dict[str, torch.Tensor]:
    """{'<entity>@<row>,<col>': (N*N, D) visual tokens of the entity alone with its top-left token there, for
    every canonical slot of both orientations; '__empty__': blank canvas}."""
    g = adapter.geometry
    cells = list(dict.fromkeys(tl for o in ("horizontal", "vertical") for tl in g.canonical_layout(o)))
    ents = entities(setting, adapter.palette)
    keys = [own_slot_key(e.name, tl) for e in ents for tl in cells]
    images = [render_scene([], [], g)] + [render_scene([e], [tl], g) for e in ents for tl in cells]
    tokens = torch.cat([adapter.visual_tokens(images[sl]).float().cpu()
                        for sl in runtime.batches(len(images), runtime.batch_size(adapter), f"own-slot {setting}")])
    return {EMPTY: tokens[0], **{k: tokens[i + 1] for i, k in enumerate(keys)}}


def own_slot_grid(geometry: Geometry, refs: dict[str, torch.Tensor], names: list[str],
                  layout: list[tuple[int, int]]) -> torch.Tensor:
    """(N*N, D) LM-input values of the own-slot control: empty-canvas tokens everywhere, each slot's object
    cells from its entity's reference rendered alone at that same slot."""
    values = refs[EMPTY].clone()
    for name, top_left in zip(names, layout):
        cells = geometry.index(geometry.cells(tuple(top_left)))
        values[cells] = refs[own_slot_key(name, top_left)][cells]
    return values


def save_references(refs: dict[str, torch.Tensor], path: Path | str) -> None:
    tmp = Path(path).with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in refs.items()}, str(tmp))
    tmp.replace(path)


def load_references(path: Path | str) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def ablated_grid(geometry: Geometry, refs: dict[str, torch.Tensor], names: list[str],
                 layout: list[tuple[int, int]]) -> torch.Tensor:
    """(N*N, D) LM-input values for one image: empty-canvas tokens everywhere, each slot's object cells
    taken cell-for-cell from its entity's isolated-middle reference."""
    values = refs[EMPTY].clone()
    middle = geometry.canonical_layout("horizontal")[1]
    for name, top_left in zip(names, layout):
        src = geometry.index(geometry.cells(middle))
        dst = geometry.index(geometry.cells(tuple(top_left)))
        values[dst] = refs[name][src]
    return values


def item_values(geometry: Geometry, refs: dict[str, torch.Tensor], items: pd.DataFrame,
                grid=ablated_grid) -> torch.Tensor:
    return torch.stack([grid(geometry, refs, [r.e0, r.e1, r.e2], json.loads(r.slots)) for r in items.itertuples()])


def scene_values(geometry: Geometry, refs: dict[str, torch.Tensor]):
    """values(scenes, orientations) -> (B, N*N, D) ablated LM-input values of canonical scenes (entity names in
    slot order): the `lm_input_override` of the patching-under-ablation experiment (Fig 9)."""
    def values(scenes, orientations) -> torch.Tensor:
        return torch.stack([ablated_grid(geometry, refs, list(names), list(geometry.canonical_layout(o)))
                            for names, o in zip(scenes, orientations)])
    return values


def predict_ablated(adapter: VLMAdapter, items: pd.DataFrame, image_root: Path, refs: dict[str, torch.Tensor],
                    desc: str = "ablated", grid=ablated_grid, name: str = "ablated") -> pd.DataFrame:
    """Per-item top-1 prediction with the ablation (`grid`: ablated_grid, or own_slot_grid for the own-slot
    control) applied at the LM input; columns prediction_<name>, correct_<name>. The forwards skip the vision
    tower where that is exact (`interventions.without_vision`)."""
    rows = []
    for sl in runtime.batches(len(items), runtime.batch_size(adapter), desc):
        chunk = items.iloc[sl]
        prepared = adapter.prepare(behaviour.load_images(chunk, image_root), chunk["prompt"].tolist())
        values = item_values(adapter.geometry, refs, chunk, grid).to(adapter.device)
        with torch.inference_mode():      # every visual token is overwritten: the vision tower is skipped
            run_on, edit = interventions.without_vision(adapter, prepared, values)
            logits = interventions.run(adapter, run_on, edits={interventions.LM_INPUT: edit}).logits
        for (_, item), tok in zip(chunk.iterrows(), adapter.decode(logits.argmax(-1).tolist())):
            rows.append({"item": item["item"], f"prediction_{name}": tok,
                         f"correct_{name}": behaviour.normalise(tok) == behaviour.normalise(item["answer"])})
    return pd.DataFrame(rows)


def write_predictions(df: pd.DataFrame, path: Path | str) -> None:
    atomic_write(path, df.to_parquet(index=False))

