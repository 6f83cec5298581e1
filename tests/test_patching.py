"""Counterfactual pairs, swap regions, the batched patching sweep and its summaries (paper §5.3, §5.4, §5.6)."""
from __future__ import annotations

import hashlib
import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.stats import binomtest

from dualmech import ablation, models, pairs, patching
from dualmech import interventions as iv
from dualmech.behaviour import normalise
from dualmech.seeding import rng
from dualmech.stimuli import (ANSWER_SLOT, DIRECTIONS, OPPOSITE, ORIENTATION_OF, ORIENTATIONS, entities, prompt,
                              render_scene)
from dualmech.tiny import make_tiny

from dualmech.tiny import FAMILIES


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("patching-ckpt")
    return {f: make_tiny(f, root / f) for f in FAMILIES}


@pytest.fixture(scope="module", params=FAMILIES)
def adapter(request, checkpoints):
    return models.load(models.ModelSpec(name=request.param, path=str(checkpoints[request.param])), device="cpu")


@pytest.fixture(scope="module")
def llava(checkpoints):
    return models.load(models.ModelSpec(name="llava", path=str(checkpoints["llava"])), device="cpu")


# ================================================================== pair construction (pure)
ENTS = entities("squares")          # six distinct colours


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_last_token_scenes(direction):
    tup = ENTS[:5]
    t0, t1, t2, t3, t4 = tup
    clean, cf, cf_dir = pairs.scenes("last_token", direction, tup)
    assert cf_dir == OPPOSITE[direction] != direction
    assert clean[ANSWER_SLOT[direction]] == t0                 # clean answer
    assert cf[ANSWER_SLOT[cf_dir]] == t3                       # cf answer, asked the opposite way
    assert clean[1] == cf[1] == t1                             # shared middle reference
    assert clean[ANSWER_SLOT[cf_dir]] == t2                    # clean item at the cf answer's ordinal slot
    assert cf[ANSWER_SLOT[direction]] == t4
    assert pairs.answers("last_token", tup) == (t0, t3)
    # clean and cf answers sit at opposite ends: same ordinal slot is asked on both runs only through direction
    assert ANSWER_SLOT[direction] != ANSWER_SLOT[cf_dir]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_criss_cross_scenes(direction):
    tup = (ENTS[3], ENTS[0], ENTS[5])
    c0, c1, c2 = tup
    clean, cf, cf_dir = pairs.scenes("criss_cross", direction, tup)
    assert cf_dir == direction                                 # same query on both runs
    assert clean[ANSWER_SLOT[direction]] == c0
    assert cf[ANSWER_SLOT[direction]] == c2
    assert clean[1] == cf[1] == c1
    assert tuple(cf) == tuple(clean)[::-1]                     # c0 and c2 swap sides, nothing else changes
    assert set(clean) == set(cf) == set(tup)
    assert pairs.answers("criss_cross", tup) == (c0, c2)


def test_scenes_rejects_unknown_design():
    with pytest.raises(ValueError, match="unknown design 'diagonal'"):
        pairs.scenes("diagonal", "left", ENTS[:3])


@pytest.mark.parametrize("design", pairs.DESIGNS)
def test_sampling_order_is_seeded_and_without_replacement(design):
    size = pairs.TUPLE_SIZE[design]
    a = pairs.sampling_order(6, design, "squares", "left", 0, 50)
    assert a == pairs.sampling_order(6, design, "squares", "left", 0, 50)
    assert len(a) == 50 and len(set(a)) == 50
    assert all(len(t) == size and len(set(t)) == size and max(t) < 6 for t in a)
    assert a != pairs.sampling_order(6, design, "squares", "left", 1, 50)
    assert a != pairs.sampling_order(6, design, "squares", "right", 0, 50)
    every = pairs.sampling_order(6, design, "squares", "left", 0, 10 ** 6)       # capped at all tuples
    assert len(every) == len(set(every)) == len(list(itertools.permutations(range(6), size)))
    assert every[:50] == a


# ================================================================== pair tables on a tiny model
DIRS = list(DIRECTIONS)


@pytest.fixture(scope="module")
def built(llava, tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    tables = pairs.build_all(llava, "squares", DIRS, seed=3, target=2, max_attempts=3, image_dir=root / "a",
                             batch_size=8)
    again = pairs.build_all(llava, "squares", DIRS, seed=3, target=2, max_attempts=3, image_dir=root / "b",
                            batch_size=5)
    other = pairs.build_all(llava, "squares", DIRS, seed=4, target=2, max_attempts=3, image_dir=root / "c",
                            batch_size=8)
    return root, tables, again, other


@pytest.mark.parametrize("design", pairs.DESIGNS)
def test_build_all_tables(built, llava, design):
    root, tables, _, _ = built
    df = tables[design]
    roles = pairs.ROLES[design]
    ents = {e.name: e for e in pairs.pool(llava, "squares")}      # the 7-colour pool with Orange
    assert len(ents) == 7 and "orange" in ents
    assert set(df["direction"]) == set(DIRS)
    for d in DIRS:
        sub = df[df["direction"] == d]
        # random weights: stop at `target` golden pairs or after max_attempts tuples
        assert 1 <= len(sub) <= 3
        assert len(sub) == 3 or sub["golden"].sum() == 2
        # tuples come in the seeded, model-independent order
        order = pairs.sampling_order(len(ents), design, "squares", d, 3, 3)
        names = list(ents)
        expect = [tuple(names[i] for i in idx) for idx in order[:len(sub)]]
        assert [tuple(r) for r in sub[list(roles)].itertuples(index=False)] == expect
    for r in df.itertuples():
        tup = tuple(ents[getattr(r, role)] for role in roles)
        clean, cf, cf_dir = pairs.scenes(design, r.direction, tup)
        clean_ans, cf_ans = pairs.answers(design, tup)
        assert json.loads(r.clean_scene) == [e.name for e in clean]
        assert json.loads(r.cf_scene) == [e.name for e in cf]
        assert r.cf_direction == cf_dir and r.orientation == ORIENTATION_OF[r.direction]
        assert (r.clean_answer, r.cf_answer) == (clean_ans.answer, cf_ans.answer)
        assert json.loads(r.candidates) == [e.answer for e in tup]
        assert r.clean_prompt == prompt("squares", r.direction, tup[1])
        assert r.cf_prompt == prompt("squares", cf_dir, tup[1])
        assert r.clean_correct == (normalise(r.clean_prediction) == normalise(r.clean_answer))
        assert r.cf_correct == (normalise(r.cf_prediction) == normalise(r.cf_answer))
        assert r.golden == (r.clean_correct and r.cf_correct)
        # equal token lengths, so every patched position corresponds
        lengths = {len(llava.tokenizer(llava.chat_text(p), **llava.text_kwargs([llava.chat_text(p)]))["input_ids"])
                   for p in (r.clean_prompt, r.cf_prompt)}
        assert lengths == {r.n_tokens}
        for col in ("clean", "cf"):
            data = (root / "a" / getattr(r, f"{col}_image")).read_bytes()
            assert hashlib.sha256(data).hexdigest() == getattr(r, f"{col}_image_sha256")
        img = Image.open(root / "a" / r.clean_image).convert("RGB")
        ref = render_scene(clean, llava.geometry.canonical_layout(r.orientation), llava.geometry)
        assert np.array_equal(np.asarray(img), np.asarray(ref))


def test_golden_filter_reads_the_canonical_predictions(llava, tmp_path):
    """Runs that are canonical items take the behaviour rule's prediction: the same tables with fewer forwards,
    and a prediction read from the table (not recomputed) decides the golden flag, unless the image differs."""
    from dualmech import behaviour
    from dualmech.stimuli import relation_items
    items = relation_items("squares", llava.geometry, llava.palette, tmp_path / "items", DIRS)
    preds = behaviour.predict(llava, items, tmp_path / "items", batch_size=16)
    known = pairs.known_predictions(items, preds)
    assert len(known) == len(items)
    args = (llava, "squares", DIRS, 3, 2, 12)
    plain = pairs.build_all(*args, image_dir=tmp_path / "a", batch_size=8)
    looked_up = pairs.build_all(*args, image_dir=tmp_path / "b", batch_size=8, known=known)
    for design in pairs.DESIGNS:
        pd.testing.assert_frame_equal(plain[design], looked_up[design])
    wrong = {k: (prompt_, "nothing", sha) for k, (prompt_, _, sha) in known.items()}
    misled = pairs.build_all(*args, image_dir=tmp_path / "c", batch_size=8, known=wrong)["criss_cross"]
    canonical = misled["clean_scene"].map(lambda s: tuple(json.loads(s))).isin({k[0] for k in known})
    assert canonical.any() and (misled.loc[canonical, "clean_prediction"] == "nothing").all()
    assert not misled.loc[canonical, "golden"].any()
    other_image = {k: (prompt_, "nothing", "0" * 64) for k, (prompt_, _, sha) in known.items()}
    recomputed = pairs.build_all(*args, image_dir=tmp_path / "d", batch_size=8, known=other_image)
    for design in pairs.DESIGNS:                # scored on another image: not used, the model runs instead
        pd.testing.assert_frame_equal(plain[design], recomputed[design])


def test_results_do_not_depend_on_batch_size(llava, built, monkeypatch):
    """Predictions and patching probabilities are the same whatever the rows per forward; the derived size is
    capped by the device's free memory and DUALMECH_BATCH_SIZE overrides it."""
    from dualmech import behaviour, runtime
    root, tables, _, _ = built
    attempted = tables["last_token"]          # the random tiny model gets none right: sweep every attempted pair
    one, many = (patching.last_token(llava, "llava", attempted, root / "a", rows_per_forward=r) for r in (1, 64))
    assert len(one) > 0 and (one["top"] == many["top"]).all()
    np.testing.assert_allclose(one["probability"], many["probability"], atol=1e-6)
    df = tables["last_token"].assign(item=lambda d: d["pair"], image=lambda d: d["clean_image"],
                                     prompt=lambda d: d["clean_prompt"], answer=lambda d: d["clean_answer"])
    a, b = (behaviour.predict(llava, df, root / "a", batch_size=n) for n in (1, 5))
    assert (a["prediction"] == b["prediction"]).all()
    np.testing.assert_allclose(a["p_answer"], b["p_answer"], atol=1e-6)
    monkeypatch.delenv("DUALMECH_BATCH_SIZE", raising=False)
    assert runtime.batch_size(llava) == runtime.DEFAULT_BATCH          # a host with room: the default, not more
    monkeypatch.setattr(runtime, "free_memory", lambda device: 10 * runtime.row_bytes(llava))
    assert runtime.batch_size(llava) == 5                              # half of the free memory
    monkeypatch.setenv("DUALMECH_BATCH_SIZE", "3")
    assert runtime.batch_size(llava) == 3


def test_build_all_predictions_are_the_models_top1(built, llava):
    root, tables, _, _ = built
    df = tables["last_token"].iloc[:4]
    imgs = [Image.open(root / "a" / p).convert("RGB") for p in df["clean_image"]] + \
        [Image.open(root / "a" / p).convert("RGB") for p in df["cf_image"]]
    prepared = llava.prepare(imgs, df["clean_prompt"].tolist() + df["cf_prompt"].tolist())
    top = llava.decode(iv.final_logits(llava, prepared).argmax(-1).tolist())
    assert top == df["clean_prediction"].tolist() + df["cf_prediction"].tolist()
    # clean and cf runs of a pair have the same token layout
    clean = llava.prepare(imgs[:4], df["clean_prompt"].tolist())
    cf = llava.prepare(imgs[4:], df["cf_prompt"].tolist())
    assert torch.equal(clean.final_position, cf.final_position)
    assert torch.equal(clean.grid_positions, cf.grid_positions)


def test_build_all_is_seeded(built):
    _, tables, again, other = built
    for design in pairs.DESIGNS:
        cols = ["pair", *pairs.ROLES[design], "clean_image_sha256", "cf_image_sha256", "golden", "clean_prediction"]
        pd.testing.assert_frame_equal(tables[design][cols], again[design][cols])     # batch size is irrelevant
        roles = list(pairs.ROLES[design])
        assert tables[design][roles].values.tolist() != other[design][roles].values.tolist()


class _AlwaysRight(pairs.Oracle):
    """An oracle whose model answers every run correctly (every tuple is golden)."""

    def evaluate(self, keys):
        for scene, d in keys:
            target = scene[0] if d in pairs.FIRST_SLOT else scene[2]
            self.results[scene, d] = target.answer, True


def test_build_stops_at_target(llava, tmp_path):
    oracle = _AlwaysRight(llava, "squares", tmp_path, 4)
    df = pairs.build(llava, "squares", "criss_cross", ["left", "below"], seed=0, target=3, max_attempts=10,
                     oracle=oracle, chunk=2)
    assert df.groupby("direction").size().to_dict() == {"left": 3, "below": 3}
    assert df["golden"].all()
    assert list(pairs.golden(df)["pair"]) == list(df["pair"])
    assert df["pair"].tolist()[:3] == [f"squares-criss_cross-left-{k:04d}" for k in range(3)]


# ================================================================== swap regions
def _rc(g, idx):
    return [divmod(i, g.grid) for i in idx]


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_object_regions_are_the_side_objects(adapter, orientation):
    g = adapter.geometry
    a, b = patching.swap_regions(g, orientation, "object")
    slots = g.object_cells(orientation)
    assert sorted(a) == sorted(g.index(slots[0])) and sorted(b) == sorted(g.index(slots[2]))
    assert len(a) == len(b) == g.object_tokens ** 2
    shift = {(rb - ra, cb - ca) for (ra, ca), (rb, cb) in zip(_rc(g, a), _rc(g, b))}
    (r0, c0), _, (r2, c2) = g.canonical_layout(orientation)
    assert shift == {(r2 - r0, c2 - c0)}                       # paired cell by cell, by translation
    assert not set(a) & set(b)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("width", [None, "s+2"])
def test_strip_regions_are_full_bands(adapter, orientation, width):
    g = adapter.geometry
    w = g.object_tokens + 2 if width == "s+2" else None
    a, b = patching.swap_regions(g, orientation, "strip", w)
    n = g.grid
    assert len(a) == len(b) == len(set(a)) == len(set(b))
    assert not set(a) & set(b)
    along = 1 if orientation == "horizontal" else 0          # columns for horizontal layouts, rows for vertical
    for region in (a, b):
        cells = set(_rc(g, region))
        lines = {cell[along] for cell in cells}
        assert cells == {(x, y) if along == 1 else (y, x) for y in lines for x in range(n)}   # full lines
    lines_a = sorted({c[along] for c in _rc(g, a)})
    lines_b = sorted({c[along] for c in _rc(g, b)})
    assert len(lines_a) == len(lines_b) == (n // 3 if w is None else w)
    objs = g.object_cells(orientation)
    if w is not None:     # bands around each object contain it and miss the middle one
        assert set(g.index(objs[0])) <= set(a) and set(g.index(objs[2])) <= set(b)
        assert not set(g.index(objs[1])) & (set(a) | set(b))
    shift = {(rb - ra, cb - ca) for (ra, ca), (rb, cb) in zip(_rc(g, a), _rc(g, b))}
    assert len(shift) == 1
    if w is None:
        assert lines_a == list(range(n // 3)) and lines_b == list(range(n - n // 3, n))


@pytest.mark.parametrize("grid,s,gap", [(12, 2, 2), (16, 3, 3), (15, 2, 2), (10, 2, 1)])
def test_thirds_strips_hold_the_side_objects_for_paper_geometries(grid, s, gap):
    """Table 4 geometries (Qwen, Gemma, Pixtral) and the organism's: each outer third holds its object."""
    from dualmech.stimuli import Geometry
    g = Geometry(grid, 8, s, gap)
    for orientation in ORIENTATIONS:
        a, b = patching.swap_regions(g, orientation, "strip")
        objs = g.object_cells(orientation)
        assert set(g.index(objs[0])) <= set(a) and set(g.index(objs[2])) <= set(b)
        assert not set(g.index(objs[1])) & (set(a) | set(b))


def test_strip_clipped_by_the_border_pairs_by_the_object_translation():
    from dualmech.stimuli import Geometry
    g = Geometry(8, 8, 1, 1)                  # layout columns 1, 3, 5; width 5 clips slot 0 to columns 0..3
    a, b = patching.swap_regions(g, "horizontal", "strip", 5)
    assert sorted({c for _, c in _rc(g, a)}) == [0, 1, 2, 3]
    assert sorted({c for _, c in _rc(g, b)}) == [4, 5, 6, 7]
    assert all(j - i == 4 for i, j in zip(a, b))
    with pytest.raises(ValueError, match="unknown region kind 'blob'"):
        patching.swap_regions(g, "horizontal", "blob")
    with pytest.raises(ValueError, match="narrower than an object"):
        Geometry(12, 8, 2, 2).strip_cells("horizontal", 1)


def test_regions_land_on_image_tokens_only(adapter):
    g = adapter.geometry
    img = render_scene(ENTS[:3], g.canonical_layout("horizontal"), g)
    prepared = adapter.prepare([img, img], [prompt("squares", "left", ENTS[1]), prompt("squares", "above", ENTS[1])])
    ids = prepared.inputs["input_ids"]
    grid = prepared.grid_positions
    assert grid.shape == (2, g.grid ** 2)
    assert torch.equal(ids[0, grid[0]], torch.full((g.grid ** 2,), adapter.image_token_id))
    for orientation in ORIENTATIONS:
        for kind in patching.KINDS:
            a, b = patching.swap_regions(g, orientation, kind)
            for row in range(2):
                pos = grid[row, torch.tensor(a + b)]
                assert (ids[row, pos] == adapter.image_token_id).all()
                assert len(set(pos.tolist())) == len(a + b)
    if adapter.family == "pixtral":
        tok = adapter.tokenizer
        brk, end = tok.convert_tokens_to_ids("[IMG_BREAK]"), tok.convert_tokens_to_ids("[IMG_END]")
        n = g.grid
        start = int(grid[0, 0])
        assert grid[0].tolist() == [start + r * (n + 1) + c for r in range(n) for c in range(n)]
        after_rows = [start + r * (n + 1) + n for r in range(n)]      # the token after each row of [IMG]
        assert ids[0, after_rows[:-1]].tolist() == [brk] * (n - 1)
        assert int(ids[0, after_rows[-1]]) == end
        # strips span every row, so they cross the break tokens without ever touching them
        a, b = patching.swap_regions(g, "horizontal", "strip")
        pos = set(grid[0, torch.tensor(a + b)].tolist())
        assert not pos & set(after_rows)
        assert max(pos) > after_rows[0]


# ================================================================== null regions
@pytest.mark.parametrize("kind", patching.KINDS)
def test_null_regions(adapter, kind):
    g = adapter.geometry
    for orientation in ORIENTATIONS:
        a, b = patching.swap_regions(g, orientation, kind)
        objects = {i for cells in g.object_cells(orientation) for i in g.index(cells)}
        draws, pool = patching.null_regions(g, orientation, len(a), 5, rng(7, "null", kind), a + b)
        assert len(draws) == 5
        free = g.grid ** 2 - len(objects | set(a + b))
        expected = "outside swapped regions and objects" if free >= 2 * len(a) else "outside objects"
        assert pool == expected
        for na, nb in draws:
            assert len(na) == len(nb) == len(a) == len(set(na)) == len(set(nb))
            assert not set(na) & set(nb)
            assert not (set(na) | set(nb)) & objects
            if pool == "outside swapped regions and objects":
                assert not (set(na) | set(nb)) & set(a + b)
            assert all(0 <= i < g.grid ** 2 for i in na + nb)
        assert len({tuple(na) for na, _ in draws}) > 1          # independent draws
        same, _ = patching.null_regions(g, orientation, len(a), 5, rng(7, "null", kind), a + b)
        assert same == draws
        other, _ = patching.null_regions(g, orientation, len(a), 5, rng(8, "null", kind), a + b)
        assert other != draws


def test_null_regions_pools_and_error():
    from dualmech.stimuli import Geometry
    g = Geometry(8, 8, 1, 1)
    a, b = patching.swap_regions(g, "horizontal", "strip")               # 16 + 16 cells of 64
    draws, pool = patching.null_regions(g, "horizontal", len(a), 3, rng(0, "x"), a + b)
    assert pool == "outside objects"                                      # 64 - 3 objects = 61 >= 32
    objects = set(g.index([c for cells in g.object_cells("horizontal") for c in cells]))
    assert all(not (set(x) | set(y)) & objects for x, y in draws)
    _, pool = patching.null_regions(g, "horizontal", 30, 1, rng(0, "x"), [])
    assert pool == "outside swapped regions and objects"                 # 60 <= 61 cells off the objects
    draws, pool = patching.null_regions(g, "horizontal", 32, 1, rng(0, "x"), [])
    assert pool == "anywhere" and sorted(draws[0][0] + draws[0][1]) == list(range(64))
    with pytest.raises(ValueError, match="8x8 grid cannot hold two disjoint regions of 33 cells"):
        patching.null_regions(g, "horizontal", 33, 1, rng(0, "x"), [])


def test_criss_cross_variants_and_region_table():
    from dualmech.stimuli import Geometry
    g = Geometry(8, 8, 1, 1)
    variants_of, kinds = patching.criss_cross_variants(g, None, 2, seed=5)
    assert kinds == [("object", 0), ("strip", 0), ("object_null", 0), ("object_null", 1), ("strip_null", 0),
                     ("strip_null", 1)]
    row = pd.Series(dict(orientation="vertical", pair="p1"))
    vs = variants_of(row)
    assert len(vs) == len(kinds)
    a, b = patching.swap_regions(g, "vertical", "object")
    assert vs[0] == (a + b, b + a)
    for dest, src in vs:
        assert len(dest) == len(src) and sorted(dest) == sorted(src)
    assert variants_of(row) == vs and variants_of(pd.Series(dict(orientation="vertical", pair="p2"))) != vs
    table = patching.region_table(g, None, 2, 5, pd.DataFrame(dict(pair=["p1"], orientation=["vertical"])))
    nulls = table[table["pair"] == "p1"]
    assert json.loads(nulls[nulls["kind"] == "object_null"]["a"].iloc[0]) == vs[2][0][:len(a)]


# ================================================================== the batched sweep
def _pair_batch(adapter, design):
    """Two pairs of the design (one horizontal, one vertical): images, prompts, candidate words, scenes."""
    g = adapter.geometry
    ents = entities("squares", adapter.palette)
    out = dict(clean_images=[], clean_prompts=[], cf_images=[], cf_prompts=[], words=[], clean_scenes=[],
               cf_scenes=[], orientations=[])
    for direction, tup in (("left", ents[:pairs.TUPLE_SIZE[design]]), ("below", ents[::-1][:pairs.TUPLE_SIZE[design]])):
        clean, cf, cf_dir = pairs.scenes(design, direction, tup)
        o = ORIENTATION_OF[direction]
        out["clean_images"].append(render_scene(clean, g.canonical_layout(o), g))
        out["cf_images"].append(render_scene(cf, g.canonical_layout(o), g))
        out["clean_prompts"].append(prompt("squares", direction, tup[1]))
        out["cf_prompts"].append(prompt("squares", cf_dir, tup[1]))
        out["words"].append([e.answer for e in tup])
        out["clean_scenes"].append([e.name for e in clean])
        out["cf_scenes"].append([e.name for e in cf])
        out["orientations"].append(o)
    return out


def _candidate_probs(adapter, logits, words):
    """(P, C) summed single-token-variant probabilities, computed independently of patching.candidate_index."""
    probs = torch.softmax(logits.double(), -1)
    return np.array([[float(probs[p, adapter.candidate_token_ids(w)].sum()) for w in ws]
                     for p, ws in enumerate(words)])


def _top(adapter, logits, words):
    out = []
    for p, t in enumerate(logits.argmax(-1).tolist()):
        word = normalise(adapter.decode([t])[0])
        ws = [normalise(w) for w in words[p]]
        out.append(ws.index(word) if word in ws else -1)
    return np.array(out)


def test_patching_everything_reproduces_the_cf_run(adapter):
    b = _pair_batch(adapter, "last_token")          # different images and prompts on the two runs
    P = 2
    variants = [[(patching.ALL, patching.ALL)] * P, [(patching.FINAL, patching.FINAL)] * P]
    probs, top = patching.sweep_group(adapter, b["clean_images"], b["clean_prompts"], b["cf_images"],
                                      b["cf_prompts"], variants, [iv.LM_INPUT], b["words"])
    assert probs.shape == (P, 2, 1, 5) and top.shape == (P, 2, 1)
    cf_logits = iv.final_logits(adapter, adapter.prepare(b["cf_images"], b["cf_prompts"]))
    clean_logits = iv.final_logits(adapter, adapter.prepare(b["clean_images"], b["clean_prompts"]))
    expect_cf = _candidate_probs(adapter, cf_logits, b["words"])
    expect_clean = _candidate_probs(adapter, clean_logits, b["words"])
    np.testing.assert_allclose(probs[:, 0, 0], expect_cf, rtol=1e-5, atol=1e-8)
    assert np.array_equal(top[:, 0, 0], _top(adapter, cf_logits, b["words"]))
    # not vacuous: the clean run's candidate probabilities differ from the cf run's
    assert np.abs(expect_cf - expect_clean).max() > 1e-5
    # patching only the final position of the LM input leaves every image token clean: not the cf run
    assert np.abs(probs[:, 1, 0] - expect_cf).max() > 1e-6


def _loop_reference(adapter, b, variants, sites):
    """One forward per (variant, site): capture the cf run at the site, overwrite the clean run there."""
    clean = adapter.prepare(b["clean_images"], b["clean_prompts"])
    cf = adapter.prepare(b["cf_images"], b["cf_prompts"])
    P = len(b["words"])
    out = np.zeros((P, len(variants), len(sites), len(b["words"][0])))
    tops = np.zeros((P, len(variants), len(sites)), dtype=int)
    for k, site in enumerate(sites):
        cap = iv.run(adapter, cf, capture=[site]).captured[site]
        for v, variant in enumerate(variants):
            rows, pos, vals = [], [], []
            for p, (dest, src) in enumerate(variant):
                def where(spec, prep):
                    if spec == patching.FINAL:
                        return prep.final_position[p:p + 1]
                    if spec == patching.ALL:
                        return torch.arange(prep.inputs["input_ids"].shape[1])
                    return prep.grid_positions[p, torch.tensor(spec)]
                d, s = where(dest, clean), where(src, cf)
                rows.append(torch.full_like(d, p))
                pos.append(d)
                vals.append(cap[p, s])
            edit = iv.replace_at(torch.cat(rows), torch.cat(pos), torch.cat(vals))
            logits = iv.run(adapter, clean, edits={site: edit}).logits
            out[:, v, k] = _candidate_probs(adapter, logits, b["words"])
            tops[:, v, k] = _top(adapter, logits, b["words"])
    return out, tops


def test_batched_sweep_equals_one_forward_per_site(adapter):
    g = adapter.geometry
    b = _pair_batch(adapter, "criss_cross")
    sites = iv.all_sites(adapter.n_layers)
    variants = []
    for kind in patching.KINDS:
        regs = [patching.swap_regions(g, o, kind) for o in b["orientations"]]
        variants.append([(a + bb, bb + a) for a, bb in regs])
    variants.append([(patching.FINAL, patching.FINAL)] * 2)
    variants.append([([0, 1], [g.grid ** 2 - 1, g.grid ** 2 - 2])] * 2)          # asymmetric cell move
    every_cell = list(range(g.grid ** 2))
    variants.append([(every_cell, every_cell)] * 2)                               # the whole image from cf
    probs, top = patching.sweep_group(adapter, b["clean_images"], b["clean_prompts"], b["cf_images"],
                                      b["cf_prompts"], variants, sites, b["words"])
    assert probs.shape == (2, len(variants), len(sites), 3)
    ref, ref_top = _loop_reference(adapter, b, variants, sites)
    np.testing.assert_allclose(probs, ref, rtol=1e-5, atol=1e-8)
    assert np.array_equal(top, ref_top)
    # not vacuous: taking every grid cell from the cf run at the LM input turns the clean run into the cf run
    # (same prompt in the criss-cross design), whose answer probabilities differ from the clean run's
    plain = _candidate_probs(adapter, iv.final_logits(adapter, adapter.prepare(b["clean_images"], b["clean_prompts"])),
                             b["words"])
    cf = _candidate_probs(adapter, iv.final_logits(adapter, adapter.prepare(b["cf_images"], b["cf_prompts"])),
                          b["words"])
    np.testing.assert_allclose(probs[:, -1, 0], cf, rtol=1e-5, atol=1e-8)
    assert np.abs(cf - plain).max() > 1e-5


def test_sweep_group_rejects_mismatched_regions(llava):
    b = _pair_batch(llava, "criss_cross")
    with pytest.raises(ValueError, match="variant 0 of pair 0: 2 destination but 1 source positions"):
        patching.sweep_group(llava, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"],
                             [[([0, 1], [2])] * 2], [iv.LM_INPUT], b["words"])


def test_sweep_group_rejects_unequal_token_lengths(llava):
    b = _pair_batch(llava, "criss_cross")
    cf_prompts = [b["cf_prompts"][0] + " red red", b["cf_prompts"][1]]
    with pytest.raises(AssertionError, match="differ in token length"):
        patching.sweep_group(llava, b["clean_images"], b["clean_prompts"], b["cf_images"], cf_prompts,
                             [[(patching.FINAL, patching.FINAL)] * 2], [iv.LM_INPUT], b["words"])


def test_lm_input_values_fig9_path(adapter):
    g = adapter.geometry
    b = _pair_batch(adapter, "criss_cross")
    sites = iv.all_sites(adapter.n_layers)
    variants = [[(a + bb, bb + a) for a, bb in (patching.swap_regions(g, o, "object") for o in b["orientations"])],
                [(patching.FINAL, patching.FINAL)] * 2]
    args = (adapter, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"], variants, sites,
            b["words"])
    plain, plain_top = patching.sweep_group(*args)
    own = (adapter.visual_tokens(b["clean_images"]), adapter.visual_tokens(b["cf_images"]))
    same, same_top = patching.sweep_group(*args, lm_input_values=own)
    np.testing.assert_allclose(same, plain, rtol=1e-5, atol=1e-7)
    assert np.array_equal(same_top, plain_top)
    values = ablation.scene_values(g, ablation.reference_tokens(adapter, "squares"))
    abl = (values(b["clean_scenes"], b["orientations"]), values(b["cf_scenes"], b["orientations"]))
    ablated, _ = patching.sweep_group(*args, lm_input_values=abl)
    assert ablated.shape == plain.shape
    assert np.abs(ablated - plain).max() > 1e-6
    # under the ablation, patching every position at the LM input gives the ablated cf run
    full, _ = patching.sweep_group(adapter, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"],
                                   [[(patching.ALL, patching.ALL)] * 2], [iv.LM_INPUT], b["words"], lm_input_values=abl)
    cf = adapter.prepare(b["cf_images"], b["cf_prompts"])
    logits = iv.run(adapter, cf, edits={iv.LM_INPUT: iv.replace_grid(cf, abl[1])}).logits
    np.testing.assert_allclose(full[:, 0, 0], _candidate_probs(adapter, logits, b["words"]), rtol=1e-5, atol=1e-8)


def test_fig9_runs_skip_the_vision_tower_with_the_same_results(adapter, monkeypatch):
    """Under the ablation both runs of a pair have every visual token overwritten: they skip the vision tower
    (counted by a hook on its first block; LLaVA-OneVision keeps it, see test_ablation) with the same results,
    on the engine's path and the plain one."""
    g = adapter.geometry
    b = _pair_batch(adapter, "criss_cross")
    values = ablation.scene_values(g, ablation.reference_tokens(adapter, "squares"))
    abl = (values(b["clean_scenes"], b["orientations"]), values(b["cf_scenes"], b["orientations"]))
    variants = [[(a + bb, bb + a) for a, bb in (patching.swap_regions(g, o, "object") for o in b["orientations"])],
                [(patching.FINAL, patching.FINAL)] * 2]
    args = (adapter, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"], variants,
            iv.all_sites(adapter.n_layers), b["words"], abl)
    iv.without_vision(adapter, adapter.prepare(b["cf_images"], b["cf_prompts"]), abl[1])   # the once-per-model check
    skips = iv.vision_skip(adapter).skip
    assert skips == (adapter.family != "llava_onevision")
    tower = []
    hook = adapter.vision_layers[0].register_forward_hook(lambda *args: tower.append(1))
    try:
        for engine in ([True, False] if adapter.resumable else [False]):
            monkeypatch.setenv("DUALMECH_SKIP_VISION", "0")
            tower.clear()
            full, full_top = patching.sweep_group(*args, engine=engine)
            assert len(tower) == 2                                  # the cf run and the clean run
            monkeypatch.delenv("DUALMECH_SKIP_VISION")
            tower.clear()
            fast, fast_top = patching.sweep_group(*args, engine=engine)
            assert len(tower) == (0 if skips else 2)
            np.testing.assert_allclose(fast, full, rtol=1e-5, atol=1e-7)
            assert np.array_equal(fast_top, full_top)
    finally:
        hook.remove()


def test_run_sweeps_groups_pairs_like_one_group(llava, tmp_path):
    """Grouping pairs into several forwards (rows_per_forward) changes nothing."""
    tables = pairs.build_all(llava, "squares", ["left", "above"], seed=1, target=99, max_attempts=3,
                             image_dir=tmp_path, batch_size=16, designs=("criss_cross",))
    df = tables["criss_cross"]
    variants_of, kinds = patching.criss_cross_variants(llava.geometry, None, 1, seed=0)
    sites = iv.all_sites(llava.n_layers)
    one, one_top = patching.run_sweeps(llava, df, tmp_path, variants_of, len(kinds), sites, rows_per_forward=10 ** 6)
    many, many_top = patching.run_sweeps(llava, df, tmp_path, variants_of, len(kinds), sites, rows_per_forward=1)
    assert one.shape == (len(df), len(kinds), len(sites), 3)
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-8)
    assert np.array_equal(one_top, many_top)
    sweep = patching.criss_cross(llava, "tiny", df, tmp_path, None, 1, seed=0, rows_per_forward=10 ** 6)
    assert list(sweep.columns) == patching.SWEEP_COLUMNS
    assert len(sweep) == len(df) * len(kinds) * len(sites) * 3
    got = sweep.set_index(["pair", "kind", "draw", "site_index", "candidate"])["probability"]
    for i, pair in enumerate(df["pair"]):
        for v, (kind, draw) in enumerate(kinds):
            for k in range(len(sites)):
                assert got[pair, kind, draw, k, "c2"] == pytest.approx(float(one[i, v, k, 2]), rel=1e-5, abs=1e-9)
    assert patching.run_sweeps(llava, df.iloc[:0], tmp_path, variants_of, len(kinds), sites) == (None, None)


def test_run_sweeps_halves_the_batch_on_out_of_memory(llava, tmp_path, monkeypatch, caplog):
    """A group that runs out of memory is retried at half the size; the results do not change."""
    tables = pairs.build_all(llava, "squares", ["left", "above"], seed=1, target=99, max_attempts=3,
                             image_dir=tmp_path, batch_size=16, designs=("criss_cross",))
    df = tables["criss_cross"]
    variants_of, kinds = patching.criss_cross_variants(llava.geometry, None, 1, seed=0)
    args = (llava, df, tmp_path, variants_of, len(kinds), iv.all_sites(llava.n_layers))
    whole, whole_top = patching.run_sweeps(*args, rows_per_forward=10 ** 6)
    real, sizes = patching.sweep_group, []

    def small_memory(adapter, clean_images, *a, **k):
        sizes.append(len(clean_images))
        if len(clean_images) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(adapter, clean_images, *a, **k)
    monkeypatch.setattr(patching, "sweep_group", small_memory)
    with caplog.at_level("WARNING", logger="dualmech.runtime"):
        halved, halved_top = patching.run_sweeps(*args, rows_per_forward=10 ** 6)
    assert len(df) == 6 and sizes == [6, 3] + [1] * 6             # 6 fails, 3 fails, then 1 at a time
    assert "out of memory at batch size" in caplog.text
    np.testing.assert_allclose(halved, whole, rtol=1e-5, atol=1e-8)
    assert np.array_equal(halved_top, whole_top)
    monkeypatch.setattr(patching, "sweep_group", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("shape")))
    with pytest.raises(RuntimeError, match="shape"):             # other errors are not retried
        patching.run_sweeps(*args)


# ================================================================== the engine (trace once, resume per site)
def _engine_variants(adapter, b):
    g = adapter.geometry
    out = [[(a + bb, bb + a) for a, bb in (patching.swap_regions(g, o, kind) for o in b["orientations"])]
           for kind in patching.KINDS]
    return out + [[(patching.FINAL, patching.FINAL)] * 2, [([g.grid ** 2 - 1], [0])] * 2]


def test_engine_equals_the_plain_path_at_first_middle_and_last_site(adapter, monkeypatch):
    """Resuming from the patched layer over the suffix the patch reaches == the full batched forward."""
    if not adapter.resumable:
        pytest.skip(f"family {adapter.family!r} runs plain forwards (not resumable)")
    b = _pair_batch(adapter, "criss_cross")
    sites = iv.all_sites(adapter.n_layers)
    sites = [sites[0], sites[len(sites) // 2], sites[-1]]
    variants = _engine_variants(adapter, b)
    args = (adapter, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"], variants, sites,
            b["words"])
    starts = []
    suffix_start = iv.Trace.suffix_start
    monkeypatch.setattr(iv.Trace, "suffix_start", lambda self, first, layer: starts.append(
        (first, layer, suffix_start(self, first, layer))) or starts[-1][2])
    fast, fast_top = patching.sweep_group(*args, engine=True)
    assert {layer for _, layer, _ in starts} == {iv.start_layer(s, adapter.n_layers) for s in sites}
    plain, plain_top = patching.sweep_group(*args, engine=False)
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-7)
    assert np.array_equal(fast_top, plain_top)
    # a patch that starts mid-image only (the last grid cell): the resumed suffix starts inside the image
    n = adapter.geometry.grid ** 2
    last_cell = (adapter, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"],
                 [[([n - 1], [n // 2])] * 2], sites, b["words"])
    np.testing.assert_allclose(patching.sweep_group(*last_cell, engine=True)[0],
                               patching.sweep_group(*last_cell, engine=False)[0], rtol=1e-5, atol=1e-7)
    # the last-token variant alone resumes each row at its own final position: one position per row and layer
    # (the two prompts differ in length, so a common start would recompute the shorter one's last positions)
    starts.clear()
    patching.sweep_group(adapter, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"],
                         [[(patching.FINAL, patching.FINAL)] * 2], sites, b["words"], engine=True)
    finals = adapter.prepare(b["clean_images"], b["clean_prompts"]).final_position.tolist()
    assert finals[0] != finals[1]
    L = adapter.n_layers
    if adapter.family == "paligemma":     # the bidirectional prefix: from position 0 while a layer is left to run
        assert {(f, s) for f, layer, s in starts if layer < L} == {(f, 0) for f in finals}
        assert {(f, s) for f, layer, s in starts if layer == L} == {(f, f) for f in finals}
    else:
        assert sorted(starts) == sorted((f, iv.start_layer(site, L), f) for f in finals for site in sites)


def test_engine_runs_each_decoder_layer_once_for_every_site(adapter, monkeypatch):
    """The last-token sweep resumes its sites as a staircase: decoder layer j runs once for the rows of all the
    sites at or below it (resuming each site alone ran layer j once per such site: j + 1 times), besides the
    cf capture and the clean trace; with one site a batch (STAIRCASE_COPIES = 1) it does that, with the same
    results. PaliGemma resumes from position 0 (its bidirectional prefix), where a site's rows fill a
    full-length batch, so its sites run one by one."""
    if not adapter.resumable:
        pytest.skip(f"family {adapter.family!r} runs plain forwards (not resumable)")
    b = _pair_batch(adapter, "criss_cross")
    L = adapter.n_layers
    calls = [0] * L
    hooks = [layer.register_forward_pre_hook(lambda *a, j=j: calls.__setitem__(j, calls[j] + 1))
             for j, layer in enumerate(adapter.layers)]
    args = (adapter, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"],
            [[(patching.FINAL, patching.FINAL)] * 2], iv.all_sites(L), b["words"])
    try:
        together, _ = patching.sweep_group(*args, engine=True)
        resumed = [c - 2 for c in calls]
        monkeypatch.setattr(iv, "STAIRCASE_COPIES", 1)
        calls[:] = [0] * L
        alone, _ = patching.sweep_group(*args, engine=True)
    finally:
        for h in hooks:
            h.remove()
    assert resumed == ([j + 1 for j in range(L)] if adapter.family == "paligemma" else [1] * L)
    assert [c - 2 for c in calls] == [j + 1 for j in range(L)]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-8)


def test_suffix_start_follows_the_attention_mask(adapter):
    """Causal families resume at the first patched position; Gemma 3's bidirectional image attention moves
    the start back to the first image token (earlier image tokens see later ones), PaliGemma's bidirectional
    prefix (image and prompt) to the first position."""
    if not adapter.resumable:
        pytest.skip(f"family {adapter.family!r} runs plain forwards (not resumable)")
    b = _pair_batch(adapter, "criss_cross")
    clean = adapter.prepare(b["clean_images"], b["clean_prompts"])
    tr = iv.trace(adapter, clean)
    mid = int(clean.grid_positions[:, adapter.geometry.grid ** 2 // 2].min())
    first_image = int(clean.grid_positions[:, 0].min())
    final = int(clean.final_position.min())
    if adapter.family == "paligemma":
        assert tr.suffix_start(final, 0) == tr.suffix_start(mid, 0) == 0
    else:
        assert tr.suffix_start(final, 0) == final
        assert tr.suffix_start(mid, 0) == (first_image if adapter.family == "gemma3" else mid)
    # a row's final position depends on nothing after it (right padding): resumed rows stop there
    assert tr.end(0).tolist() == [f + 1 for f in clean.final_position.tolist()]
    assert len(tr.inputs) == adapter.n_layers + 1 and len(tr.record.keys) == adapter.n_layers
    # the traced layer inputs are the plain run's activations
    plain = iv.run(adapter, clean, capture=iv.all_sites(adapter.n_layers), logits=False).captured
    torch.testing.assert_close(tr.inputs[0], plain[iv.LM_INPUT])
    torch.testing.assert_close(tr.inputs[-1], plain[iv.resid_post(adapter.n_layers - 1)])


def test_resumed_rows_end_where_the_mask_lets_nothing_later_be_seen():
    """`Trace.end`: a row's final position + 1 when no position up to it attends to a later one (causal), the
    whole sequence when one does (a bidirectional block across the final position), per row and from the
    given layer on; a float mask (0 = attend) reads like a boolean one."""
    T, final = 6, torch.tensor([2, 4])
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    both = causal.clone()
    both[1, 3] = True                                    # row 0's position 1 sees position 3, after its final 2
    mask = torch.stack([both, causal])[:, None]          # (B, 1, T, T)
    prepared = models.base.Prepared({}, torch.zeros(2, 1, dtype=torch.long), final)
    inputs = [torch.zeros(2, T, 4)] * 3
    tr = iv.Trace(prepared, inputs, [{"attention_mask": torch.stack([causal] * 2)[:, None]}, {"attention_mask": mask}],
                  iv._Record(), {})
    assert tr.end(0).tolist() == [T, 5] and tr.end(1).tolist() == [T, 5]
    tr = iv.Trace(prepared, inputs, [{"attention_mask": mask}, {"attention_mask": None}], iv._Record(), {})
    assert tr.end(1).tolist() == [3, 5]                  # from layer 1 on: plain causal
    additive = torch.where(mask, 0.0, torch.finfo(torch.float32).min)
    tr = iv.Trace(prepared, inputs, [{"attention_mask": additive}], iv._Record(), {})
    assert tr.end(0).tolist() == [T, 5]


def test_non_resumable_family_falls_back_to_full_forwards(llava, monkeypatch, caplog):
    b = _pair_batch(llava, "criss_cross")
    args = (llava, b["clean_images"], b["clean_prompts"], b["cf_images"], b["cf_prompts"],
            _engine_variants(llava, b), iv.all_sites(llava.n_layers), b["words"])
    fast, _ = patching.sweep_group(*args)
    monkeypatch.setattr(llava, "resumable", False)
    monkeypatch.setattr(iv, "resume_sites", lambda *a, **k: pytest.fail("resumed a non-resumable family"))
    with caplog.at_level("WARNING", logger="dualmech.interventions"):
        slow, _ = patching.sweep_group(*args)
    assert "is not `resumable`: patching runs plain full forwards" in caplog.text
    np.testing.assert_allclose(slow, fast, rtol=1e-5, atol=1e-7)


# ================================================================== sweep tables and summaries
def test_sweep_table_flips():
    prs = pd.DataFrame(dict(pair=["p0", "p1"], setting="squares", design="last_token", direction=["left", "right"],
                            candidates=[json.dumps(list("abcde")), json.dumps(list("vwxyz"))]))
    probs = np.arange(2 * 1 * 2 * 5, dtype=float).reshape(2, 1, 2, 5) / 100
    top = np.array([[[0, 3]], [[-1, 2]]])
    df = patching.sweep_table("m", prs, probs, top, [("last_token", 0)], [iv.LM_INPUT, "resid_post.0"], flip_to=None)
    assert len(df) == 20 and list(df.columns) == patching.SWEEP_COLUMNS
    first = df[df["candidate"] == "t0"].set_index(["pair", "site_index"])
    assert first["top"].to_dict() == {("p0", 0): "t0", ("p0", 1): "t3", ("p1", 0): "other", ("p1", 1): "t2"}
    assert first["flipped"].to_dict() == {("p0", 0): False, ("p0", 1): True, ("p1", 0): True, ("p1", 1): True}
    assert first["site_label"].tolist() == ["Embed", "0", "Embed", "0"]
    row = df[(df["pair"] == "p1") & (df["site_index"] == 1) & (df["candidate"] == "t3")].iloc[0]
    assert row["word"] == "y" and row["probability"] == pytest.approx(probs[1, 0, 1, 3])
    cc = prs.assign(design="criss_cross", candidates=[json.dumps(list("abc"))] * 2)
    df = patching.sweep_table("m", cc, probs[..., :3], np.array([[[2, 1]], [[-1, 2]]]), [("strip", 0)],
                              [iv.LM_INPUT, "resid_post.0"], flip_to="c2")
    assert df[df["candidate"] == "c0"]["flipped"].tolist() == [True, False, False, True]


SITES = [(iv.LM_INPUT, "Embed"), ("resid_post.0", "0"), ("resid_post.1", "1")]


def _cc_sweep(spec: dict, n_null_draws: int = 1) -> pd.DataFrame:
    """spec: direction -> (n pairs, per-kind function (pair, site) -> flipped); c2 probability 0.9 when flipped,
    0.1 otherwise, plus a small per-pair offset on the real swaps (so signed ranks have neither ties nor zeros:
    scipy then takes the exact null instead of enumerating 2^n sign flips, 1.5 s a test)."""
    rows = []
    for direction, (n, kinds) in spec.items():
        for i in range(n):
            pair = f"{direction}-{i:03d}"
            for kind, flips in kinds.items():
                for draw in range(n_null_draws if kind.endswith("_null") else 1):
                    for k, (site, label) in enumerate(SITES):
                        f = bool(flips(i, k))
                        p2 = (0.9 if f else 0.1) + (0.0 if kind.endswith("_null") else 0.001 * (i + 1))
                        for cand, p in (("c0", 1 - p2 - 0.01), ("c1", 0.01), ("c2", p2)):
                            rows.append(dict(model="m", setting="squares", kind=kind, draw=draw, direction=direction,
                                             pair=pair, site=site, site_index=k, site_label=label, candidate=cand,
                                             word=cand, probability=p, top="c2" if f else "c0", flipped=f))
    return pd.DataFrame(rows, columns=patching.SWEEP_COLUMNS)


def test_flip_tests_known_answers():
    never = lambda i, k: False                 # noqa: E731
    kinds = {"strip": lambda i, k: k < 2, "strip_null": never, "object": never, "object_null": never}
    sweep = _cc_sweep({"left": (12, kinds), "right": (3, kinds)})
    st = patching.flip_tests(sweep, {"left": 12, "right": 3, "above": 0}, min_pairs=10)
    assert set(st["direction"]) == {"left", "right", "above", "all"}
    assert len(st) == 2 * 4 * len(SITES)
    s = st[(st["kind"] == "strip") & (st["direction"] == "left")].set_index("site_label")
    assert s["testable"].all() and (s["n_pairs"] == 12).all()
    assert s.loc["Embed", "flip_rate"] == 1.0 and s.loc["Embed", "null_flip_rate"] == 0.0
    assert s.loc["1", "flip_rate"] == 0.0
    p = 0.5 ** 12
    assert s.loc["Embed", "p_flip"] == pytest.approx(p) and s.loc["1", "p_flip"] == 1.0
    assert s.loc["Embed", "p_flip_holm"] == pytest.approx(3 * p) and s.loc["0", "p_flip_holm"] == pytest.approx(3 * p)
    assert s.loc["Embed", "p_prob"] == pytest.approx(p)               # exact signed-rank, all 12 positive
    assert s["significant"].tolist() == [True, True, False]
    lo, hi = s.loc["Embed", ["flip_ci_low", "flip_ci_high"]]
    assert 0.7 < lo < 0.8 and hi == pytest.approx(1.0)                 # Wilson interval of 12/12
    assert s.loc["Embed", "p_c2"] == pytest.approx(np.mean([0.9 + 0.001 * (i + 1) for i in range(12)]))
    o = st[(st["kind"] == "object") & (st["direction"] == "left")]
    assert not o["significant"].any() and (o["p_flip"] == 1.0).all()
    # too few pairs: rates reported, no test
    r = st[(st["kind"] == "strip") & (st["direction"] == "right")]
    assert not r["testable"].any() and not r["significant"].any() and r["p_flip"].isna().all()
    assert r["flip_rate"].tolist() == [1.0, 1.0, 0.0]
    a = st[(st["kind"] == "strip") & (st["direction"] == "above")]
    assert not a["testable"].any() and a["flip_rate"].isna().all() and not a["significant"].any()
    pooled = st[(st["kind"] == "strip") & (st["direction"] == "all")].set_index("site_label")
    assert (pooled["n_pairs"] == 15).all() and pooled["testable"].all()
    assert pooled.loc["Embed", "p_flip"] == pytest.approx(0.5 ** 15)
    assert pooled["significant"].tolist() == [True, True, False]


def test_flip_tests_against_a_null_that_flips_too():
    """A swap that flips no more often than its random-region null is not significant; null draws are averaged
    within a pair before the sign test."""
    kinds = {"strip": lambda i, k: True, "strip_null": lambda i, k: True,
             "object": lambda i, k: i % 2 == 0, "object_null": lambda i, k: False}
    sweep = _cc_sweep({"left": (20, kinds)})
    st = patching.flip_tests(sweep, {"left": 20}, min_pairs=5)
    s = st[(st["kind"] == "strip") & (st["direction"] == "left")]
    assert (s["null_flip_rate"] == 1.0).all() and (s["p_flip"] == 1.0).all() and not s["significant"].any()
    o = st[(st["kind"] == "object") & (st["direction"] == "left")]
    assert (o["flip_rate"] == 0.5).all()
    assert o["p_flip"].iloc[0] == pytest.approx(binomtest(10, 10, 0.5, alternative="greater").pvalue)
    assert o["significant"].all()
    # two null draws, one flipping: the per-pair null rate is 0.5, and the test counts pairs, not draws
    sweep2 = _cc_sweep({"left": (20, kinds)}, n_null_draws=2)
    sweep2.loc[(sweep2["kind"] == "strip_null") & (sweep2["draw"] == 1) & (sweep2["candidate"] == "c2"),
               "flipped"] = False
    s2 = patching.flip_tests(sweep2, {"left": 20}, min_pairs=5)
    s2 = s2[(s2["kind"] == "strip") & (s2["direction"] == "left")]
    assert (s2["null_flip_rate"] == 0.5).all()
    assert s2["p_flip"].iloc[0] == pytest.approx(0.5 ** 20)


def test_site_ranges():
    labels = ["Embed", "0", "1", "2", "3", "4"]
    assert patching.site_ranges(labels, [0, 1, 3, 5]) == "Embed\u20130, 2, 4"
    assert patching.site_ranges(labels, [4, 2, 3, 3]) == "1\u20133"
    assert patching.site_ranges(labels, range(6)) == "Embed\u20134"
    assert patching.site_ranges(labels, [2]) == "1"
    assert patching.site_ranges(labels, []) == "none"


def _lt_sweep(best: list[str], n_pairs: int = 4) -> pd.DataFrame:
    """Last-token sweep whose top candidate per site is best[k] on every pair (probability 0.6, others 0.1)."""
    rows = []
    labels = ["Embed"] + [str(i) for i in range(len(best) - 1)]
    for direction in ("left", "above"):
        for i in range(n_pairs):
            for k, b in enumerate(best):
                for cand in pairs.ROLES["last_token"]:
                    p = 0.6 if cand == b else 0.1
                    p += 0.01 * i if cand == b else 0.0
                    rows.append(dict(model="m", setting="squares", kind="last_token", draw=0, direction=direction,
                                     pair=f"{direction}-{i}", site=iv.LM_INPUT if k == 0 else f"resid_post.{k - 1}",
                                     site_index=k, site_label=labels[k], candidate=cand, word=cand, probability=p,
                                     top=b if i % 2 == 0 else "other", flipped=b != "t0"))
    return pd.DataFrame(rows, columns=patching.SWEEP_COLUMNS)


def test_curves_and_transfer_ranges():
    sweep = _lt_sweep(["t0", "t0", "t2", "t3", "t3"])
    cv = patching.curves(sweep, seed=0, n_resamples=200)
    assert set(cv["direction"]) == {"left", "above", "all"}
    assert len(cv) == 3 * 5 * 5
    row = cv[(cv["direction"] == "all") & (cv["site_index"] == 2) & (cv["candidate"] == "t2")].iloc[0]
    assert row["n_pairs"] == 8 and row["word_role"] == "clean item at cf ordinal"
    assert row["mean"] == pytest.approx(0.6 + 0.01 * 1.5)
    assert row["ci_low"] <= row["mean"] <= row["ci_high"] and row["ci_low"] < row["ci_high"]
    assert row["top_fraction"] == 0.5
    flat = cv[(cv["site_index"] == 2) & (cv["candidate"] == "t1")]
    assert np.allclose(flat["mean"], 0.1) and np.allclose(flat[["ci_low", "ci_high"]].to_numpy(float), 0.1)
    pd.testing.assert_frame_equal(cv, patching.curves(sweep, seed=0, n_resamples=200))
    tr = patching.transfer_ranges(cv)
    assert tr["n_pairs"] == 8
    assert (tr["clean_range"], tr["ordinal_range"], tr["attribute_range"]) == ("Embed\u20130", "1", "2\u20133")
    assert tr["ordinal_sites"] == [2] and tr["attribute_sites"] == [3, 4] and tr["clean_sites"] == [0, 1]
    assert patching.transfer_ranges(cv, "left")["n_pairs"] == 4
    none = patching.transfer_ranges(cv, "below")
    assert none["n_pairs"] == 0 and none["ordinal_range"] == "none"


def test_curves_average_null_draws_within_a_pair():
    kinds = {"object_null": lambda i, k: False}
    sweep = _cc_sweep({"left": (2, kinds)}, n_null_draws=2)
    c2 = (sweep["candidate"] == "c2") & (sweep["site_index"] == 0)
    sweep.loc[c2 & (sweep["pair"] == "left-000") & (sweep["draw"] == 0), "probability"] = 0.2
    sweep.loc[c2 & (sweep["pair"] == "left-000") & (sweep["draw"] == 1), "probability"] = 0.4
    sweep.loc[c2 & (sweep["pair"] == "left-001"), "probability"] = 0.6
    sweep = sweep[~(c2 & (sweep["pair"] == "left-001") & (sweep["draw"] == 1))]   # one draw only for this pair
    cv = patching.curves(sweep, seed=0, n_resamples=100)
    r = cv[(cv["direction"] == "left") & (cv["site_index"] == 0) & (cv["candidate"] == "c2")].iloc[0]
    assert r["n_pairs"] == 2 and r["mean"] == pytest.approx((0.3 + 0.6) / 2)


def test_pair_counts_and_summary_table():
    prs = pd.DataFrame(dict(direction=["left", "left", "right", "above"], golden=[True, False, True, True]))
    counts = patching.pair_counts(prs, DIRS)
    assert counts == {"left": 1, "right": 1, "above": 1, "below": 0}
    never = lambda i, k: False                 # noqa: E731
    kinds = {"strip": lambda i, k: k == 0, "strip_null": never, "object": never, "object_null": never}
    sweep = _cc_sweep({"left": (12, kinds)})
    st = patching.flip_tests(sweep, {"left": 12, "right": 0}, min_pairs=10)
    lt = patching.curves(_lt_sweep(["t0", "t2", "t3"], n_pairs=6), seed=0, n_resamples=100)
    cells = [dict(model="m", setting="squares", counts_criss_cross={"left": 12, "right": 0},
                  counts_last_token={"left": 6, "right": 6}, stats=st, curves=lt)]
    long, display = patching.summary_table(cells, ["left", "right"], min_pairs=10)
    long = long.set_index("kind")
    assert long.loc["strip", "significant_sites"] == "Embed"
    assert long.loc["strip", "significant_left"] == "Embed"
    assert long.loc["strip", "significant_right"] == "not testable"
    assert long.loc["object", "significant_sites"] == "none"
    assert long.loc["strip", "max_flip_rate"] == 1.0 and long.loc["strip", "max_flip_site"] == "Embed"
    assert long.loc["last_token", "ordinal_range"] == "0" and long.loc["last_token", "attribute_range"] == "1"
    assert list(display["Pairs"]) == ["12 (6/6)", "12 (12/0)", "12 (12/0)"]
    few, _ = patching.summary_table([dict(cells[0], counts_last_token={"left": 3, "right": 2})], ["left", "right"],
                                    min_pairs=10)
    assert few.set_index("kind").loc["last_token", "status"] == "not testable (n=5 < 10)"


def test_summary_table_cells_narrow_kinds_and_directions():
    """What'sUp cells run left/right only (the other directions read "not run", not "not testable"); App C.8
    background cells have criss-cross swaps only (no last-token row, no curves needed)."""
    never = lambda i, k: False                 # noqa: E731
    kinds = {"strip": lambda i, k: k == 0, "strip_null": never, "object": never, "object_null": never}
    st = patching.flip_tests(_cc_sweep({"left": (12, kinds)}), {"left": 12, "right": 0}, min_pairs=10)
    lt = patching.curves(_lt_sweep(["t0", "t2", "t3"], n_pairs=6), seed=0, n_resamples=100)
    whatsup = dict(model="m", setting="whatsup", directions=["left", "right"], kinds=("last_token",) + patching.KINDS,
                   counts_criss_cross={"left": 12, "right": 0}, counts_last_token={"left": 6, "right": 6}, stats=st,
                   curves=lt)
    background = dict(model="m", setting="squares_bg", kinds=patching.KINDS, stats=st,
                      counts_criss_cross={"left": 12, "right": 0, "above": 0, "below": 0})
    long, display = patching.summary_table([whatsup, background], DIRS, min_pairs=10)
    assert list(zip(long["setting"], long["kind"])) == [("whatsup", "last_token"), ("whatsup", "object"),
                                                        ("whatsup", "strip"), ("squares_bg", "object"),
                                                        ("squares_bg", "strip")]
    w = long[long["setting"] == "whatsup"].set_index("kind")
    assert w.loc["strip", "significant_left"] == "Embed" and w.loc["strip", "significant_right"] == "not testable"
    assert w.loc["strip", "significant_above"] == "not run" and w.loc["strip", "significant_below"] == "not run"
    assert w.loc["last_token", "ordinal_range"] == "0"
    b = long[long["setting"] == "squares_bg"].set_index("kind")
    assert b.loc["strip", "significant_sites"] == "Embed" and b.loc["strip", "significant_above"] == "not testable"
    assert list(display["Pairs"])[:2] == ["12 (6/6/0/0)", "12 (12/0/0/0)"]


def test_sweep_outputs_are_read_from_the_rules_output_names():
    """Both rules that run criss-cross sweeps (patching_sweeps, ablation) name their files the same way; the
    last-token sweep has no stats or regions."""
    from snakemake.iocontainers import OutputFiles
    from dualmech import sweeps
    out = OutputFiles(fromdict=dict(criss_cross="a", criss_cross_curves="b", criss_cross_stats="c",
                                    criss_cross_regions="d", last_token="e", last_token_curves="f",
                                    pairs_last_token="g"))
    assert sweeps.outputs_of(out, "criss_cross") == dict(sweep="a", curves="b", stats="c", regions="d")
    assert sweeps.outputs_of(out, "last_token") == dict(sweep="e", curves="f")


def test_resumed_layers_get_non_batch_arguments_unchanged():
    """LLaVA-OneVision hands `logits_to_keep` (a length-2 tensor) to every decoder layer: indexing it by row
    crashed the engine as soon as a group held more than two rows (found by the 28-layer benchmark, 16 pairs)."""
    tr = iv.Trace(prepared=None, inputs=[torch.zeros(3, 5, 4)], record=None, captured={},
                  kwargs=[{"logits_to_keep": torch.tensor([0, 1]), "per_row": torch.arange(3), "flag": True}])
    kw = tr.layer_kwargs(0, torch.tensor([2, 2, 0]), 0)
    assert kw["logits_to_keep"].tolist() == [0, 1] and kw["per_row"].tolist() == [2, 2, 0] and kw["flag"] is True
