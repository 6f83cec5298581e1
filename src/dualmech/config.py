"""Load and validate config.yaml: schema (types, defaults, unknown keys) first, then meaning.

Every problem is reported at once, before any job runs, with the offending key named.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Sequence

import jsonschema
import yaml

from .resources import hub_snapshot

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


def validate(config: dict, root: Path | str = ".", source: str = "config.yaml", overlays: Sequence[Path | str] = (),
             check_models: bool = True) -> dict:
    """Return a validated copy of `config` with defaults filled and untrained twins added.

    `source` is the workflow's config file and `overlays` the files passed with `--configfile`, in order: each
    problem names the file that set its top-level key. `check_models` also reads every given checkpoint's
    config.json (no weights): it must be a vision-language model of a supported family, consistent with a
    forced `family`."""
    config = copy.deepcopy(config)
    origin = _origins(source, overlays)
    schema = yaml.safe_load(SCHEMA.read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
    if errors:
        _raise([(origin(list(e.path)), f"{'/'.join(map(str, e.path)) or '(top level)'}: {e.message}")
                for e in errors])
    # nested defaults inside array items and nested objects are filled by a second pass
    validator.validate(config)
    problems = []
    where = origin(["models"])
    names = [m["name"] for m in config["models"]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        problems.append((where, f"models: duplicate name(s) {dup}"))
    twins = {f"{m['name']}-untrained": m["name"] for m in config["models"] if m["untrained_twin"]}
    for name in sorted(set(names) & set(twins)):
        problems.append((where, f"models/{name}/name: '{name}' is the name of the untrained twin of '{twins[name]}' "
                                f"(untrained_twin: true); rename this model or drop the twin"))
    known = set(names) | set(twins)
    for m in config["models"]:
        c = m["control"]
        if c is not None and (c not in known or c == m["name"]):
            problems.append((where, f"models/{m['name']}/control: '{c}' is not another model of this run "
                                    f"(models: {sorted(known - {m['name']})})"))
    root = Path(root)
    for m in config["models"]:
        p = m["path"]
        built = p.startswith(BUILT_MODELS + "/")
        local = (root / p).exists()
        if not (built or local or hub_snapshot(p, m.get("revision"))):
            problems.append((where, f"models/{m['name']}/path: '{p}' is neither an existing directory nor a "
                                    f"Hugging Face id in the local cache (nothing is downloaded at run time)"))
        elif check_models and not built:
            problem = _model_problem(m, str(root / p) if local else p)
            if problem:
                problems.append((where, f"models/{m['name']}: {problem}"))
    bg_dir = config["backgrounds"]["image_dir"]
    if bg_dir:
        from .stimuli.backgrounds import image_files
        try:
            image_files(root / bg_dir)
        except ValueError as e:
            problems.append((origin(["backgrounds", "image_dir"]), str(e)))
    if problems:
        _raise(problems)
    twins = [dict(m, name=f"{m['name']}-untrained", path=f"{BUILT_MODELS}/{m['name']}-untrained",
                  untrained_twin=False, twin_of=m["name"], control=None)
             for m in config["models"] if m["untrained_twin"]]
    config["models"] = config["models"] + twins
    return config


def controls(config: dict) -> dict[str, str]:
    """model -> the model whose effect it must exceed in the claims' control gate (a validated config): its
    `control`, else its own untrained twin."""
    twins = {m["twin_of"]: m["name"] for m in config["models"] if m.get("twin_of")}
    out = {m["name"]: m.get("control") or twins.get(m["name"]) for m in config["models"]}
    return {k: v for k, v in out.items() if v}


def _origins(source: str, overlays: Sequence[Path | str]):
    """key path -> the file that set it last: an overlay passed with --configfile if it holds that key
    (Snakemake merges overlays key by key into config.yaml; lists are replaced whole), else `source`."""
    data = [(f"{f} (--configfile)", read_yaml(f)) for f in overlays]

    def holds(d, path) -> bool:
        for k in path:
            if isinstance(d, list):
                return True
            if not isinstance(d, dict) or k not in d:
                return False
            d = d[k]
        return True
    return lambda path: next((f for f, d in reversed(data) if path and holds(d, path)), source)


def _raise(problems: list[tuple[str, str]]):
    files = list(dict.fromkeys(f for f, _ in problems))
    raise ConfigError("\n".join(f"{f} is invalid:\n" + "\n".join(f"  - {line}" for g, line in problems if g == f)
                                for f in files))


def _model_problem(entry: dict, path: str) -> str | None:
    """Why the checkpoint at `path` cannot be analysed (family detection from its config.json), or None."""
    from .families import UnsupportedModel, detect, read_config
    try:
        detect(entry["name"], read_config(entry["name"], path, entry.get("revision")), entry.get("family"))
    except (UnsupportedModel, FileNotFoundError) as e:
        return str(e).removeprefix(f"model '{entry['name']}': ").replace(f"'{path}'", f"'{entry['path']}'")
    return None


def read_yaml(path: Path | str):
    """Parse a YAML file; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
        raise ConfigError(f"{at}: not valid YAML: {what}") from None


def load(path: Path | str, check_models: bool = True) -> dict:
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of keys to values")
    return validate(raw, path.parent, str(path), check_models=check_models)


def model_entry(config: dict, name: str) -> dict:
    for m in config["models"]:
        if m["name"] == name:
            return m
    raise KeyError(f"no model named {name!r} in config (have {[m['name'] for m in config['models']]})")


def digest(obj) -> str:
    """Stable short hash of a JSON-able object (e.g. the config section that produced a checkpoint)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _merge(base: dict, overlay: dict) -> dict:
    """Snakemake's merge of a --configfile into the config: nested mappings key by key, anything else replaced."""
    out = dict(base)
    for k, v in overlay.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m dualmech.config FILE...`: check config files (e.g. an overlay before passing it to
    --configfile, whose YAML errors Snakemake reports without a line) with the workflow's own validation."""
    import sys
    files = sys.argv[1:] if argv is None else argv
    try:
        for f in files:
            read_yaml(f)
        merged: dict = {}
        for f in files:
            merged = _merge(merged, read_yaml(f))
        validate(merged, ".", files[0], files[1:])
    except ConfigError as e:
        raise SystemExit(str(e)) from None
    print("ok: " + ", ".join(files))


if __name__ == "__main__":
    main()

