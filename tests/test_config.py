"""Config validation: defaults, unknown keys, types, missing model paths; one clear message each."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from dualmech.config import ConfigError, controls, load, read_yaml, validate

BASE = {"models": [{"name": "m", "path": "."}]}


def test_defaults_filled_and_twin_added(tmp_path):
    cfg = validate({"models": [{"name": "m", "path": str(tmp_path), "untrained_twin": True}]}, check_models=False)
    assert cfg["seed"] == 0 and cfg["settings"] == ["squares", "shapes", "objects"]
    assert cfg["organism"]["train"]["target_accuracy"] == 0.95
    assert cfg["models"][0]["dtype"] == "float32" and cfg["models"][0]["geometry"] == {}
    twin = cfg["models"][1]
    assert twin["name"] == "m-untrained" and twin["path"] == "results/models/m-untrained" and twin["twin_of"] == "m"


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c.update(bogus=1), "'bogus' was unexpected"),
    (lambda c: c["models"][0].update(dtype="int8"), "models/0/dtype: 'int8' is not one of"),
    (lambda c: c["models"][0].update(family="idefics"), "models/0/family"),
    (lambda c: c.update(settings=["squares", "circles"]), "settings/1"),
    (lambda c: c.update(models=[]), "models: [] should be non-empty"),
    (lambda c: c["models"][0].update(name="a/b"), "models/0/name"),
    (lambda c: c.update(organism={"train": {"lr": -1}}), "organism/train/lr"),
    (lambda c: c["models"][0].update(path="no/such/dir/here"), "'no/such/dir/here' is neither an existing directory"),
    (lambda c: c["models"][0].update(path="nobody/no-such-model"), "nor a Hugging Face id in the local cache"),
    (lambda c: c["models"].append({"name": "m", "path": "."}), "duplicate name(s) ['m']"),
    (lambda c: c["models"][0].update(control="m-untrained"), "models/m/control: 'm-untrained' is not another model"),
    (lambda c: c["models"][0].update(control="m"), "models/m/control: 'm' is not another model of this run"),
])
def test_bad_config_is_rejected_with_the_key_named(mutate, message):
    cfg = copy.deepcopy(BASE)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value)


def test_controls_are_declared_or_the_own_twin(tmp_path):
    cfg = validate({"models": [{"name": "a", "path": str(tmp_path), "untrained_twin": True},
                               {"name": "b", "path": str(tmp_path), "control": "a-untrained"},
                               {"name": "c", "path": str(tmp_path)}]}, check_models=False)
    assert controls(cfg) == {"a": "a-untrained", "b": "a-untrained"}     # c has none; the twin has none


def test_repository_config_is_valid():
    cfg = load("config.yaml")
    assert [m["name"] for m in cfg["models"]] == ["organism-lm", "organism-vision", "organism-dual",
                                                  "organism-lm-untrained"]
    # one untrained twin, the control of all three organisms (same architecture and seed)
    assert controls(cfg) == {m: "organism-lm-untrained" for m in ("organism-lm", "organism-vision", "organism-dual")}
    assert cfg["grids"] == [] and cfg["backgrounds"]["settings"] == []
    assert cfg["amplification"]["synthetic"]["models"] == []
    # make reproduce-full, and the paper's checkpoints: Table 2 and App C.6 / C.8 on every model
    for overlay, backgrounds in (("config/full.yaml", ["squares"]),
                                 ("config/paper.yaml", ["squares", "shapes", "objects"])):
        raw = read_yaml(Path("config.yaml"))
        update_config(raw, read_yaml(Path(overlay)))   # snakemake's overlay merge (recursive)
        # the paper's checkpoints are not on this machine: their paths cannot validate, the merged keys can
        full = raw if overlay == "config/paper.yaml" else validate(raw, Path("."), "config.yaml")
        assert full["grids"] == [2, 3] and full["backgrounds"]["settings"] == backgrounds, overlay
        assert full["amplification"]["synthetic"]["models"] is None, overlay
        assert full["amplification"]["n_random"] == cfg["amplification"]["n_random"] == 100   # siblings kept


def test_not_a_mapping(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load(p)


def test_loaded_file_is_named_in_the_error(tmp_path):
    p = tmp_path / "overlay.yaml"
    p.write_text(yaml.safe_dump({"models": [{"name": "m", "path": "not-here"}]}))
    with pytest.raises(ConfigError, match=r"overlay\.yaml is invalid:\n  - models/m/path: 'not-here'"):
        load(p)


# ================================================================== checkpoints, YAML and overlays, at config time
@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """A tiny Qwen2-VL, a text-only Llama, an unsupported VLM (LLaVA-NeXT config), and a folder that is no checkpoint."""
    import transformers as T
    from dualmech.tiny import make_tiny
    root = tmp_path_factory.mktemp("cfg-ckpt")
    make_tiny("qwen2vl", root / "qwen")
    llama = T.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2)
    llama.architectures = ["LlamaForCausalLM"]
    llama.save_pretrained(root / "llama")
    nxt = T.LlavaNextConfig()
    nxt.architectures = ["LlavaNextForConditionalGeneration"]
    nxt.save_pretrained(root / "llava_next")
    (root / "empty").mkdir()
    (root / "empty" / "weights.txt").write_text("not a checkpoint\n")
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text('{"model_type": "llava",\n')
    return root


@pytest.mark.parametrize("entry,message", [
    (dict(path="llama"), "models/m: ['LlamaForCausalLM'] (model_type 'llama') is not a vision-language model"),
    (dict(path="empty"), "models/m: 'empty' is a directory but not a Hugging Face checkpoint (no config.json)"),
    (dict(path="empty/weights.txt"), "models/m: 'empty/weights.txt' is a file, not a checkpoint directory"),
    (dict(path="broken"), "broken/config.json is not valid JSON"),
    (dict(path="llava_next"), "models/m: no adapter handles ['LlavaNextForConditionalGeneration'] "
                              "(model_type 'llava_next')"),
    (dict(path="qwen", family="llava"), "models/m: family 'llava' is set in the config, but the checkpoint is "
                                        "['Qwen2VLForConditionalGeneration'] (model_type 'qwen2_vl'), which is the "
                                        "'qwen2vl' family"),
])
def test_checkpoint_problems_are_caught_at_config_time(ckpts, entry, message):
    with pytest.raises(ConfigError) as err:
        validate({"models": [dict(name="m") | entry]}, ckpts)
    text = str(err.value)
    assert text.startswith("config.yaml is invalid:\n  - ") and message in text
    assert "ARCHITECTURE" not in text and text.count("\n  - ") == 1            # one message, nothing outside the repo


def test_a_good_checkpoint_and_a_correct_forced_family_pass(ckpts):
    cfg = validate({"models": [dict(name="a", path="qwen"), dict(name="b", path="qwen", family="qwen2vl")]}, ckpts)
    assert [m["name"] for m in cfg["models"]] == ["a", "b"]


def test_checkpoint_check_needs_no_torch(ckpts):
    """Every `snakemake` call checks config.yaml's checkpoints (a dry run, a test's DAG, a login node without the ML
    stack): the check reads config.json alone. (It built the transformers config, importing torch, ~9 s per call;
    without torch it skipped the check.)"""
    code = ("import json, sys\n"
            "sys.modules.update(torch=None, transformers=None)\n"
            "from dualmech.config import ConfigError, validate\n"
            f"root = {str(ckpts)!r}\n"
            "good = validate({'models': [dict(name='q', path='qwen', family='qwen2vl')]}, root)\n"
            "try:\n"
            "    validate({'models': [dict(name='m', path='llama')]}, root)\n"
            "    bad = None\n"
            "except ConfigError as e:\n"
            "    bad = str(e)\n"
            "print(json.dumps([[m['name'] for m in good['models']], bad]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    good, bad = json.loads(out.stdout)
    assert good == ["q"]
    assert bad and "models/m: ['LlamaForCausalLM'] (model_type 'llama') is not a vision-language model" in bad


def test_a_model_named_like_a_twin_is_rejected(ckpts):
    models = [dict(name="tiny", path="qwen", untrained_twin=True), dict(name="tiny-untrained", path="qwen")]
    with pytest.raises(ConfigError, match=r"models/tiny-untrained/name: 'tiny-untrained' is the name of the "
                                          r"untrained twin of 'tiny' \(untrained_twin: true\)"):
        validate({"models": models}, ckpts)


def test_malformed_yaml_names_file_line_and_column(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("seed: 0\nmodels:\n  - name: a\n    path: [x\n")
    with pytest.raises(ConfigError, match=rf"^{p}:5:1: not valid YAML: while parsing a flow sequence"):
        load(p)


def test_overlay_is_named_as_such(tmp_path):
    over = tmp_path / "paper.yaml"
    over.write_text(yaml.safe_dump({"models": [{"name": "m", "path": "not-here"}]}))
    base = {"models": [{"name": "m", "path": "not-here"}], "probing": {"seeds": 0}}   # seeds: minimum 1
    with pytest.raises(ConfigError) as err:
        validate(base | {"probing": {"seeds": 0}}, tmp_path, "config.yaml", [over])
    assert str(err.value) == "config.yaml is invalid:\n  - probing/seeds: 0 is less than the minimum of 1"
    with pytest.raises(ConfigError) as err:
        validate(base | {"probing": {"seeds": 2}}, tmp_path, "config.yaml", [over])
    assert str(err.value).startswith(f"{over} (--configfile) is invalid:\n  - models/m/path: 'not-here'")


def test_cli_checks_an_overlay(tmp_path, capsys):
    from dualmech.config import main
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(SystemExit, match=rf"{bad}:2:1: not valid YAML"):
        main([str(bad)])
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"models": [{"name": "m", "path": str(tmp_path)}]}))
    with pytest.raises(SystemExit, match="is a directory but not a Hugging Face checkpoint"):
        main([str(good)])


def test_snakemake_stops_before_any_job_naming_the_overlay(ckpts, tmp_path):
    """The workflow itself: bad models in an overlay stop the dry run at parse time, on the terminal."""
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"models": [{"name": "ok", "path": str(ckpts / "qwen")}]}))
    overlay = tmp_path / "over.yaml"
    overlay.write_text(yaml.safe_dump({"models": [{"name": "txt", "path": str(ckpts / "llama")},
                                                  {"name": "q", "path": str(ckpts / "qwen"), "family": "gemma3"}]}))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--directory",
                          str(tmp_path), "--cores", "1", "-n", "--configfile", str(overlay)],
                         capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "over.yaml (--configfile) is invalid:\n  - models/txt: ['LlamaForCausalLM']" in text
    assert "  - models/q: family 'gemma3' is set in the config" in text
    assert "Building DAG of jobs" not in text and "rule " not in text
