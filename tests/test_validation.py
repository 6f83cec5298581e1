"""The claim detectors on planted-mechanism fixtures: every expected verdict (config/expected_verdicts.yaml) must
be observed. The fixtures run on the committed organism through the real adapter, extraction and probing code,
on every squares triple (as the default run, with one probe seed)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from dualmech import claims as cl, planted, validation
from dualmech.models import ModelSpec, load
from dualmech.stimuli import entities
from dualmech.stimuli.render import render_scene
from dualmech.stimuli.shifted import shifted_layout

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / "config" / "expected_verdicts.yaml"
# The end-to-end organism committed on 26 November: the base the two faint / blind background tests below were
# written and measured on (planted fixtures on today's models/organism-lm: see README, "Validation", v10).
NOV26_BASE = REPO / "tests" / "data" / "organism-lm-2026-11-26"


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
    """The validation table on all 120 squares triples, one probe seed: every row must agree. (Old rules
    disagreed here: claim 2's identity control called planted-strips/objects not supported, claim 9 judged
    planted-none with a probe below chance.)"""
    spec = validation.load_expected(EXPECTED)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["probing"]
    cfg |= dict(seeds=1, bootstrap=200, strip_width=None)
    # every triple, as the default run: the tests of claims 3 and 9 and their paired control tests need enough
    # held-out triples with conflict tokens (on the organism's layout each shifted image has one). 24 left
    # claim 9's gate short of alpha; 48 did too once the conflict readings were judged beyond chance (v7: a
    # perfect relative code's contrast is 0.5 beyond chance, not 1.0; p 0.051), and 48 had hidden
    # planted-absolute's claim-3 false positive behind v5's gate; 72 let planted-none's canonical probe
    # reach above chance (claim 9 then testable). The default run reads all 120.
    probes, units = validation.planted_probes(str(REPO / spec["base"]), spec["fixtures"], spec["setting"], cfg, 0,
                                              tmp_path)
    table = validation.compare(spec, validation.evaluate(spec, probes, min_pairs=10, seed=0, units=units))
    assert len(table) == sum(len(f["claims"]) for f in spec["fixtures"].values())
    shown = validation.display(table)
    assert table["agree"].all(), shown[~table["agree"]].to_string() + "\n" + "\n".join(table.loc[~table["agree"],
                                                                                              "note"])
    strips = table[(table["fixture"] == "planted-strips")].set_index("claim")
    assert strips.loc[3, "effect"] > 0.5 and strips.loc[3, "p"] < 0.05
    # the per-triple units pool back to the probe table's numbers (the control gate pairs these units)
    u = units[units["site"] == "lm_input"].groupby(["model", "orientation"])[
        ["amb_hit", "amb_n", "conf_rel", "conf_excess", "conf_n", "strip_excess", "strip_conf_n",
         "strip_follow_excess", "strip_follow_n"]].sum()
    row = probes[probes["site"] == "lm_input"].set_index(["model", "orientation"])
    np.testing.assert_allclose(u["amb_hit"] / u["amb_n"], row.loc[u.index, "ambiguous_acc"])
    np.testing.assert_allclose(u["conf_rel"] / u["conf_n"], row.loc[u.index, "follow_relative"])
    np.testing.assert_allclose(u["conf_excess"] / u["conf_n"], row.loc[u.index, "follow_excess"], atol=1e-12)
    np.testing.assert_allclose(u["strip_excess"] / u["strip_conf_n"], row.loc[u.index, "strip_excess"], atol=1e-12)
    np.testing.assert_allclose(u["strip_follow_excess"] / u["strip_follow_n"] + 0.5, row.loc[u.index, "strip_follow"])
    # each fixture with a code is held to planted-none by the paired test over the same held-out triples' units,
    # except on claim 3's fixed-cell pairs: planted-none's probe reads no slot on its objects, so it has none
    gated = table[(table["fixture"] == "planted-strips") & (table["claim"] == 2)]["note"].iloc[0]
    assert "control planted-none" in gated and "sign-flip p" in gated and ": exceeds it" in gated
    claim3 = table[table["claim"] == 3].set_index("fixture")
    assert "no paired unit in common: no veto" in claim3.loc["planted-strips", "note"]
    assert "does not read the objects' own slot" in claim3.loc["planted-none", "observed_reason"]
    assert np.isfinite(table["effect"]).sum() >= 10


def _info(canonical, shuffled, ablated, probe=None, transfer=None):
    d = {c: dict(min=v, mean=v, cells={}) for c, v in
         dict(canonical=canonical, shuffled=shuffled, ablated=ablated).items()}
    if transfer is not None:     # every background strip token reads 0.95: a position code reads most of them
        amb = dict(min=transfer, mean=transfer, cells={"objects/vertical": transfer})
        d["strip_transfer"] = dict(min=0.95, mean=0.95, cells={"objects/vertical": 0.95}, ambiguous=amb)
    return dict(diagnostics=d, stage1_history=[dict(probe_ambiguous_accuracy=probe)] if probe is not None else None)


def test_organism_expectations_follow_the_diagnostics():
    """The stated rules: vision-side claims (2, 3, 9) need the visual tokens' content to carry the order
    (shuffled >= 0.8 and a stage-1 probe >= 0.9); LM-side claims (5, 6) need the ablated accuracy clearly above
    chance; 5 also needs the ablation to remove at least half of the above-chance accuracy."""
    lm = validation.organism_expectations(_info(1.0, 0.47, 0.88))                 # the end-to-end organism
    vision = validation.organism_expectations(_info(0.99, 0.99, 0.18, probe=0.99, transfer=0.9))
    dual = validation.organism_expectations(_info(0.99, 0.95, 0.6, probe=0.99, transfer=0.8))
    verdicts = lambda e: {c: v["verdict"] for c, v in e.items()}          # noqa: E731
    assert verdicts(lm) == {2: "not supported", 3: "not supported", 5: "not supported", 6: "supported",
                            8: "supported", 9: "not testable"}
    assert verdicts(vision) == {2: "supported", 3: "supported", 5: "not supported", 6: "not supported",
                                8: "supported", 9: "supported"}
    # claim 3 needs the object tokens' code on the background at the LM input, not only strips in the tower
    # (v2's rule read the tower alone; organism-vision's projector re-encodes the background: 0.49 on Objects)
    reencoded = validation.organism_expectations(_info(0.99, 0.99, 0.18, probe=0.99, transfer=0.49))
    assert reencoded[3]["verdict"] == "not supported" and "0.49 in the worst cell (objects/vertical" in reencoded[3]["reason"]
    assert validation.organism_expectations(_info(0.99, 0.99, 0.18, probe=0.99))[3]["verdict"] == "not supported"
    # v5: T is read on the position-ambiguous background tokens only (v4 read every background strip token, 0.95
    # here, and expected supported): organism-vision reads 0.03 there on Objects/horizontal, 0.56 on all of them
    position = validation.organism_expectations(_info(0.99, 0.99, 0.18, probe=0.99, transfer=0.03))
    assert position[3]["verdict"] == "not supported" and "position-ambiguous" in position[3]["reason"]
    assert verdicts(dual) == {2: "supported", 3: "supported", 5: "supported", 6: "supported", 8: "supported",
                              9: "supported"}
    # a tower whose probe fails cannot make the vision-side claims, whatever the shuffled accuracy
    assert validation.organism_expectations(_info(0.99, 0.99, 0.2, probe=0.5))[2]["verdict"] == "not supported"


def test_committed_expectations_are_the_rules_applied_to_the_committed_diagnostics():
    import json
    spec = validation.load_expected(EXPECTED)
    for name, f in spec["organisms"].items():
        info = json.loads((REPO / f["checkpoint"] / "organism.json").read_text())
        rules = validation.organism_expectations(info)
        assert {c: e["verdict"] for c, e in f["claims"].items()} == {c: r["verdict"] for c, r in rules.items()}, name


def test_organisms_join_the_claims_table_rows():
    import pandas as pd
    spec = {"organisms": {"organism-vision": {"claims": {3: {"verdict": "supported", "reason": "r"},
                                                         6: {"verdict": "not supported", "reason": "r"}}},
                          "organism-absent": {"claims": {3: {"verdict": "supported", "reason": "r"}}}}}
    from dualmech import claims as cl
    rows = [(3, "squares", "supported"), (3, "objects", "supported"), (3, "grid2", "not supported"),
            (3, "squares_bg", "not supported"), (6, "squares", "supported"), (6, "shapes", "supported")]
    detail = pd.DataFrame([cl._row(c, "organism-vision", s, v, 0.5, (0.4, 0.6), 0.01) for c, s, v in rows])
    # the run's summary rows (here: 3 not supported, from grid2) are not what is compared
    claims = pd.concat([cl.summarise(detail), detail], ignore_index=True)
    table = validation.compare_organisms(spec, claims)
    assert table[["fixture", "claim", "expected", "observed", "agree"]].values.tolist() == [
        ["organism-vision", 3, "supported", "supported", True],
        ["organism-vision", 6, "not supported", "supported", False]]
    assert "supported in 2 of 2 tested settings" in table["note"].iloc[0]    # grid2 / squares_bg: never trained on


def test_a_blind_reading_of_the_background_is_no_relative_strip_code(tmp_path):
    """planted-absolute (a code for the canvas third) on 48 triples: the centred probe has nothing to read on the
    background and reads the outer classes 0.92 of the time, whatever the token; every conflict token's absolute
    slot is the middle one and its relative slot an outer one. Old rule (relative - absolute readings): relative
    0.46 vs absolute 0.08, p 0.03 / 0.05, claim 3 supported by its own test (v5's control gate hid it). Beyond
    the chance level the probe's own class shares give, it reads nothing."""
    spec = validation.load_expected(EXPECTED)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["probing"]
    cfg |= dict(seeds=1, bootstrap=200, strip_width=None)
    fixtures = {k: spec["fixtures"][k] for k in ("planted-none", "planted-absolute")}
    probes, units = validation.planted_probes(str(NOV26_BASE), fixtures, spec["setting"], cfg, 0, tmp_path,
                                              triples=48)
    row = probes[(probes["model"] == "planted-absolute") & (probes["site"] == "lm_input")]
    assert (row["strip_relative"] > 0.4).all() and (row["strip_relative"] > 2 * row["strip_absolute"]).all()  # raw
    claim3 = cl.claim3("planted-absolute", spec["setting"], probes)
    assert claim3["verdict"] == cl.NOT_SUPPORTED, claim3["note"]
    np.testing.assert_allclose(row["strip_relative"], row["strip_relative_chance"], atol=0.03)
    np.testing.assert_allclose(row["strip_excess"], 0, atol=0.03)
    # v8 decides at a fixed cell, where a code for the canvas third is the same in both layouts
    assert (row["strip_follow"] < 0.6).all() and (row["strip_follow_p"] > cl.ALPHA).all()


def test_a_faint_strip_code_on_the_background_is_read_at_a_fixed_cell(tmp_path):
    """A known positive with the code spread faintly: the fixtures' strip code (twice the token norm) on the
    entities, a tenth of that on the background, on the Objects setting, whose eight emoji make the object tokens'
    content vary far more than the squares'. Old rule (v7: the centred probe's argmax readings of the background
    conflict tokens, relative beyond the chance its class shares give; one probe seed, as here): relative 0.30
    (chance 0.21) against absolute 0.57, contrast beyond chance 0.09, p 0.40: not supported (three seeds: 0.03,
    p 0.56). The probe reads the entities, but its argmax on a faint background code is decided by its intercepts
    and by what else those tokens carry. At a fixed cell all of that is the same in the triple's two layouts, so
    the same probe's evidence for the strip's slot over the cell's rises wherever the code follows the entities
    (1.00 here), while the position code and the no-code fixture stay near 1/2."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["probing"]
    cfg |= dict(seeds=1, bootstrap=200, strip_width=None)
    fixtures = {"faint-strips": dict(code="strips", strength=planted.STRENGTH, background=0.1),
                "planted-absolute": dict(code="absolute"), "planted-none": dict(code="none")}
    probes, _ = validation.planted_probes(str(NOV26_BASE), fixtures, "objects", cfg, 0, tmp_path)
    verdicts = {m: cl.claim3(m, "objects", probes)["verdict"] for m in fixtures}
    assert verdicts == {"faint-strips": cl.SUPPORTED, "planted-absolute": cl.NOT_SUPPORTED,
                        "planted-none": cl.NOT_SUPPORTED}, probes
    row = probes[probes["site"] == "lm_input"].set_index(["model", "orientation"])
    assert (row.loc["faint-strips", "strip_follow"] > 0.9).all()
    assert (row.loc["planted-absolute", "strip_follow"] < 0.6).all() and (row.loc["planted-none", "strip_follow"]
                                                                          < 0.6).all()


def _known(rows):
    return pd.DataFrame([dict(fixture=f, claim=c, expected=e, observed=o, agree=e == o) for f, c, e, o in rows])


def test_a_claims_verdicts_count_only_if_its_detector_is_right_on_every_known_mechanism():
    """validation.COUNT_RULE: one wrong known answer makes none of that claim's verdicts count, whichever way the
    model under study came out; a claim no known model speaks to does not count either."""
    known = _known([("planted-strips", 3, "supported", "supported"), ("planted-none", 3, "not supported",
                    "not supported"), ("organism-dual", 3, "supported", "not supported"),
                    ("planted-strips", 9, "supported", "supported"), ("planted-none", 9, "not testable",
                    "not testable"), ("organism-lm", 8, "supported", "supported")])
    status = validation.detector_status(known).set_index("claim")
    assert list(status.index) == sorted(cl.CLAIMS)
    assert not status.loc[3, "counts"] and (status.loc[3, "known"], status.loc[3, "right"]) == (3, 2)
    assert status.loc[3, "detector"] == ("wrong on organism-dual (expected supported, observed not supported); "
                                         "right on 2 of 3")
    assert status.loc[9, "counts"]
    assert status.loc[9, "detector"] == "right on all 2 known answers (1 supported, 1 not testable)"
    assert not status.loc[1, "counts"] and status.loc[1, "detector"].startswith("no known answer")
    claims = pd.DataFrame([dict(claim=c, model=m, level=lv, verdict=v, reason="", effect=0.5, ci_low=0.4,
                                ci_high=0.6, p=0.01)
                           for c, m, lv, v in [(3, "qwen", "model", "not supported"),
                                               (3, "qwen", "setting", "supported"), (9, "qwen", "model", "supported"),
                                               (1, "qwen", "model", "supported"), (3, "gemma", "model", "supported")]])
    table = validation.verdicts(claims, validation.detector_status(known))
    assert len(table) == 4                                                      # the summary rows only
    counts = table.set_index(["model", "claim"])["counts"]
    assert not counts[("qwen", 3)] and not counts[("gemma", 3)] and counts[("qwen", 9)] and not counts[("qwen", 1)]
    shown = validation.verdicts_display(table)
    assert list(shown.columns) == ["Claim", "qwen", "gemma", "Counts", "Detector on known mechanisms"]
    assert shown.set_index("Claim").loc["3. ordering lives in strips", "Counts"] == "NO"
    assert shown.set_index("Claim").loc["9. ordering is relative, not absolute", "gemma"] == "\u2014"
