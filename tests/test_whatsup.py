"""What'sUp in Table 1 (paper §3.5, §5.1) on self-made What'sUp-format photos; with no data configured the
column is skipped and the run says so."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    published = {"table1": {"v2": {"qwen2vl-7b": {"squares": 1.0, "whatsup": 0.73}}}}
    t1 = pd.DataFrame(dict(model=["qwen2vl-7b"], setting=["squares"], direction=["all"], accuracy=[1.0],
                           ci_low=[0.99], ci_high=[1.0]))
    out = paper.published_vs_regenerated(published, "v2", ["qwen2vl-7b"], table1=t1,
                                         skipped={"whatsup": "not run: data.whatsup_dir is not set"}).set_index("item")
    assert out.loc["whatsup", "status"] == "not run"
    assert out.loc["whatsup", "note"] == "not run: data.whatsup_dir is not set"
    assert out.loc["squares", "note"] == ""
    t1w = pd.concat([t1, t1.assign(setting="whatsup", accuracy=0.7, ci_low=0.6, ci_high=0.8)])
    ran = paper.published_vs_regenerated(published, "v2", ["qwen2vl-7b"], table1=t1w).set_index("item")
    assert ran.loc["whatsup", "status"] == "published inside our CI" and ran.loc["whatsup", "ours"] == 0.7


def _dry_run(workdir: Path, data: dict) -> str:
    spec = organism.OrganismSpec(8, 8, 2, 0, 32, 1, 2, 32, 2, 2, 0.16)
    organism.save(organism.build_model(spec, 0), spec, workdir / "tiny", {"note": "random weights"})
    cfg = dict(models=[dict(name="tiny", path="tiny")], settings=["squares"], directions=["left", "right"],
               grids=[2], data=data)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores",
           "1", "-n", "results/tables/table1.md", "results/tables/published_vs_regenerated.md"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_dag_adds_whatsup_to_table1_only_with_data(tmp_path):
    with_data = _dry_run(tmp_path / "a", {"whatsup_dir": str(_photos(tmp_path / "whatsup"))})
    assert "results/behaviour/tiny/whatsup.parquet" in with_data
    assert "results/stimuli/tiny/whatsup/items.parquet" in with_data
    without = _dry_run(tmp_path / "b", {})
    assert "results/behaviour/tiny/whatsup.parquet" not in without and "stimuli/tiny/whatsup" not in without
    assert "data.whatsup_dir is not set: the What'sUp column of Table 1 is skipped" in without
