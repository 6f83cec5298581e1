"""The realistic-background control (paper App C.8): canonical layouts on photo-like backgrounds, procedural from the
root seed or from a directory of photos, through the probes, the criss-cross pairs and the claims."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from dualmech import claims as cl
from dualmech import models, organism, pairs
from dualmech.config import ConfigError, validate
from dualmech.stimuli import Geometry, backgrounds as bg, relation_items, render_scene
from dualmech.tiny import make_tiny

REPO = Path(__file__).resolve().parents[1]
G = Geometry(7, 16, 1, 1)


def test_procedural_bank_is_seeded_and_blended():
    a, b = bg.procedural(0, 112, 4, 1.0), bg.procedural(0, 112, 4, 1.0)
    assert len(a.images) == 4 and a.images[0].shape == (112, 112, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))            # a pure function of the seed
    assert not np.array_equal(a.images[0], bg.procedural(1, 112, 4, 1.0).images[0])
    assert not np.array_equal(a.images[0], a.images[1])
    assert a.images[0].std() > 20                                                     # a texture, not a flat tone
    assert np.array_equal(bg.procedural(0, 112, 4, 0.0).images[2], np.full((112, 112, 3), 255.0))
    half = bg.procedural(0, 112, 4, 0.5).images[1]
    assert np.allclose(half, 0.5 * 255 + 0.5 * a.images[1])
    # a scene's background depends on its set of entities and orientation, not their order
    assert a.for_scene(["red", "green", "blue"], "horizontal") is a.for_scene(["blue", "green", "red"], "horizontal")
    picks = {id(a.for_scene([f"e{k}", "x", "y"], "horizontal")) for k in range(40)}
    assert len(picks) == 4                                                            # every field gets used


def test_relation_items_on_backgrounds(tmp_path):
    bank = bg.procedural(0, G.canvas_px, 3, 1.0)
    items = relation_items("squares", G, "standard", tmp_path / "bg", directions=["left", "above"], backgrounds=bank)
    white = relation_items("squares", G, "standard", tmp_path / "w", directions=["left", "above"])
    cols = ["item", "direction", "e0", "e1", "e2", "answer", "prompt", "slots", "image"]
    pd.testing.assert_frame_equal(items[cols], white[cols])      # same items, prompts and layouts; other pixels
    r = items.iloc[0]
    img = np.asarray(Image.open(tmp_path / "bg" / r.image).convert("RGB")).astype(int)
    ref = np.asarray(Image.open(tmp_path / "w" / r.image).convert("RGB")).astype(int)
    back = np.rint(bank.for_scene([r.e0, r.e1, r.e2], r.orientation)).astype(int)
    slots = json.loads(r.slots)
    mask = np.zeros(img.shape[:2], bool)
    for row, col in slots:
        mask[row * 16:row * 16 + 16, col * 16:col * 16 + 16] = True
    assert np.array_equal(img[~mask], back[~mask])                       # the background outside the objects
    opaque = (ref != 255).any(-1) & mask
    assert opaque.sum() > 100 and np.array_equal(img[opaque], ref[opaque])   # the entities unchanged on top


def test_backgrounds_from_a_photo_directory(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    photo = np.zeros((40, 80, 3), np.uint8)
    photo[:, :20], photo[:, 20:60], photo[:, 60:] = (255, 0, 0), (0, 200, 0), (0, 0, 255)
    Image.fromarray(photo).save(d / "b.png")
    Image.new("RGB", (30, 30), (10, 20, 30)).save(d / "a.JPG")
    (d / "notes.txt").write_text("not an image")
    bank = bg.from_directory(d, 0, 56, 1.0)
    assert len(bank.images) == 2 and "2 images" in bank.source
    assert np.allclose(bank.images[0], (10, 20, 30))                     # sorted by name: a.JPG first
    assert np.allclose(bank.images[1], (0, 200, 0))                      # centre square of the wide photo
    assert bg.load(dict(image_dir=str(d), count=9, blend=1.0), 0, 56).source == bank.source
    assert len(bg.load(dict(image_dir=None, count=9, blend=1.0), 0, 56).images) == 9
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no .jpg/.jpeg/.png image in"):
        bg.image_files(empty)
    cfg = {"models": [{"name": "m", "path": "models/organism-lm"}], "backgrounds": {"image_dir": str(empty)}}
    with pytest.raises(ConfigError, match="no .jpg/.jpeg/.png image in"):
        validate(cfg, REPO, check_models=False)
    assert validate(dict(cfg, backgrounds={"image_dir": str(d)}), REPO, check_models=False)["backgrounds"] == dict(
        image_dir=str(d), settings=[], count=16, blend=0.5)


def test_setting_names():
    assert bg.base_setting("squares_bg") == "squares" and bg.base_setting("squares") is None
    assert bg.background_settings(["squares", "objects"]) == ["squares_bg", "objects_bg"]


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    path = make_tiny("llava", tmp_path_factory.mktemp("ckpt") / "llava")
    return models.load(models.ModelSpec(name="llava", path=str(path)), device="cpu")


def test_pairs_on_backgrounds(llava, tmp_path):
    """The setting's tuples in its seeded order and its prompts; clean and cf scenes on one background."""
    bank = bg.procedural(0, llava.geometry.canvas_px, 5, 1.0)
    on_bg = pairs.build_all(llava, "squares", ["left", "above"], 0, 3, 12, tmp_path / "bg", designs=("criss_cross",),
                            backgrounds=bank)["criss_cross"]
    white = pairs.build_all(llava, "squares", ["left", "above"], 0, 3, 12, tmp_path / "w",
                            designs=("criss_cross",))["criss_cross"]
    assert (on_bg["setting"] == "squares_bg").all() and on_bg["pair"].str.startswith("squares_bg-criss_cross-").all()
    assert list(on_bg["pair"].str.replace("squares_bg", "squares", n=1)) == list(white["pair"])
    same = ["c0", "c1", "c2", "clean_prompt", "cf_prompt", "clean_image", "cf_image", "direction"]
    pd.testing.assert_frame_equal(on_bg[same], white[same])
    g = llava.geometry
    for r in on_bg.itertuples():
        clean = np.asarray(Image.open(tmp_path / "bg" / r.clean_image).convert("RGB"))
        cf = np.asarray(Image.open(tmp_path / "bg" / r.cf_image).convert("RGB"))
        mask = np.zeros(clean.shape[:2], bool)
        for row, col in g.canonical_layout(r.orientation):
            y, x = row * g.px_per_token, col * g.px_per_token
            mask[y:y + g.object_px, x:x + g.object_px] = True
        assert np.array_equal(clean[~mask], cf[~mask])                  # the same background, only the order moves
        assert not (clean[~mask] == 255).all()
    pool = {e.name: e for e in pairs.pool(llava, "squares")}
    scene = tuple(pool[n] for n in json.loads(on_bg["clean_scene"].iloc[0]))
    expect = render_scene(scene, g.canonical_layout(on_bg["orientation"].iloc[0]), g,
                          bank.for_scene([e.name for e in scene], on_bg["orientation"].iloc[0]))
    got = Image.open(tmp_path / "bg" / on_bg["clean_image"].iloc[0]).convert("RGB")
    assert np.array_equal(np.asarray(got), np.asarray(expect))


def _stats(setting: str, strip_rate: float, object_rate: float, n: int = 40) -> pd.DataFrame:
    rows = []
    for kind, rate in (("strip", strip_rate), ("object", object_rate)):
        rows.append(dict(model="m", setting=setting, kind=kind, direction="all", site="lm_input", site_index=0,
                         site_label="Embed", n_pairs=n, testable=True, flip_rate=rate, flip_ci_low=rate - 0.1,
                         flip_ci_high=rate + 0.1, null_flip_rate=0.0, p_flip=1e-6 if rate > 0.5 else 1.0,
                         p_flip_holm=1e-6 if rate > 0.5 else 1.0, significant=rate > 0.5))
    return pd.DataFrame(rows)


def _sweep(strip_flips: int, object_flips: int, n: int = 40) -> pd.DataFrame:
    rows = []
    for kind, k in (("strip", strip_flips), ("object", object_flips)):
        rows += [dict(kind=kind, candidate="c2", site_index=0, draw=0, direction="left", pair=f"p{i}",
                      flipped=i < k) for i in range(n)]
    return pd.DataFrame(rows)


def test_background_settings_get_their_own_claim_rows():
    """Claims 3 and 4 on `<setting>_bg` (App C.8), claim 1 and 4 on What'sUp's sweeps; no claim 9 row on the
    backgrounds (no shifted control there)."""
    probes = pd.DataFrame([dict(model="m", setting=s, orientation=o, site="lm_input", acc=1.0, acc_lo=0.95,
                                strip_score=0.4, strip_lo=0.3, strip_hi=0.5, strip_p=0.005)
                           for s in ("squares", "squares_bg") for o in ("horizontal", "vertical")])
    ev = cl.Evidence(probes=probes,
                     criss_cross_stats={("m", "squares"): _stats("squares", 0.9, 0.0),
                                        ("m", "squares_bg"): _stats("squares_bg", 0.8, 0.0),
                                        ("m", "whatsup"): _stats("whatsup", 0.0, 0.0)},
                     criss_cross={("m", "squares"): _sweep(36, 0), ("m", "squares_bg"): _sweep(32, 0),
                                  ("m", "whatsup"): _sweep(0, 0)})
    out = cl.evaluate(ev, ["m"], ["squares"], min_pairs=10)
    rows = out[out["level"] == "setting"].set_index(["claim", "setting"])
    assert rows.loc[(4, "squares_bg"), "verdict"] == cl.SUPPORTED
    assert rows.loc[(4, "squares_bg"), "effect"] == pytest.approx(0.8)
    assert rows.loc[(4, "whatsup"), "verdict"] == cl.NOT_SUPPORTED
    assert rows.loc[(3, "squares_bg"), "verdict"] == cl.SUPPORTED
    assert (9, "squares_bg") not in rows.index and (9, "squares") in rows.index
    assert (5, "squares_bg") not in rows.index and (8, "whatsup") not in rows.index   # only where evidence exists
    summary = out[(out["level"] == "model") & (out["claim"] == 4)].iloc[0]
    assert summary["verdict"] == cl.NOT_SUPPORTED and summary["setting"] == "all"
    assert "supported in 2 of 3 tested settings" in summary["note"]
    assert "App C.8" in cl.CLAIMS[9].statement and "not part of this pipeline" not in cl.CLAIMS[9].statement


def _dry_run(workdir: Path, cfg: dict, *targets: str) -> str:
    spec = organism.OrganismSpec(8, 8, 2, 0, 32, 1, 2, 32, 2, 2, 0.16)
    organism.save(organism.build_model(spec, 0), spec, workdir / "tiny", {"note": "random weights"})
    base = dict(models=[dict(name="tiny", path="tiny")], settings=["squares"], directions=["left", "right"], grids=[2])
    (workdir / "config.yaml").write_text(yaml.safe_dump(base | cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores",
           "1", "-n", *targets]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_dag_runs_the_background_control_when_asked_and_says_when_it_is_off(tmp_path):
    on = _dry_run(tmp_path / "on", {"backgrounds": {"settings": ["squares"]}}, "results/tables/patching_summary.md",
                  "results/tables/probes.md", "fig6")
    for f in ("results/patching/tiny/squares_bg/criss_cross_stats.parquet", "results/probes/tiny/squares_bg.parquet",
              "figures/fig6_tiny_squares_bg.pdf", "results/stimuli/tiny/squares_bg/items.parquet"):
        assert f in on
    assert "results/patching/tiny/squares_bg/last_token" not in on    # App C.8: probes and criss-cross swaps only
    assert "squares_bg_shifted" not in on
    off = _dry_run(tmp_path / "off", {}, "results/tables/patching_summary.md")      # the default
    assert "squares_bg" not in off
    assert "backgrounds.settings is empty: the realistic-background control (App C.8) is skipped" in off
