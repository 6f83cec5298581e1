"""The model-adapter interface: everything analyses need to know about a VLM, and nothing more.

All model-specific knowledge lives in one module per family (llava.py, pixtral.py, qwen2vl.py,
gemma3.py). Analyses only talk to `VLMAdapter`: they never branch on model names.
"""
from __future__ import annotations

import json
from pathlib import Path

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from PIL import Image

from ..families import UnsupportedModel
from ..stimuli import SYSTEM_PROMPT, Geometry, default_object_tokens


@dataclass(frozen=True)
class ModelSpec:
    """One `models:` entry of config.yaml."""
    name: str
    path: str
    revision: str | None = None
    dtype: str = "float32"
    family: str | None = None
    palette: str | None = None
    exclude_objects: tuple[str, ...] | None = None
    geometry: dict = field(default_factory=dict)
    trust_remote_code: bool = False

    @classmethod
    def from_config(cls, entry: dict) -> "ModelSpec":
        keys = {"name", "path", "revision", "dtype", "family", "palette", "exclude_objects", "geometry",
                "trust_remote_code"}
        kw = {k: v for k, v in entry.items() if k in keys and v is not None}
        if "exclude_objects" in kw:
            kw["exclude_objects"] = tuple(kw["exclude_objects"])
        return cls(**kw)


@dataclass
class Prepared:
    """Model inputs for a batch plus, per example, where each visual-token grid cell sits in the sequence."""
    inputs: dict
    grid_positions: torch.Tensor   # (B, N*N) sequence position of grid cell r*N + c, row-major
    final_position: torch.Tensor   # (B,) position whose next-token logits are scored

    def __len__(self) -> int:
        return len(self.final_position)


class ImageTextProcessor:
    """What the adapters use of a processor, for families whose HF processor cannot be built without
    torchvision (Qwen2VLProcessor, PixtralProcessor): the checkpoint's own image processor, tokenizer,
    chat template and processor_config.json settings. Such adapters build the model inputs themselves in
    `processor_inputs`, exactly as the HF processor would."""

    def __init__(self, image_processor, tokenizer, chat_template: str | None = None, config: dict | None = None):
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.config = dict(config or {})

    @classmethod
    def from_pretrained(cls, src: str, **kw) -> "ImageTextProcessor":
        import transformers as T
        config, _ = T.ProcessorMixin.get_processor_dict(src, **kw)   # processor_config.json + chat template files
        tokenizer = T.AutoTokenizer.from_pretrained(src, **kw)
        template = config.pop("chat_template", None) or tokenizer.chat_template
        if template is None:
            raise UnsupportedModel(f"{src}: no chat template (chat_template.jinja/.json or tokenizer_config.json)")
        return cls(T.AutoImageProcessor.from_pretrained(src, **kw), tokenizer, template, config)

    def apply_chat_template(self, conversation, **kw):
        return self.tokenizer.apply_chat_template(conversation, chat_template=self.chat_template, **kw)


def sidecar(path: str) -> dict:
    """Optional `dualmech.json` next to a local checkpoint (e.g. the organism's canvas geometry)."""
    f = Path(path) / "dualmech.json"
    return json.loads(f.read_text()) if f.exists() else {}


class VLMAdapter:
    """Base adapter. Subclasses set `family` (which checkpoints it handles: its line in `families.FAMILIES`) and the
    geometry; most override nothing else."""

    family: ClassVar[str] = ""
    default_palette: ClassVar[str] = "standard"
    # The patching engine (interventions.trace/resume) may restart this family's LM at any decoder layer from
    # the recorded layer inputs, arguments and keys/values; False = plain full forwards (said in the log).
    resumable: ClassVar[bool] = False
    default_exclude_objects: ClassVar[tuple[str, ...]] = ()     # Objects left out of every setting
    dynamic_resolution: ClassVar[bool] = False   # True: `native_grid` + `prepare(grid=...)` see photos as they are
    trailing_image_tokens: ClassVar[int] = 0     # image-token positions after the grid (not grid cells)
    # Inputs that only the vision tower reads: a forward without them skips the tower (its output lands only
    # at the image positions); `interventions.without_vision` drops them where every grid cell is overwritten.
    # The rest (Qwen's image_grid_thw for M-RoPE, Gemma's token_type_ids for the image attention) is kept.
    vision_inputs: ClassVar[tuple[str, ...]] = ("pixel_values", "image_sizes", "pixel_attention_mask")

    def __init__(self, model, processor, spec: ModelSpec):
        self.model = model
        self.processor = processor
        self.spec = spec
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "right"
        self.image_token_id = self._image_token_id()
        self.geometry = self._geometry()
        self.palette = spec.palette or self.default_palette
        self.exclude_objects = (self.default_exclude_objects if spec.exclude_objects is None
                                else tuple(spec.exclude_objects))

    # ---------------------------------------------------------------- per family
    @classmethod
    def load_processor(cls, src: str, **kw):
        """The checkpoint's processor (`kw`: revision, local_files_only, ...); override where the family's HF
        processor cannot be built here."""
        import transformers as T
        return T.AutoProcessor.from_pretrained(src, **kw)

    def grid_and_pixels(self) -> tuple[int, int]:
        """(visual tokens per side, pixels per visual token) for the canvas this model sees natively."""
        raise NotImplementedError

    def _geometry(self) -> Geometry:
        """Adapter geometry, overridden by the checkpoint's `dualmech.json` sidecar, then by config.yaml."""
        grid, px = self.grid_and_pixels()
        g = {**sidecar(self.spec.path).get("geometry", {}), **self.spec.geometry}
        if g.get("grid", grid) != grid:
            raise UnsupportedModel(f"{self.spec.name}: geometry.grid={g['grid']} but this checkpoint sees a fixed "
                                   f"{grid}x{grid} token grid")
        s = g.get("object_tokens", default_object_tokens(grid))
        return Geometry(grid, px, s, g.get("gap_tokens", s))

    def _image_token_id(self) -> int:
        cfg = self.model.config
        for key in ("image_token_id", "image_token_index"):
            if getattr(cfg, key, None) is not None:
                return int(getattr(cfg, key))
        raise UnsupportedModel(f"{self.spec.name}: config has no image_token_id/image_token_index")

    # ---------------------------------------------------------------- shared surface
    def patch_grid(self) -> tuple[int, int]:
        """(tokens per side, px per token) of a tower with one token per patch of a square image."""
        vc = self.model.config.vision_config
        if vc.image_size % vc.patch_size:
            raise UnsupportedModel(f"{self.spec.name}: image_size {vc.image_size} is not a multiple of "
                                   f"patch_size {vc.patch_size}")
        return vc.image_size // vc.patch_size, vc.patch_size

    @property
    def language_model(self) -> torch.nn.Module:
        """The LM decoder stack (its `layers` and final `norm`)."""
        lm = getattr(self.model.model, "language_model", None)
        if lm is None or not hasattr(lm, "layers"):
            raise UnsupportedModel(f"{self.spec.name}: no model.model.language_model.layers")
        return lm

    @property
    def layers(self) -> torch.nn.ModuleList:
        """LM decoder blocks; site `resid_post.l` is the output of layers[l], `lm_input` the input of layers[0]."""
        return self.language_model.layers

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def lm_input_site(self, hidden: torch.Tensor) -> torch.Tensor:
        """The `lm_input` site's value for the LM input `hidden` (B, T, D): the LM input itself, or, for a
        family whose image also enters later LM layers (Qwen3-VL's DeepStack), the LM input with those
        per-position features appended, so that an edit of a position's visual token edits all of it."""
        return hidden

    def lm_input_apply(self, value: torch.Tensor) -> torch.Tensor:
        """The LM input (B, T, D) from an (edited) `lm_input` site value; a family that appends features
        in `lm_input_site` keeps them for the forward (or resumed layers) that follows."""
        return value

    @property
    def vision_layers(self) -> torch.nn.ModuleList:
        """Vision-encoder blocks: site `vision.l` is the output of vision_layers[l], `vision_input` the input of
        vision_layers[0] (patch + position embeddings). Families that can map these to the grid override it."""
        raise UnsupportedModel(f"{self.spec.name}: vision-encoder sites are not supported for the "
                               f"'{self.family}' family; drop 'vision' from probing.sites")

    def vision_grid(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, tokens, D) vision-encoder hidden states -> (B, N*N, D) in the row-major grid order of the LM's
        visual tokens (families with `vision_layers` override it)."""
        raise UnsupportedModel(f"{self.spec.name}: no vision-token -> grid map for the '{self.family}' family")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def chat_text(self, prompt: str, system: str | None = SYSTEM_PROMPT) -> str:
        msgs = [] if system is None else [{"role": "system", "content": [{"type": "text", "text": system}]}]
        msgs.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]})
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def tokenize_with_images(self, texts: list[str], placeholder: str, blocks) -> dict:
        """Tokenise chat texts with each one's single image `placeholder` replaced by its block (the image's
        token run, one per text), as the HF processors expand it."""
        expanded = []
        for text, block in zip(texts, blocks):
            if text.count(placeholder) != 1:
                raise ValueError(f"{self.spec.name}: expected one {placeholder} in the prompt, got {text!r}")
            expanded.append(text.replace(placeholder, block))
        return dict(self.tokenizer(expanded, padding=True, return_tensors="pt", **self.text_kwargs(texts)))

    def text_kwargs(self, texts: list[str]) -> dict:
        """Tokenizer options for chat-formatted texts: like HF's `apply_chat_template(tokenize=True)`, add no
        second BOS when the template already wrote one (Gemma 3, Pixtral templates start with it)."""
        bos = self.tokenizer.bos_token
        return {"add_special_tokens": False} if bos and all(t.startswith(bos) for t in texts) else {}

    def native_grid(self, width: int, height: int) -> tuple[int, int]:
        """(rows, cols) of visual tokens for a width x height image at the family's own dynamic resolution."""
        raise UnsupportedModel(f"{self.spec.name}: the '{self.family}' family sees a fixed square canvas")

    def processor_inputs(self, images: list[Image.Image], texts: list[str]) -> dict:
        return dict(self.processor(images=images, text=texts, return_tensors="pt", padding=True,
                                   **self.text_kwargs(texts)))

    def prepare(self, images: list[Image.Image], prompts: list[str], system: str | None = SYSTEM_PROMPT,
                grid: tuple[int, int] | None = None) -> Prepared:
        """Model inputs and token layout. `grid` = (rows, cols): the images are seen at the family's dynamic
        resolution (`native_grid`, every image of the batch on that grid) instead of the square canvas."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        texts = [self.chat_text(p, system) for p in prompts]
        if grid is None:
            inputs = self.processor_inputs(list(images), texts)
            rows = cols = self.geometry.grid
        else:
            if not self.dynamic_resolution:
                raise UnsupportedModel(f"{self.spec.name}: the '{self.family}' family sees a fixed square canvas")
            inputs = self.processor_inputs(list(images), texts, native=True)
            rows, cols = grid
        ids = inputs["input_ids"]
        n, extra = rows * cols, self.trailing_image_tokens
        is_img = ids == self.image_token_id
        counts = is_img.sum(1)
        if not bool((counts == n + extra).all()):
            raise UnsupportedModel(f"{self.spec.name}: expected {n + extra} image tokens per example for a "
                                   f"{rows}x{cols} grid" + (f" + {extra}" if extra else "") +
                                   f", found {counts.tolist()}")
        grid_positions = is_img.nonzero()[:, 1].reshape(len(ids), n + extra)[:, :n]
        mask = inputs.get("attention_mask", torch.ones_like(ids))
        final = mask.sum(1) - 1
        dev = self.device
        inputs = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in inputs.items()}
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return Prepared(inputs, grid_positions.to(dev), final.to(dev))

    def visual_tokens(self, images: list[Image.Image]) -> torch.Tensor:
        """Post-projector visual tokens (the LM input at the image positions), (B, N*N, D), row-major grid.

        The forward stops right after the projector; the prompt only makes the processor run."""
        from ..interventions import LM_INPUT, run
        from ..stimuli import TEMPLATES
        prepared = self.prepare(images, [TEMPLATES["squares"].format(prep="to the left of", mention="red")] * len(images))
        hidden = run(self, prepared, capture=[LM_INPUT], logits=False).captured[LM_INPUT]
        return hidden[torch.arange(len(images), device=hidden.device)[:, None], prepared.grid_positions]

    def head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits from the last decoder layer's output (R, D): the LM's final norm, then the output
        head, as the model's own forward applies them (`interventions.resume` ends with it)."""
        return self.model.lm_head(self.language_model.norm(hidden))

    def token_ids(self, word: str) -> list[int]:
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        return ids

    def is_one_token_name(self, word: str) -> bool:
        """The authors' filter for answer names (paper §3.2, §3.5): lower-case and capitalised forms are each a
        single token, the lower-case one known. A word-level vocabulary without capitals maps the capitalised
        form to its one unknown token, which counts as a single token (nothing is split)."""
        lower, cap = self.token_ids(word.lower()), self.token_ids(word.capitalize())
        return len(lower) == 1 and lower[0] != self.tokenizer.unk_token_id and len(cap) == 1

    def candidate_token_ids(self, word: str) -> list[int]:
        """Ids of the single-token variants {w, W, ' w', ' W'} of an answer word (paper §4.4)."""
        out = []
        for v in (word.lower(), word.capitalize(), " " + word.lower(), " " + word.capitalize()):
            ids = self.token_ids(v)
            if len(ids) == 1 and ids[0] != self.tokenizer.unk_token_id and ids[0] not in out:
                out.append(ids[0])
        if not out:
            raise UnsupportedModel(f"{self.spec.name}: '{word}' has no single-token variant")
        return out

    def decode(self, token_ids) -> list[str]:
        return [self.tokenizer.decode([int(t)]) for t in token_ids]
