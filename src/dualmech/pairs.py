"""Counterfactual pairs for the causal-mediation experiments, golden-filtered per model.

Two designs (paper §5.3, §5.4); `t0..t4` are distinct entities of the setting, `t1` is the middle entity
(the reference in both prompts):

* ``last_token`` (Fig 3), a 5-tuple. left/above: clean scene (t0, t1, t2) asked about direction d,
  counterfactual (cf) scene (t4, t1, t3) asked about opposite(d). right/below: clean (t2, t1, t0), cf
  (t3, t1, t4), same directions. Either way the clean answer is t0 and the cf answer t3; t2 is the clean
  item at the cf answer's ordinal slot (ordinal transfer), t3 the cf answer (attribute transfer).
* ``criss_cross`` (Figs 6/7), a 3-tuple. left/above: clean (t0, t1, t2), cf (t2, t1, t0); right/below:
  clean (t2, t1, t0), cf (t0, t1, t2); the same query on both runs. Clean answer c0 = t0, middle c1 = t1,
  cf answer c2 = t2: the side regions hold the same entities in both runs, only their order differs.

Entities come from `pool`: for Squares the 7-colour pool with Orange (paper §3.2, §5.3; config
`patching.colour_pool: palette` uses the model's six-colour palette instead). Tuples are drawn without replacement in an order fixed by the root seed (one stream per design, setting
and direction, the same for every model), and kept when the model's top-1 answer is right on both the
clean and the cf run (scored as `behaviour.normalise`), until `target` pairs or `max_attempts` tuples.
Every attempted tuple is a row of the table (`golden` marks the pairs), so each number traces back to
its entities, prompts, predictions and images (rendered with `render_scene` at the canonical layout).
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
from pathlib import Path

import pandas as pd
import torch

from . import interventions, runtime
from .behaviour import normalise
from .models import VLMAdapter
from .patching_tables import ROLE_NAMES, ROLES  # noqa: F401 (this module's API)
from .seeding import rng
from .stimuli import OPPOSITE, ORIENTATION_OF, Entity, pair_entities, prompt, render_scene
from .tables import atomic_write

log = logging.getLogger(__name__)
DESIGNS = ("last_token", "criss_cross")
TUPLE_SIZE = {"last_token": 5, "criss_cross": 3}
FIRST_SLOT = ("left", "above")     # directions whose answer is slot 0


def scenes(design: str, direction: str, tup: tuple) -> tuple[tuple, tuple, str]:
    """(clean slots, cf slots, cf direction) of a tuple in role order (t0, t1, ...)."""
    first = direction in FIRST_SLOT
    if design == "last_token":
        t0, t1, t2, t3, t4 = tup
        clean, cf = ((t0, t1, t2), (t4, t1, t3)) if first else ((t2, t1, t0), (t3, t1, t4))
        return clean, cf, OPPOSITE[direction]
    if design == "criss_cross":
        t0, t1, t2 = tup
        clean, cf = ((t0, t1, t2), (t2, t1, t0)) if first else ((t2, t1, t0), (t0, t1, t2))
        return clean, cf, direction
    raise ValueError(f"unknown design {design!r}; expected one of {DESIGNS}")


def answers(design: str, tup: tuple) -> tuple:
    """(clean answer, cf answer) entities."""
    return (tup[0], tup[3]) if design == "last_token" else (tup[0], tup[2])


def sampling_order(n_entities: int, design: str, setting: str, direction: str, seed: int,
                   max_attempts: int) -> list[tuple[int, ...]]:
    """Entity-index tuples in the seeded order they are tried (without replacement, at most max_attempts)."""
    every = list(itertools.permutations(range(n_entities), TUPLE_SIZE[design]))
    order = rng(seed, "pairs", design, setting, direction).permutation(len(every))
    return [every[i] for i in order[:max_attempts]]


def slug(scene: tuple[Entity, ...]) -> str:
    return "_".join(e.name.replace(" ", "-") for e in scene)


def known_predictions(items: pd.DataFrame, predictions: pd.DataFrame, column: str = "prediction") -> dict:
    """{(entity names in slot order, direction): (prompt, top-1 prediction, image sha256)} of canonical items
    already scored (Table 1's `behaviour` predictions, or Table 5's `prediction_ablated` under the ablation), so
    the golden filter looks them up instead of running the model again on the same image and prompt."""
    df = items[["item", "e0", "e1", "e2", "direction", "prompt", "image_sha256"]].merge(
        predictions[["item", column]], on="item", validate="one_to_one")
    return {((r.e0, r.e1, r.e2), r.direction): (r.prompt, r[column], r.image_sha256)
            for _, r in df.iterrows()}


class Oracle:
    """Top-1 predictions of one model on (scene, direction) runs, computed once each and cached.

    known: `known_predictions` of the canonical items; a run with the same entities, direction, prompt and image
    (its PNG hashes to the scored item's) is taken from it, and only the other runs go through the model."""

    def __init__(self, adapter: VLMAdapter, setting: str, image_dir: Path, batch_size: int,
                 lm_input_override=None, known: dict | None = None, backgrounds=None):
        self.adapter, self.setting, self.image_dir, self.batch_size = adapter, setting, Path(image_dir), batch_size
        self.override = lm_input_override
        self.known = known or {}
        self.backgrounds = backgrounds
        self.geometry = adapter.geometry
        self.images: dict[tuple, object] = {}
        self.saved: dict[tuple, tuple[str, str]] = {}
        self.results: dict[tuple, tuple[str, bool]] = {}
        self.pngs: dict[tuple, tuple[bytes, str]] = {}
        self.n_tokens: dict[str, int] = {}
        self.n_looked_up = 0

    def image(self, scene: tuple[Entity, ...], orientation: str):
        key = (scene, orientation)
        if key not in self.images:
            bg = None if self.backgrounds is None else self.backgrounds.for_scene([e.name for e in scene], orientation)
            self.images[key] = render_scene(scene, self.geometry.canonical_layout(orientation), self.geometry, bg)
        return self.images[key]

    def png(self, scene: tuple[Entity, ...], orientation: str) -> tuple[bytes, str]:
        """The scene's PNG bytes and their sha256 (encoded once)."""
        key = (scene, orientation)
        if key not in self.pngs:
            buf = io.BytesIO()
            self.image(scene, orientation).save(buf, format="PNG")
            self.pngs[key] = buf.getvalue(), hashlib.sha256(buf.getvalue()).hexdigest()
        return self.pngs[key]

    def save(self, scene: tuple[Entity, ...], orientation: str) -> tuple[str, str]:
        """Write the scene's PNG (once) and return (path relative to image_dir, sha256)."""
        key = (scene, orientation)
        if key not in self.saved:
            data, sha = self.png(scene, orientation)
            rel = f"{orientation}/{slug(scene)}.png"
            atomic_write(self.image_dir / rel, data)
            self.saved[key] = rel, sha
        return self.saved[key]

    def tokens(self, text: str) -> int:
        """Token count of the chat-formatted prompt (the image expands identically for every scene)."""
        if text not in self.n_tokens:
            chat = self.adapter.chat_text(text)
            self.n_tokens[text] = len(self.adapter.tokenizer(chat, **self.adapter.text_kwargs([chat]))["input_ids"])
        return self.n_tokens[text]

    def evaluate(self, keys: list[tuple]) -> None:
        """keys: (scene, direction) pairs; predict the ones not seen yet, in batches."""
        todo = []
        for scene, d in dict.fromkeys(k for k in keys if k not in self.results):
            hit = self.known.get((tuple(e.name for e in scene), d))
            if (hit is not None and hit[0] == prompt(self.setting, d, scene[1])
                    and hit[2] == self.png(scene, ORIENTATION_OF[d])[1]):
                self.results[scene, d] = self.score(scene, d, hit[1])
                self.n_looked_up += 1
            else:
                todo.append((scene, d))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            imgs = [self.image(scene, ORIENTATION_OF[d]) for scene, d in chunk]
            prompts = [prompt(self.setting, d, scene[1]) for scene, d in chunk]
            prepared = self.adapter.prepare(imgs, prompts)
            edits = {}
            if self.override is not None:
                values = self.override([[e.name for e in scene] for scene, _ in chunk], [ORIENTATION_OF[d] for _, d in chunk])
                edits[interventions.LM_INPUT] = interventions.replace_grid(prepared, values.to(self.adapter.device))
            logits = interventions.run(self.adapter, prepared, edits=edits).logits
            for (scene, d), tok in zip(chunk, self.adapter.decode(logits.argmax(-1).tolist())):
                self.results[scene, d] = self.score(scene, d, tok)

    @staticmethod
    def score(scene: tuple[Entity, ...], direction: str, token: str) -> tuple[str, bool]:
        target = scene[0] if direction in FIRST_SLOT else scene[2]
        return token, normalise(token) == normalise(target.answer)


class WhatsupOracle(Oracle):
    """An Oracle whose scenes are What'sUp composites (paper §3.5): scene (left object, reference, right object)
    is the left half of "<left>_left_of_<ref>" beside the right half of "<right>_right_of_<ref>"."""

    def __init__(self, adapter: VLMAdapter, index: dict, image_dir: Path, batch_size: int):
        super().__init__(adapter, "whatsup", image_dir, batch_size)
        self.index = index

    def image(self, scene: tuple[Entity, ...], orientation: str):
        from .naturalistic import _load_rgb, whatsup_composite
        key = (scene, orientation)
        if key not in self.images:
            left, ref, right = (e.name for e in scene)
            self.images[key] = whatsup_composite(_load_rgb(self.index[ref][left]["left"]),
                                                 _load_rgb(self.index[ref][right]["right"]), self.geometry.canvas_px)
        return self.images[key]


def whatsup_tuples(adapter: VLMAdapter, index: dict, design: str, direction: str, seed: int,
                   max_attempts: int) -> list[tuple[Entity, ...]]:
    """Entity tuples of a What'sUp design in the seeded order they are tried: t1 (c1) is a reference, the
    other roles distinct side objects of that reference; every name (the reference's too, a scored candidate)
    one token for this model (paper §5.3)."""
    every = []
    for ref, objs in sorted(index.items()):
        if not adapter.is_one_token_name(ref):      # every role is a scored candidate (paper §4.4)
            continue
        sides = [Entity("whatsup", o, o, o, "object", None) for o in objs if adapter.is_one_token_name(o)]
        middle = Entity("whatsup", ref, ref, ref, "reference", None)
        for perm in itertools.permutations(sides, TUPLE_SIZE[design] - 1):
            every.append((perm[0], middle, *perm[1:]))
    order = rng(seed, "pairs", design, "whatsup", direction).permutation(len(every))
    return [every[i] for i in order[:max_attempts]]


def build_whatsup(adapter: VLMAdapter, whatsup_dir, directions, seed: int, target: int, max_attempts: int,
                  image_dir: Path, batch_size: int | None = None, designs=DESIGNS) -> dict[str, pd.DataFrame]:
    """Both designs on What'sUp composites, left/right only (the composites are horizontal), golden-filtered as
    the synthetic pairs are."""
    from .naturalistic import whatsup_directions, whatsup_index
    index = whatsup_index(whatsup_dir)
    oracle = WhatsupOracle(adapter, index, image_dir, batch_size or runtime.batch_size(adapter))
    dirs = whatsup_directions(directions)
    with torch.inference_mode():
        return {d: build(adapter, "whatsup", d, dirs, seed, target, max_attempts, oracle,
                         tuples_of=lambda direction, d=d: whatsup_tuples(adapter, index, d, direction, seed,
                                                                         max_attempts))
                for d in designs}


def pool(adapter: VLMAdapter, setting: str, colour_pool: str = "paper") -> tuple[Entity, ...]:
    """The entities a model's pairs draw from: `stimuli.pair_entities` (Squares: the 7-colour pool with Orange
    under "paper"), keeping the colours whose names are single tokens lower-case and capitalised for this
    tokenizer (`VLMAdapter.is_one_token_name`), as the authors filter their pool (paper §3.2)."""
    ents = pair_entities(setting, adapter.palette, colour_pool, adapter.exclude_objects)
    if setting != "squares" or colour_pool != "paper":
        return ents
    return tuple(e for e in ents if adapter.is_one_token_name(e.answer))


def build(adapter: VLMAdapter, setting: str, design: str, directions, seed: int, target: int, max_attempts: int,
          oracle: Oracle, chunk: int = 64, colour_pool: str = "paper", tuples_of=None) -> pd.DataFrame:
    """Every attempted tuple of one design (all directions), with its golden flag; see the module docstring.

    tuples_of(direction) -> entity tuples in the order they are tried (default: the setting's pool in the
    seeded `sampling_order`)."""
    if tuples_of is None:
        ents = pool(adapter, setting, colour_pool)

        def tuples_of(direction):
            return [tuple(ents[i] for i in idx)
                    for idx in sampling_order(len(ents), design, setting, direction, seed, max_attempts)]
    roles = ROLES[design]
    rows = []
    for direction in directions:
        order = tuples_of(direction)
        kept = 0
        for sl in runtime.batches(len(order), chunk, f"{adapter.spec.name} {setting} {design} {direction} pairs"):
            if kept >= target:
                break
            batch = []
            for sample, tup in enumerate(order[sl], sl.start):
                clean, cf, cf_dir = scenes(design, direction, tup)
                batch.append((sample, tup, clean, cf, cf_dir))
            oracle.evaluate([k for _, _, clean, cf, cf_dir in batch for k in ((clean, direction), (cf, cf_dir))])
            for sample, tup, clean, cf, cf_dir in batch:
                if kept >= target:
                    break
                (clean_pred, clean_ok), (cf_pred, cf_ok) = oracle.results[clean, direction], oracle.results[cf, cf_dir]
                golden = clean_ok and cf_ok
                kept += golden
                clean_prompt, cf_prompt = prompt(setting, direction, tup[1]), prompt(setting, cf_dir, tup[1])
                n_clean, n_cf = oracle.tokens(clean_prompt), oracle.tokens(cf_prompt)
                if n_clean != n_cf:
                    raise AssertionError(f"{adapter.spec.name}: clean and cf prompts differ in token length "
                                         f"({n_clean} vs {n_cf}): {clean_prompt!r} / {cf_prompt!r}")
                orientation = ORIENTATION_OF[direction]
                clean_img, clean_sha = oracle.save(clean, orientation)
                cf_img, cf_sha = oracle.save(cf, orientation)
                clean_ans, cf_ans = answers(design, tup)
                rows.append(dict(
                    pair=f"{setting}-{design}-{direction}-{sample:04d}", setting=setting, design=design,
                    direction=direction, cf_direction=cf_dir, orientation=orientation, sample=sample,
                    golden=golden, **{r: e.name for r, e in zip(roles, tup)},
                    candidates=json.dumps([e.answer for e in tup]),
                    clean_scene=json.dumps([e.name for e in clean]), cf_scene=json.dumps([e.name for e in cf]),
                    clean_prompt=clean_prompt, cf_prompt=cf_prompt,
                    clean_answer=clean_ans.answer, cf_answer=cf_ans.answer,
                    clean_prediction=clean_pred, cf_prediction=cf_pred, clean_correct=clean_ok, cf_correct=cf_ok,
                    clean_image=clean_img, clean_image_sha256=clean_sha, cf_image=cf_img, cf_image_sha256=cf_sha,
                    n_tokens=n_clean))
    columns = ["pair", "setting", "design", "direction", "cf_direction", "orientation", "sample", "golden", *roles,
               "candidates", "clean_scene", "cf_scene", "clean_prompt", "cf_prompt", "clean_answer", "cf_answer",
               "clean_prediction", "cf_prediction", "clean_correct", "cf_correct", "clean_image",
               "clean_image_sha256", "cf_image", "cf_image_sha256", "n_tokens"]
    out = pd.DataFrame(rows, columns=columns)
    return out.astype({"golden": bool})     # an empty table (nothing to try) still filters by `golden`


def build_all(adapter: VLMAdapter, setting: str, directions, seed: int, target: int, max_attempts: int,
              image_dir: Path, batch_size: int | None = None, designs=DESIGNS,
              lm_input_override=None, colour_pool: str = "paper", known: dict | None = None, backgrounds=None
              ) -> dict[str, pd.DataFrame]:
    """The designs for one (model, setting), sharing the cached predictions and images.

    lm_input_override(scenes, orientations) -> (B, N*N, D): LM-input values that replace the visual tokens on
    every run (e.g. the ordering ablation), so pairs are golden under that intervention. known: predictions of
    the canonical items made with the same intervention (`known_predictions`), reused instead of recomputed.
    `backgrounds` (App C.8, `stimuli.backgrounds`): every scene stands on its background; the tuples, their
    seeded order and the prompts are the setting's, and the tables are labelled `<setting>_bg`."""
    oracle = Oracle(adapter, setting, image_dir, batch_size or runtime.batch_size(adapter), lm_input_override, known,
                    backgrounds)
    with torch.inference_mode():
        tables = {d: build(adapter, setting, d, directions, seed, target, max_attempts, oracle,
                           colour_pool=colour_pool) for d in designs}
    log.info("%s %s: %d runs looked up in the canonical predictions, %d run", adapter.spec.name, setting,
             oracle.n_looked_up, len(oracle.results) - oracle.n_looked_up)
    if backgrounds is not None:
        from .stimuli.backgrounds import SUFFIX
        label = setting + SUFFIX
        tables = {d: df.assign(setting=label, pair=label + df["pair"].str[len(setting):]) for d, df in tables.items()}
    return tables


def golden(pairs: pd.DataFrame) -> pd.DataFrame:
    return pairs[pairs["golden"]].reset_index(drop=True)
