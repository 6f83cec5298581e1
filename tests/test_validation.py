"""The claim detectors on planted-mechanism fixtures: every expected verdict (config/expected_verdicts.yaml) must
be observed. The fixtures run on the committed organism through the real adapter, extraction and probing code,
on a subset of the squares triples."""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dualmech import planted, validation
from dualmech.models import ModelSpec, load
from dualmech.stimuli import entities
from dualmech.stimuli.render import render_scene
from dualmech.stimuli.shifted import shifted_layout

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / "config" / "expected_verdicts.yaml"


@pytest.fixture(scope="module")
def adapter():
    return load(ModelSpec(name="organism", path=str(REPO / "models" / "organism-lm")))


def _pixels(adapter, layouts, orientation="horizontal"):
    squares = entities("squares")[:3]
    images = [render_scene(squares, layout, adapter.geometry) for layout in layouts]
    return adapter.prepare(images, ["x"] * len(images)).inputs["pixel_values"].float()


def test_locate_reads_the_entities_from_the_pixels(adapter):
    g = adapter.geometry                                   # 7 x 7 tokens, objects 1, gaps 1: columns 1, 3, 5
    obj, strip, absolute = planted.locate(_pixels(adapter, [g.canonical_layout("horizontal"),
                                                            shifted_layout(g, "horizontal", 1)]), g)
    grid = lambda t: t.reshape(-1, g.grid, g.grid)         # noqa: E731
    canon, shifted = grid(obj)[0], grid(obj)[1]
    assert canon[3].tolist() == [-1, 0, -1, 1, -1, 2, -1] and (canon[[0, 1, 2, 4, 5, 6]] == -1).all()
    assert shifted[3].tolist() == [-1, -1, 0, -1, 1, -1, 2]            # the relative slot moves with the triple
    assert (grid(strip)[0] == torch.tensor([-1, 0, -1, 1, -1, 2, -1])).all()       # whole columns, every row
    # the absolute code is the canvas third (columns 0-1, 2-4, 5-6), the same whether shifted or not
    assert (grid(absolute)[0] == torch.tensor([0, 0, 1, 1, 1, 2, 2])).all()
    assert (absolute[0] == absolute[1]).all()
    obj_v, _, _ = planted.locate(_pixels(adapter, [g.canonical_layout("vertical")]), g)
    assert grid(obj_v)[0][:, 3].tolist() == [-1, 0, -1, 1, -1, 2, -1]


def test_the_code_is_written_only_where_the_kind_says(adapter):
    g = adapter.geometry
    images = [render_scene(entities("squares")[:3], g.canonical_layout("horizontal"), g)]
    base = adapter.visual_tokens(images)
    for kind, touched in (("objects", {22, 24, 26}), ("strips", {c + 7 * r for r in range(7) for c in (1, 3, 5)}),
                          ("absolute", set(range(49))), ("none", set())):
        code = planted.planted(adapter, kind)
        try:
            planted_tokens = adapter.visual_tokens(images)
        finally:
            code.remove()
        changed = set(torch.nonzero((planted_tokens - base).abs().amax(-1)[0] > 1e-6).flatten().tolist())
        assert changed == touched, kind
    assert torch.equal(adapter.visual_tokens(images), base)          # removing the hooks restores the model


def test_expected_file_needs_a_verdict_and_a_reason(tmp_path):
    spec = yaml.safe_load(EXPECTED.read_text())
    spec["fixtures"]["planted-strips"]["claims"][3] = {"verdict": "probably", "reason": "x"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match="planted-strips claim 3"):
        validation.load_expected(bad)


def test_every_planted_fixture_gets_its_expected_verdict(tmp_path):
    """The validation table on 24 of the 120 squares triples, one probe seed: every row must agree. (Old rules
    disagreed here: claim 2's identity control called planted-strips/objects not supported, claim 9 judged
    planted-none with a probe below chance.)"""
    spec = validation.load_expected(EXPECTED)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["probing"]
    cfg |= dict(seeds=1, bootstrap=200, strip_width=None)
    probes = validation.planted_probes(str(REPO / spec["base"]), spec["fixtures"], spec["setting"], cfg, 0,
                                       tmp_path, triples=24)
    table = validation.compare(spec, validation.evaluate(spec, probes, min_pairs=10, seed=0))
    assert len(table) == sum(len(f["claims"]) for f in spec["fixtures"].values())
    shown = validation.display(table)
    assert table["agree"].all(), shown[~table["agree"]].to_string()
    strips = table[(table["fixture"] == "planted-strips")].set_index("claim")
    assert strips.loc[3, "effect"] > 0.5 and strips.loc[3, "p"] < 0.05
    assert np.isfinite(table["effect"]).sum() >= 10
