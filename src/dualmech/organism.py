"""The model organism: a tiny LlavaForConditionalGeneration trained from scratch on the pipeline's stimuli.

It is a real Hugging Face VLM (CLIP-style vision tower + MLP projector + Llama LM, word-level
tokenizer, chat template, LlavaProcessor), saved with `save_pretrained` and analysed afterwards by the
same LLaVA adapter as a real checkpoint. Training scenes use the canonical renderer with layouts
jittered by whole tokens (never the exact canonical layout), so the canonical stimuli are held out.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers as T
from tokenizers import Tokenizer, models, pre_tokenizers

from .organism_tables import CONDITIONS
from .seeding import rng, torch_generator, torch_seed
from .stimuli import (ANSWER_SLOT, DIRECTIONS, OPPOSITE, ORIENTATION_OF, SETTINGS, SYSTEM_PROMPT,
                      Geometry, compose, entities, prompt, sprite)

IMAGE_TOKEN = "<image>"
CELLS = [(s, d) for s in SETTINGS for d in DIRECTIONS]   # the (setting, direction) cells of training and acceptance
SPECIAL = ["<pad>", "<s>", "</s>", "<unk>", IMAGE_TOKEN]
CHAT_TEMPLATE = (
    "<s> {% for m in messages %}{{ m['role'] | upper }}: "
    "{% if m['content'] is string %}{{ m['content'] }} {% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image> {% else %}{{ c['text'] }} {% endif %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class OrganismSpec:
    image_grid: int
    patch_px: int
    object_tokens: int
    gap_tokens: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    lm_hidden: int
    lm_layers: int
    lm_heads: int
    lm_init_std: float

    @classmethod
    def from_config(cls, config: dict, o: dict | None = None) -> "OrganismSpec":
        o = o or config["organism"]
        return cls(o["image_grid"], o["patch_px"], o["object_tokens"], o["gap_tokens"],
                   o["vision"]["hidden"], o["vision"]["layers"], o["vision"]["heads"],
                   o["lm"]["hidden"], o["lm"]["layers"], o["lm"]["heads"], o["lm"]["init_std"])

    @classmethod
    def from_checkpoint(cls, path: Path) -> "OrganismSpec":
        return cls(**json.loads((Path(path) / "organism.json").read_text())["spec"])

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.image_grid, self.patch_px, self.object_tokens, self.gap_tokens)


# ------------------------------------------------------------------ tokenizer, processor, model
def vocabulary() -> list[str]:
    words = set(SYSTEM_PROMPT.split()) | {"SYSTEM:", "USER:", "ASSISTANT:"}
    for setting in SETTINGS:
        ents = {e for palette in ("standard", "orange") for e in entities(setting, palette)}
        for e in ents:
            words |= set(e.answer.split())
            for d in DIRECTIONS:
                words |= set(prompt(setting, d, e).split())
    return SPECIAL + sorted(words)


def build_tokenizer() -> T.PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = T.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                     unk_token="<unk>", extra_special_tokens={"image_token": IMAGE_TOKEN})
    fast.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_processor(spec: OrganismSpec) -> T.LlavaProcessor:
    px = spec.image_grid * spec.patch_px
    image_processor = T.CLIPImageProcessor(size={"shortest_edge": px}, crop_size={"height": px, "width": px},
                                           do_resize=False, do_center_crop=False, do_convert_rgb=True,
                                           image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD))
    return T.LlavaProcessor(image_processor=image_processor, tokenizer=build_tokenizer(), patch_size=spec.patch_px,
                            vision_feature_select_strategy="default", num_additional_image_tokens=1,
                            chat_template=CHAT_TEMPLATE)


def build_model(spec: OrganismSpec, seed: int) -> T.LlavaForConditionalGeneration:
    tok = build_tokenizer()
    vc = T.CLIPVisionConfig(hidden_size=spec.vision_hidden, intermediate_size=4 * spec.vision_hidden,
                            num_hidden_layers=spec.vision_layers, num_attention_heads=spec.vision_heads,
                            image_size=spec.image_grid * spec.patch_px, patch_size=spec.patch_px,
                            projection_dim=spec.vision_hidden)
    tc = T.LlamaConfig(vocab_size=len(tok), hidden_size=spec.lm_hidden, intermediate_size=4 * spec.lm_hidden,
                       num_hidden_layers=spec.lm_layers, num_attention_heads=spec.lm_heads,
                       num_key_value_heads=spec.lm_heads, max_position_embeddings=512,
                       initializer_range=spec.lm_init_std,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    cfg = T.LlavaConfig(vision_config=vc.to_dict() | {"model_type": "clip_vision_model"},
                        text_config=tc.to_dict() | {"model_type": "llama"},
                        image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
                        image_seq_length=spec.image_grid ** 2, vision_feature_select_strategy="default",
                        vision_feature_layer=-1)
    torch.manual_seed(torch_seed(seed, "init"))
    model = T.LlavaForConditionalGeneration(cfg).eval()
    _init_2d_positions(model, spec)
    return model


def _init_2d_positions(model, spec: OrganismSpec) -> None:
    """Initialise the vision tower's learned patch-position embeddings with 2-D sin-cos values (MAE-style).

    Only the starting point changes (the embeddings stay trainable); it hands the network each patch's
    row and column from step 0, which speeds training up a lot on 2 CPU cores."""
    emb = model.model.vision_tower.embeddings.position_embedding.weight
    d, n = emb.shape[1], spec.image_grid
    quarter = d // 4
    freqs = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / max(quarter, 1)))
    rows, cols = torch.meshgrid(torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32),
                                indexing="ij")
    parts = []
    for coord in (rows.flatten(), cols.flatten()):
        angles = coord[:, None] * freqs[None]
        parts += [torch.sin(angles), torch.cos(angles)]
    table = torch.cat(parts, dim=1)
    with torch.no_grad():
        emb.zero_()
        emb[1:, : table.shape[1]] = table          # index 0 is the CLS position


def save(model, spec: OrganismSpec, out_dir: Path, info: dict) -> None:
    """A standard HF checkpoint + processor, plus `dualmech.json` (its canvas geometry) and `organism.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    build_processor(spec).save_pretrained(out_dir)
    g = spec.geometry
    (out_dir / "dualmech.json").write_text(json.dumps(
        {"geometry": {"object_tokens": g.object_tokens, "gap_tokens": g.gap_tokens}}, indent=1) + "\n")
    (out_dir / "organism.json").write_text(json.dumps({"spec": asdict(spec)} | info, indent=1, sort_keys=True) + "\n")


# ------------------------------------------------------------------ training data
class SceneSampler:
    """Random training scenes: three distinct entities at token-aligned, jittered, non-canonical layouts."""

    def __init__(self, spec: OrganismSpec, processor: T.LlavaProcessor, seed: int, palette: str = "standard"):
        self.g = spec.geometry
        self.rng = rng(seed, "organism-scenes")
        self.ents = {s: entities(s, palette) for s in SETTINGS}
        self.sprites = {e: sprite(e, self.g.object_px) for s in SETTINGS for e in self.ents[s]}
        self.tok = processor.tokenizer
        self.processor = processor
        self._ids: dict[str, list[int]] = {}
        self.mean = np.array(CLIP_MEAN, np.float32)
        self.std = np.array(CLIP_STD, np.float32)

    def text_ids(self, user_text: str) -> list[int]:
        if user_text not in self._ids:
            msgs = chat_messages(user_text)
            text = self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            text = text.replace(IMAGE_TOKEN, " ".join([IMAGE_TOKEN] * self.g.grid ** 2))
            self._ids[user_text] = self.tok(text, add_special_tokens=False)["input_ids"]
        return self._ids[user_text]

    def layout(self, orientation: str) -> list[tuple[int, int]]:
        g, s = self.g, self.g.object_tokens
        canonical = list(g.canonical_layout(orientation))
        while True:
            along = np.sort(self.rng.choice(g.grid - s + 1, size=3, replace=False))
            if np.any(np.diff(along) < s + 1):      # at least one free token between neighbours
                continue
            across = int(self.rng.integers(0, g.grid - s + 1))
            lay = [(across, int(a)) if orientation == "horizontal" else (int(a), across) for a in along]
            if lay != canonical:
                return lay

    def scenes(self, n: int, weights: np.ndarray | None = None, entity_weights: dict | None = None):
        """n random scenes: (cells, entity triples, layouts, normalised pixels (n, 3, H, W)); `entity_weights`
        {setting: weights over its entities} draws each triple's entities by them (uniform when None)."""
        cells = self.rng.choice(len(CELLS), size=n, p=weights)
        triples, layouts, pixels = [], [], []
        for cell in cells:
            setting, direction = CELLS[cell]
            ents = self.ents[setting]
            p = entity_weights[setting] if entity_weights else None
            triples.append([ents[i] for i in self.rng.choice(len(ents), size=3, replace=False, p=p)])
            layouts.append(self.layout(ORIENTATION_OF[direction]))
            px = [(r * self.g.px_per_token, c * self.g.px_per_token) for r, c in layouts[-1]]
            pixels.append(compose([self.sprites[e] for e in triples[-1]], px, self.g.canvas_px))
        x = (np.stack(pixels).astype(np.float32) / 255.0 - self.mean) / self.std
        return cells, triples, layouts, torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()

    def batch(self, n: int, weights: np.ndarray | None = None, turns: int = 1, entity_weights: dict | None = None):
        """n scenes; each one's (setting, direction) cell is drawn from `weights` over CELLS (uniform when None).

        With turns=2 the conversation goes on after the first answer with a second question about the same
        image and reference in the opposite direction ("... ASSISTANT: green USER: <prompt> ASSISTANT:"): the
        first turn is exactly the evaluation format (causal attention never sees what follows it), the second
        adds a supervised answer that differs from the first only through the direction word.
        Returns (model inputs, answer positions (n, turns), answer token ids (n, turns), cell of each scene)."""
        cells, triples, layouts, pixel_values = self.scenes(n, weights, entity_weights)
        self.last_scenes = (triples, layouts)
        ids, positions, answers = [], [], []
        for cell, triple in zip(cells, triples):
            setting, direction = CELLS[cell]
            row, pos, ans = list(self.text_ids(prompt(setting, direction, triple[1]))), [], []
            for turn, d in enumerate([direction, OPPOSITE[direction]][:turns]):
                answer = triple[ANSWER_SLOT[d]].answer
                if turn:
                    row += self.tok(f"{ans_word} USER: {prompt(setting, d, triple[1])} ASSISTANT:",
                                    add_special_tokens=False)["input_ids"]
                pos.append(len(row) - 1)
                ans.append(self.tok.convert_tokens_to_ids(answer))
                ans_word = answer
            ids.append(row)
            positions.append(pos)
            answers.append(ans)
        length = max(map(len, ids))
        input_ids = torch.full((n, length), self.tok.pad_token_id)
        mask = torch.zeros((n, length), dtype=torch.long)
        for i, row in enumerate(ids):             # right padding: causal attention never sees the pads
            input_ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        inputs = dict(pixel_values=pixel_values, input_ids=input_ids, attention_mask=mask)
        return inputs, torch.tensor(positions), torch.tensor(answers), cells


def chat_messages(user_text: str, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    msgs = [] if system is None else [{"role": "system", "content": [{"type": "text", "text": system}]}]
    return msgs + [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user_text}]}]


def answer_logits(model, inputs: dict, positions: torch.Tensor | None = None) -> torch.Tensor:
    """Next-token logits at `positions` (B, K) -> (B, K, V); default: each row's last real position -> (B, V)."""
    hidden = model.model(**inputs, use_cache=False).last_hidden_state
    if positions is None:
        last = inputs["attention_mask"].sum(1) - 1
        return model.lm_head(hidden[torch.arange(len(last)), last])
    return model.lm_head(hidden[torch.arange(len(positions))[:, None], positions])


# ------------------------------------------------------------------ training
def train(spec: OrganismSpec, train_cfg: dict, seed: int, evaluate, log=print, vision_state: dict | None = None,
          shuffle_image_order: float = 0.0, ablate_image_order: float = 0.0):
    """Train until `evaluate(model)` (min per-cell accuracy) reaches `stop_accuracy` or time runs out.

    End to end from scratch by default; with `vision_state` (a pretrained vision tower, stage 1) the tower is
    loaded and frozen and only projector + LM train (stage 2). `shuffle_image_order`: the fraction of training
    examples whose image tokens' sequence order is permuted (`ShuffledImageOrder`); `ablate_image_order`: the
    fraction whose visual tokens have vision-derived ordering removed (`AblatedImageOrder`).
    Returns (model, history). `evaluate` returns (min_accuracy, per_cell dict)."""
    model = build_model(spec, seed)
    if vision_state is not None:
        model.model.vision_tower.load_state_dict(vision_state)
        model.model.vision_tower.requires_grad_(False)
    processor = build_processor(spec)
    sampler = SceneSampler(spec, processor, seed)
    shuffle = ShuffledImageOrder(model, shuffle_image_order, seed, "organism-train-shuffle", training_only=True)
    ablate = AblatedImageOrder(model, spec, sampler, ablate_image_order, seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=train_cfg["lr"],
                            weight_decay=train_cfg["weight_decay"], betas=(0.9, 0.98))
    warm, total = train_cfg["warmup_steps"], train_cfg["max_steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    torch.manual_seed(torch_seed(seed, "organism-train"))
    history, start, step = [], time.perf_counter(), 0
    budget = train_cfg["max_minutes"] * 60
    train_acc = np.zeros(len(CELLS))          # running training accuracy per (setting, direction) cell
    entity_acc = {k: np.zeros(len(v)) for k, v in sampler.ents.items()}   # per entity as the first answer
    model.train()
    while step < total and time.perf_counter() - start < budget:
        weights = None
        if train_cfg["balance_by_error"]:     # draw cells in proportion to 0.25 + their training error
            weights = 1.25 - train_acc
            weights /= weights.sum()
        entity_weights = None
        if train_cfg.get("balance_entities"):  # entities too, in proportion to 0.25 + their error as the answer
            entity_weights = {k: (1.25 - a) / (1.25 - a).sum() for k, a in entity_acc.items()}
        inputs, positions, answers, cells = sampler.batch(train_cfg["batch_size"], weights, train_cfg["turns"],
                                                          entity_weights)
        ablate.scenes(*sampler.last_scenes)
        logits = answer_logits(model, inputs, positions)
        loss = F.cross_entropy(logits.flatten(0, 1), answers.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        hits = (logits[:, 0].argmax(-1) == answers[:, 0]).numpy()     # the first turn = the evaluation format
        for c in np.unique(cells):
            train_acc[c] = 0.95 * train_acc[c] + 0.05 * hits[cells == c].mean()
        for c, triple, hit in zip(cells, sampler.last_scenes[0], hits) if entity_weights is not None else ():
            setting, direction = CELLS[c]
            e = sampler.ents[setting].index(triple[ANSWER_SLOT[direction]])
            entity_acc[setting][e] = 0.98 * entity_acc[setting][e] + 0.02 * hit
        if step % train_cfg["eval_every"] == 0 or step == total:
            model.eval()
            acc, per_cell = evaluate(model)
            model.train()
            rec = dict(step=step, minutes=round((time.perf_counter() - start) / 60, 2), loss=round(loss.item(), 4),
                       min_cell_accuracy=round(acc, 4))
            history.append(rec | {"cells": per_cell})
            worst = dict(sorted(per_cell.items(), key=lambda kv: kv[1])[:3])
            log(json.dumps(rec | {"worst_cells": worst}))
            if acc >= train_cfg["stop_accuracy"]:
                break
    shuffle.remove()
    ablate.remove()
    model.eval()
    return model, history


# ------------------------------------------------------------------ held-out evaluation and acceptance
def canonical_cells(spec: OrganismSpec, per_cell: int, seed: int) -> dict:
    """Random canonical-layout items per (setting, direction) cell: {"setting/direction": (model inputs,
    answer ids, entity triples)}."""
    processor = build_processor(spec)
    sampler = SceneSampler(spec, processor, seed)
    g, r = spec.geometry, rng(seed, "organism-eval")
    cells = {}
    for setting in SETTINGS:
        ents = sampler.ents[setting]
        for direction in DIRECTIONS:
            lay = g.canonical_layout(ORIENTATION_OF[direction])
            px = [(a * g.px_per_token, b * g.px_per_token) for a, b in lay]
            imgs, ids, answers, triples = [], [], [], []
            for _ in range(per_cell):
                triple = [ents[i] for i in r.choice(len(ents), size=3, replace=False)]
                triples.append(triple)
                imgs.append(compose([sampler.sprites[e] for e in triple], px, g.canvas_px))
                ids.append(sampler.text_ids(prompt(setting, direction, triple[1])))
                answers.append(processor.tokenizer.convert_tokens_to_ids(triple[ANSWER_SLOT[direction]].answer))
            inputs = dict(pixel_values=_normalise(sampler, imgs), input_ids=torch.tensor(ids),
                          attention_mask=torch.ones(len(ids), len(ids[0]), dtype=torch.long))
            cells[f"{setting}/{direction}"] = (inputs, torch.tensor(answers), triples)
    return cells


def _normalise(sampler: SceneSampler, images: list[np.ndarray]) -> torch.Tensor:
    x = (np.stack(images).astype(np.float32) / 255.0 - sampler.mean) / sampler.std
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def running_evaluator(spec: OrganismSpec, per_cell: int, seed: int, bars: dict | None = None,
                      target: float = 0.95):
    """A fast in-memory evaluator on random canonical items: returns (score, per-cell accuracies); the score is
    the worst canonical cell. With `bars` ({"shuffled": worst-cell bar, "ablated": mean bar}, None = no bar) the
    score is the smallest margin above any bar, on the canonical bar's scale: min(worst canonical cell, worst
    shuffled cell + target - its bar, ablated mean + target - its bar)."""
    cells = canonical_cells(spec, per_cell, seed)
    bars = {k: v for k, v in (bars or {}).items() if v is not None}
    sampler = SceneSampler(spec, build_processor(spec), seed) if "ablated" in bars else None
    g = spec.geometry

    @torch.no_grad()
    def evaluate(model):
        def acc(x, a):
            return round((answer_logits(model, x).argmax(-1) == a).float().mean().item(), 4)
        out = {k: acc(x, a) for k, (x, a, _) in cells.items()}
        score = min(out.values())
        if "shuffled" in bars:
            hook = ShuffledImageOrder(model, 1.0, seed, "organism-eval-shuffle")
            try:
                shuffled = {f"{k}/shuffled": acc(x, a) for k, (x, a, _) in cells.items()}
            finally:
                hook.remove()
            out |= shuffled
            score = min(score, min(shuffled.values()) + target - bars["shuffled"])
        if "ablated" in bars:
            ablated = {}
            for k, (x, a, triples) in cells.items():
                layout = g.canonical_layout(ORIENTATION_OF[k.split("/")[1]])
                hook = ReplacedImageTokens(model, ablated_tokens(model, spec, sampler, triples,
                                                                 [layout] * len(triples)))
                try:
                    ablated[f"{k}/ablated"] = acc(x, a)
                finally:
                    hook.remove()
            out |= ablated
            score = min(score, float(np.mean(list(ablated.values()))) + target - bars["ablated"])
        return score, out
    return evaluate


@torch.no_grad()
def ablated_tokens(model, spec: OrganismSpec, sampler: SceneSampler, triples, layouts) -> torch.Tensor:
    """(B, N*N, D) post-projector tokens with vision-derived ordering removed, as in Table 5's ablation
    (`dualmech.ablation.ablated_grid`): the blank canvas's tokens everywhere, each entity's cells taken from its
    rendering alone in the middle slot (`layouts`: each triple's layout). Identity and sequence position are
    kept; everything the tower derived from where the entity is and from the other entities (relative and
    absolute order) is removed."""
    from .ablation import EMPTY, ablated_grid
    g = spec.geometry
    middle = g.canonical_layout("horizontal")[1]
    ents = list({e.name: e for t in triples for e in t}.values())
    images = [compose([], [], g.canvas_px)] + [
        compose([sampler.sprites[e]], [(middle[0] * g.px_per_token, middle[1] * g.px_per_token)], g.canvas_px)
        for e in ents]
    tokens = image_tokens(model, _normalise(sampler, images))
    refs = {EMPTY: tokens[0], **{e.name: tokens[i + 1] for i, e in enumerate(ents)}}
    return torch.stack([ablated_grid(g, refs, [e.name for e in t], list(lay)) for t, lay in zip(triples, layouts)])


@torch.no_grad()
def diagnostics(model, spec: OrganismSpec, seed: int, per_cell: int) -> dict:
    """Accuracy per (setting, direction) cell on random canonical items under three conditions:
    `canonical`; `shuffled`: the image tokens' sequence order permuted per example (what the visual tokens'
    content carries, i.e. the tower); `ablated`: vision-derived ordering removed (`ablated_tokens`: what the
    LM alone carries, from the tokens' sequence order). Returns {condition: {"cells": {...}, "mean": m, "min": m}}."""
    cells = canonical_cells(spec, per_cell, seed)
    sampler = SceneSampler(spec, build_processor(spec), seed)
    g = spec.geometry
    out = {c: {} for c in CONDITIONS}
    for key, (inputs, answers, triples) in cells.items():
        def acc():
            return round((answer_logits(model, inputs).argmax(-1) == answers).float().mean().item(), 4)
        out["canonical"][key] = acc()
        hook = ShuffledImageOrder(model, 1.0, seed, "organism-diagnostics-shuffle", key)
        try:
            out["shuffled"][key] = acc()
        finally:
            hook.remove()
        layout = g.canonical_layout(ORIENTATION_OF[key.split("/")[1]])
        hook = ReplacedImageTokens(model, ablated_tokens(model, spec, sampler, triples, [layout] * len(triples)))
        try:
            out["ablated"][key] = acc()
        finally:
            hook.remove()
    return {c: dict(cells=v, mean=round(float(np.mean(list(v.values()))), 4), min=min(v.values()))
            for c, v in out.items()} | {"strip_transfer": strip_transfer(model, spec, seed)}


def canonical_accuracy(checkpoint: Path, work_dir: Path) -> "pd.DataFrame":
    """Accuracy of a saved checkpoint on every canonical item, through the LLaVA adapter like any real model."""
    from . import behaviour, models
    from .stimuli import relation_items
    import pandas as pd
    adapter = models.load(models.ModelSpec(name="organism", path=str(checkpoint)), device="cpu")
    preds = []
    for setting in SETTINGS:
        items = relation_items(setting, adapter.geometry, adapter.palette, work_dir / setting)
        preds.append(behaviour.predict(adapter, items, work_dir / setting, desc=f"accept {setting}"))
    preds = pd.concat(preds).assign(model="organism")
    return behaviour.accuracy_table(preds)


TWO_STAGE_KEYS = ("stage1", "stage2", "variants")     # the organism section's keys the end-to-end recipe ignores


def variant(config: dict, name: str) -> dict:
    """The recipe of organism `name` (config.yaml organism.variants)."""
    variants = config["organism"]["variants"]
    if name not in variants:
        raise ValueError(f"unknown organism {name!r}; organism.variants has {sorted(variants)}")
    return variants[name]


def recipe_section(config: dict, name: str | None = None) -> dict:
    """The part of the organism section that trains organism `name` (None: stage 1 alone): the end-to-end
    recipe reads the architecture + `train`; a two-stage one the architecture + `stage1` (+ `stage2` and its
    variant entry)."""
    o = config["organism"]
    arch = {k: v for k, v in o.items() if k not in TWO_STAGE_KEYS + ("train",)}
    if name is None:
        return arch | {"stage1": o["stage1"]}
    v = variant(config, name)
    if v["recipe"] == "end-to-end":
        return arch | {"train": o["train"]}
    return arch | {"stage1": o["stage1"], "stage2": stage2_train(o), "variant": v}


END_TO_END_ONLY = ("balance_entities",)     # `train` keys that stage 2 does not read


def stage2_train(o: dict) -> dict:
    """Stage 2's training settings: `train` (without its end-to-end-only keys) overridden by `stage2`."""
    return {k: x for k, x in o["train"].items() if k not in END_TO_END_ONLY} | o["stage2"]


def config_digest(config: dict, name: str | None = None) -> str:
    """The digest a checkpoint carries of the configuration that trained it (its recipe section and the root
    seed; `name` None: the stage-1 vision tower)."""
    from .config import digest
    return digest({"organism": recipe_section(config, name), "seed": config["seed"]})


def pretrain_and_save(config: dict, out_dir: Path, log=print) -> dict:
    """Stage 1 of the two-stage organisms: pretrain the vision tower, save `vision_tower.safetensors` and
    `stage1.json` (config digest, minutes, history with the slot-probe curve), atomically."""
    import shutil
    import tempfile
    from safetensors.torch import save_file

    spec, seed = OrganismSpec.from_config(config), config["seed"]
    t0 = time.perf_counter()
    state, history = pretrain_vision(spec, config["organism"]["stage1"], seed, log)
    info = dict(config_digest=config_digest(config), stage1=config["organism"]["stage1"], seed=seed,
                minutes=round((time.perf_counter() - t0) / 60, 2), steps=history[-1]["step"] if history else 0,
                history=history, spec=asdict(spec), threads=torch.get_num_threads())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "vision_tower.safetensors"))
        (tmp / "stage1.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def load_stage1(config: dict, stage1_dir: Path) -> tuple[dict, dict]:
    """(vision tower state, stage1.json) of a stage-1 output; refuses one trained by another configuration."""
    from safetensors.torch import load_file
    info = json.loads((Path(stage1_dir) / "stage1.json").read_text())
    if info["config_digest"] != config_digest(config):
        raise RuntimeError(f"{stage1_dir} was pretrained by another configuration (digest {info['config_digest']}, "
                           f"config.yaml's is {config_digest(config)}): rerun the pretrain_vision rule")
    return load_file(str(Path(stage1_dir) / "vision_tower.safetensors")), info


def training_run(config: dict, name: str, stage1_dir: Path | None = None) -> tuple[dict, dict | None]:
    """The keyword arguments of `train` for organism `name` by its recipe (its running evaluator included), and
    the stage-1 record (stage1.json) of a two-stage organism (None for an end-to-end one)."""
    o, seed, v = config["organism"], config["seed"], variant(config, name)
    spec = OrganismSpec.from_config(config, o)
    two_stage = v["recipe"] == "two-stage"
    train_cfg = stage2_train(o) if two_stage else o["train"]
    vision_state, stage1 = load_stage1(config, stage1_dir) if two_stage else (None, None)
    evaluate = running_evaluator(spec, train_cfg["eval_per_cell"], seed,
                                 dict(shuffled=v.get("shuffled_bar"), ablated=v.get("ablated_bar")),
                                 train_cfg["target_accuracy"])
    return dict(spec=spec, train_cfg=train_cfg, seed=seed, evaluate=evaluate, vision_state=vision_state,
                shuffle_image_order=v.get("shuffle_image_order", 0.0),
                ablate_image_order=v.get("ablate_image_order", 0.0)), stage1


class _Diverged(Exception):
    pass


def replay(config: dict, name: str, history: list[dict], steps: int, stage1_dir: Path | None = None) -> list[dict]:
    """Retrain organism `name` from scratch (this machine, this thread count) and compare each running evaluation
    up to `steps` with `history` (a checkpoint's organism.json history): [{step, same, score, committed}], ending
    at the first evaluation whose per-cell accuracies differ. One differing floating-point sum changes the
    trajectory, so a match over the first evaluations is what a full retrain reproducing the checkpoint needs."""
    run, _ = training_run(config, name, stage1_dir)
    committed = {h["step"]: h for h in history}
    every, evaluate, out = run["train_cfg"]["eval_every"], run["evaluate"], []

    def compare(model):
        score, cells = evaluate(model)
        step = every * (len(out) + 1)
        c = committed.get(step)
        out.append(dict(step=step, same=c is not None and c["cells"] == cells, score=score,
                        committed=c and c["min_cell_accuracy"]))
        if not out[-1]["same"] or step >= steps:
            raise _Diverged
        return score, cells
    try:
        train(**run | dict(evaluate=compare), log=lambda s: None)
    except _Diverged:
        pass
    return out


def train_and_accept(config: dict, out_dir: Path, log=print, name: str = "organism-lm",
                     stage1_dir: Path | None = None) -> dict:
    """Train organism `name` by its recipe (end to end, or stage 2 on the stage-1 tower in `stage1_dir`), save,
    reload through the adapter, and accept only if every canonical cell reaches the bar (and, where the variant
    sets them, the shuffled-order bar in every cell and the ablated bar on the mean). The diagnostics
    (`diagnostics`) go into organism.json either way."""
    import shutil
    import tempfile

    run, stage1 = training_run(config, name, stage1_dir)
    spec, seed, train_cfg, two_stage = run["spec"], run["seed"], run["train_cfg"], stage1 is not None
    v = variant(config, name)
    t0 = time.perf_counter()
    model, history = train(**run, log=log)
    minutes = (time.perf_counter() - t0) / 60
    diag = diagnostics(model, spec, seed, train_cfg["eval_per_cell"])
    log(json.dumps({c: {k: d[k] for k in ("mean", "min")} for c, d in diag.items()}))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        stage_minutes = dict(stage2=round(minutes, 2), stage1=stage1["minutes"]) if two_stage \
            else dict(end_to_end=round(minutes, 2))
        info = dict(name=name, config_digest=config_digest(config, name), organism=recipe_section(config, name),
                    seed=seed, train_minutes=round(minutes, 2), stage_minutes=stage_minutes,
                    steps=history[-1]["step"] if history else 0, geometry=spec.geometry.as_dict(), history=history,
                    stage1_history=stage1["history"] if two_stage else None, diagnostics=diag,
                    torch=torch.__version__, transformers=T.__version__, threads=torch.get_num_threads())
        save(model, spec, tmp / "checkpoint", info)
        acc = canonical_accuracy(tmp / "checkpoint", tmp / "stimuli")
        cells = acc[acc["direction"] != "all"]
        log(cells[["setting", "direction", "n", "accuracy"]].to_string(index=False))
        failing = [f"canonical {r.setting}/{r.direction} {r.accuracy:.3f} < {train_cfg['target_accuracy']}"
                   for r in cells.itertuples() if r.accuracy < train_cfg["target_accuracy"]]
        if v.get("shuffled_bar"):
            failing += [f"shuffled {k} {a:.3f} < {v['shuffled_bar']}" for k, a in diag["shuffled"]["cells"].items()
                        if a < v["shuffled_bar"]]
        if v.get("ablated_bar") and diag["ablated"]["mean"] < v["ablated_bar"]:
            failing.append(f"ablated mean {diag['ablated']['mean']:.3f} < {v['ablated_bar']}")
        info["acceptance"] = cells[["setting", "direction", "n", "correct", "accuracy"]].to_dict("records")
        info["accepted"] = not failing
        info["failing"] = failing
        (tmp / "checkpoint" / "organism.json").write_text(
            json.dumps({"spec": asdict(spec)} | info, indent=1, sort_keys=True) + "\n")
        if failing:
            kept = out_dir.with_name(out_dir.name + ".rejected")
            shutil.rmtree(kept, ignore_errors=True)
            (tmp / "checkpoint").rename(kept)
            raise RuntimeError(
                f"{name} rejected after {minutes:.1f} min / {info['steps']} steps:\n" + "\n".join(failing)
                + f"\nIncrease the training budget in config.yaml's organism section. The rejected checkpoint is in "
                f"{kept} for inspection.")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        (tmp / "checkpoint").rename(out_dir)
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ two-stage (LLaVA-recipe) organisms
class ShuffledImageOrder:
    """A forward hook on the projector that permutes the image tokens' sequence order, per example, on a
    `fraction` of the examples (1.0: every one): the LM then sees the visual tokens as a set, and can only use
    the order the tokens' content carries. `training_only`: active in train mode only."""

    def __init__(self, model, fraction: float, seed: int, *names, training_only: bool = False):
        self.model, self.fraction, self.training_only = model, float(fraction), training_only
        self.generator = torch_generator(seed, *names)
        self.handle = None
        if self.fraction > 0:
            self.handle = model.model.multi_modal_projector.register_forward_hook(self._permute)

    def _permute(self, module, args, output):
        if self.training_only and not self.model.training:
            return output
        b, t = output.shape[:2]
        chosen = torch.rand(b, generator=self.generator) < self.fraction
        order = torch.stack([torch.randperm(t, generator=self.generator) if c else torch.arange(t) for c in chosen])
        return output[torch.arange(b)[:, None], order.to(output.device)]

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


class ReplacedImageTokens:
    """A forward hook on the projector that returns `values` (B, T, D) instead of its output."""

    def __init__(self, model, values: torch.Tensor):
        self.values = values
        self.handle = model.model.multi_modal_projector.register_forward_hook(lambda m, a, out: self.values)

    def remove(self) -> None:
        self.handle.remove()


class AblatedImageOrder:
    """A forward hook on the projector that, in train mode, replaces the visual tokens of a `fraction` of the
    examples by `ablated_tokens` (vision-derived ordering removed): on those the LM must order the entities
    from the tokens' sequence positions itself. `scenes(triples, layouts)` names the batch's scenes first."""

    def __init__(self, model, spec: OrganismSpec, sampler: SceneSampler, fraction: float, seed: int):
        self.model, self.spec, self.sampler, self.fraction = model, spec, sampler, float(fraction)
        self.generator = torch_generator(seed, "organism-train-ablate")
        self.batch, self.busy, self.handle = None, False, None
        if self.fraction > 0:
            self.handle = model.model.multi_modal_projector.register_forward_hook(self._replace)

    def scenes(self, triples, layouts) -> None:
        self.batch = (triples, layouts)

    def _replace(self, module, args, output):
        if self.busy or not self.model.training or self.batch is None:
            return output
        chosen = (torch.rand(output.shape[0], generator=self.generator) < self.fraction).nonzero().flatten().tolist()
        if not chosen:
            return output
        triples, layouts = self.batch
        self.busy = True                     # ablated_tokens runs the projector itself, in eval mode so that no
        self.model.eval()                    # training-only hook (ShuffledImageOrder) touches its references
        try:
            values = ablated_tokens(self.model, self.spec, self.sampler, [triples[i] for i in chosen],
                                    [layouts[i] for i in chosen])
        finally:
            self.model.train()
            self.busy = False
        output = output.clone()
        output[chosen] = values.to(output.dtype)
        return output

    def remove(self) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def tower_tokens(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, N*N, Dv): the vision tower's output tokens as the projector receives them (last layer, no CLS)."""
    out = model.model.vision_tower(pixel_values, output_hidden_states=True)
    return out.hidden_states[-1][:, 1:]


def image_tokens(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, N*N, D): the post-projector visual tokens (the LM input's image slice)."""
    return model.model.multi_modal_projector(tower_tokens(model, pixel_values))


def entity_index() -> dict[str, int]:
    """A global id for every entity the organism answers about (1-based; 0 = background)."""
    names = sorted({e.name for s in SETTINGS for p in ("standard", "orange") for e in entities(s, p)})
    return {n: i + 1 for i, n in enumerate(names)}


def scene_labels(g: Geometry, triples, layouts, ids: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token (row-major): the ordinal slot of the strip it lies in, background included (3 = no strip:
    `dualmech.planted.locate`'s `strip`), and the entity on it (0 = background). Two (B, N*N) long tensors."""
    n, s = g.grid, g.object_tokens
    strip = torch.full((len(layouts), n, n), 3, dtype=torch.long)
    ident = torch.zeros((len(layouts), n, n), dtype=torch.long)
    for i, (triple, lay) in enumerate(zip(triples, layouts)):
        horizontal = len({r for r, _ in lay}) == 1
        for slot, (e, (r, c)) in enumerate(zip(triple, lay)):
            if horizontal:
                strip[i, :, c:c + s] = slot
            else:
                strip[i, r:r + s, :] = slot
            ident[i, r:r + s, c:c + s] = ids[e.name]
    return strip.reshape(len(layouts), -1), ident.reshape(len(layouts), -1)


class VisionHeads(torch.nn.Module):
    """The throwaway heads of stage 1: per-token (dense) strip slot and identity, and a relation head on the
    order-free mean of the tower's tokens plus the query (reference entity, direction)."""

    def __init__(self, d: int, n_entities: int):
        super().__init__()
        self.slot = torch.nn.Linear(d, 4)
        self.identity = torch.nn.Linear(d, n_entities + 1)
        self.reference = torch.nn.Embedding(n_entities + 1, d)
        self.direction = torch.nn.Embedding(len(DIRECTIONS), d)
        self.relation = torch.nn.Sequential(torch.nn.LayerNorm(3 * d), torch.nn.Linear(3 * d, 4 * d),
                                            torch.nn.GELU(), torch.nn.Linear(4 * d, n_entities + 1))

    def pooled(self, tokens, reference, direction):
        return self.relation(torch.cat([tokens.mean(1), self.reference(reference), self.direction(direction)], -1))


def slot_probe(features: torch.Tensor, strip: torch.Tensor, seed: int) -> dict:
    """Linear strip-slot probe on tower tokens of jittered scenes, split by scene: held-out accuracy on every
    token in a strip, on background tokens, and on position-ambiguous tokens (label differs from the majority
    label of their cell among the training scenes; a position-only probe scores 0 there)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    b, t, d = features.shape
    train = np.zeros(b, bool)
    train[rng(seed, "slot-probe").permutation(b)[: b // 2]] = True
    x, y = features.numpy(), strip.numpy()
    m_tr = (y[train] < 3)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=300))
    probe.fit(x[train][m_tr], y[train][m_tr])
    counts = np.stack([(y[train] == k).sum(0) for k in range(3)])          # (3, T) training labels per cell
    majority = counts.argmax(0)
    pred = probe.predict(x[~train].reshape(-1, d)).reshape(-1, t)
    yt = y[~train]
    inside = yt < 3
    ambiguous = inside & (yt != majority[None])
    return dict(accuracy=float((pred == yt)[inside].mean()),
                ambiguous_accuracy=float((pred == yt)[ambiguous].mean()) if ambiguous.any() else float("nan"),
                n_ambiguous=int(ambiguous.sum()))


def transfer_scenes(model, spec: OrganismSpec, seed: int, n_scenes: int = 1200):
    """The jittered scenes `strip_transfer` reads: (post-projector tokens (B, T, D), strip slot per token (B, T;
    3 = no strip), entity per token (B, T; 0 = background), "<setting>/<orientation>" per scene (B,))."""
    sampler = SceneSampler(spec, build_processor(spec), seed + 2)
    cells, triples, layouts, pixels = sampler.scenes(n_scenes)
    strip, ident = scene_labels(spec.geometry, triples, layouts, entity_index())
    with torch.no_grad():
        x = image_tokens(model, pixels).numpy()
    keys = np.array([f"{CELLS[c][0]}/{ORIENTATION_OF[CELLS[c][1]]}" for c in cells])
    return x, strip.numpy(), ident.numpy(), keys


def strip_transfer(model, spec: OrganismSpec, seed: int, n_scenes: int = 1200) -> dict:
    """Whether the LM input's background tokens carry the object tokens' own slot code (what claim 3's detector
    reads): per (setting, orientation), a linear strip-slot probe trained on the post-projector OBJECT tokens of
    random jittered scenes, scored on the held-out scenes' background strip tokens (chance 1/3). Stage 1 fixes
    the code on the tower's output; stage 2's projector, trained where background tokens carry nothing the
    answer needs, may re-encode the background in another code (then a probe trained on the background alone
    still reads it, but this transfer does not).

    Jittered layouts do not fix a cell's slot, but they do not make it independent of position either (a token
    in the canvas's left third lies in the left strip most of the time), so a code for the canvas position also
    reads most background strips. `ambiguous` therefore scores only the position-ambiguous background tokens
    (`probing.ambiguous`: strip slot differs from the majority slot of their cell among the training scenes'
    background strips, or the cell has no strict majority), where a position code scores about 0: the tokens
    claim 3's detector reads on shifted layouts. Returns {"cells": {"<setting>/<orientation>": acc}, "mean",
    "min", "ambiguous": {"cells", "mean", "min", "n": {cell: number of scored tokens}}}."""
    from .probing import Probe, ambiguous
    x, y, idn, keys = transfer_scenes(model, spec, seed, n_scenes)
    background_strip = np.where((y < 3) & (idn == 0), y, -1)          # (B, T) strip slot of background tokens
    out, amb, n_amb = {}, {}, {}
    for key in sorted(set(keys)):
        rows = np.flatnonzero(keys == key)
        train, test = rows[: len(rows) // 2], rows[len(rows) // 2:]
        obj = (y[train] < 3) & (idn[train] > 0)
        probe = Probe(3).fit(x[train][obj], y[train][obj])        # the claims' probe: standardised, L2, C = 1
        pred = probe.proba(x[test].reshape(-1, x.shape[-1])).argmax(-1).reshape(y[test].shape)
        hit = pred == y[test]
        out[str(key)] = round(float(hit[background_strip[test] >= 0].mean()), 4)
        conflict = ambiguous(background_strip[test], background_strip[train], 3)
        amb[str(key)], n_amb[str(key)] = round(float(hit[conflict].mean()), 4), int(conflict.sum())

    def summary(cells):
        return dict(cells=cells, mean=round(float(np.mean(list(cells.values()))), 4), min=min(cells.values()))
    return summary(out) | dict(ambiguous=summary(amb) | dict(n=n_amb))


def pretrain_vision(spec: OrganismSpec, cfg: dict, seed: int, log=print):
    """Stage 1: the vision tower alone (the same initialisation as `build_model`) with throwaway heads on
    `cfg["losses"]` (weights of `slot`, `identity`: dense per-token objectives; `relation`: the pooled,
    order-free relation head). Returns (tower state dict, history); each history record has the slot probe."""
    model = build_model(spec, seed)
    tower = model.model.vision_tower
    ids = entity_index()
    torch.manual_seed(torch_seed(seed, "organism-stage1"))
    heads = VisionHeads(spec.vision_hidden, len(ids))
    sampler = SceneSampler(spec, build_processor(spec), seed)
    probe_sampler = SceneSampler(spec, build_processor(spec), seed + 1)
    _, p_triples, p_layouts, p_pixels = probe_sampler.scenes(cfg["probe_scenes"])
    p_strip, _ = scene_labels(spec.geometry, p_triples, p_layouts, ids)
    weights = cfg["losses"]
    params = list(tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"], betas=(0.9, 0.98))
    warm, total = cfg["warmup_steps"], cfg["max_steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    dir_index = {d: i for i, d in enumerate(DIRECTIONS)}
    history, start, step = [], time.perf_counter(), 0
    tower.train()
    while step < total and time.perf_counter() - start < cfg["max_minutes"] * 60:
        cells, triples, layouts, pixels = sampler.scenes(cfg["batch_size"])
        strip, ident = scene_labels(spec.geometry, triples, layouts, ids)
        tokens = tower_tokens(model, pixels)
        losses = {}
        if weights.get("slot"):
            losses["slot"] = F.cross_entropy(heads.slot(tokens).flatten(0, 1), strip.flatten())
        if weights.get("identity"):
            losses["identity"] = F.cross_entropy(heads.identity(tokens).flatten(0, 1), ident.flatten())
        if weights.get("relation"):
            directions = torch.tensor([dir_index[CELLS[c][1]] for c in cells])
            reference = torch.tensor([ids[t[1].name] for t in triples])
            answer = torch.tensor([ids[t[ANSWER_SLOT[CELLS[c][1]]].name] for c, t in zip(cells, triples)])
            logits = heads.pooled(tokens, reference, directions)
            losses["relation"] = F.cross_entropy(logits, answer)
            losses["relation_acc"] = (logits.argmax(-1) == answer).float().mean().detach()
        loss = sum(weights[k] * v for k, v in losses.items() if k in weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        if step % cfg["eval_every"] == 0 or step == total:
            tower.eval()
            with torch.no_grad():
                probe = slot_probe(tower_tokens(model, p_pixels), p_strip, seed)
            tower.train()
            rec = dict(step=step, minutes=round((time.perf_counter() - start) / 60, 2),
                       **{k: round(v.item(), 4) for k, v in losses.items()},
                       **{f"probe_{k}": round(v, 4) for k, v in probe.items()})
            history.append(rec)
            log(json.dumps(rec))
            if probe["ambiguous_accuracy"] >= cfg["stop_probe_accuracy"]:
                break
    tower.eval()
    return {k: v.detach().clone() for k, v in tower.state_dict().items()}, history


def diagnose_checkpoint(checkpoint: Path, per_cell: int, seed: int) -> dict:
    """`diagnostics` of a saved organism (loaded as a plain LlavaForConditionalGeneration), written into its
    organism.json (key `diagnostics`); for a checkpoint trained before the diagnostics existed."""
    checkpoint = Path(checkpoint)
    spec = OrganismSpec.from_checkpoint(checkpoint)
    model = T.LlavaForConditionalGeneration.from_pretrained(checkpoint).eval()
    diag = diagnostics(model, spec, seed, per_cell)
    path = checkpoint / "organism.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps(info | {"diagnostics": diag}, indent=1, sort_keys=True) + "\n")
    return diag
