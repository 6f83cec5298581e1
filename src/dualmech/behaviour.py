"""Top-1 next-token accuracy on the canonical stimuli (paper §4.3, Table 1).

Torch is imported by `predict` alone, so that Table 1's rule (`accuracy_table`) starts without it."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from PIL import Image

from .stats import accuracy_summary

if TYPE_CHECKING:
    from .models import VLMAdapter


def normalise(word: str) -> str:
    """Lower-case, strip, drop every non-alphanumeric character (paper §4.3)."""
    return re.sub(r"[^0-9a-z]", "", word.strip().lower())


def load_images(items: pd.DataFrame, image_root: Path) -> list[Image.Image]:
    return [Image.open(image_root / p).convert("RGB") for p in items["image"]]


def predict(adapter: VLMAdapter, items: pd.DataFrame, image_root: Path, batch_size: int | None = None,
            desc: str = "items") -> pd.DataFrame:
    """One row per item: predicted token, correctness and the answer's probability (summed variants)."""
    import torch

    from . import interventions, runtime
    size = batch_size or runtime.batch_size(adapter)
    answer_ids = {w: adapter.candidate_token_ids(w) for w in items["answer"].unique()}
    rows = []
    for sl in runtime.batches(len(items), size, desc):
        chunk = items.iloc[sl]
        prepared = adapter.prepare(load_images(chunk, image_root), chunk["prompt"].tolist())
        with torch.inference_mode():
            logits = interventions.final_logits(adapter, prepared)
        probs = torch.softmax(logits, -1)
        top = logits.argmax(-1).tolist()
        for (_, item), tok, p in zip(chunk.iterrows(), adapter.decode(top), probs):
            rows.append(dict(item=item["item"], prediction=tok,
                             correct=normalise(tok) == normalise(item["answer"]),
                             p_answer=float(p[answer_ids[item["answer"]]].sum())))
    return items.merge(pd.DataFrame(rows), on="item")


def accuracy_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Accuracy with Wilson 95% CIs per (model, setting, direction) and per (model, setting) overall."""
    out = []
    for (model, setting), df in predictions.groupby(["model", "setting"], sort=False):
        for direction, d in df.groupby("direction", sort=False):
            out.append(dict(model=model, setting=setting, direction=direction) | accuracy_summary(d["correct"]))
        out.append(dict(model=model, setting=setting, direction="all") | accuracy_summary(df["correct"]))
    return pd.DataFrame(out)
