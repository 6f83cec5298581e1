"""Workflow hygiene: profiles, cluster resources, DAG parsing without the ML stack, the generated config doc."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dualmech import config_doc, resources
from tinydag import REPO, make_workdir

RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n(.*?)(?=^\S|\Z)", re.S | re.M)
USE_RULE = re.compile(r"^use rule (\w+) as (\w+) with:\n(.*?)(?=^\S|\Z)", re.S | re.M)


def rules() -> dict[str, str]:
    """rule name -> its body, from every rule file; a `use rule A as B with:` variant's body is A's followed by
    what it changes (so it has A's script and resources)."""
    text = "\n".join(f.read_text() for f in sorted((REPO / "workflow/rules").glob("*.smk")))
    bodies = {m.group(1): m.group(2) for m in RULE.finditer(text)}
    return bodies | {m.group(2): bodies[m.group(1)] + m.group(3) for m in USE_RULE.finditer(text)}


def runs_a_model(body: str) -> bool:
    script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+\.py)"', body)
    return bool(script) and "models.load(" in (REPO / "workflow/scripts" / script.group(1)).read_text()


def profile(name: str) -> dict:
    return yaml.safe_load((REPO / "profiles" / name / "profile.yaml").read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("profiles"))


def test_model_rules_ask_for_a_gpu_and_model_sized_memory_and_nothing_else_does():
    model_rules = {r for r, body in rules().items() if runs_a_model(body)}
    assert {"behaviour", "extract_activations", "amplify", "check_model"} <= model_rules
    for r, body in rules().items():
        assert ("mem_mb=model_mem_mb" in body) == (r in model_rules or r == "untrained_twin"), r
    for name, request in (("slurm-gpus", {"gpu": 1}), ("slurm-gres", {"gres": "gpu:1"}), ("slurm-cpu", {})):
        p = profile(name)
        assert p["executor"] == "slurm" and p["slurm-status-command"] == "squeue"
        asks_gpu = {r for r, res in p["set-resources"].items() if request and request.items() <= res.items()}
        assert asks_gpu == (model_rules if request else set()), name
        assert not any({"gpu", "gres"} & set(res) for res in p["set-resources"].values()) or request
        assert "gpu" not in p["default-resources"] and "gres" not in p["default-resources"]
    assert set(profile("slurm-cpu")["set-threads"]) == model_rules


def test_train_organism_is_submittable_without_a_core_count():
    body = rules()["train_organism"]
    assert re.search(r"threads: \d+", body) and "workflow.cores" not in body


def test_organisms_train_on_the_thread_count_their_checkpoints_record():
    """The thread count changes the order of floating-point sums and with it the training trajectory (organism-dual
    retrained on two threads missed its bars after 8,000 steps), so the training rules ask for the one thread the
    committed checkpoints were trained on; `make organisms` then reproduces them, whatever --cores says."""
    for rule in ("pretrain_vision", "train_organism"):
        assert re.search(r"^\s*threads: 1\b", rules()[rule], re.M), rule
    recorded = {p.parent.name: json.loads(p.read_text()).get("threads")
                for p in (REPO / "models").glob("*/organism.json")}
    assert {n: t for n, t in recorded.items() if t is not None} == {"organism-lm": 1, "organism-vision": 1,
                                                                     "organism-dual": 1}


def test_model_memory_scales_with_the_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    with open(ckpt / "model.safetensors", "wb") as f:     # 2 GiB of bf16 weights: 2**30 parameters (sparse file)
        f.truncate(2**31)
    (ckpt / "config.json").write_text("{}")
    assert resources.model_mem_mb({"path": str(ckpt), "dtype": "float32"}) == 4096 + int(1.25 * 4096)
    assert resources.model_mem_mb({"path": str(ckpt), "dtype": "bfloat16"}) == 4096 + int(1.25 * 2048)
    assert resources.model_mem_mb({"path": str(ckpt), "dtype": "bfloat16"}, attempt=2) == 2 * (4096 + 2560)
    assert resources.model_mem_mb({"path": str(tmp_path / "not-built-yet")}) == 4096
    assert resources.model_mem_mb({"path": str(REPO / "models/organism-lm"), "dtype": "float32"}) < 8000


def test_dry_run_needs_no_torch_and_loads_the_default_profile(workdir):
    """`snakemake -n` on a login node with snakemake but without the ML stack (imports of torch/transformers fail);
    the default profile is picked up without being named."""
    no_ml = ("import sys; sys.modules.update(torch=None, transformers=None); sys.argv[0] = 'snakemake'; "
             "from snakemake.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", no_ml, "-s", str(REPO / "Snakefile"), "-n", "--quiet", "rules"],
                         cwd=workdir, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "extract_activations" in out.stdout + out.stderr
    assert f"Using workflow specific profile {REPO / 'profiles/default'}" in out.stdout + out.stderr


def test_config_readme_describes_every_schema_key():
    committed = (REPO / "config/README.md").read_text()
    assert committed == config_doc.render(), "regenerate: python -m dualmech.config_doc > config/README.md"
    for key in ("seed", "models[]/dtype", "probing/bootstrap", "patching/pairs_per_direction", "organism/train/lr"):
        assert f"| `{key}` |" in committed
