"""Load and validate config.yaml: schema (types, defaults, unknown keys) first, then meaning.

Every problem is reported at once, before any job runs, with the offending key named.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
BUILT_MODELS = "results/models"


class ConfigError(ValueError):
    pass


def _with_defaults(validator_class):
    """A validator that fills in schema defaults while validating (the jsonschema-documented recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def validate(config: dict, root: Path | str = ".", source: str = "config.yaml") -> dict:
    """Return a validated copy of `config` with defaults filled and untrained twins added."""
    config = copy.deepcopy(config)
    schema = yaml.safe_load(SCHEMA.read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = [f"  - {'/'.join(map(str, e.path)) or '(top level)'}: {e.message}" for e in errors]
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines))
    # nested defaults inside array items and nested objects are filled by a second pass
    validator.validate(config)
    problems = []
    names = [m["name"] for m in config["models"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        problems.append(f"  - models: duplicate name(s) {dup}")
    root = Path(root)
    for m in config["models"]:
        p = m["path"]
        if not (p.startswith(BUILT_MODELS + "/") or (root / p).exists() or _in_hf_cache(p, m.get("revision"))):
            problems.append(f"  - models/{m['name']}/path: '{p}' is neither an existing directory nor a "
                            f"Hugging Face id in the local cache (nothing is downloaded at run time)")
    if problems:
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(problems))
    twins = [dict(m, name=f"{m['name']}-untrained", path=f"{BUILT_MODELS}/{m['name']}-untrained",
                  untrained_twin=False, twin_of=m["name"]) for m in config["models"] if m["untrained_twin"]]
    config["models"] = config["models"] + twins
    return config


def _in_hf_cache(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache
    if repo_id.startswith((".", "/")) or repo_id.count("/") != 1:
        return False
    found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    return isinstance(found, str)


def load(path: Path | str) -> dict:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of keys to values")
    return validate(raw, path.parent, str(path))


def model_entry(config: dict, name: str) -> dict:
    for m in config["models"]:
        if m["name"] == name:
            return m
    raise KeyError(f"no model named {name!r} in config (have {[m['name'] for m in config['models']]})")


def digest(obj) -> str:
    """Stable short hash of a JSON-able object (e.g. the config section that produced a checkpoint)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
