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

from .seeding import rng, torch_seed
from .stimuli import (ANSWER_SLOT, DIRECTIONS, OPPOSITE, ORIENTATION_OF, PREPOSITIONS, SETTINGS, SYSTEM_PROMPT, TEMPLATES,
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

    def batch(self, n: int, weights: np.ndarray | None = None, turns: int = 1):
        """n scenes; each one's (setting, direction) cell is drawn from `weights` over CELLS (uniform when None).

        With turns=2 the conversation goes on after the first answer with a second question about the same
        image and reference in the opposite direction ("... ASSISTANT: green USER: <prompt> ASSISTANT:"): the
        first turn is exactly the evaluation format (causal attention never sees what follows it), the second
        adds a supervised answer that differs from the first only through the direction word.
        Returns (model inputs, answer positions (n, turns), answer token ids (n, turns), cell of each scene)."""
        pixels, ids, positions, answers = [], [], [], []
        cells = self.rng.choice(len(CELLS), size=n, p=weights)
        for cell in cells:
            setting, direction = CELLS[cell]
            ents = self.ents[setting]
            triple = [ents[i] for i in self.rng.choice(len(ents), size=3, replace=False)]
            lay = self.layout(ORIENTATION_OF[direction])
            px = [(r * self.g.px_per_token, c * self.g.px_per_token) for r, c in lay]
            pixels.append(compose([self.sprites[e] for e in triple], px, self.g.canvas_px))
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
        x = (np.stack(pixels).astype(np.float32) / 255.0 - self.mean) / self.std
        length = max(map(len, ids))
        input_ids = torch.full((n, length), self.tok.pad_token_id)
        mask = torch.zeros((n, length), dtype=torch.long)
        for i, row in enumerate(ids):             # right padding: causal attention never sees the pads
            input_ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        inputs = dict(pixel_values=torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), input_ids=input_ids,
                      attention_mask=mask)
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
def train(spec: OrganismSpec, train_cfg: dict, seed: int, evaluate, log=print):
    """Train from scratch until `evaluate(model)` (min per-cell accuracy) reaches `stop_accuracy` or time runs out.

    Returns (model, history). `evaluate` returns (min_accuracy, per_cell dict)."""
    model = build_model(spec, seed)
    processor = build_processor(spec)
    sampler = SceneSampler(spec, processor, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"],
                            betas=(0.9, 0.98))
    warm, total = train_cfg["warmup_steps"], train_cfg["max_steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    torch.manual_seed(torch_seed(seed, "organism-train"))
    history, start, step = [], time.perf_counter(), 0
    budget = train_cfg["max_minutes"] * 60
    train_acc = np.zeros(len(CELLS))          # running training accuracy per (setting, direction) cell
    model.train()
    while step < total and time.perf_counter() - start < budget:
        weights = None
        if train_cfg["balance_by_error"]:     # draw cells in proportion to 0.25 + their training error
            weights = 1.25 - train_acc
            weights /= weights.sum()
        inputs, positions, answers, cells = sampler.batch(train_cfg["batch_size"], weights, train_cfg["turns"])
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
    model.eval()
    return model, history


# ------------------------------------------------------------------ held-out evaluation and acceptance
def running_evaluator(spec: OrganismSpec, per_cell: int, seed: int):
    """A fast in-memory evaluator on random canonical items: returns (min accuracy, per-cell accuracies)."""
    processor = build_processor(spec)
    sampler = SceneSampler(spec, processor, seed)
    g, r = spec.geometry, rng(seed, "organism-eval")
    cells = {}
    for setting in SETTINGS:
        ents = sampler.ents[setting]
        for direction in DIRECTIONS:
            lay = g.canonical_layout(ORIENTATION_OF[direction])
            px = [(a * g.px_per_token, b * g.px_per_token) for a, b in lay]
            imgs, ids, answers = [], [], []
            for _ in range(per_cell):
                triple = [ents[i] for i in r.choice(len(ents), size=3, replace=False)]
                imgs.append(compose([sampler.sprites[e] for e in triple], px, g.canvas_px))
                ids.append(sampler.text_ids(prompt(setting, direction, triple[1])))
                answers.append(processor.tokenizer.convert_tokens_to_ids(triple[ANSWER_SLOT[direction]].answer))
            x = (np.stack(imgs).astype(np.float32) / 255.0 - sampler.mean) / sampler.std
            inputs = dict(pixel_values=torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(),
                          input_ids=torch.tensor(ids), attention_mask=torch.ones(len(ids), len(ids[0]), dtype=torch.long))
            cells[f"{setting}/{direction}"] = (inputs, torch.tensor(answers))

    @torch.no_grad()
    def evaluate(model):
        acc = {k: round((answer_logits(model, x).argmax(-1) == a).float().mean().item(), 4)
               for k, (x, a) in cells.items()}
        return min(acc.values()), acc
    return evaluate


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


def config_digest(config: dict) -> str:
    """The digest a checkpoint carries of the configuration that trained it (organism section and root seed)."""
    from .config import digest
    return digest({"organism": config["organism"], "seed": config["seed"]})


def train_and_accept(config: dict, out_dir: Path, log=print) -> dict:
    """Train, save, reload through the adapter, and accept only if every canonical cell reaches the bar."""
    import shutil
    import tempfile

    o, train_cfg, seed = config["organism"], config["organism"]["train"], config["seed"]
    spec = OrganismSpec.from_config(config, o)
    t0 = time.perf_counter()
    model, history = train(spec, train_cfg, seed, running_evaluator(spec, train_cfg["eval_per_cell"], seed), log)
    minutes = (time.perf_counter() - t0) / 60
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        info = dict(config_digest=config_digest(config), organism=o, seed=seed,
                    train_minutes=round(minutes, 2), steps=history[-1]["step"] if history else 0,
                    geometry=spec.geometry.as_dict(), history=history,
                    torch=torch.__version__, transformers=T.__version__, threads=torch.get_num_threads())
        save(model, spec, tmp / "checkpoint", info)
        acc = canonical_accuracy(tmp / "checkpoint", tmp / "stimuli")
        cells = acc[acc["direction"] != "all"]
        log(cells[["setting", "direction", "n", "accuracy"]].to_string(index=False))
        failing = cells[cells["accuracy"] < train_cfg["target_accuracy"]]
        info["acceptance"] = cells[["setting", "direction", "n", "correct", "accuracy"]].to_dict("records")
        info["accepted"] = not len(failing)
        (tmp / "checkpoint" / "organism.json").write_text(
            json.dumps({"spec": asdict(spec)} | info, indent=1, sort_keys=True) + "\n")
        if len(failing):
            kept = out_dir.with_name(out_dir.name + ".rejected")
            shutil.rmtree(kept, ignore_errors=True)
            (tmp / "checkpoint").rename(kept)
            raise RuntimeError(
                f"organism rejected after {minutes:.1f} min / {info['steps']} steps: held-out canonical accuracy "
                f"below {train_cfg['target_accuracy']} in\n{failing[['setting', 'direction', 'accuracy']].to_string(index=False)}"
                f"\nIncrease organism.train.max_minutes / max_steps in config.yaml. The rejected checkpoint is in "
                f"{kept} for inspection.")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        (tmp / "checkpoint").rename(out_dir)
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
