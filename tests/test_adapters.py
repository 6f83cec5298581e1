"""Adapters of every family on tiny random-weight checkpoints (dualmech.tiny) and the organism-style LLaVA."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers as T
from PIL import Image

from dualmech import families, organism, snake
from dualmech.checks import check_model
from dualmech.models import ADAPTERS, ModelSpec, UnsupportedModel, detect_family, load
from dualmech.models.base import VLMAdapter
from dualmech.models.registry import load_config
from dualmech.stimuli import DIRECTIONS, SETTINGS, entities, prompt
from dualmech.tiny import FAMILIES, build, main, make_tiny

# checkpoint -> expected family and geometry (grid, px per token, canvas px), palette
EXPECTED = {
    "llava": ("llava", 8, 8, 64, "standard"),
    "pixtral": ("pixtral", 15, 4, 60, "orange"),
    "qwen2vl": ("qwen2vl", 12, 8, 96, "standard"),
    "gemma3": ("gemma3", 8, 8, 64, "standard"),
    "qwen2_5vl": ("qwen2_5vl", 12, 8, 96, "standard"),
    "mistral3": ("mistral3", 8, 8, 64, "standard"),
    "internvl": ("internvl", 8, 8, 64, "standard"),
    "idefics3": ("idefics3", 8, 8, 64, "standard"),
    "smolvlm": ("smolvlm", 8, 8, 64, "standard"),
    "paligemma": ("paligemma", 8, 8, 64, "standard"),
    "llava_onevision": ("llava_onevision", 8, 8, 64, "standard"),
    "qwen3vl": ("qwen3vl", 12, 8, 96, "standard"),
    "organism": ("llava", 8, 8, 64, "standard"),
}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory) -> dict:
    """Each tiny checkpoint, built once per session."""
    root = tmp_path_factory.mktemp("ckpt")
    paths = {f: make_tiny(f, root / f) for f in FAMILIES}
    spec = organism.OrganismSpec(image_grid=8, patch_px=8, object_tokens=1, gap_tokens=1, vision_hidden=32,
                                 vision_layers=1, vision_heads=2, lm_hidden=32, lm_layers=1, lm_heads=2, lm_init_std=0.16)
    organism.save(organism.build_model(spec, seed=0), spec, root / "organism", {"trained": False})
    paths["organism"] = root / "organism"
    return paths


@pytest.fixture(scope="session", params=list(EXPECTED))
def case(request, checkpoints):
    """(checkpoint name, loaded adapter)."""
    name = request.param
    return name, load(ModelSpec(name=name, path=str(checkpoints[name])), device="cpu")


def _batch(adapter, n=2):
    """Stimuli with prompts of different lengths (so one row is padded)."""
    items = [("squares", "left"), ("shapes", "above"), ("objects", "below")][:n]
    g, imgs, prompts = adapter.geometry, [], []
    rng = np.random.default_rng(0)
    for setting, direction in items:
        imgs.append(Image.fromarray(rng.integers(0, 256, (g.canvas_px, g.canvas_px, 3), dtype=np.uint8)))
        prompts.append(prompt(setting, direction, entities(setting, adapter.palette)[1]))
    return imgs, prompts


def test_family_detection(case, checkpoints):
    name, adapter = case
    family = EXPECTED[name][0]
    config = load_config(ModelSpec(name=name, path=str(checkpoints[name])))
    assert families.families_of(config.to_dict()) == [family]                 # exactly one adapter claims it
    # config.yaml's check reads the raw config.json (no torch): the same family
    raw = json.loads((checkpoints[name] / "config.json").read_text())
    assert families.families_of(raw) == [family]
    assert detect_family(ModelSpec(name=name, path=str(checkpoints[name]))) == family
    assert adapter.family == family and isinstance(adapter, ADAPTERS[family])


def test_geometry(case):
    name, adapter = case
    _, grid, px, canvas, palette = EXPECTED[name]
    g = adapter.geometry
    assert (g.grid, g.px_per_token, g.canvas_px) == (grid, px, canvas)
    assert 3 * g.object_tokens + 2 * g.gap_tokens <= g.grid
    assert adapter.palette == palette


def test_token_layout(case):
    name, adapter = case
    imgs, prompts = _batch(adapter)
    p = adapter.prepare(imgs, prompts)
    ids, mask, n = p.inputs["input_ids"], p.inputs["attention_mask"], adapter.geometry.grid
    assert p.grid_positions.shape == (2, n * n)
    assert bool((ids.gather(1, p.grid_positions) == adapter.image_token_id).all())
    assert ((ids == adapter.image_token_id).sum(1) == n * n + adapter.trailing_image_tokens).all()
    assert not bool(mask.all()), "the two prompts should differ in length"
    if adapter.tokenizer.bos_token_id is not None:    # the template writes BOS; the tokenizer must not add another
        assert ((ids == adapter.tokenizer.bos_token_id).sum(1) == 1).all()
    for b in range(2):
        f = int(p.final_position[b])
        assert mask[b, f] == 1 and not mask[b, f + 1:].any()          # last non-pad token
        assert (ids[b, f + 1:] == adapter.tokenizer.pad_token_id).all()
        assert adapter.tokenizer.unk_token_id not in ids[b, :f + 1].tolist()
    if name in ("pixtral", "mistral3"):       # rows of [IMG] separated by [IMG_BREAK], closed by [IMG_END]
        start = p.grid_positions[:, :1]
        r, c = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
        assert torch.equal(p.grid_positions, start + r * (n + 1) + c)
        tok = adapter.tokenizer.convert_tokens_to_ids
        rows = start + torch.arange(n) * (n + 1) + n       # the token after each row
        after = ids.gather(1, rows)
        assert (after[:, :-1] == tok("[IMG_BREAK]")).all() and (after[:, -1] == tok("[IMG_END]")).all()
    else:                       # one contiguous block of image tokens
        assert torch.equal(p.grid_positions, p.grid_positions[:, :1] + torch.arange(n * n))
    if name == "llava_onevision":     # the image_newline token closes the run, outside the grid
        after = ids.gather(1, p.grid_positions[:, -1:] + 1)
        assert (after == adapter.image_token_id).all() and adapter.trailing_image_tokens == 1
        assert not (ids.gather(1, p.grid_positions[:, -1:] + 2) == adapter.image_token_id).any()


def test_all_stimulus_prompts_tokenize(case):
    """Every setting x direction prompt of the adapter's palette: no unknown tokens, answers single-token."""
    _, adapter = case
    blank = Image.new("RGB", (adapter.geometry.canvas_px,) * 2, "white")
    prompts = [prompt(s, d, entities(s, adapter.palette)[1]) for s in SETTINGS for d in DIRECTIONS]
    p = adapter.prepare([blank] * len(prompts), prompts)
    assert adapter.tokenizer.unk_token_id not in p.inputs["input_ids"].unique().tolist()
    for s in SETTINGS:
        for e in entities(s, adapter.palette):
            assert len(adapter.candidate_token_ids(e.answer)) >= 1


def test_canvas_is_not_resampled(case):
    """pixel_values are the canvas itself, rescaled and normalised: no resize moved the objects off the tokens."""
    name, adapter = case
    imgs, prompts = _batch(adapter, n=1)
    pv = adapter.prepare(imgs, prompts).inputs["pixel_values"].float()
    ip = adapter.processor.image_processor
    x = torch.from_numpy(np.array(imgs[0])).permute(2, 0, 1).float() / 255
    x = (x - torch.tensor(ip.image_mean)[:, None, None]) / torch.tensor(ip.image_std)[:, None, None]
    if name in ("qwen2vl", "qwen2_5vl", "qwen3vl"):      # flattened patches in 2x2 merge-block order, repeated over 2 frames
        p, m, t = ip.patch_size, ip.merge_size, ip.temporal_patch_size
        g = x.shape[1] // p
        x = x.unsqueeze(0).repeat(t, 1, 1, 1).reshape(t, 3, g // m, m, p, g // m, m, p)
        x = x.permute(2, 5, 3, 6, 1, 0, 4, 7).reshape(g * g, 3 * t * p * p)
    if name == "llava_onevision":      # the base view only; the canvas padded with its edge to the tower's size
        assert pv.shape[:2] == (1, 1)
        pad = pv.shape[-1] - x.shape[-1]
        assert pad == 4 and pv.shape[-2] == pv.shape[-1]
        torch.testing.assert_close(pv[0, 0, :, -pad:, :-pad], x[:, -1:, :].expand(-1, pad, -1), atol=1e-5, rtol=0)
        pv = pv[..., :-pad, :-pad]
    torch.testing.assert_close(pv.reshape(x.shape), x, atol=1e-5, rtol=0)


def test_parity(case, tmp_path):
    name, adapter = case
    r = check_model(adapter)
    assert r["image_tokens"] == [adapter.geometry.grid ** 2 + adapter.trailing_image_tokens] * r["examples"]
    assert r["parity_max_abs_diff"] == 0.0 and r["parity_tolerance"] == 0.0     # float32: exact
    assert r["patch_all_max_abs_diff"] <= 1e-5 and r["patch_grid_max_abs_diff"] <= 1e-5
    assert r["image_effect_max_abs_diff"] > 0 and r["batch_vs_single_max_abs_diff"] <= 1e-4
    # the report carries the canvas the stimulus rules render with (they read it instead of loading the model)
    report = tmp_path / "check.json"
    report.write_text(json.dumps(r))
    assert snake.canvas(report) == (adapter.geometry, adapter.palette, tuple(adapter.exclude_objects))


@pytest.mark.parametrize("name", ["llava", "pixtral", "qwen2vl", "gemma3", "llava_onevision", "qwen3vl"])
def test_parity_bfloat16(name, checkpoints):
    adapter = load(ModelSpec(name=name, path=str(checkpoints[name]), dtype="bfloat16"), device="cpu")
    r = check_model(adapter)
    assert r["dtype"] == "bfloat16" and r["parity_tolerance"] == 1e-6
    assert r["parity_max_abs_diff"] <= 1e-6 and r["patch_all_max_abs_diff"] <= 1e-5


def test_check_model_catches_an_ignored_image(checkpoints):
    """HF initialises Gemma 3's mm_input_projection_weight to zeros: check_model must notice a dead projector."""
    adapter = load(ModelSpec(name="gemma3", path=str(checkpoints["gemma3"])), device="cpu")
    torch.nn.init.zeros_(adapter.model.model.multi_modal_projector.mm_input_projection_weight)
    with pytest.raises(AssertionError, match="image does not affect"):
        check_model(adapter)


def test_candidate_token_ids(case):
    _, adapter = case
    tok = adapter.tokenizer
    assert adapter.candidate_token_ids("red") == [tok.convert_tokens_to_ids("red")]
    assert adapter.decode(adapter.candidate_token_ids("apple")) == ["apple"]
    with pytest.raises(UnsupportedModel, match="zebra"):
        adapter.candidate_token_ids("zebra")


def test_qwen_inputs_equal_hf_processor(checkpoints):
    """The hand-built Qwen2-VL inputs equal Qwen2VLProcessor.__call__ (its video processor, which needs
    torchvision, is dropped for the comparison)."""
    class ImageOnlyQwen2VLProcessor(T.Qwen2VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kw):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kw)

    adapter = load(ModelSpec(name="qwen2vl", path=str(checkpoints["qwen2vl"])), device="cpu")
    imgs, prompts = _batch(adapter)
    texts = [adapter.chat_text(p) for p in prompts]
    area = adapter.geometry.canvas_px ** 2
    ref = ImageOnlyQwen2VLProcessor(adapter.processor.image_processor, adapter.tokenizer)(
        images=imgs, text=texts, return_tensors="pt", padding=True, size={"shortest_edge": area, "longest_edge": area})
    mine = adapter.processor_inputs(imgs, texts)
    assert sorted(ref) == sorted(mine)
    for k in ref:
        assert ref[k].dtype == mine[k].dtype and torch.equal(ref[k], mine[k]), k


def test_geometry_grid_override(case):
    """Dynamic-resolution families take `geometry.grid`; fixed ones refuse a grid they cannot see."""
    name, adapter = case
    spec = ModelSpec(name=name, path=adapter.spec.path, geometry={"grid": 6})
    if name in ("qwen2vl", "pixtral", "qwen2_5vl", "mistral3", "qwen3vl"):
        other = type(adapter)(adapter.model, adapter.processor, spec)
        assert other.geometry.grid == 6 and other.geometry.canvas_px == 6 * adapter.geometry.px_per_token
        p = other.prepare(*_batch(other, n=1))
        assert p.grid_positions.shape == (1, 36)
    else:
        with pytest.raises(UnsupportedModel, match="fixed"):
            type(adapter)(adapter.model, adapter.processor, spec)


def test_errors_name_the_problem(tmp_path, checkpoints):
    cfg = T.LlavaNextConfig()
    cfg.architectures = ["LlavaNextForConditionalGeneration"]
    cfg.save_pretrained(tmp_path / "llava_next")
    with pytest.raises(UnsupportedModel, match=r"LlavaNextForConditionalGeneration.*Supported families.*README") as e:
        load(ModelSpec(name="next", path=str(tmp_path / "llava_next")))
    assert "ARCHITECTURE" not in str(e.value)
    text = T.LlamaConfig(num_hidden_layers=1)
    text.architectures = ["LlamaForCausalLM"]
    text.save_pretrained(tmp_path / "llama")
    with pytest.raises(UnsupportedModel, match=r"\['LlamaForCausalLM'\] .* is not a vision-language model"):
        load(ModelSpec(name="l", path=str(tmp_path / "llama")))
    with pytest.raises(UnsupportedModel, match="family 'florence2' is not supported"):
        load(ModelSpec(name="x", path=str(checkpoints["llava"]), family="florence2"))
    with pytest.raises(UnsupportedModel, match=r"family 'idefics3' is set in the config, but the checkpoint is "
                                               r"\['LlavaForConditionalGeneration'\].*the 'llava' family"):
        load(ModelSpec(name="x", path=str(checkpoints["llava"]), family="idefics3"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnsupportedModel, match="is a directory but not a Hugging Face checkpoint"):
        load(ModelSpec(name="x", path=str(tmp_path / "empty")))
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load(ModelSpec(name="x", path=str(tmp_path / "does-not-exist")))
    with pytest.raises(FileNotFoundError, match="nobody/no-such-model"):
        load(ModelSpec(name="x", path="nobody/no-such-model"))


def test_tiny_is_deterministic_and_cli(tmp_path, capsys):
    a, _ = build("qwen2vl", seed=0)
    b, _ = build("qwen2vl", seed=0)
    c, _ = build("qwen2vl", seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    main(["--family", "gemma3", "--out", str(tmp_path / "g")])
    assert capsys.readouterr().out.strip() == str(tmp_path / "g")
    assert (tmp_path / "g" / "model.safetensors").exists()


def test_table1_on_every_family(case, tmp_path):
    """The Table 1 path (behaviour.predict -> accuracy_table) on four canonical items of each family."""
    from dualmech import behaviour, interventions
    from dualmech.stimuli import relation_items
    name, adapter = case
    items = relation_items("squares", adapter.geometry, adapter.palette, tmp_path).iloc[:4].assign(model=name)
    preds = behaviour.predict(adapter, items, tmp_path, batch_size=4)
    prepared = adapter.prepare(behaviour.load_images(items, tmp_path), items["prompt"].tolist())
    top = interventions.final_logits(adapter, prepared).argmax(-1).tolist()
    assert preds["prediction"].tolist() == adapter.decode(top)
    assert preds["correct"].tolist() == [behaviour.normalise(p) == behaviour.normalise(a)
                                         for p, a in zip(preds["prediction"], preds["answer"])]
    assert preds["p_answer"].between(0, 1).all()
    table = behaviour.accuracy_table(preds)
    overall = table[table["direction"] == "all"].iloc[0]
    assert overall["n"] == 4 and overall["accuracy"] == preds["correct"].mean()


@pytest.mark.parametrize("cell", [(2, 5), (5, 2)])
def test_vision_sites_map_to_the_grid(case, cell):
    """Changing the pixels of one grid cell changes `vision_input` (patch + position embeddings) at that
    cell only, once the adapter has merged/pooled/pixel-shuffled the encoder's patches to the LM's grid
    (row-major: (2, 5) and its transpose land on different cells), and moves that cell the most at the
    encoder's last block."""
    from dualmech import extraction
    name, adapter = case
    g = adapter.geometry
    n, px, (r, c) = g.grid, g.px_per_token, cell
    plain = np.full((g.canvas_px, g.canvas_px, 3), 255, dtype=np.uint8)
    marked = plain.copy()
    marked[r * px:(r + 1) * px, c * px:(c + 1) * px] = (200, 30, 30)
    last = f"vision.{len(adapter.vision_layers) - 1}"
    out = extraction.capture(adapter, [Image.fromarray(plain), Image.fromarray(marked)], [extraction.VISION_INPUT, last])
    for s in out.values():
        assert s.shape[:2] == (2, n * n)
    changed = (out[extraction.VISION_INPUT][0] - out[extraction.VISION_INPUT][1]).abs().amax(-1) > 0
    assert changed.nonzero().flatten().tolist() == [r * n + c]
    moved = (out[last][0] - out[last][1]).float().norm(dim=-1)
    assert int(moved.argmax()) == r * n + c


def test_qwen3vl_deepstack_travels_with_the_visual_tokens(checkpoints):
    """Qwen3-VL's `lm_input` carries each position's DeepStack features (zero at text positions); they
    change the answer, and patching a counterfactual's visual tokens gives its logits only with them."""
    from dualmech import interventions as iv
    adapter = load(ModelSpec(name="qwen3vl", path=str(checkpoints["qwen3vl"])), device="cpu")
    k, d = adapter.deepstack_layers, adapter.model.config.text_config.hidden_size
    imgs, prompts = _batch(adapter)
    clean, cf = adapter.prepare(imgs, prompts), adapter.prepare(imgs[::-1], prompts)
    mine, theirs = iv.run(adapter, clean, capture=[iv.LM_INPUT]), iv.run(adapter, cf, capture=[iv.LM_INPUT])
    x = mine.captured[iv.LM_INPUT]
    assert k == 2 and x.shape[-1] == (k + 1) * d
    text = torch.ones(x.shape[:2], dtype=torch.bool)
    text[torch.arange(2)[:, None], clean.grid_positions] = False
    assert not x[text][:, d:].any() and x[~text][:, d:].abs().amin(0).amax() > 0
    no_deepstack = iv.run(adapter, clean, edits={iv.LM_INPUT: lambda h: torch.cat([h[..., :d], 0 * h[..., d:]], -1)})
    assert (no_deepstack.logits - mine.logits).abs().max() > 1e-4
    rows = torch.arange(2).repeat_interleave(clean.grid_positions.shape[1])
    pos = clean.grid_positions.reshape(-1)
    y = theirs.captured[iv.LM_INPUT]
    full = iv.run(adapter, clean, edits={iv.LM_INPUT: iv.replace_at(rows, pos, y[rows, pos])}).logits
    torch.testing.assert_close(full, theirs.logits, atol=1e-6, rtol=0)
    tokens_only = y[rows, pos].clone()
    tokens_only[:, d:] = x[rows, pos][:, d:]          # the visual tokens without their DeepStack features
    partial = iv.run(adapter, clean, edits={iv.LM_INPUT: iv.replace_at(rows, pos, tokens_only)}).logits
    assert (partial - theirs.logits).abs().max() > 1e-4


def test_qwen3vl_resumed_rows_carry_their_own_deepstack(checkpoints):
    """The patching engine's resumed rows (any order, repeated) add their own DeepStack features: resuming
    at layer 1 (after a patch of resid_post.0) and at layer 0 (after a patch of the visual tokens) equals
    the full forward of those rows with the same patch."""
    from dualmech import interventions as iv
    adapter = load(ModelSpec(name="qwen3vl", path=str(checkpoints["qwen3vl"])), device="cpu")
    imgs, prompts = _batch(adapter)
    clean, cf = adapter.prepare(imgs, prompts), adapter.prepare(imgs[::-1], prompts)
    sites = [iv.resid_post(0), iv.LM_INPUT]
    theirs = iv.run(adapter, cf, capture=sites).captured
    order = [1, 0, 1]
    rows = torch.tensor(order)
    again = adapter.prepare([imgs[i] for i in order], [prompts[i] for i in order])
    n = clean.grid_positions.shape[1]
    r, pos = torch.arange(3).repeat_interleave(n // 2), again.grid_positions[:, n // 2:].reshape(-1)
    tr = iv.trace(adapter, clean)
    for site in sites:
        edit = iv.replace_at(r, pos, theirs[site][rows][r, pos])
        full = iv.run(adapter, again, edits={site: edit}).logits
        assert (full - iv.run(adapter, again).logits).abs().max() > 1e-4      # the patch matters
        iv.run(adapter, cf)                     # other forwards run between a trace and its resumes
        resumed = iv.resume(adapter, tr, iv.start_layer(site, adapter.n_layers), rows, edit, int(pos.min()))
        torch.testing.assert_close(resumed, full, atol=1e-5, rtol=0)


def test_hooks_agree_with_nnsight(case):
    """Cross-check of the project's hooks against nnsight (optional: `pip install -e ".[crosscheck]"`):
    captured lm_input / last-layer residual, plain logits, and the logits after patching the counterfactual
    lm_input in at the top half of the grid and a counterfactual resid_post.0 at the final position. nnsight
    sees the first layer's input only: where `lm_input` carries more (Qwen3-VL's DeepStack features), the
    project's patch keeps the clean run's extra features, as nnsight's does."""
    nnsight = pytest.importorskip("nnsight")
    from dualmech import interventions as iv
    name, adapter = case
    d = adapter.model.get_input_embeddings().embedding_dim
    imgs, prompts = _batch(adapter)
    clean, cf = adapter.prepare(imgs, prompts), adapter.prepare(imgs[::-1], prompts)
    last = adapter.n_layers - 1
    sites = [iv.LM_INPUT, iv.resid_post(0), iv.resid_post(last)]
    ours, theirs = iv.run(adapter, clean, capture=sites), iv.run(adapter, cf, capture=sites).captured
    half, rows = adapter.geometry.grid ** 2 // 2, torch.arange(2)   # half the grid: the run is not the cf run
    r, pos = rows.repeat_interleave(half), clean.grid_positions[:, :half].reshape(-1)
    fin = clean.final_position
    cf_input = torch.cat([theirs[iv.LM_INPUT][..., :d], ours.captured[iv.LM_INPUT][..., d:]], -1)
    embed = {iv.LM_INPUT: iv.replace_at(r, pos, cf_input[r, pos])}
    patched = iv.run(adapter, clean, edits=embed | {
        iv.resid_post(0): iv.replace_at(rows, fin, theirs[iv.resid_post(0)][rows, fin])})
    model = nnsight.NNsight(adapter.model)

    def envoy(module):
        out = model
        for part in next(k for k, m in adapter.model.named_modules() if m is module).split("."):
            out = getattr(out, part)
        return out
    layers, norm = envoy(adapter.layers), envoy(adapter.language_model.norm)
    with torch.no_grad(), model.trace(**clean.inputs):   # the final norm's input: the last layer's residual
        x0, xl = layers[0].input.save(), norm.input.save()
        logits = model.output.logits.save()
    with torch.no_grad(), model.trace(**clean.inputs):
        layers[0].input[r, pos] = cf_input[r, pos, :d]
        layers[0].output[rows, fin] = theirs[iv.resid_post(0)][rows, fin]
        nn_patched = model.output.logits.save()
    assert torch.equal(x0, ours.captured[iv.LM_INPUT][..., :d]) and torch.equal(xl, ours.captured[iv.resid_post(last)])
    assert torch.equal(logits[rows, fin], ours.logits)
    assert torch.equal(nn_patched[rows, fin], patched.logits)
    assert (iv.run(adapter, clean, edits=embed).logits - patched.logits).abs().max() > 0   # both edits matter
    assert (iv.run(adapter, clean, edits=embed).logits - ours.logits).abs().max() > 0
