"""The DAG end to end on a tiny config: a tiny organism-shaped LLaVA checkpoint, two directions."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tinydag import REPO, make_workdir, snakemake

@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("dag"))


def test_dry_run_lists_every_job(workdir):
    out = snakemake(workdir, "-n")
    assert out.returncode == 0, out.stdout + out.stderr
    for rule in ("check_model", "stimuli", "behaviour", "table1", "fig1", "untrained_twin", "relation_stimuli",
                 "extract_activations", "relation_activations", "probes", "fig4", "probe_depth", "probe_table"):
        assert rule in out.stdout + out.stderr
    # no rule is tried on a file it cannot make (a config without organism variants: the twin's directory
    # matched train_organism's empty wildcard constraint, whose input function then failed)
    assert "Exception" not in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]


def test_full_run(workdir):
    out = snakemake(workdir)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    acc = pd.read_csv(workdir / "results/tables/table1.csv")
    assert set(acc["model"]) == {"tiny", "tiny-untrained"}
    assert set(acc["direction"]) == {"left", "above", "all"}
    assert (acc.loc[acc["direction"] == "all", "n"] == 240).all()      # 120 triples x 2 directions
    assert ((acc["ci_low"] <= acc["accuracy"]) & (acc["accuracy"] <= acc["ci_high"])).all()
    check = json.loads((workdir / "results/checks/tiny.json").read_text())
    assert check["parity_max_abs_diff"] == 0.0
    for f in ("figures/fig1_stimuli.pdf", "figures/table1_accuracy.pdf", "results/tables/table1.tex"):
        assert (workdir / f).stat().st_size > 0
    md = (workdir / "results/tables/table1.md").read_text()
    assert "| Model" in md and "tiny-untrained" in md
    probes = pd.read_csv(workdir / "results/tables/probes.csv")   # 2 models x 3 settings x 2 orientations x 5 sites
    assert set(probes["setting"]) == {"squares", "grid2", "squares_bg"}    # squares_bg: App C.8 (.test/config.yaml)
    assert len(probes) == 60 and set(probes["site"]) == {"vision_input", "vision.0", "lm_input", "resid_post.0",
                                                         "resid_post.1"}
    assert probes["acc"].between(0, 1).all() and (probes.query("setting == 'squares'")["n_ambiguous"] > 0).all()
    for f in ("figures/fig4_tiny_squares.pdf", "figures/fig4_tiny-untrained_grid2.pdf", "figures/probe_depth_tiny.pdf"):
        assert (workdir / f).stat().st_size > 0
    # the detectors give the planted fixtures' known answers in the tiny run too, on every triple (with 24 or 48,
    # claim 9's paired control test fell short of alpha for planted-strips and planted-objects, and on 48
    # planted-absolute's claim 3 was a false positive before the conflict readings were judged beyond chance)
    val = pd.read_csv(workdir / "results/tables/validation.csv")
    assert len(val) == 12 and val["agree"].all(), val.loc[~val["agree"], ["fixture", "claim", "note"]].to_string()
    # so the claims the fixtures speak to are the only ones whose verdicts count (no organism in this run)
    verdicts = pd.read_csv(workdir / "results/tables/verdicts.csv")
    assert len(verdicts) == 2 * 9 and set(verdicts["model"]) == {"tiny", "tiny-untrained"}
    assert set(verdicts.loc[verdicts["counts"], "claim"]) == {2, 3, 9}
    shown = (workdir / "results/tables/verdicts.md").read_text()
    assert "tiny-untrained" in shown and "Known answers in this run: the planted fixtures only" in shown


def _rules_after_edit(workdir: Path, tmp_path: Path, edited: str) -> set[str]:
    """The rules `snakemake -n` lists after a comment is appended to `edited` (a file under src/dualmech), in a
    copy of the workflow with its file times, so that the edit stays out of the repo."""
    code = tmp_path / "code"
    for part in ("Snakefile", "workflow", "profiles", "config", "src/dualmech"):
        (code / part).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / part).is_file():
            shutil.copy2(REPO / part, code / part)
        else:
            shutil.copytree(REPO / part, code / part, copy_function=shutil.copy2)
    # every default rerun trigger but `input`, which would fire only because the copy's code files have new paths
    # (Snakemake compares input file contents, so only a real edit, not a touch, counts as one)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(code / "Snakefile"), "--directory", str(workdir), "-n",
           "--rerun-triggers", "mtime", "code", "params", "software-env"]
    before = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert before.returncode == 0 and "Nothing to be done" in before.stdout + before.stderr, before.stdout[-2000:]
    path = code / edited
    path.write_text(path.read_text() + "\n# an edit\n")
    after = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert after.returncode == 0, after.stderr[-2000:]
    log = after.stdout + after.stderr
    assert "Job stats" in log, f"nothing reruns after editing {edited}: its outputs would stay stale"
    stats = log[log.index("Job stats"):log.index("Reasons:")]
    return set(re.findall(r"^(\w+)\s+\d+$", stats, re.M)) - {"total", "all"}


LOCAL_RULES = set(re.search(r"^localrules:\n((?:    \w+,\n)+)", (REPO / "workflow/rules/common.smk").read_text(),
                            re.M).group(1).replace(",", "").split())


def test_figure_edit_reruns_only_figure_and_table_rules(workdir, tmp_path):
    """After the tiny run, a colour change in plots/style.py makes `snakemake -n` list figure and table rules only
    (the figure code is an input of every rule that draws): no model forward is repeated."""
    rules = _rules_after_edit(workdir, tmp_path, "src/dualmech/plots/style.py")
    assert {"fig3", "fig6", "fig7", "fig9", "fig4", "probe_depth", "table1", "table5", "fig1_stimuli"} <= rules
    assert rules <= LOCAL_RULES, f"not figure or table rules: {sorted(rules - LOCAL_RULES)}"


def test_verdict_edit_regenerates_the_claims_and_validation_tables(workdir, tmp_path):
    """A changed verdict rule (dualmech/claims.py) must regenerate the claims and validation tables (and, where
    organisms are analysed, `validation_organisms`; not in the tiny DAG), and repeat no forward of the models
    under study (the planted fixtures' own validation run is one of those tables): a stale verdict is never
    kept."""
    rules = _rules_after_edit(workdir, tmp_path, "src/dualmech/claims.py")
    assert {"claims", "validation"} <= rules
    assert rules <= LOCAL_RULES | {"validation", "validation_organisms"}, sorted(rules - LOCAL_RULES)


def test_probe_statistics_edit_reruns_the_probes_and_no_model_job(workdir, tmp_path):
    """A changed probe statistic (dualmech/probing.py: claim 3's background reading, say) reruns the probes and
    everything that reads them, up to the claims, and no job that runs a model. Before the probes rule took the
    code as an input nothing reran, and the claims kept the old detector's numbers."""
    rules = _rules_after_edit(workdir, tmp_path, "src/dualmech/probing.py")
    assert {"probes", "probe_table", "fig4", "claims", "validation"} <= rules      # the fixtures are probed too
    assert rules <= LOCAL_RULES | {"probes", "validation"}, sorted(rules - LOCAL_RULES)


def test_checkpoint_metadata_edit_reruns_no_model_job(workdir):
    """A new diagnostic in a committed checkpoint's organism.json (its training record) reruns nothing, while a
    changed weight or config file reruns the model's jobs."""
    meta, config_json = workdir / "tiny/organism.json", workdir / "tiny/config.json"
    times = {f: f.stat() for f in (meta, config_json, meta.parent)}
    original = meta.read_text(), config_json.read_text()
    dry_run = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-n"]
    try:
        new = meta.with_name(".organism.json.new")               # replaced, as `git pull` does: the folder's
        new.write_text(meta.read_text().rstrip().rstrip("}") + ', "diagnostics_added_later": 1}\n')  # time moves
        os.replace(new, meta)
        out = subprocess.run(dry_run, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0 and "Nothing to be done" in out.stdout + out.stderr, out.stdout[-2000:]
        config_json.write_text(original[1] + "\n")     # an edit (Snakemake compares contents, so a touch is not)
        out = subprocess.run(dry_run, capture_output=True, text=True, timeout=600)
        log = out.stdout + out.stderr
        assert out.returncode == 0 and "Job stats" in log, log[-2000:]
        assert {"check_model", "behaviour", "extract_activations"} <= set(re.findall(r"^(\w+)\s+\d+$", log, re.M))
    finally:
        meta.write_text(original[0])
        config_json.write_text(original[1])
        for f, st in times.items():
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_rerun_is_byte_identical(workdir, tmp_path):
    first = {p: (workdir / p).read_bytes() for p in ("results/tables/table1.csv", "results/tables/table1.tex",
                                                      "results/stimuli/tiny/squares/items.parquet")}
    shutil.rmtree(workdir / "results/tables")
    shutil.rmtree(workdir / "results/stimuli")
    # only the jobs that make these files (stimuli -> behaviour -> table1, both models), rebuilt from scratch
    out = snakemake(workdir, *first, "--forcerun", "stimuli", "behaviour")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    for p, data in first.items():
        assert (workdir / p).read_bytes() == data, p


def test_bad_config_fails_before_any_job(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"models": [{"name": "x", "path": "missing"}],
                                                          "sttings": []}))
    out = snakemake(tmp_path, "-n")
    assert out.returncode != 0
    assert "'sttings' was unexpected" in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()
