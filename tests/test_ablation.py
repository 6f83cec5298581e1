"""The ablation overwrites every grid cell and nothing else, for every adapter's geometry."""
import json

import pytest
import torch

from dualmech import ablation, interventions, models
from dualmech.stimuli import entities, prompt, relation_items
from dualmech.tiny import make_tiny

from dualmech.tiny import FAMILIES


@pytest.fixture(scope="module", params=FAMILIES)
def adapter(request, tmp_path_factory):
    torch.set_num_threads(1)
    path = make_tiny(request.param, tmp_path_factory.mktemp(request.param) / "ckpt")
    return models.load(models.ModelSpec(name=request.param, path=str(path)), device="cpu")


def test_every_grid_cell_is_overwritten_and_no_text_token(adapter, tmp_path):
    items = relation_items("squares", adapter.geometry, adapter.palette, tmp_path).iloc[[0, 1, 2, 3]]
    refs = ablation.reference_tokens(adapter, "squares")
    from dualmech.behaviour import load_images
    prepared = adapter.prepare(load_images(items, tmp_path), items["prompt"].tolist())
    values = ablation.item_values(adapter.geometry, refs, items)
    clean = interventions.run(adapter, prepared, capture=[interventions.LM_INPUT], logits=False).captured
    abl = interventions.run(adapter, prepared, edits={interventions.LM_INPUT: interventions.replace_grid(prepared, values)},
                            capture=[interventions.LM_INPUT], logits=False).captured
    x0, x1 = clean[interventions.LM_INPUT], abl[interventions.LM_INPUT]
    n = adapter.geometry.grid ** 2
    for b in range(len(items)):
        grid = prepared.grid_positions[b]
        assert len(set(grid.tolist())) == n
        assert torch.equal(x1[b, grid].float(), values[b].to(x1.dtype).float())      # every cell overwritten
        text = torch.ones(x0.shape[1], dtype=torch.bool)
        text[grid] = False
        assert torch.equal(x1[b, text], x0[b, text])                                  # text/break tokens untouched


def test_object_cells_come_from_the_isolated_middle_reference(adapter):
    g = adapter.geometry
    refs = ablation.reference_tokens(adapter, "squares")
    names = [e.name for e in entities("squares", adapter.palette)[:3]]
    lay = g.canonical_layout("vertical")
    values = ablation.ablated_grid(g, refs, names, lay)
    middle = g.index(g.cells(g.canonical_layout("horizontal")[1]))
    for name, top_left in zip(names, lay):
        assert torch.equal(values[g.index(g.cells(top_left))], refs[name][middle])
    objects = {i for tl in lay for i in g.index(g.cells(tl))}
    background = [i for i in range(g.grid ** 2) if i not in objects]
    assert torch.equal(values[background], refs[ablation.EMPTY][background])
    # position is erased: the same entity gets the same tokens wherever it stands
    a = ablation.ablated_grid(g, refs, names, lay)[g.index(g.cells(lay[0]))]
    b = ablation.ablated_grid(g, refs, names[::-1], lay)[g.index(g.cells(lay[2]))]
    assert torch.equal(a, b)


def test_table5_statistics():
    import pandas as pd
    clean = pd.DataFrame(dict(model="m", item=list("abcdef"), setting="squares", direction=["left"] * 3 + ["above"] * 3,
                              correct=[True] * 6))
    abl = pd.DataFrame(dict(model="m", item=list("abcdef"), correct_ablated=[True, False, False, True, True, False]))
    t = ablation.table5(clean, abl).set_index("direction")
    assert t.loc["all", "accuracy_ablated"] == 0.5 and t.loc["all", "accuracy_clean"] == 1.0
    assert t.loc["all", "mcnemar_p"] == pytest.approx(0.25)       # 3 discordant pairs, all one way
    assert not t.loc["all", "above_chance"]


def test_own_slot_control_keeps_each_entity_at_its_own_slot(adapter):
    """The control re-encodes each entity alone at its OWN slot: identity and position kept (so, unlike the
    ablation, the same entity gets different tokens at different slots), context removed."""
    g = adapter.geometry
    refs = ablation.own_slot_references(adapter, "squares")
    names = [e.name for e in entities("squares", adapter.palette)[:3]]
    lay = g.canonical_layout("horizontal")
    values = ablation.own_slot_grid(g, refs, names, lay)
    for name, top_left in zip(names, lay):
        cells = g.index(g.cells(top_left))
        assert torch.equal(values[cells], refs[ablation.own_slot_key(name, top_left)][cells])
    objects = {i for tl in lay for i in g.index(g.cells(tl))}
    background = [i for i in range(g.grid ** 2) if i not in objects]
    assert torch.equal(values[background], refs[ablation.EMPTY][background])
    assert len(refs) == 1 + len(entities("squares", adapter.palette)) * len(
        set(g.canonical_layout("horizontal")) | set(g.canonical_layout("vertical")))


def test_table5_own_slot_control_columns():
    import pandas as pd
    clean = pd.DataFrame(dict(model="m", item=list("abcdef"), setting="squares", direction=["left"] * 6,
                              correct=[True] * 6))
    abl = pd.DataFrame(dict(model="m", item=list("abcdef"), correct_ablated=[True, False, False, True, True, False],
                            correct_control=[True, True, False, True, True, True]))
    t = ablation.table5(clean, abl).set_index("direction")
    assert t.loc["all", "accuracy_control"] == pytest.approx(5 / 6)
    assert t.loc["all", "drop_vs_control"] == pytest.approx(5 / 6 - 0.5)
    assert t.loc["all", "mcnemar_control_p"] == pytest.approx(0.5)    # 2 discordant pairs, both one way
    assert "Own-slot control [95% CI]" in ablation.table5_display(t.reset_index()).columns


# LLaVA-OneVision's image_newline token comes with the tower's output: its text-only forward differs, so it keeps
# the full forward (the parity check decides it; every other family's text-only forward is exact)
TOWER_NEEDED = {"llava_onevision"}


def test_ablation_skips_the_vision_tower_with_the_same_results(adapter, tmp_path, monkeypatch):
    """Every visual token is overwritten, so the ablation's forwards skip the vision tower (counted by a hook on
    its first block) and give the same logits and predictions as with the tower forced on."""
    from types import SimpleNamespace
    items = relation_items("squares", adapter.geometry, adapter.palette, tmp_path).iloc[:6]
    refs = ablation.reference_tokens(adapter, "squares")
    monkeypatch.setenv("DUALMECH_BATCH_SIZE", "2")                      # three batches
    ablation.predict_ablated(adapter, items.iloc[:1], tmp_path, refs)    # the once-per-model parity check
    decided = interventions.vision_skip(adapter)
    assert decided.skip == (adapter.family not in TOWER_NEEDED)
    assert decided.max_abs_diff <= 1e-6 if decided.skip else decided.max_abs_diff > 1e-4
    tower, logits = [], []

    def run(*args, **kwargs):
        out = interventions.run(*args, **kwargs)
        logits.append(out.logits)
        return out
    monkeypatch.setattr(ablation, "interventions", SimpleNamespace(**{**vars(interventions), "run": run}))
    hook = adapter.vision_layers[0].register_forward_hook(lambda *args: tower.append(1))
    try:
        monkeypatch.setenv("DUALMECH_SKIP_VISION", "0")
        full = ablation.predict_ablated(adapter, items, tmp_path, refs)
        full_calls, full_logits = len(tower), torch.cat(logits)
        monkeypatch.delenv("DUALMECH_SKIP_VISION")
        tower.clear(), logits.clear()
        fast = ablation.predict_ablated(adapter, items, tmp_path, refs)
    finally:
        hook.remove()
    assert full_calls == 3
    assert len(tower) == (3 if adapter.family in TOWER_NEEDED else 0)
    torch.testing.assert_close(torch.cat(logits), full_logits, rtol=1e-5, atol=1e-5)
    assert fast.equals(full) and len(fast) == 6
