"""Config validation: defaults, unknown keys, types, missing model paths; one clear message each."""
import copy

import pytest
import yaml

from dualmech.config import ConfigError, load, validate

BASE = {"models": [{"name": "m", "path": "."}]}


def test_defaults_filled_and_twin_added(tmp_path):
    cfg = validate({"models": [{"name": "m", "path": str(tmp_path), "untrained_twin": True}]})
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
])
def test_bad_config_is_rejected_with_the_key_named(mutate, message):
    cfg = copy.deepcopy(BASE)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value)


def test_repository_config_is_valid():
    cfg = load("config.yaml")
    assert [m["name"] for m in cfg["models"]] == ["organism", "organism-untrained"]


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
