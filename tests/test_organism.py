"""The organism: tokenizer coverage, training-path == processor-path inputs, held-out layouts, twin init."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dualmech import interventions, models, organism, organism_tables
from dualmech.config import load
from dualmech.stimuli import DIRECTIONS, OBJECTS, OPPOSITE, SETTINGS, entities, prompt, render_scene

REPO = Path(__file__).resolve().parents[1]

SPEC = organism.OrganismSpec(image_grid=10, patch_px=8, object_tokens=2, gap_tokens=1, vision_hidden=32,
                             vision_layers=1, vision_heads=2, lm_hidden=32, lm_layers=2, lm_heads=2, lm_init_std=0.16)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("organism") / "ckpt"
    organism.save(organism.build_model(SPEC, seed=3), SPEC, path, {"trained": False})
    return path


def test_every_prompt_and_answer_is_in_vocabulary():
    tok = organism.build_tokenizer()
    for setting in SETTINGS:
        for e in entities(setting):
            assert len(tok(e.answer, add_special_tokens=False)["input_ids"]) == 1
            for d in DIRECTIONS:
                ids = tok(prompt(setting, d, e), add_special_tokens=False)["input_ids"]
                assert tok.unk_token_id not in ids


def test_training_inputs_equal_processor_inputs(checkpoint):
    """The trainer's fast path builds exactly what the LLaVA adapter builds from the saved processor."""
    adapter = models.load(models.ModelSpec(name="o", path=str(checkpoint)), device="cpu")
    assert adapter.geometry == SPEC.geometry            # read back from the checkpoint's dualmech.json
    sampler = organism.SceneSampler(SPEC, adapter.processor, seed=0)
    ents = entities("shapes")
    lay = SPEC.geometry.canonical_layout("vertical")
    img = render_scene(ents[:3], lay, SPEC.geometry)
    text = prompt("shapes", "below", ents[1])
    prepared = adapter.prepare([img], [text])
    x = (np.asarray(img, np.float32) / 255 - sampler.mean) / sampler.std
    assert torch.equal(torch.from_numpy(x).permute(2, 0, 1), prepared.inputs["pixel_values"][0])
    assert sampler.text_ids(text) == prepared.inputs["input_ids"][0].tolist()
    inputs = dict(pixel_values=prepared.inputs["pixel_values"], input_ids=prepared.inputs["input_ids"],
                  attention_mask=prepared.inputs["attention_mask"])
    with torch.no_grad():
        assert torch.allclose(organism.answer_logits(adapter.model, inputs),
                              interventions.final_logits(adapter, prepared), atol=1e-5)


def test_training_layouts_are_jittered_and_never_canonical():
    sampler = organism.SceneSampler(SPEC, organism.build_processor(SPEC), seed=0)
    g = SPEC.geometry
    seen = set()
    for orientation in ("horizontal", "vertical"):
        canonical = list(g.canonical_layout(orientation))
        for _ in range(300):
            lay = sampler.layout(orientation)
            assert lay != canonical
            axis = 1 if orientation == "horizontal" else 0
            along = [cell[axis] for cell in lay]
            assert along == sorted(along) and min(np.diff(along)) >= g.object_tokens + 1
            assert len({cell[1 - axis] for cell in lay}) == 1          # collinear
            assert all(0 <= v <= g.grid - g.object_tokens for cell in lay for v in cell)
            seen.add(tuple(lay))
    assert len(seen) > 50


def test_batch_answers_are_the_extreme_entity():
    sampler = organism.SceneSampler(SPEC, organism.build_processor(SPEC), seed=1)
    inputs, positions, answers, cells = sampler.batch(16)
    assert inputs["pixel_values"].shape == (16, 3, 80, 80)
    assert positions.shape == answers.shape == (16, 1) and cells.shape == (16,)
    tok = sampler.tok
    last = inputs["attention_mask"].sum(1) - 1
    assert torch.equal(positions[:, 0], last)
    assert all(tok.convert_ids_to_tokens(int(inputs["input_ids"][i, last[i]])) == "ASSISTANT:" for i in range(16))
    answer_words = {e.answer for s in SETTINGS for e in entities(s)}
    assert set(tok.convert_ids_to_tokens(answers.flatten().tolist())) <= answer_words
    only = np.zeros(len(organism.CELLS))
    only[organism.CELLS.index(("objects", "below"))] = 1.0
    _, _, answers, cells = sampler.batch(8, only)              # weights pick the cells
    assert set(cells.tolist()) == {organism.CELLS.index(("objects", "below"))}
    assert set(tok.convert_ids_to_tokens(answers.flatten().tolist())) <= set(OBJECTS)


def test_second_turn_asks_the_opposite_direction_and_leaves_the_first_unchanged():
    one = organism.SceneSampler(SPEC, organism.build_processor(SPEC), seed=2)
    two = organism.SceneSampler(SPEC, organism.build_processor(SPEC), seed=2)
    i1, p1, a1, c1 = one.batch(6, turns=1)
    i2, p2, a2, c2 = two.batch(6, turns=2)
    assert np.array_equal(c1, c2) and torch.equal(a1[:, 0], a2[:, 0]) and torch.equal(p1[:, 0], p2[:, 0])
    tok = two.tok
    for i in range(6):
        words = tok.convert_ids_to_tokens(i2["input_ids"][i, : p2[i, 1] + 1].tolist())
        setting, direction = organism.CELLS[c2[i]]
        first, second = " ".join(words[: p1[i, 0] + 1]), " ".join(words[p1[i, 0] + 1:])
        assert f" {direction} " in f" {first} " and second.startswith(f"{words[p1[i, 0] + 1]} USER: ")
        assert words[p1[i, 0] + 1] == tok.convert_ids_to_tokens(int(a2[i, 0]))        # the first answer, then
        assert f" {OPPOSITE[direction]} " in f" {second} " and second.endswith("ASSISTANT:")   # the opposite question
        assert a2[i, 1] != a2[i, 0]
    model = organism.build_model(SPEC, 0)
    with torch.no_grad():                      # causal: the follow-up does not change the first answer's logits
        assert torch.allclose(organism.answer_logits(model, i1, p1)[:, 0], organism.answer_logits(model, i2, p2)[:, 0],
                              atol=1e-5)


def test_untrained_twin_is_the_training_start(checkpoint, tmp_path):
    models.save_untrained_twin(models.ModelSpec(name="o", path=str(checkpoint)), tmp_path / "twin", seed=3)
    twin = models.load(models.ModelSpec(name="t", path=str(tmp_path / "twin")), device="cpu")
    start = organism.build_model(SPEC, seed=3)
    for (name, a), b in zip(twin.model.state_dict().items(), start.state_dict().values()):
        assert torch.equal(a, b), name
    other = organism.build_model(SPEC, seed=4)
    assert not torch.equal(next(iter(other.state_dict().values())), next(iter(start.state_dict().values())))


@pytest.mark.parametrize("name", ["organism-lm", "organism-vision", "organism-dual"])
def test_committed_organism_was_made_by_this_config_and_passed_its_bars(name):
    root = Path(__file__).resolve().parents[1]
    config = load(root / "config.yaml")
    info = json.loads((root / "models" / name / "organism.json").read_text())
    assert info["config_digest"] == organism.config_digest(config, name), \
        f"config.yaml's organism section differs from the one that trained models/{name}: run `make organisms`"
    bar = config["organism"]["train"]["target_accuracy"]
    cells = {(c["setting"], c["direction"]): c["accuracy"] for c in info["acceptance"]}
    assert set(cells) == {(s, d) for s in SETTINGS for d in DIRECTIONS}
    assert info["accepted"] and min(cells.values()) >= bar
    v = config["organism"]["variants"][name]
    d = info["diagnostics"]
    assert min(d["canonical"]["cells"].values()) >= 0.9
    if v.get("shuffled_bar"):
        assert min(d["shuffled"]["cells"].values()) >= v["shuffled_bar"]
    if v.get("ablated_bar"):
        assert d["ablated"]["mean"] >= v["ablated_bar"]


def test_the_organisms_share_one_architecture_so_one_untrained_twin_controls_them_all():
    root = Path(__file__).resolve().parents[1]
    specs = {n: organism.OrganismSpec.from_checkpoint(root / "models" / n)
             for n in ["organism-lm", "organism-vision", "organism-dual"]}
    assert len(set(specs.values())) == 1, specs
    config = load(root / "config.yaml")
    assert [m["name"] for m in config["models"] if m["untrained_twin"]] == ["organism-lm"]


# ------------------------------------------------------------------ two-stage organisms and their diagnostics
def test_shuffled_image_order_permutes_the_chosen_examples_only():
    model = organism.build_model(SPEC, 0)
    proj = model.model.multi_modal_projector
    tokens = torch.arange(8 * 100, dtype=torch.float32).reshape(8, 100, 1).expand(8, 100, SPEC.vision_hidden)
    plain = proj(tokens)
    every = organism.ShuffledImageOrder(model, 1.0, 0, "t")
    out = proj(tokens)
    every.remove()
    for b in range(8):                      # each example: the same tokens in another order
        assert not torch.equal(out[b], plain[b])
        assert torch.equal(out[b].sort(0).values, plain[b].sort(0).values)
    assert torch.equal(proj(tokens), plain)                                  # removed
    half = organism.ShuffledImageOrder(model, 0.5, 0, "t")
    out = proj(tokens)
    half.remove()
    same = [torch.equal(out[b], plain[b]) for b in range(8)]
    assert 0 < sum(same) < 8
    training_only = organism.ShuffledImageOrder(model, 1.0, 0, "t", training_only=True)
    model.eval()
    assert torch.equal(proj(tokens), plain)
    model.train()
    assert not torch.equal(proj(tokens), plain)
    training_only.remove()


def test_scene_labels_spread_the_slot_over_the_whole_strip():
    g = SPEC.geometry                                     # 10 x 10, objects 2 x 2
    ents = entities("squares")[:3]
    strip, ident = organism.scene_labels(g, [ents], [[(4, 1), (4, 4), (4, 7)]], organism.entity_index())
    strip, ident = strip.reshape(10, 10), ident.reshape(10, 10)
    assert strip[:, 1:3].eq(0).all() and strip[:, 4:6].eq(1).all() and strip[:, 7:9].eq(2).all()
    assert strip[:, [0, 3, 6, 9]].eq(3).all()                  # off every strip
    ids = organism.entity_index()
    assert ident[4:6, 4:6].eq(ids[ents[1].name]).all() and (ident > 0).sum() == 12
    strip, _ = organism.scene_labels(g, [ents], [[(0, 3), (3, 3), (6, 3)]], ids)     # vertical: row bands
    assert strip.reshape(10, 10)[3:5, :].eq(1).all() and strip.reshape(10, 10)[2, :].eq(3).all()


def test_ablated_tokens_are_each_entitys_isolated_middle_rendering():
    model = organism.build_model(SPEC, 0)
    sampler = organism.SceneSampler(SPEC, organism.build_processor(SPEC), 0)
    g = SPEC.geometry
    ents = entities("shapes")[:3]
    layout = g.canonical_layout("horizontal")
    out = organism.ablated_tokens(model, SPEC, sampler, [ents], [layout])[0]
    middle = g.canonical_layout("horizontal")[1]
    with torch.no_grad():
        blank = organism.image_tokens(model, organism._normalise(sampler, [render_scene([], [], g)]))[0]
        alone = organism.image_tokens(model, organism._normalise(sampler, [render_scene([ents[2]], [middle], g)]))[0]
    right = g.index(g.cells(layout[2]))
    assert torch.allclose(out[right], alone[g.index(g.cells(middle))], atol=1e-6)
    background = [i for i in range(g.grid ** 2) if i not in set(g.index([c for tl in layout for c in g.cells(tl)]))]
    assert torch.allclose(out[background], blank[background], atol=1e-6)


def test_diagnostics_of_an_order_free_projector_output_are_unchanged_by_shuffling():
    """A model whose visual tokens are all equal (the image's mean token, order-free by construction): shuffling
    their sequence order changes no answer; zeroing them makes the ablation change none either."""
    model = organism.build_model(SPEC, 0)
    proj = model.model.multi_modal_projector
    handle = proj.register_forward_hook(lambda m, a, out: out.mean(1, keepdim=True).expand_as(out))
    d = organism.diagnostics(model, SPEC, 0, per_cell=6)
    handle.remove()
    assert set(d) == {"canonical", "shuffled", "ablated", "strip_transfer"} and len(d["canonical"]["cells"]) == 12
    assert len(d["strip_transfer"]["cells"]) == 6 and d["strip_transfer"]["min"] <= d["strip_transfer"]["mean"]
    assert d["shuffled"]["cells"] == d["canonical"]["cells"]
    handle = proj.register_forward_hook(lambda m, a, out: torch.zeros_like(out))
    d = organism.diagnostics(model, SPEC, 0, per_cell=6)
    handle.remove()
    assert d["ablated"]["cells"] == d["canonical"]["cells"] == d["shuffled"]["cells"]
    inputs, _, _ = organism.canonical_cells(SPEC, 2, 0)["squares/left"]      # without the hook order matters
    with torch.no_grad():
        plain = organism.answer_logits(model, inputs)
        hook = organism.ShuffledImageOrder(model, 1.0, 0, "t")
        shuffled = organism.answer_logits(model, inputs)
        hook.remove()
    assert (plain - shuffled).abs().max() > 1e-4


def test_training_ablation_replaces_the_chosen_examples_by_their_ablated_tokens_in_order():
    """With every example shuffled and every example ablated, the LM gets exactly the ablated tokens, in
    order: the shuffle never reaches the ablation's references."""
    model = organism.build_model(SPEC, 0)
    sampler = organism.SceneSampler(SPEC, organism.build_processor(SPEC), 0)
    inputs, _, _, _ = sampler.batch(4)
    triples, layouts = sampler.last_scenes
    expected = organism.ablated_tokens(model, SPEC, sampler, triples, layouts)
    shuffle = organism.ShuffledImageOrder(model, 1.0, 0, "t", training_only=True)
    ablate = organism.AblatedImageOrder(model, SPEC, sampler, 1.0, 0)
    ablate.scenes(triples, layouts)
    model.train()
    with torch.no_grad():
        out = model.model.multi_modal_projector(organism.tower_tokens(model, inputs["pixel_values"]))
    assert torch.allclose(out, expected, atol=1e-6)
    model.eval()                                               # evaluation: neither hook is active
    with torch.no_grad():
        plain = model.model.multi_modal_projector(organism.tower_tokens(model, inputs["pixel_values"]))
    assert torch.allclose(plain, organism.image_tokens(model, inputs["pixel_values"]))
    assert not torch.allclose(plain, expected)
    shuffle.remove()
    ablate.remove()


def test_organisms_table_reads_each_organisms_diagnostics():
    """The committed organisms' diagnostics: the end-to-end one falls to near chance with the image-token order
    shuffled but keeps its accuracy without vision-derived ordering; the vision one the other way round."""
    root = Path(__file__).resolve().parents[1]
    infos = {n: json.loads((root / "models" / n / "organism.json").read_text())
             for n in ["organism-lm", "organism-vision"]}
    t = organism_tables.organisms_table(infos).set_index("organism")
    assert t.loc["organism-lm", "recipe"] == "end-to-end" and t.loc["organism-vision", "recipe"] == "two-stage"
    assert t.loc["organism-lm", "shuffled_mean"] < 0.6 < 0.8 < t.loc["organism-lm", "ablated_mean"]
    assert t.loc["organism-vision", "shuffled_min"] >= 0.9 > 0.4 > t.loc["organism-vision", "ablated_mean"]
    assert t.loc["organism-vision", "stage1_minutes"] > 0 and t.loc["organism-vision", "stage2_minutes"] > 0
    shown = organism_tables.organisms_display(t.reset_index())
    assert shown.loc[0, "Image order shuffled"] == f"{t.loc['organism-lm', 'shuffled_mean']:.2f} (worst " \
        f"{t.loc['organism-lm', 'shuffled_min']:.2f})"


def test_strip_transfer_is_reproduced_from_the_committed_checkpoint():
    """The diagnostic claim 3's organism expectation reads (expected verdicts v3) is recomputed from the committed
    organism-vision checkpoint, cell for cell: the value the expectation was derived from is not hand-typed. Its
    tower carries the object code onto the background (0.94-0.98) but its LM input does so only partly."""
    import transformers as T
    path = REPO / "models/organism-vision"
    info = json.loads((path / "organism.json").read_text())
    spec = organism.OrganismSpec.from_checkpoint(path)
    model = T.LlavaForConditionalGeneration.from_pretrained(path).eval()
    got = organism.strip_transfer(model, spec, load(REPO / "config.yaml")["seed"])
    assert got == info["diagnostics"]["strip_transfer"]
    assert set(got["cells"]) == {f"{s}/{o}" for s in SETTINGS for o in ("horizontal", "vertical")}
    assert 1 / 3 < got["min"] < 0.5 < got["mean"]       # below the bar in its worst cell (objects/vertical)


def _tiny_training_config():
    import copy
    config = copy.deepcopy(load(REPO / "config.yaml"))
    o = config["organism"]
    o.update(image_grid=SPEC.image_grid, patch_px=SPEC.patch_px, object_tokens=SPEC.object_tokens,
             gap_tokens=SPEC.gap_tokens, vision=dict(hidden=32, layers=1, heads=2),
             lm=dict(hidden=32, layers=2, heads=2, init_std=0.16))
    o["train"].update(max_steps=6, batch_size=4, eval_every=2, eval_per_cell=3, warmup_steps=2, stop_accuracy=1.01)
    return config


def test_replay_matches_a_run_of_the_same_recipe_and_stops_where_the_history_differs():
    config = _tiny_training_config()
    run, stage1 = organism.training_run(config, "organism-lm")
    assert stage1 is None and run["shuffle_image_order"] == 0.0
    _, history = organism.train(**run, log=lambda s: None)
    assert [h["step"] for h in history] == [2, 4, 6]
    same = organism.replay(config, "organism-lm", history, steps=6)
    assert [(r["step"], r["same"]) for r in same] == [(2, True), (4, True), (6, True)]
    assert [r["committed"] for r in same] == [h["min_cell_accuracy"] for h in history]
    other = json.loads(json.dumps(history))
    key = next(iter(other[1]["cells"]))
    other[1]["cells"][key] = round(other[1]["cells"][key] + 0.01, 4)        # the run diverged at step 4
    assert [(r["step"], r["same"]) for r in organism.replay(config, "organism-lm", other, steps=6)] == \
        [(2, True), (4, False)]
    assert [r["step"] for r in organism.replay(config, "organism-lm", history, steps=2)] == [2]


def test_entity_weights_draw_each_triple_from_the_weighted_entities():
    sampler = organism.SceneSampler(SPEC, organism.build_processor(SPEC), seed=0)
    heavy = {s: np.array([1.0 if i < 3 else 0.0 for i in range(len(e))]) for s, e in sampler.ents.items()}
    heavy = {s: w / w.sum() for s, w in heavy.items()}
    cells, triples, _, _ = sampler.scenes(48, entity_weights=heavy)
    for c, t in zip(cells, triples):
        setting = organism.CELLS[c][0]
        assert sorted(sampler.ents[setting].index(e) for e in t) == [0, 1, 2]
    _, uniform, _, _ = organism.SceneSampler(SPEC, organism.build_processor(SPEC), seed=0).scenes(48)
    assert any(max(sampler.ents[organism.CELLS[c][0]].index(e) for e in t) > 2 for c, t in zip(cells, uniform))


def test_balance_entities_is_the_end_to_end_recipes_alone():
    import copy
    config = load(REPO / "config.yaml")
    balanced = copy.deepcopy(config)
    balanced["organism"]["train"]["balance_entities"] = not config["organism"]["train"].get("balance_entities")
    assert organism.config_digest(balanced, "organism-lm") != organism.config_digest(config, "organism-lm")
    for name in ("organism-vision", "organism-dual"):        # stage 2 does not read it: same recipe, same digest
        assert organism.config_digest(balanced, name) == organism.config_digest(config, name)
    assert "balance_entities" not in organism.stage2_train(balanced["organism"])      # what training_run passes
