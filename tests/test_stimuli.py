"""Stimuli: geometry per adapter (paper Table 4), answers, determinism, rendering."""
import hashlib
import itertools
import json

import numpy as np
import pytest
from PIL import Image

from dualmech.stimuli import (ANSWER_SLOT, Geometry, compose, default_object_tokens, entities, grid_items, prompt,
                              relation_items, render_scene, sprite)


@pytest.mark.parametrize("grid,px,cols", [
    (12, 28, [(1, 2), (5, 6), (9, 10)]),    # Qwen2-VL-7B: objects at cols 1-2, 5-6, 9-10, rows 5-6
    (16, 56, [(0, 2), (6, 8), (12, 14)]),   # Gemma-3-4b: left object touches the border
    (15, 16, [(2, 3), (6, 7), (10, 11)]),   # Pixtral (repo geometry)
])
def test_paper_geometry(grid, px, cols):
    s = default_object_tokens(grid)
    g = Geometry(grid, px, s, s)
    lay = g.canonical_layout("horizontal")
    assert [(c, c + s - 1) for _, c in lay] == cols
    assert {r for r, _ in lay} == {(grid - s) // 2}
    assert g.canonical_layout("vertical") == tuple((c, r) for r, c in lay)
    assert g.canvas_px == grid * px


def test_geometry_rejects_overflow():
    with pytest.raises(ValueError, match="need 11 tokens but the grid has 10"):
        Geometry(10, 8, 3, 1)


def test_a_stimulus_table_carries_its_geometry_through_parquet(tmp_path):
    """The probes read the canvas from the stimulus table (no model code to load): what the stimuli rule stamps
    comes back from the parquet file; a table without it is refused by name."""
    import pandas as pd
    g = Geometry(12, 14, 2, 2)
    items = relation_items("squares", g, "standard", tmp_path / "img", ["left"])
    g.stamp(items).to_parquet(tmp_path / "items.parquet", index=False)
    assert Geometry.of(pd.read_parquet(tmp_path / "items.parquet")) == g
    with pytest.raises(ValueError, match="does not record its canvas geometry.*rerun the stimuli rule"):
        Geometry.of(pd.DataFrame({"item": ["x"]}))


def test_item_counts_and_answers(tmp_path):
    g = Geometry(10, 8, 2, 1)
    for setting, n_ent in [("squares", 6), ("shapes", 6), ("objects", 8)]:
        items = relation_items(setting, g, "standard", tmp_path / setting)
        n_perm = len(list(itertools.permutations(range(n_ent), 3)))
        assert len(items) == 4 * n_perm
        assert items["image"].nunique() == 2 * n_perm            # one image per (triple, orientation)
        names = {e.name: e for e in entities(setting)}
        for row in items.itertuples():
            slots = [row.e0, row.e1, row.e2]
            assert row.answer == names[slots[ANSWER_SLOT[row.direction]]].answer
            assert row.reference == row.e1
            assert row.prompt == prompt(setting, row.direction, names[row.e1])
            assert row.prompt.endswith(" ")


def test_prompts_verbatim():
    red, green = entities("squares")[:2]
    assert prompt("squares", "left", green) == "The color of the square to the left of the green square is "
    circle = entities("shapes")[1]
    assert prompt("shapes", "above", circle) == "The color of the shape above the green circle is "
    assert circle.answer == "green"
    apple = entities("objects")[1]
    assert prompt("objects", "below", apple) == "The object below the apple is a(n) "
    assert [e.colour for e in entities("squares", "orange")][4] == "orange"


def test_pixels_match_layout(tmp_path):
    """Every object pixel lies inside the object's token cells; the rest of the canvas is white."""
    g = Geometry(10, 8, 2, 1)
    ents = entities("squares")[:3]
    lay = g.canonical_layout("horizontal")
    img = np.asarray(render_scene(ents, lay, g))
    assert img.shape == (80, 80, 3)
    mask = np.zeros((80, 80), bool)
    for e, (r, c) in zip(ents, lay):
        block = img[r * 8:(r + 2) * 8, c * 8:(c + 2) * 8]
        assert (block == np.array({"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}[e.name])).all()
        mask[r * 8:(r + 2) * 8, c * 8:(c + 2) * 8] = True
    assert (img[~mask] == 255).all()


def test_sprites_have_exact_size_and_content():
    for setting in ("shapes", "objects"):
        for e in entities(setting):
            spr = sprite(e, 16)
            assert spr.shape == (16, 16, 4) and spr[..., 3].max() == 255 and spr[..., 3].mean() > 40


def test_compose_alpha():
    spr = np.zeros((2, 2, 4), np.uint8)
    spr[..., 0] = 255
    spr[..., 3] = 128
    out = compose([spr], [(1, 1)], 4)
    assert out[1, 1].tolist() == [255, 127, 127] and out[0, 0].tolist() == [255, 255, 255]


def test_deterministic_bytes(tmp_path):
    g = Geometry(10, 8, 2, 1)
    a = relation_items("shapes", g, "standard", tmp_path / "a")
    b = relation_items("shapes", g, "standard", tmp_path / "b")
    assert a.equals(b)
    for rel in a["image"].unique()[:20]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    row = a.iloc[0]
    assert hashlib.sha256((tmp_path / "a" / row.image).read_bytes()).hexdigest() == row.image_sha256


def test_grid_items(tmp_path):
    g = Geometry(10, 8, 2, 1)
    items = grid_items(3, 6, g, "standard", tmp_path, seed=0)
    again = grid_items(3, 6, g, "standard", tmp_path / "again", seed=0)
    other = grid_items(3, 6, g, "standard", tmp_path / "other", seed=1)
    assert items["cells"].tolist() == again["cells"].tolist() != other["cells"].tolist()
    cells = json.loads(items.iloc[0]["cells"])
    assert [(c["row"], c["col"]) for c in cells] == list(itertools.product(range(3), range(3)))
    assert [tuple(c["top_left"]) for c in cells][:3] == [(1, 1), (1, 4), (1, 7)]
    assert Image.open(tmp_path / items.iloc[0]["image"]).size == (80, 80)
    with pytest.raises(ValueError, match="4x4 grid needs 11 tokens"):
        grid_items(4, 2, g, "standard", tmp_path, seed=0)
