"""What'sUp in Table 1 (paper §3.5, §5.1) on self-made What'sUp-format photos; with no data configured the
column is skipped and the run says so."""
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

from dualmech import behaviour, naturalistic as nat, organism, paper, tables
from dualmech.models import ModelSpec, load
from dualmech.tiny import make_tiny

REPO = Path(__file__).resolve().parents[1]
# side objects the tiny word-level vocabulary names in one token (apple, hat, key) and one it cannot (bowl)
PHOTOS = {f"{o}_{rel}_of_{ref}.jpeg": (40 * k, 200 - 30 * k, 90)
          for k, (o, ref) in enumerate([("apple", "chair"), ("hat", "chair"), ("bowl", "chair"), ("key", "table"),
                                        ("apple", "table")])
          for rel in ("left", "right")}


def _photos(root: Path) -> Path:
    d = root / "controlled_images"
    d.mkdir(parents=True)
    for name, colour in PHOTOS.items():
        Image.new("RGB", (48, 40), colour).save(d / name, format="JPEG", quality=95)
    return root


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    return load(ModelSpec(name="llava", path=str(make_tiny("llava", tmp_path_factory.mktemp("ckpt") / "llava"))),
                device="cpu")


def test_table1_whatsup_column(llava, tmp_path):
    root = _photos(tmp_path / "whatsup")
    items = nat.whatsup_items(root, llava.geometry, tmp_path / "out", llava.is_one_token_name, strict=False)
    # bowl is not one token for this tokenizer: chair keeps apple/hat, table keeps key/apple; 2 composites x 2 each
    assert len(items) == 8 and set(items["direction"]) == {"left", "right"}
    assert set(items[["e0", "e2"]].stack()) == {"apple", "hat", "key"}
    assert items.groupby("reference").size().to_dict() == {"chair": 4, "table": 4}
    preds = behaviour.predict(llava, items.assign(model="llava"), tmp_path / "out")
    assert len(preds) == 8 and preds["correct"].dtype == bool
    assert (preds["correct"] == (preds["prediction"].map(behaviour.normalise) == preds["answer"])).all()
    canonical = pd.DataFrame(dict(model=["llava", "other"], setting="squares", direction="left", correct=[True, False]))
    acc = behaviour.accuracy_table(pd.concat([canonical, preds[["model", "setting", "direction", "correct"]]]))
    shown = tables.table1_display(acc).set_index("Model")
    assert list(shown.columns) == ["Squares", "Whatsup"]
    assert shown.loc["other", "Whatsup"] == "\u2014"                 # a model without What'sUp items
    mine = acc[(acc["setting"] == "whatsup") & (acc["direction"] == "all")].iloc[0]
    assert mine["accuracy"] == pytest.approx(preds["correct"].mean())
    # a model that names none of the side objects: an empty table with the columns, not a crash
    none = nat.whatsup_items(root, llava.geometry, tmp_path / "none", lambda w: False, strict=False)
    assert none.empty and list(none.columns) == nat.WHATSUP_COLUMNS
    with pytest.raises(nat.DataError, match="no What'sUp composite left"):
        nat.whatsup_items(root, llava.geometry, tmp_path / "none", lambda w: False)


def test_published_rows_say_why_whatsup_is_missing():
    published = {"table1": {"v2": {"qwen2vl-7b": {"squares": 1.0, "whatsup": 0.73}}},
                 "probes": {"v2": {"qwen2vl-7b": {"whatsup": {"horizontal": 0.951}}}}}
    t1 = pd.DataFrame(dict(model=["qwen2vl-7b"], setting=["squares"], direction=["all"], accuracy=[1.0],
                           ci_low=[0.99], ci_high=[1.0]))
    out = paper.published_vs_regenerated(published, "v2", ["qwen2vl-7b"], table1=t1,
                                         skipped={"Table 1": {"whatsup": "not run: data.whatsup_dir is not set"},
                                                  "Probes": {"whatsup": "not built"}}).set_index("item")
    assert out.loc["whatsup", "status"] == "not run"
    assert out.loc["whatsup", "note"] == "not run: data.whatsup_dir is not set"
    assert out.loc["squares", "note"] == ""
    assert out.loc["whatsup horizontal", "note"] == "not built" and out.loc["whatsup horizontal", "status"] == "not run"
    t1w = pd.concat([t1, t1.assign(setting="whatsup", accuracy=0.7, ci_low=0.6, ci_high=0.8)])
    ran = paper.published_vs_regenerated(published, "v2", ["qwen2vl-7b"], table1=t1w).set_index("item")
    assert ran.loc["whatsup", "status"] == "published inside our CI" and ran.loc["whatsup", "ours"] == 0.7


def _dry_run(workdir: Path, data: dict, *targets: str) -> str:
    spec = organism.OrganismSpec(8, 8, 2, 0, 32, 1, 2, 32, 2, 2, 0.16)
    organism.save(organism.build_model(spec, 0), spec, workdir / "tiny", {"note": "random weights"})
    cfg = dict(models=[dict(name="tiny", path="tiny")], settings=["squares"], directions=["left", "right"],
               grids=[2], data=data)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores",
           "1", "-n", "results/tables/table1.md", "results/tables/published_vs_regenerated.md", *targets]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_dag_adds_whatsup_to_table1_only_with_data(tmp_path):
    with_data = _dry_run(tmp_path / "a", {"whatsup_dir": str(_photos(tmp_path / "whatsup"))}, "fig3", "fig6", "fig7")
    assert "results/behaviour/tiny/whatsup.parquet" in with_data
    for fig in (3, 6, 7):
        assert f"figures/fig{fig}_tiny_whatsup.pdf" in with_data
    assert "figures/fig9_tiny_whatsup.pdf" not in with_data          # no ordering ablation on photos (paper §5.5)
    assert "results/stimuli/tiny/whatsup/items.parquet" in with_data
    without = _dry_run(tmp_path / "b", {})
    assert "results/behaviour/tiny/whatsup.parquet" not in without and "stimuli/tiny/whatsup" not in without
    assert ("data.whatsup_dir is not set: What'sUp is skipped in Table 1, Figs 3, 6, 7 (App C.1, C.3) and the App "
            "C.7 probes" in without)


def test_dag_adds_whatsup_to_the_patching_summary_and_the_claims(tmp_path):
    """With data, the patching summary reads What'sUp's last-token curves and criss-cross tests, and the claims
    rule its sweeps (claims 1 and 4); without, neither asks for them."""
    targets = ("results/tables/patching_summary.md", "results/tables/claims.md")
    with_data = _dry_run(tmp_path / "a", {"whatsup_dir": str(_photos(tmp_path / "whatsup"))}, *targets)
    for f in ("last_token_curves", "criss_cross_stats", "last_token", "criss_cross"):
        assert f"results/patching/tiny/whatsup/{f}.parquet" in with_data
    assert "(with What'sUp)" in with_data
    without = _dry_run(tmp_path / "b", {}, *targets)
    assert "tiny/whatsup" not in without and "(with What'sUp)" not in without


# ================================================================== Figs 3/6/7 on What'sUp
def test_whatsup_regions_come_from_the_one_data_file():
    assert nat.WHATSUP_BOXES == {"chair": ((48, 60, 12, 24), (16, 60, 24, 40), (48, 60, 40, 52)),
                                 "table": ((40, 60, 8, 16), (20, 60, 16, 48), (40, 60, 48, 56)),
                                 "armchair": ((52, 60, 8, 20), (24, 60, 20, 44), (52, 60, 44, 56))}
    g = 12
    for ref in nat.WHATSUP_REFERENCES:
        left, middle, right = nat.whatsup_slot_cells(ref, g)
        a, b = nat.whatsup_swap_regions(ref, g, "object")
        assert set(a) <= set(left) and set(b) <= set(right) and len(a) == len(b) > 0
        shift = {q - p for p, q in zip(a, b)}
        assert len(shift) == 1                                       # paired cell by cell by one column shift
        sa, sb = nat.whatsup_swap_regions(ref, g, "strip")
        ref_cols = {c % g for c in middle}
        assert max(c % g for c in sa) < min(ref_cols) and min(c % g for c in sb) > max(ref_cols)
        assert {c // g for c in sa} == set(range(g))                 # full-height columns
    assert nat.whatsup_swap_regions("chair", 12, "strip")[0][:4] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="unknown region kind"):
        nat.whatsup_swap_regions("chair", 12, "blob")


def test_whatsup_pairs_and_swaps(llava, tmp_path, monkeypatch):
    from dualmech import pairs, patching
    root = _photos(tmp_path / "whatsup")
    index = nat.whatsup_index(root)
    assert pairs.whatsup_tuples(llava, index, "criss_cross", "left", 0, 100) == []   # no reference is one token
    empty = pairs.build_whatsup(llava, root, ["left", "right"], 0, 2, 4, tmp_path / "none")["criss_cross"]
    assert empty.empty and pairs.golden(empty).columns.equals(empty.columns)     # still filterable downstream
    assert patching.pair_counts(empty, ["left", "right"]) == {"left": 0, "right": 0}
    # the tiny vocabulary has no word for the references: let two of its unused words stand for them
    real = llava.token_ids
    monkeypatch.setattr(llava, "token_ids", lambda w: real({"chair": "circle", "table": "star"}.get(w, w)))
    order = pairs.whatsup_tuples(llava, index, "last_token", "left", 0, 100)
    assert order == pairs.whatsup_tuples(llava, index, "last_token", "left", 0, 100)
    cc = pairs.whatsup_tuples(llava, index, "criss_cross", "left", 0, 100)
    # per reference: ordered pairs of its one-token side objects (chair: apple, hat; table: apple, key)
    assert sorted((t[0].name, t[1].name, t[2].name) for t in cc) == [
        ("apple", "chair", "hat"), ("apple", "table", "key"), ("hat", "chair", "apple"), ("key", "table", "apple")]
    assert order == []                                               # 5-tuples need four side objects
    tables_ = pairs.build_whatsup(llava, root, ["left", "right", "above"], 0, 2, 4, tmp_path / "img")
    assert tables_["last_token"].empty or set(tables_["last_token"]["direction"]) <= {"left", "right"}
    df = tables_["criss_cross"]
    assert set(df["direction"]) == {"left", "right"} and (df["c1"].isin(["chair", "table"])).all()
    r = df[df["direction"] == "left"].iloc[0]
    assert r.clean_prompt == f"The object on the floor to the left of the {r.c1} is a(n) "
    assert json.loads(r.clean_scene) == [r.c0, r.c1, r.c2] and json.loads(r.cf_scene) == [r.c2, r.c1, r.c0]
    expect = nat.whatsup_composite(Image.open(index[r.c1][r.c0]["left"]), Image.open(index[r.c1][r.c2]["right"]),
                                   llava.geometry.canvas_px)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "img" / r.clean_image).convert("RGB")), np.asarray(expect))
    # the swaps use the pair's reference regions (random weights: run on every attempted pair)
    sweep = patching.criss_cross(llava, "llava", df, tmp_path / "img", None, 1, 0,
                                 variants=patching.whatsup_criss_cross_variants(llava.geometry, 1, 0)[:2])
    assert set(sweep["kind"]) == {"object", "strip", "object_null", "strip_null"}
    assert set(sweep["pair"]) == set(df["pair"])
    regions = patching.whatsup_region_table(llava.geometry, 1, 0, df).set_index(["pair", "kind"])
    for p in df.itertuples():
        a, b = nat.whatsup_swap_regions(p.c1, llava.geometry.grid, "strip")
        assert json.loads(regions.loc[(p.pair, "strip"), "a"]) == a and json.loads(regions.loc[(p.pair, "strip"), "b"]) == b
        boxes = {i for cells in nat.whatsup_slot_cells(p.c1, llava.geometry.grid) for i in cells}
        null = json.loads(regions.loc[(p.pair, "object_null"), "a"]) + json.loads(regions.loc[(p.pair, "object_null"), "b"])
        assert not set(null) & boxes


# ================================================================== App C.7 probes
def test_whatsup_labels_and_probes(llava, tmp_path):
    from dualmech import extraction, probing
    root = _photos(tmp_path / "whatsup")
    items = nat.whatsup_items(root, llava.geometry, tmp_path / "out", llava.is_one_token_name)
    images = items.drop_duplicates("image").reset_index(drop=True)
    g, n = llava.geometry, llava.geometry.grid
    ids = {e: i for i, e in enumerate(sorted(set(images[["e0", "e1", "e2"]].to_numpy().ravel())))}
    labels = probing.whatsup_labels(images, g, ids)
    assert labels.obj.shape == (len(images), n * n) and labels.k == 3
    for i, r in images.iterrows():
        left, middle, right = nat.whatsup_slot_cells(r.reference, n)
        shared = set(left) & set(middle) | set(right) & set(middle)
        for k, cells in enumerate((left, middle, right)):
            own = [c for c in cells if c not in shared]
            assert (labels.obj[i, own] == k).all() and (labels.entity[i, own] == ids[r[f"e{k}"]]).all()
        assert (labels.obj[i, list(shared)] == -1).all() and not labels.strip[i, list(shared)].any()
        left_cols = {c % n for c in left}
        bg = np.flatnonzero(labels.obj[i] < 0)
        assert all(labels.strip[i, c, 0] == ((c % n) in left_cols and c not in shared) for c in bg)
        assert not labels.strip[i][labels.obj[i] >= 0].any()
    store = extraction.ActivationStore(tmp_path / "acts")
    extraction.extract(llava, images[["image", "image_sha256"]], tmp_path / "out", store, ["lm_input"], desc="t")
    cfg = dict(seeds=1, test_fraction=0.25, C=1.0, bootstrap=20, permutations=10, strip_width=None)
    metrics, arrays, _ = probing.probe_setting("whatsup", g, {"horizontal": (items, store)}, {}, cfg, 0)
    assert list(metrics["orientation"]) == ["horizontal"] and list(metrics["site"]) == ["lm_input"]
    assert 0 <= metrics["acc"].iloc[0] <= 1 and arrays["horizontal/lm_input"].shape == (3, n, n)
    assert (arrays["horizontal/objects"].reshape(-1) == labels.obj[0]).all()


def test_whatsup_labels_leave_cells_two_boxes_claim_to_neither():
    """On Qwen2-VL's 12 x 12 grid the chair's left box and the chair share column 4 (centre 0.375 = 24/64)."""
    from dualmech import probing
    from dualmech.stimuli import Geometry
    g = Geometry(12, 28, 2, 2)
    cells = nat.whatsup_slot_cells("chair", 12)
    shared = sorted(set(cells[0]) & set(cells[1]))
    assert shared and all(c % 12 == 4 for c in shared)
    images = pd.DataFrame(dict(cells=[json.dumps(cells)], e0=["apple"], e1=["chair"], e2=["hat"]))
    lab = probing.whatsup_labels(images, g, {"apple": 0, "chair": 1, "hat": 2})
    assert (lab.obj[0, shared] == -1).all() and not lab.strip[0, shared].any()
    only_left = [c for c in cells[0] if c not in shared]
    assert (lab.obj[0, only_left] == 0).all() and (lab.entity[0, only_left] == 0).all()
