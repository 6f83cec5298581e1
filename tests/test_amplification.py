"""Table 2 machinery (paper §5.7): the amplification intervention, its random null, alpha selection, the summary
counts, and the naturalistic data loaders (What'sUp §3.5, COCO-spatial §3.6 / §4.5) on fixtures built here."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from dualmech import amplification as amp
from dualmech import amplification_tables
from dualmech import naturalistic as nat
from dualmech.stimuli import Geometry

G = Geometry(8, 8, 1, 1)          # 8 x 8 tokens, 64 px canvas


# ================================================================== projection / amplify
def _w(d=6, c=2, seed=0):
    return torch.randn(d, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _manual_projection(values, W):
    out = torch.zeros_like(values)
    for k in range(W.shape[1]):
        w = W[:, k]
        out += (values @ w / (w @ w + 1e-8))[..., None] * w
    return out


def test_projection_matches_the_formula():
    W = _w()
    e = torch.randn(5, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(amp.projection(e, W), _manual_projection(e, W))
    # one column: the projection of w onto itself is w, and anything orthogonal to it projects to 0
    w = W[:, :1]
    torch.testing.assert_close(amp.projection(w.T, w), w.T)
    orth = torch.tensor([[w[1, 0], -w[0, 0], 0, 0, 0, 0]], dtype=torch.float64)
    assert amp.projection(orth, w).abs().max() < 1e-12


def test_projection_is_invariant_to_rescaling_a_column():
    W = _w()
    e = torch.randn(7, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    scaled = W.clone()
    scaled[:, 1] *= 37.5
    torch.testing.assert_close(amp.projection(e, scaled), amp.projection(e, W), rtol=1e-6, atol=1e-9)
    scaled[:, 0] *= -0.2
    torch.testing.assert_close(amp.projection(e, scaled), amp.projection(e, W), rtol=1e-6, atol=1e-9)
    # the sign and size of the amplification do not depend on how the probe was scaled
    torch.testing.assert_close(amp.amplify(e, scaled, 3.0), amp.amplify(e, W, 3.0), rtol=1e-6, atol=1e-9)


def test_zero_columns_contribute_nothing():
    W = _w(c=3)
    e = torch.randn(4, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    padded = W.clone()
    padded[:, 2] = 0
    torch.testing.assert_close(amp.projection(e, padded), amp.projection(e, W[:, :2]))
    assert torch.equal(amp.amplify(e, torch.zeros(6, 2, dtype=torch.float64), 5.0), e)


def test_amplify_alpha_zero_is_exact_identity():
    W = _w().float()
    e = torch.randn(2, 9, 6, generator=torch.Generator().manual_seed(4))
    assert torch.equal(amp.amplify(e[0], W, 0), e[0])
    assert torch.equal(amp.amplify(e[0], W, 0.0, mask=torch.ones(9, dtype=torch.bool)), e[0])
    batched = amp.amplify(e, torch.stack([W, 3 * W]), torch.tensor([0.0, 2.0]))
    assert torch.equal(batched[0], e[0])                       # alpha 0 row untouched, bit for bit
    assert not torch.allclose(batched[1], e[1])


def test_amplify_value_and_batching():
    W = _w().float()
    e = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(5))
    alpha = 2.5
    torch.testing.assert_close(amp.amplify(e[0], W, alpha), e[0] + alpha * _manual_projection(e[0].double(), W.double()).float())
    Ws = torch.stack([W, _w(seed=9).float(), W * 4])
    alphas = torch.tensor([1.0, 3.0, 0.5])
    out = amp.amplify(e, Ws, alphas)
    for b in range(3):
        torch.testing.assert_close(out[b], amp.amplify(e[b], Ws[b], float(alphas[b])))
    # e = w: amplifying by alpha scales it by (1 + alpha)
    w = W[:, :1]
    torch.testing.assert_close(amp.amplify(w.T, w, 3.0), 4 * w.T)


def test_amplify_mask_restricts_to_tokens():
    W = _w().float()
    e = torch.randn(2, 8, 6, generator=torch.Generator().manual_seed(6))
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, [1, 4]] = True
    mask[1, 7] = True
    out = amp.amplify(e, torch.stack([W, W]), torch.tensor([2.0, 5.0]), mask)
    full = amp.amplify(e, torch.stack([W, W]), torch.tensor([2.0, 5.0]))
    assert torch.equal(out[~mask], e[~mask])                   # untouched outside the mask, exactly
    torch.testing.assert_close(out[mask], full[mask])
    assert (out[mask] - e[mask]).abs().max() > 0.1


# ================================================================== random directions and probes
def test_random_directions_are_seeded():
    ref = _w(d=16, c=3).float()
    dirs = amp.random_directions(ref, 4, 11, "coco", "horizontal")
    assert len(dirs) == 4
    assert all(M.shape == ref.shape and M.dtype == torch.float32 for M in dirs)
    assert not torch.allclose(dirs[0], dirs[1])
    again = amp.random_directions(ref, 4, 11, "coco", "horizontal")
    assert all(torch.equal(a, b) for a, b in zip(dirs, again))
    assert not torch.equal(amp.random_directions(ref, 1, 12, "coco", "horizontal")[0], dirs[0])
    assert not torch.equal(amp.random_directions(ref, 1, 11, "coco", "vertical")[0], dirs[0])
    # the k-th direction does not depend on how many are drawn
    assert torch.equal(amp.random_directions(ref, 2, 11, "coco", "horizontal")[1], dirs[1])


def test_a_random_direction_moves_every_token_exactly_as_far_as_the_probe():
    """The null is matched per token: |step| under a random direction = |step| under the probe, token by token,
    at every alpha; only the direction differs. Rescaling the random columns to the probe's column norms (the
    old null) matches nothing, since the projection form is invariant to column norms."""
    g = torch.Generator().manual_seed(3)
    e = torch.randn(2, 9, 16, generator=g)
    W = _w(d=16, c=3).float() * torch.tensor([1.0, 10.0, 0.1])
    R = amp.random_directions(W, 1, 11, "tb", "horizontal")[0]
    probe_step = (amp.amplify(e, W, 3.0) - e).norm(dim=-1)                      # (2, 9) per token
    rand = amp.amplify(e, R, 3.0, match=W) - e
    torch.testing.assert_close(rand.norm(dim=-1), probe_step)
    assert probe_step.std() > 0.1 * probe_step.mean()                           # sizes do vary across tokens
    cos = torch.nn.functional.cosine_similarity(rand, amp.amplify(e, W, 3.0) - e, dim=-1)
    assert cos.abs().max() < 0.9                                                # a different direction
    old = R / R.norm(dim=0) * W.norm(dim=0)
    old_step = (amp.amplify(e, old, 3.0) - e).norm(dim=-1)
    assert ((old_step - probe_step).abs() / probe_step).median() > 0.2
    # a probe that is all zeros (no probe on this axis) makes the matched random step zero too
    assert torch.equal(amp.amplify(e, R, 3.0, match=torch.zeros_like(W)), e)
    # without `match` the step is the plain projection
    torch.testing.assert_close(amp.perturbation(e, R), amp.projection(e, R))


def test_train_probe_is_seeded_and_separates():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 8, generator=g)
    y = torch.arange(40) % 2
    X[:, 0] += 6 * (2 * y - 1)
    p = amp.train_probe(X, y, 2, 0, "m", "t", "horizontal", epochs=100, lr=0.05)
    q = amp.train_probe(X, y, 2, 0, "m", "t", "horizontal", epochs=100, lr=0.05)
    assert torch.equal(p.W, q.W) and torch.equal(p.b, q.b)
    assert p.W.shape == (8, 2) and p.n_train == 40 and p.classes == 2
    assert p.train_accuracy == 1.0 and torch.equal(p.predict(X), y)
    r = amp.train_probe(X, y, 2, 1, "m", "t", "horizontal", epochs=100, lr=0.05)
    assert not torch.equal(p.W, r.W)


def test_object_features():
    visual = torch.arange(4 * 3, dtype=torch.float32).reshape(4, 3)
    f = amp.object_features(visual, [[0, 2], [], [3]])
    torch.testing.assert_close(f[0], visual[[0, 2]].mean(0))
    assert torch.isnan(f[1]).all()
    torch.testing.assert_close(f[2], visual[3])


def test_split_items_is_seeded():
    items = [f"i{k}" for k in range(20)]
    s = amp.split_items(items, 0.25, 3, "coco")
    assert sorted(s) == sorted(items) and sum(v == "dev" for v in s.values()) == 5
    assert s == amp.split_items(items, 0.25, 3, "coco")
    assert s != amp.split_items(items, 0.25, 4, "coco")


# ================================================================== alpha selection and summaries
def _outcomes(spec: dict) -> pd.DataFrame:
    """spec: direction -> alpha -> (list of baseline_correct, list of correct) over the same items."""
    rows = []
    for d, by_alpha in spec.items():
        for alpha, (base, after) in by_alpha.items():
            rows += [dict(item=f"i{k}", direction=d, alpha=float(alpha), baseline_correct=b, correct=c)
                     for k, (b, c) in enumerate(zip(base, after))]
    return pd.DataFrame(rows)


def test_select_alpha():
    base = [False, False, False, True, True, True]
    spec = {
        # alpha 1: 1 fix, 0 breaks (net 1); alpha 2: 3 fixes, 3 breaks (net 0); alpha 4: 2 fixes, 0 breaks (net 2)
        "probe": {0: (base, base), 1: (base, [True, False, False, True, True, True]),
                  2: (base, [True, True, True, False, False, False]), 4: (base, [True, True, False, True, True, True])},
        # a tie on net (1 at alphas 3 and 5): the smaller alpha wins
        "random_00": {3: (base, [True, False, False, True, True, True]),
                      5: (base, [True, True, False, False, True, True])},
    }
    df = _outcomes(spec)
    assert amp.select_alpha(df, "net") == {"probe": 4.0, "random_00": 3.0}
    assert amp.select_alpha(df, "fixes") == {"probe": 2.0, "random_00": 5.0}
    # alpha = 0 is never selected, even if it is the best
    only_zero_good = _outcomes({"probe": {0: (base, base), 1: (base, [False] * 6)}})
    assert amp.select_alpha(only_zero_good) == {"probe": 1.0}


def _summary_inputs():
    baseline = pd.DataFrame(dict(
        item=[f"i{k}" for k in range(10)], split=["eval"] * 9 + ["dev"], axis="horizontal", n_queries=2,
        correct=[True] * 4 + [False] * 4 + [False, True], dropped=[False] * 8 + [True, False], probe_ok=True))
    rows = []

    def add(direction, kind, alpha, selected, after, split="eval", items=None):
        items = items or [f"i{k}" for k in range(9)]
        base = baseline.set_index("item")["correct"]
        rows.extend(dict(item=i, split=split, direction=direction, kind=kind, alpha=alpha, selected=selected,
                         baseline_correct=bool(base[i]), correct=c) for i, c in zip(items, after))

    #            i0     i1     i2     i3     i4     i5     i6     i7     i8 (dropped)
    add("probe", "probe", 1.0, True, [False, True, True, True, True, True, True, False, True])   # 3 fixes, 1 break
    add("probe", "probe", 2.0, False, [True, False, False, False], items=["i4", "i5", "i6", "i7"][::-1])
    add("random_00", "random", 1.0, True, [True, True, True, True, True, False, False, False, False])   # 1 fix
    add("random_01", "random", 2.0, True, [False, False, True, True, False, False, False, False, False])  # 2 breaks
    add("probe", "probe", 1.0, True, [True], split="dev", items=["i9"])
    outcomes = pd.DataFrame(rows)
    meta = dict(model="m", testbed="coco", selected_alpha={"probe": 1.0, "random_00": 1.0, "random_01": 2.0},
                probes={"horizontal": dict(available=True),
                        "vertical": dict(available=False, note="no probe: 1 correct development items on this axis")})
    return baseline, outcomes, meta


def test_summarise_counts_fixes_breaks_and_net():
    baseline, outcomes, meta = _summary_inputs()
    t = amp.summarise(baseline, outcomes, meta).set_index("row")
    assert list(t.index) == ["none", "random", "probe", "probe_star"]
    assert (t["n"] == 8).all() and (t["n_fail"] == 4).all()               # eval split, dropped item left out
    none = t.loc["none"]
    assert (none["correct"], none["accuracy"], none["fixes"], none["breaks"]) == (4, 0.5, 0, 0)
    p = t.loc["probe"]
    assert (p["fixes"], p["breaks"], p["net"], p["correct"]) == (3, 1, 2, 6)
    assert p["accuracy"] == 0.75 and p["fix_rate"] == 0.75 and p["alpha"] == 1.0
    assert p["fix_low"] < 0.75 < p["fix_high"]
    assert p["p_null"] == pytest.approx(1 / 3)                            # no random direction fixes >= 3
    assert p["p_vs_none"] == pytest.approx(0.625)                         # exact McNemar, 3 vs 1 discordant
    r = t.loc["random"]
    assert r["fixes"] == 0.5 and r["breaks"] == 1.0 and r["net"] == -0.5 and r["directions"] == 2
    assert r["accuracy"] == pytest.approx((5 / 8 + 2 / 8) / 2) and r["correct"] == 3.5
    assert r["alpha"] == 1.5                                              # median of the chosen alphas
    assert r["fix_rate"] == pytest.approx(0.125)
    star = t.loc["probe_star"]                                            # i7 is fixed at alpha 2 only
    assert (star["fixes"], star["correct"], star["accuracy"]) == (4, 8, 1.0)
    assert "vertical: no probe" in t.loc["none", "note"]
    assert t.loc["none", "label"] == "None" and t.loc["probe_star", "label"] == "Probe* (oracle)"
    shown = amp.table2_display(t.reset_index())
    assert list(shown["Intervention"]) == [amp.LABELS[k] for k in t.index]
    assert shown.iloc[2]["% failures fixed"].startswith("75.0 [") and shown.iloc[2]["Breaks"] == "1"


def test_only_ordering_failures_are_failures_to_fix():
    """i5 fails by naming a colour absent from the scene: not an ordering failure, so the probe 'fixing' it does
    not count. Old rule (every failure): 4 failures, 3 fixes, fix rate 0.75; new: 3 ordering failures, 2 fixes."""
    baseline, outcomes, meta = _summary_inputs()
    baseline["ordering_failure"] = ~baseline["correct"] & (baseline["item"] != "i5")
    t = amp.summarise(baseline, outcomes, meta).set_index("row")
    assert (t["n_fail"] == 3).all()
    p = t.loc["probe"]
    assert (p["fixes"], p["breaks"], p["correct"]) == (2, 1, 6)             # accuracy still counts every item
    assert p["fix_rate"] == pytest.approx(2 / 3)
    assert t.loc["probe_star", "fixes"] == 3                                # i4, i6, i7 (i7 at alpha 2)
    assert "1 failure(s) name no entity of the scene" in t.loc["none", "note"]
    assert amp._in_scene("red", json.dumps(["Red", "blue", "green"]))
    assert not amp._in_scene("pink", json.dumps(["red", "blue", "green"]))
    assert amp._in_scene("pink", None)                                       # no scene listed: every failure


def test_amplification_curves():
    _, outcomes, _ = _summary_inputs()
    outcomes = outcomes[outcomes["item"] != "i8"]                        # dropped items are never swept
    dev = outcomes.assign(split="dev")
    c = amp.curves(dev, "dev").set_index(["direction", "alpha"])
    assert c.loc[("probe", 0.0), "fixes"] == 0 and c.loc[("probe", 0.0), "breaks"] == 0
    row = c.loc[("random_01", 2.0)]
    assert (row["fixes"], row["breaks"], row["n_fail"], row["n_correct"]) == (0, 2, 4, 4)
    assert row["break_rate"] == 0.5 and row["fix_rate"] == 0.0
    ev = amp.curves(outcomes, "eval").set_index(["direction", "alpha"])   # failures only on the eval split
    assert (ev["breaks"] == 0).all() and ev.loc[("probe", 1.0), "fixes"] == 3


# ================================================================== What'sUp fixtures
WHATSUP_FILES = {
    "book_left_of_armchair.jpeg": (200, 30, 30), "book_right_of_armchair.jpeg": (30, 200, 30),
    "mug_left_of_armchair.jpeg": (30, 30, 200), "mug_right_of_armchair.jpeg": (200, 200, 30),
    "bowl_left_of_chair.jpeg": (200, 30, 200), "bowl_right_of_chair.jpeg": (30, 200, 200),
    "mug_left_of_chair.jpeg": (120, 60, 20), "mug_right_of_chair.jpeg": (20, 60, 120),
    "pillow_left_of_chair.jpeg": (250, 250, 250), "pillow_right_of_chair.jpeg": (10, 10, 10),
    "cup_left_of_chair.jpeg": (90, 90, 90),                                      # no right photo: dropped
    "lamp_left_of_table.jpeg": (60, 120, 60), "lamp_right_of_table.jpeg": (60, 60, 120),   # one object only
    "mug_left_of_sofa.jpeg": (1, 2, 3),                                          # not a What'sUp reference
}


def _jpeg(path, colour, size=(40, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="JPEG", quality=95)


@pytest.fixture
def whatsup(tmp_path):
    root = tmp_path / "whatsup"
    for name, colour in WHATSUP_FILES.items():
        _jpeg(root / "controlled_images" / name, colour)
    (root / "controlled_images" / "notes.txt").write_text("not an image")
    return root


def test_whatsup_index(whatsup):
    idx = nat.whatsup_index(whatsup)
    d = whatsup / "controlled_images"
    assert list(idx) == ["armchair", "chair"]
    assert list(idx["chair"]) == ["bowl", "mug", "pillow"] and list(idx["armchair"]) == ["book", "mug"]
    assert idx["chair"]["mug"] == {"left": d / "mug_left_of_chair.jpeg", "right": d / "mug_right_of_chair.jpeg"}
    # erratum: the pillow/chair photos are swapped
    assert idx["chair"]["pillow"] == {"left": d / "pillow_right_of_chair.jpeg", "right": d / "pillow_left_of_chair.jpeg"}
    assert nat.check_whatsup_dir(whatsup) == {"armchair": 2, "chair": 3}
    # the photos may also sit directly in the directory
    assert nat.whatsup_index(d) == idx


def test_box_cells():
    assert nat.box_cells((0.0, 0.5, 0.0, 0.5), 4) == [0, 1, 4, 5]
    assert nat.box_cells((0.5, 1.0, 0.7, 1.0), 4) == [11, 15]
    assert nat.box_cells((0.4, 0.45, 0.4, 0.45), 4) == []
    # chair boxes in 1/64 units: left object rows 48-60, columns 12-24 -> centres of rows 6, 7 and columns 1, 2
    assert nat.whatsup_slot_cells("chair", 8)[0] == [49, 50, 57, 58]
    left, ref, right = nat.whatsup_slot_cells("table", 8)
    assert ref == [r * 8 + c for r in range(2, 8) for c in (2, 3, 4, 5)]     # rows 20-60, columns 16-48 of 64
    assert not set(left) & set(ref) and not set(right) & set(ref)


def _colour(img, cols):
    return np.asarray(img.convert("RGB"), dtype=float)[:, cols].reshape(-1, 3).mean(0)


def test_whatsup_items(whatsup, tmp_path):
    out = tmp_path / "out"
    items = nat.whatsup_items(whatsup, G, out)
    assert len(items) == 2 * (2 + 6)                   # armchair: 2 ordered pairs, chair: 3 * 2
    assert items["item"].is_unique
    first = items.iloc[0]
    assert (first["reference"], first["e0"], first["e1"], first["e2"]) == ("armchair", "book", "armchair", "mug")
    assert (first["direction"], first["answer"], first["orientation"]) == ("left", "book", "horizontal")
    second = items.iloc[1]
    assert (second["direction"], second["answer"], second["image"]) == ("right", "mug", first["image"])
    assert first["prompt"] == "The object on the floor to the left of the armchair is a(n) "
    assert second["prompt"] == "The object on the floor to the right of the armchair is a(n) "
    assert json.loads(first["cells"]) == nat.whatsup_slot_cells("armchair", G.grid)
    for r in items.itertuples():
        assert r.answer == (r.e0 if r.direction == "left" else r.e2)
        assert {r.e0, r.e2} <= set(nat.whatsup_index(whatsup)[r.reference]) and r.e0 != r.e2
    # the composite: left half of the object-on-the-left photo, right half of the object-on-the-right photo
    row = items[(items["e0"] == "pillow") & (items["e2"] == "mug")].iloc[0]
    img = Image.open(out / row["image"])
    assert img.size == (G.canvas_px, G.canvas_px)
    np.testing.assert_allclose(_colour(img, slice(0, 32)), WHATSUP_FILES["pillow_right_of_chair.jpeg"], atol=4)
    np.testing.assert_allclose(_colour(img, slice(32, 64)), WHATSUP_FILES["mug_right_of_chair.jpeg"], atol=4)
    # filters: one-token words only, and a seeded subset that keeps both directions of a composite
    known = nat.whatsup_items(whatsup, G, tmp_path / "k", known=lambda w: w != "bowl")
    assert len(known) == 2 * (2 + 2) and "bowl" not in set(known["e0"]) | set(known["e2"])
    sub = nat.whatsup_items(whatsup, G, tmp_path / "s", max_items=6, seed=1)
    assert len(sub) == 6 and sub.groupby("image")["direction"].apply(sorted).tolist() == [["left", "right"]] * 3
    again = nat.whatsup_items(whatsup, G, tmp_path / "s2", max_items=6, seed=1)
    assert sub[["e0", "e1", "e2"]].equals(again[["e0", "e1", "e2"]])
    with pytest.raises(nat.DataError, match="no What'sUp composite left"):
        nat.whatsup_items(whatsup, G, tmp_path / "none", known=lambda w: False)


def test_whatsup_errors(tmp_path, whatsup):
    missing = tmp_path / "nowhere"
    _expect_error(lambda: nat.whatsup_index(missing), missing, "is not a directory")
    empty = tmp_path / "empty"
    (empty / "controlled_images").mkdir(parents=True)
    _jpeg(empty / "controlled_images" / "mug_left_of_chair.jpeg", (1, 1, 1))
    _expect_error(lambda: nat.check_whatsup_dir(empty), empty / "controlled_images", "no usable What'sUp")
    broken = whatsup / "controlled_images" / "bowl_right_of_chair.jpeg"
    broken.write_bytes(b"this is not a jpeg")
    _expect_error(lambda: nat.check_whatsup_dir(whatsup), broken, ": not a readable image")
    _expect_error(lambda: nat.whatsup_items(whatsup, G, tmp_path / "o"), broken, ": not a readable image")


# ================================================================== COCO fixtures
QUESTIONS = [
    [1, "A photo of a dog to the left of a cat", "A photo of a dog to the right of a cat"],
    [2, "A photo of a cup above a table", "A photo of a cup below a table"],
    [1, "A photo of the cat to the right of the dog.", "A photo of the cat to the left of the dog."],
    [1, "Two dogs playing in a park", "Two cats playing in a park"],                  # does not parse: skipped
    [2, "A photo of a table above a cup", "A photo of a table below a cup"],          # contradicts the boxes
    [2, "A photo of a cup below an umbrella", "A photo of a cup above an umbrella"],  # no umbrella box
]
INSTANCES = {
    "images": [{"id": 1, "width": 200, "height": 100, "file_name": "000000000001.jpg"},
               {"id": 2, "width": 100, "height": 200, "file_name": "000000000002.jpg"},
               {"id": 3, "width": 50, "height": 50, "file_name": "000000000003.jpg"}],
    "annotations": [{"id": 10, "image_id": 1, "category_id": 2, "bbox": [0, 0, 5, 5]},       # a small cat
                    {"id": 11, "image_id": 1, "category_id": 1, "bbox": [10, 20, 50, 40]},    # dog
                    {"id": 12, "image_id": 1, "category_id": 2, "bbox": [120, 30, 60, 50]},   # the largest cat
                    {"id": 16, "image_id": 1, "category_id": 2, "bbox": [150, 0, 20, 20]},    # another small cat
                    {"id": 13, "image_id": 2, "category_id": 3, "bbox": [30, 10, 40, 40]},    # cup
                    {"id": 14, "image_id": 2, "category_id": 4, "bbox": [0, 120, 100, 80]},   # table
                    {"id": 15, "image_id": 3, "category_id": 1, "bbox": [0, 0, 10, 10]}],
    "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "cup"},
                   {"id": 4, "name": "table"}],
}
DOG = [16, 17, 24, 25, 32, 33]                      # x 0.05-0.30, y 0.2-0.6 on an 8 x 8 grid
CAT = [r * 8 + c for r in (2, 3, 4, 5) for c in (5, 6)]
CUP = [r * 8 + c for r in (0, 1) for c in (2, 3, 4, 5)]
TABLE = list(range(40, 64))


@pytest.fixture
def coco(tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / nat.COCO_QUESTIONS).write_text(json.dumps(QUESTIONS))
    (root / nat.COCO_INSTANCES).write_text(json.dumps(INSTANCES))
    for im in INSTANCES["images"]:
        _jpeg(root / "val2017" / f"{im['id']:012d}.jpg", (100, 150, 200), size=(im["width"], im["height"]))
    return root


def test_parse_caption():
    assert nat.parse_caption("A photo of a dog to the left of a cat") == ("dog", "left", "cat")
    assert nat.parse_caption("a photo of an apple below the dining table.") == ("apple", "below", "dining table")
    assert nat.parse_caption("A photo of the teddy bear to the right of a person") == ("teddy bear", "right", "person")
    assert nat.parse_caption("A photo of a cup above a table") == ("cup", "above", "table")
    assert nat.parse_caption("Two dogs playing in a park") is None
    assert nat.parse_caption("A photo of a dog near a cat") is None


def test_coco_questions_and_boxes(coco):
    qs = nat.coco_questions(coco)
    assert qs["index"].tolist() == [0, 1, 2, 4, 5]
    assert qs[["subj", "relation", "obj", "axis"]].values.tolist() == [
        ["dog", "left", "cat", "horizontal"], ["cup", "above", "table", "vertical"], ["cat", "right", "dog", "horizontal"],
        ["table", "above", "cup", "vertical"], ["cup", "below", "umbrella", "vertical"]]
    assert qs["image_id"].tolist() == [1, 2, 1, 2, 2]
    assert nat.check_coco_dir(coco) == 5
    boxes = nat.coco_boxes(coco, [1, 2])
    assert set(boxes) == {1, 2}                                      # only the images asked for
    assert boxes[1]["boxes"] == {"dog": [10.0, 20.0, 50.0, 40.0], "cat": [120.0, 30.0, 60.0, 50.0]}   # largest cat
    assert (boxes[2]["width"], boxes[2]["height"]) == (100, 200)
    assert nat.coco_box_cells(boxes[1]["boxes"]["dog"], 200, 100, 8) == DOG
    assert nat.coco_box_cells(boxes[1]["boxes"]["cat"], 200, 100, 8) == CAT
    assert nat.coco_box_cells(boxes[2]["boxes"]["cup"], 100, 200, 8) == CUP
    assert nat.coco_box_cells(boxes[2]["boxes"]["table"], 100, 200, 8) == TABLE
    assert nat.coco_image_path(coco, 2) == coco / "val2017" / "000000000002.jpg"


def test_coco_items_two_orderings(coco, tmp_path):
    out = tmp_path / "out"
    items = nat.coco_items(coco, G, out, style="anchored")
    assert len(items) == 10
    assert items.groupby("item")["query"].apply(list).to_dict() == {
        f"coco-{i:04d}": ["ab", "ba"] for i in (0, 1, 2, 4, 5)}
    by = items.set_index(["item", "query"])
    dog_cat = by.loc[("coco-0000", "ab")]
    assert dog_cat["prompt"] == ("Using the cat as the reference point, which side is the dog on? Answer with one word: "
                                 "left or right.")
    assert by.loc[("coco-0000", "ba"), "prompt"].endswith("Answer with one word: right or left.")
    assert (dog_cat["answer"], dog_cat["orientation"], dog_cat["direction"]) == ("left", "horizontal", "left")
    assert json.loads(dog_cat["allowed"]) == ["left", "right"]
    assert json.loads(dog_cat["cells"]) == [DOG, CAT] and bool(dog_cat["probe_ok"])
    cat_dog = by.loc[("coco-0002", "ab")]                             # subject on the right: class 0 is the object
    assert cat_dog["answer"] == "right" and json.loads(cat_dog["cells"]) == [DOG, CAT] and bool(cat_dog["probe_ok"])
    cup = by.loc[("coco-0001", "ba")]
    assert cup["prompt"] == ("Using the table as the reference point, where is the cup located? Answer with one word: "
                             "below or above.")
    assert json.loads(cup["cells"]) == [CUP, TABLE] and bool(cup["probe_ok"]) and cup["answer"] == "above"
    assert json.loads(cup["allowed"]) == ["above", "below"]
    contradicted = by.loc[("coco-0004", "ab")]                       # table "above" the cup, but its box is below
    assert json.loads(contradicted["cells"]) == [TABLE, CUP] and not contradicted["probe_ok"]
    no_box = by.loc[("coco-0005", "ab")]
    assert json.loads(no_box["cells"]) == [[], CUP] and not no_box["probe_ok"]
    # images: one resized PNG per COCO image, shared by its questions
    assert set(items["image"]) == {"coco/000000000001.png", "coco/000000000002.png"}
    assert Image.open(out / "coco/000000000001.png").size == (G.canvas_px, G.canvas_px)
    direct = nat.coco_items(coco, G, tmp_path / "d", style="direct").set_index(["item", "query"])
    assert direct.loc[("coco-0000", "ab"), "prompt"] == "Is the dog to the left or to the right of the cat? Answer with one word."
    assert direct.loc[("coco-0000", "ba"), "prompt"] == "Is the dog to the right or to the left of the cat? Answer with one word."
    assert direct.loc[("coco-0001", "ab"), "prompt"] == "Is the cup above or below the table? Answer with one word."
    with pytest.raises(ValueError, match="unknown COCO prompt style 'chatty'"):
        nat.coco_items(coco, G, tmp_path / "x", style="chatty")


def test_coco_testbed_queries(coco, tmp_path):
    """The COCO items form a valid two-class Testbed: one item, two queries (both orderings)."""
    items = nat.coco_items(coco, G, tmp_path / "out")
    tb = amp.Testbed("coco", items, tmp_path / "out", classes=2)
    assert tb.items == [f"coco-{i:04d}" for i in (0, 1, 2, 4, 5)]
    assert tb.queries.groupby("item").size().eq(2).all()
    assert not amp._off_axis("left", items["allowed"].iloc[0]) and amp._off_axis("above", items["allowed"].iloc[0])


def _expect_error(fn, path, what):
    """fn raises DataError whose message names `path` and says `what`."""
    with pytest.raises(nat.DataError) as e:
        fn()
    assert str(path) in str(e.value) and what in str(e.value), str(e.value)


def test_coco_errors(coco, tmp_path):
    qpath, ipath = coco / nat.COCO_QUESTIONS, coco / nat.COCO_INSTANCES
    _expect_error(lambda: nat.coco_questions(tmp_path / "nope"), tmp_path / "nope", "is not a directory")
    # questions file
    qpath.write_text("[[1, 'single quotes']")
    _expect_error(lambda: nat.coco_questions(coco), qpath, "not valid JSON")
    qpath.write_text(json.dumps({"1": "A photo of a dog to the left of a cat"}))
    _expect_error(lambda: nat.coco_questions(coco), qpath, "expected a non-empty JSON list")
    qpath.write_text(json.dumps([QUESTIONS[0], ["one", "A photo of a dog to the left of a cat", "x"]]))
    _expect_error(lambda: nat.coco_questions(coco), qpath, "entry 1 is")
    qpath.write_text(json.dumps([QUESTIONS[3]]))
    _expect_error(lambda: nat.coco_questions(coco), qpath, "no caption parses")
    qpath.unlink()
    _expect_error(lambda: nat.check_coco_dir(coco), qpath, "file is missing")
    qpath.write_text(json.dumps(QUESTIONS))
    # instances file
    ipath.write_text(json.dumps({"images": [], "annotations": []}))
    _expect_error(lambda: nat.coco_boxes(coco, [1]), ipath, "'images', 'annotations' and 'categories'")
    bad = dict(INSTANCES, annotations=INSTANCES["annotations"] + [{"image_id": 1, "category_id": 99, "bbox": [0, 0, 1, 1]}])
    ipath.write_text(json.dumps(bad))
    _expect_error(lambda: nat.coco_boxes(coco, [1]), ipath, "malformed COCO instances entry")
    ipath.write_text(json.dumps(dict(INSTANCES, images=INSTANCES["images"][:1])))
    _expect_error(lambda: nat.coco_items(coco, G, tmp_path / "o"), ipath, "no entry for image id(s) [2]")
    ipath.unlink()
    _expect_error(lambda: nat.check_coco_dir(coco), ipath, "file is missing")
    _expect_error(lambda: nat.coco_items(coco, G, tmp_path / "o"), ipath, "file is missing")
    ipath.write_text(json.dumps(INSTANCES))
    # images
    image = coco / "val2017" / "000000000002.jpg"
    image.unlink()
    _expect_error(lambda: nat.check_coco_dir(coco), image, "")
    with pytest.raises(nat.DataError, match="1 COCO image"):
        nat.check_coco_dir(coco)
    image.write_bytes(b"not a jpeg at all")
    _expect_error(lambda: nat.coco_items(coco, G, tmp_path / "o"), image, "not a readable image")
    import shutil
    shutil.rmtree(coco / "val2017")
    _expect_error(lambda: nat.check_coco_dir(coco), coco / "val2017", "directory is missing")


# ================================================================== the evaluation engine on a tiny model
def test_engine_alpha_zero_reproduces_the_baseline(coco, tmp_path):
    from dualmech import interventions as iv
    from dualmech import models
    from dualmech.tiny import make_tiny
    torch.set_num_threads(1)
    adapter = models.load(models.ModelSpec(name="llava", path=str(make_tiny("llava", tmp_path / "ckpt"))), device="cpu")
    assert adapter.geometry == G
    items = nat.coco_items(coco, G, tmp_path / "out")
    tb = amp.Testbed("coco", items, tmp_path / "out", classes=2)
    engine = amp.Engine(adapter, tb, batch_size=8, chunk_items=2)
    per_query, feats = engine.baseline(tb.items)
    assert len(per_query) == 10 and set(feats) == set(tb.items)
    assert feats["coco-0005"].shape == (2, adapter.model.config.text_config.hidden_size)
    assert torch.isnan(feats["coco-0005"][0]).all() and not torch.isnan(feats["coco-0000"]).any()
    D = feats["coco-0000"].shape[1]
    W = {a: _w(d=D, c=2, seed=k).float() for k, a in enumerate(amp.AXES)}
    dirs = {"probe": amp.Direction("probe", "probe", W, "all"),
            "probe_objects": amp.Direction("probe_objects", "probe_objects", W, "objects")}
    jobs = pd.DataFrame([(i, d, a) for i in tb.items for d in dirs for a in (0.0, 8.0)],
                        columns=["item", "direction", "alpha"])
    out = engine.evaluate(jobs, dirs)
    assert engine.parity == {"mode": "text_only", "text_only_max_abs_diff": 0.0}     # amplified rows skip the tower
    base = per_query.groupby("item")["correct"].all()
    zero = out[out["alpha"] == 0].set_index(["item", "direction"])["correct"]
    assert all(zero[i, d] == base[i] for i in tb.items for d in dirs)
    # an amplified row is the plain forward with the amplified visual tokens written at the LM input
    rows = tb.queries[tb.queries["item"] == "coco-0000"].reset_index(drop=True)
    images = {p: Image.open(tmp_path / "out" / p).convert("RGB") for p in rows["image"]}
    prepared = tb.prepare(adapter, rows, images)
    visual = adapter.visual_tokens([images[p] for p in rows["image"]])
    new = amp.amplify(visual, W["horizontal"], 8.0)
    logits = iv.run(adapter, prepared, edits={iv.LM_INPUT: iv.replace_grid(prepared, new)}).logits
    preds = [nat_pred == "left" for nat_pred in (amp.normalise(t) for t in adapter.decode(logits.argmax(-1).tolist()))]
    assert bool(out.set_index(["item", "direction", "alpha"]).loc[("coco-0000", "probe", 8.0), "correct"]) == all(preds)


def test_engine_gives_random_rows_the_probes_step_size(coco, tmp_path, monkeypatch):
    """In the batched engine a random direction (match='probe') moves each image token by the probe's norm."""
    from dualmech import models
    from dualmech.tiny import make_tiny
    torch.set_num_threads(1)
    adapter = models.load(models.ModelSpec(name="llava", path=str(make_tiny("llava", tmp_path / "ckpt"))), device="cpu")
    items = nat.coco_items(coco, G, tmp_path / "out")
    tb = amp.Testbed("coco", items, tmp_path / "out", classes=2)
    engine = amp.Engine(adapter, tb, batch_size=64, chunk_items=2)
    D = adapter.model.config.text_config.hidden_size
    W = {a: _w(d=D, c=2, seed=k).float() for k, a in enumerate(amp.AXES)}
    R = {a: amp.random_directions(W[a], 1, 5, "coco", a)[0] for a in amp.AXES}
    dirs = {"probe": amp.Direction("probe", "probe", W, "all"),
            "random_00": amp.Direction("random_00", "random", R, "all", match="probe")}
    seen = []
    plain = engine._forward_rows

    def spy(prepared, rows, images, qi, new):
        seen.append((qi.clone(), new.clone()))
        return plain(prepared, rows, images, qi, new)
    monkeypatch.setattr(engine, "_forward_rows", spy)
    jobs = pd.DataFrame([("coco-0000", d, 6.0) for d in dirs], columns=["item", "direction", "alpha"])
    engine.evaluate(jobs, dirs)
    qi, new = seen[-1]                       # rows: (query 0, probe), (query 0, random), (query 1, probe), ...
    rows = tb.queries[tb.queries["item"] == "coco-0000"].reset_index(drop=True)
    images = {p: Image.open(tmp_path / "out" / p).convert("RGB") for p in rows["image"]}
    visual = adapter.visual_tokens([images[p] for p in rows["image"]]).float()
    steps = (new - visual[qi]).norm(dim=-1)
    assert len(qi) == 2 * len(rows)
    for k in range(len(rows)):
        torch.testing.assert_close(steps[2 * k + 1], steps[2 * k], rtol=1e-4, atol=1e-5)
        assert steps[2 * k].max() > 0


# ================================================================== COCO: box accounting, dynamic resolution
def test_coco_box_status_is_counted_and_reported(coco, tmp_path):
    """Every item says why it gives no probe rows; the counts reach meta and Table 2's note."""
    items = nat.coco_items(coco, G, tmp_path / "out")
    status = items.drop_duplicates("item").set_index("item")["box_status"]
    assert status.to_dict() == {"coco-0000": "ok", "coco-0001": "ok", "coco-0002": "ok",
                                "coco-0004": "side check failed", "coco-0005": "missing box"}
    assert (items["probe_ok"] == (items["box_status"] == "ok")).all()
    counts = amp._box_status(items)
    assert counts == {"missing box": 1, "ok": 3, "side check failed": 1}
    note = amplification_tables._notes(dict(items=5, probes={}, box_status=counts), n_fail=2)
    assert note == "2 of 5 items give no probe rows (1 missing box, 1 side check failed); they are still asked"
    # on a 2 x 2 grid the cup (x 0.3-0.7 of its photo) covers no token centre (0.25, 0.75)
    tiny = nat.coco_items(coco, G, tmp_path / "t", native_grid=lambda w, h: (2, 2))
    assert amp._box_status(tiny) == {"box covers no token": 2, "missing box": 1, "ok": 2}
    assert nat.box_cells((0.0, 0.1, 0.0, 0.1), (2, 2)) == []


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    from dualmech import models
    from dualmech.tiny import make_tiny
    path = make_tiny("qwen2vl", tmp_path_factory.mktemp("qwen") / "ckpt")
    return models.load(models.ModelSpec(name="qwen2vl", path=str(path)), device="cpu")


def test_qwen_coco_at_dynamic_resolution(qwen, coco, tmp_path):
    """Qwen2-VL sees COCO photos at its own aspect-preserving resolution (paper §5.7), not the square canvas:
    one rows x cols grid per photo, boxes mapped onto it, batches grouped by grid, alpha = 0 a no-op."""
    try:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
    except ImportError:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
    ip = qwen.processor.image_processor
    f = ip.patch_size * ip.merge_size
    wide, tall = qwen.native_grid(200, 100), qwen.native_grid(100, 200)
    h, w = smart_resize(100, 200, factor=f, min_pixels=ip.size["shortest_edge"], max_pixels=ip.size["longest_edge"])
    assert wide == (h // f, w // f) and tall == wide[::-1] and wide[1] > wide[0]
    items = nat.coco_items(coco, qwen.geometry, tmp_path / "out", native_grid=qwen.native_grid)
    first = items.drop_duplicates("item").set_index("item")
    assert first["native"].all()
    assert tuple(first.loc["coco-0000", ["grid_rows", "grid_cols"]]) == wide
    assert tuple(first.loc["coco-0001", ["grid_rows", "grid_cols"]]) == tall
    assert Image.open(tmp_path / "out" / first.loc["coco-0000", "image"]).size == (200, 100)    # kept as it is
    boxes = nat.coco_boxes(coco, [1])[1]["boxes"]
    assert json.loads(first.loc["coco-0000", "cells"]) == [nat.coco_box_cells(boxes["dog"], 200, 100, wide),
                                                          nat.coco_box_cells(boxes["cat"], 200, 100, wide)]
    tb = amp.Testbed("coco", items, tmp_path / "out", system=None, classes=2)
    assert tb.groups(tb.items) == [["coco-0000", "coco-0002"], ["coco-0001", "coco-0004", "coco-0005"]]
    rows = tb.queries[tb.queries["item"] == "coco-0000"].reset_index(drop=True)
    images = {p: Image.open(tmp_path / "out" / p).convert("RGB") for p in rows["image"]}
    prepared = tb.prepare(qwen, rows, images)
    assert prepared.grid_positions.shape == (2, wide[0] * wide[1])
    assert prepared.inputs["image_grid_thw"].tolist() == [[1, wide[0] * 2, wide[1] * 2]] * 2
    with pytest.raises(ValueError, match="mixes token grids"):
        tb.grid_of(tb.queries[tb.queries["item"].isin(["coco-0000", "coco-0001"])])
    engine = amp.Engine(qwen, tb, batch_size=8, chunk_items=8)
    per_query, feats = engine.baseline(tb.items)
    assert len(per_query) == 10 and not torch.isnan(feats["coco-0000"]).any()
    D = feats["coco-0000"].shape[1]
    W = {a: _w(d=D, c=2, seed=k).float() for k, a in enumerate(amp.AXES)}
    out = engine.evaluate(pd.DataFrame([(i, "probe", 0.0) for i in tb.items], columns=["item", "direction", "alpha"]),
                          {"probe": amp.Direction("probe", "probe", W, "all")})
    base = per_query.groupby("item")["correct"].all()
    assert out.set_index("item")["correct"].to_dict() == base.to_dict()
    # the square canvas stays available as a switch
    canvas = nat.coco_items(coco, qwen.geometry, tmp_path / "c")
    assert not canvas["native"].any() and (canvas["grid_rows"] == qwen.geometry.grid).all()
    assert Image.open(tmp_path / "c" / canvas["image"].iloc[0]).size == (qwen.geometry.canvas_px,) * 2


def test_coco_controls_queries(coco, tmp_path):
    """Image shuffle: the same question on another photo, original answer; swap: subject and object exchanged,
    opposite answer, same photo and cells; both orderings each; seeded."""
    items = nat.coco_items(coco, G, tmp_path / "out", style="direct")
    ctl = nat.coco_controls(items, seed=0)
    assert set(ctl["control"]) == {"shuffle", "swap"}
    swap = ctl[ctl["control"] == "swap"].set_index(["item", "query"])
    s = swap.loc[("coco-0000", "ab")]
    assert s["prompt"] == "Is the cat to the left or to the right of the dog? Answer with one word."
    assert s["answer"] == "right" and s["image"] == "coco/000000000001.png"
    assert swap.loc[("coco-0001", "ba"), "prompt"] == "Is the table below or above the cup? Answer with one word."
    assert swap.loc[("coco-0001", "ba"), "answer"] == "below"
    orig = items.set_index(["item", "query"])
    assert (swap["cells"] == orig.loc[swap.index, "cells"]).all()          # the left object is still class 0
    shuf = ctl[ctl["control"] == "shuffle"].set_index(["item", "query"])
    assert len(shuf) == len(items)                                         # two images: a donor for every item
    assert (shuf["image_id"] != orig.loc[shuf.index, "image_id"]).all()
    assert (shuf["prompt"] == orig.loc[shuf.index, "prompt"]).all() and (shuf["answer"] == orig.loc[shuf.index, "answer"]).all()
    assert not shuf["probe_ok"].any()
    pd.testing.assert_frame_equal(ctl, nat.coco_controls(items, seed=0))


def _control_inputs(base_correct, after, control):
    items = [f"i{k}" for k in range(len(base_correct))]
    baseline = pd.DataFrame(dict(item=items, split="eval", dropped=False, correct=base_correct,
                                 **{f"{control}_correct": after}))
    return baseline


@pytest.mark.parametrize("control,base_correct,after,verdict", [
    ("shuffle", [True] * 30 + [False] * 10, [True] * 8 + [False] * 32, "as expected"),       # 0.75 -> 0.20
    ("shuffle", [True] * 30 + [False] * 10, [True] * 28 + [False] * 12, "not as expected"),  # stays at 0.70
    ("shuffle", [True] * 40, [True] * 24 + [False] * 16, "not as expected"),                 # 0.60: CI above 0.25
    ("swap", [True] * 30 + [False] * 10, [True] * 27 + [False] * 13, "as expected"),         # 27/30 flip
    ("swap", [True] * 30 + [False] * 10, [True] * 16 + [False] * 24, "not as expected"),     # 16/30: not > 1/2
    ("swap", [False] * 10, [True] * 10, "not testable (no item answered correctly at baseline)"),
])
def test_control_rows_state_and_check_the_expected_direction(control, base_correct, after, verdict):
    base = pd.Series(base_correct, index=[f"i{k}" for k in range(len(base_correct))])
    row = amp.control_row(control, base, pd.Series(after, index=base.index), dict(model="m", testbed="coco"))
    assert row["verdict"] == verdict and row["expected"] == amp.CONTROLS[control]
    assert row["accuracy"] == pytest.approx(np.mean(after))
    if control == "swap" and any(base_correct):
        assert row["flips"] == sum(a and b for a, b in zip(after, base_correct)) and row["correct_base"] == sum(base_correct)


def test_summarise_adds_control_rows_only_with_controls():
    baseline, outcomes, meta = _summary_inputs()
    plain = amp.summarise(baseline, outcomes, meta)
    assert not plain["row"].isin(["shuffle", "swap"]).any()
    assert "Control check" not in amp.table2_display(plain)
    n = len(baseline)
    with_controls = baseline.assign(shuffle_correct=[False] * n, swap_correct=baseline["correct"])
    t = amp.summarise(with_controls, outcomes, meta).set_index("row")
    assert t.loc["shuffle", "accuracy"] == 0 and t.loc["swap", "accuracy"] == t.loc["none", "accuracy"]
    shown = amp.table2_display(t.reset_index()).set_index("Intervention")
    assert shown.loc["Control: image shuffled", "Control check"].startswith("expected: falls to chance (0.25); ")
    assert shown.loc["Control: subject/object swapped", "Control check"].startswith("expected: answers flip; 100.0%")


def test_run_on_coco_with_controls_at_dynamic_resolution(qwen, coco, tmp_path):
    """The whole experiment on the tiny Qwen2-VL: photos at dynamic resolution, controls answered, Table 2
    gains both control rows with a verdict, and the box accounting reaches the note."""
    items = nat.coco_items(coco, qwen.geometry, tmp_path / "out", native_grid=qwen.native_grid)
    tb = amp.Testbed("coco", items, tmp_path / "out", system=None, classes=2)
    cfg = dict(alphas=[0, 4], n_random=2, dev_fraction=0.5, select_by="net",
               probe=dict(epochs=5, lr=1e-3, weight_decay=1e-4))
    base, outcomes, meta = amp.run(qwen, tb, cfg, 0, controls=nat.coco_controls(items, 0), log=lambda m: None)
    assert {"shuffle_correct", "swap_correct"} <= set(base.columns) and base["swap_correct"].notna().all()
    assert meta["box_status"] == {"missing box": 1, "ok": 3, "side check failed": 1}
    table = amp.summarise(base, outcomes, meta).set_index("row")
    assert {"shuffle", "swap"} <= set(table.index)
    assert table.loc["swap", "verdict"] in ("as expected", "not as expected",
                                            "not testable (no item answered correctly at baseline)")
    assert "give no probe rows (1 missing box, 1 side check failed)" in table.loc["none", "note"]
    # each control's correctness is the plain answer to its queries
    ctl = nat.coco_controls(items, 0)
    direct = amp.control_results(qwen, tb, ctl)
    assert base.set_index("item")["swap_correct"].to_dict() == direct["swap"].to_dict()
