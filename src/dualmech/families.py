"""Which adapter family a checkpoint belongs to, read from its config.json alone.

Torch-free on purpose: the workflow's main process checks every model of config.yaml when it reads the config,
before any job, so every `snakemake` call (a run, a dry run, each test's DAG) pays that check. Reading the JSON
takes milliseconds; building the transformers config imports torch and the model code (~9 s).
`models.load` runs the same detection on the transformers config it builds anyway.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .resources import checkpoint_dir


class UnsupportedModel(ValueError):
    """The checkpoint cannot be analysed: the message names the missing piece."""


# family -> (the checkpoint's model_type, the vision towers it may carry; None: whatever the family ships).
# A new family adds its line here and its module in src/dualmech/models/.
FAMILIES: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "llava": ("llava", ("clip_vision_model", "siglip_vision_model")),
    "pixtral": ("llava", ("pixtral",)),
    "qwen2vl": ("qwen2_vl", None),
    "gemma3": ("gemma3", None),
    "qwen2_5vl": ("qwen2_5_vl", None),
    "mistral3": ("mistral3", None),
    "internvl": ("internvl", None),
    "idefics3": ("idefics3", None),
    "smolvlm": ("smolvlm", None),
    "paligemma": ("paligemma", None),
    "llava_onevision": ("llava_onevision", None),
    "qwen3vl": ("qwen3_vl", None),
}
# the tower transformers builds when a config.json leaves it unnamed (LlavaConfig's default vision_config)
DEFAULT_TOWER = {"llava": "clip_vision_model"}


def families_of(config: dict) -> list[str]:
    """Every family whose adapter handles a checkpoint with this config (a config.json, or a transformers
    config's `to_dict()`)."""
    model_type = config.get("model_type")
    tower = (config.get("vision_config") or {}).get("model_type", DEFAULT_TOWER.get(model_type))
    return [f for f, (mt, towers) in FAMILIES.items() if mt == model_type and (towers is None or tower in towers)]


def detect(name: str, config: dict, family: str | None = None) -> str:
    """The adapter family of model `name` (its config as a dict); a forced `family` must agree with it."""
    arch = config.get("architectures") or [config.get("model_type")]
    found = families_of(config)
    if not found and config.get("vision_config") is None:
        raise UnsupportedModel(f"model '{name}': {arch} (model_type '{config.get('model_type')}') is not a "
                               f"vision-language model: its config has no vision tower. The analyses need an "
                               f"image-text checkpoint; supported families: {sorted(FAMILIES)}")
    if family:
        if family not in FAMILIES:
            raise UnsupportedModel(f"model '{name}': family '{family}' is not supported; "
                                   f"supported families: {sorted(FAMILIES)}")
        if family not in found:
            which = f"the '{found[0]}' family" if found else "no supported family"
            raise UnsupportedModel(f"model '{name}': family '{family}' is set in the config, but the checkpoint is "
                                   f"{arch} (model_type '{config.get('model_type')}'), which is {which}; drop "
                                   f"`family` (it is detected) or fix `path`")
        return family
    if found:
        return found[0]
    raise UnsupportedModel(
        f"model '{name}': no adapter handles {arch} (model_type '{config.get('model_type')}'). Supported families: "
        f"{sorted(FAMILIES)}. A new family needs a module in src/dualmech/models/ that maps its visual tokens "
        f"to a grid (README, 'Model families').")


def read_config(name: str, path: str, revision: str | None = None) -> dict:
    """The config.json of a local checkpoint directory or of a Hugging Face id in the local cache, as a dict."""
    if Path(path).is_file():
        raise UnsupportedModel(f"model '{name}': '{path}' is a file, not a checkpoint directory; point `path` at the "
                               f"folder that holds config.json")
    folder = checkpoint_dir(path, revision)
    if folder is None:
        raise FileNotFoundError(
            f"model '{name}': '{path}' is neither a local checkpoint nor in the Hugging Face cache "
            f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}). Nothing is downloaded at run time: fetch "
            f"it first (e.g. `hf download {path}`) or point `path` at a local directory.")
    file = folder / "config.json"
    if not file.exists():
        raise UnsupportedModel(f"model '{name}': '{path}' is a directory but not a Hugging Face checkpoint "
                               f"(no config.json); point `path` at the folder that holds config.json")
    try:
        config = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise UnsupportedModel(f"model '{name}': {file} is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise UnsupportedModel(f"model '{name}': {file} is not a JSON object")
    return config
