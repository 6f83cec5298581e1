"""Resolve a config entry to a loaded model + processor + adapter, without touching the network."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .. import families
from ..resources import is_hub_id
from ..stimuli import Geometry
from .base import ModelSpec, UnsupportedModel, VLMAdapter
from .gemma3 import Gemma3Adapter
from .idefics3 import Idefics3Adapter, SmolVLMAdapter
from .internvl import InternVLAdapter
from .llava import LlavaAdapter
from .llava_onevision import LlavaOnevisionAdapter
from .mistral3 import Mistral3Adapter
from .paligemma import PaliGemmaAdapter
from .pixtral import PixtralAdapter
from .qwen2_5vl import Qwen25VLAdapter
from .qwen2vl import Qwen2VLAdapter
from .qwen3vl import Qwen3VLAdapter

ADAPTERS: dict[str, type[VLMAdapter]] = {a.family: a for a in (
    LlavaAdapter, PixtralAdapter, Qwen2VLAdapter, Gemma3Adapter, Qwen25VLAdapter, Mistral3Adapter, InternVLAdapter,
    Idefics3Adapter, SmolVLMAdapter, PaliGemmaAdapter, LlavaOnevisionAdapter, Qwen3VLAdapter)}
assert set(ADAPTERS) == set(families.FAMILIES), "every family has an adapter and a line in families.FAMILIES"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _source(spec: ModelSpec) -> str:
    """A local directory, or a Hugging Face id that must already be in the local cache."""
    if Path(spec.path).exists():
        return str(Path(spec.path))
    if not is_hub_id(spec.path):
        raise FileNotFoundError(f"model '{spec.name}': path '{spec.path}' does not exist")
    return spec.path


def load_config(spec: ModelSpec):
    import transformers as T
    src = _source(spec)
    families.read_config(spec.name, src, spec.revision)      # a checkpoint folder or a cached id: clear errors first
    try:
        return T.AutoConfig.from_pretrained(src, revision=spec.revision, local_files_only=True,
                                            trust_remote_code=spec.trust_remote_code)
    except OSError as e:        # e.g. remote code whose files are not in the cache
        raise FileNotFoundError(f"model '{spec.name}': transformers cannot read '{spec.path}' from local files "
                                f"(nothing is downloaded at run time): {str(e).splitlines()[0]}") from e
    except ValueError as e:      # config.json without a model_type transformers knows
        raise UnsupportedModel(f"model '{spec.name}': '{spec.path}' is not a checkpoint transformers can read: "
                               f"{str(e).splitlines()[0]}") from e


def detect_family(spec: ModelSpec, config=None) -> str:
    """The adapter family of a checkpoint, from its config; a forced `family` must agree with it (the rule is
    `families.detect`, which config.yaml's check applies to the raw config.json)."""
    config = config if config is not None else load_config(spec)
    return families.detect(spec.name, config.to_dict(), spec.family)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def describe(spec: ModelSpec) -> tuple[Geometry, str]:
    """(canvas geometry, palette) of a model without loading its weights (the model is built on `meta`)."""
    adapter = describe_adapter(spec)
    return adapter.geometry, adapter.palette


def describe_adapter(spec: ModelSpec) -> VLMAdapter:
    """The model's adapter without its weights (the model is built on `meta`): geometry, palette, excluded
    objects and the processor, for rules that write stimuli."""
    import transformers as T
    config = load_config(spec)
    family = detect_family(spec, config)
    src = _source(spec)
    with torch.device("meta"):
        model = T.AutoModelForImageTextToText.from_config(config, trust_remote_code=spec.trust_remote_code)
    processor = ADAPTERS[family].load_processor(src, revision=spec.revision, local_files_only=True,
                                                trust_remote_code=spec.trust_remote_code)
    return ADAPTERS[family](model, processor, spec)


def save_untrained_twin(spec: ModelSpec, out_dir: Path, seed: int) -> None:
    """Same architecture, processor and canvas as `spec`, randomly initialised from the root seed.

    For the organism this is exactly the initialisation its training started from. (Note: transformers
    initialises Gemma-3's projector to zeros, so a Gemma-3 twin ignores the image by construction.)"""
    import shutil
    import transformers as T
    from huggingface_hub import snapshot_download

    from .. import organism
    from ..seeding import torch_seed
    src = Path(_source(spec))
    if not src.exists():
        src = Path(snapshot_download(spec.path, revision=spec.revision, local_files_only=True))
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.pt", "*.index.json",
                                                            "organism.json"))
    if (src / "organism.json").exists():
        model = organism.build_model(organism.OrganismSpec.from_checkpoint(src), seed)
    else:
        torch.manual_seed(torch_seed(seed, "init"))
        model = T.AutoModelForImageTextToText.from_config(load_config(spec), trust_remote_code=spec.trust_remote_code)
    model.save_pretrained(tmp)
    (tmp / "twin.json").write_text(json.dumps({"twin_of": str(spec.path), "seed": seed, "trained": False}) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)


def load(spec: ModelSpec, device: str | None = None) -> VLMAdapter:
    import transformers as T
    config = load_config(spec)
    family = detect_family(spec, config)
    src = _source(spec)
    kw = dict(revision=spec.revision, local_files_only=True, trust_remote_code=spec.trust_remote_code)
    model = T.AutoModelForImageTextToText.from_pretrained(src, dtype=DTYPES[spec.dtype], **kw)
    model.to(resolve_device(device or os.environ.get("DUALMECH_DEVICE", "auto"))).eval()
    processor = ADAPTERS[family].load_processor(src, **kw)
    return ADAPTERS[family](model, processor, spec)
