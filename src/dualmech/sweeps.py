"""The patching steps of one (model, setting) cell, run in one process on one loaded model: golden-filtered
counterfactual pairs, the last-token interchange (Fig 3) and the criss-cross object / strip swaps with their
random-region nulls (Figs 6, 7); with an ordering ablation applied to both runs, the same pairs and swaps give
Fig 9. Each step writes its tables before the next reads them back, so a table is the same whether the steps run
in one job or in several."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from . import naturalistic, pairs, patching
from .models import VLMAdapter
from .stimuli import backgrounds
from .tables import atomic_write

log = logging.getLogger(__name__)


def build_pairs(adapter: VLMAdapter, model: str, setting: str, designs, outputs: dict, images: Path, cfg: dict,
                seed: int, directions, data: dict | None = None, background_cfg: dict | None = None,
                known: dict | None = None, lm_input_override=None) -> dict[str, pd.DataFrame]:
    """Pairs of every design in `designs`, written to `outputs[design]` (parquet) and returned as read back.
    `known`: canonical runs' predictions (Table 1's, or Table 5's under the ablation), looked up, not rerun."""
    images.mkdir(parents=True, exist_ok=True)
    if setting == "whatsup":   # composites of side objects around a reference, left/right (paper §5.3, §5.4)
        tables = pairs.build_whatsup(adapter, data["whatsup_dir"], directions, seed, cfg["pairs_per_direction"],
                                     cfg["max_attempts"], images, designs=designs)
    else:
        bank, base = None, backgrounds.base_setting(setting)
        if base:             # App C.8: the setting's tuples and prompts, every scene on its background
            bank = backgrounds.load(background_cfg, seed, adapter.geometry.canvas_px)
            log.info("backgrounds: %s", bank.source)
        tables = pairs.build_all(adapter, base or setting, directions, seed, cfg["pairs_per_direction"],
                                 cfg["max_attempts"], images, designs=designs, lm_input_override=lm_input_override,
                                 colour_pool=cfg["colour_pool"], backgrounds=bank, known=known)
    out = {}
    for design, df in tables.items():
        df.insert(0, "model", model)
        atomic_write(outputs[design], df.to_parquet(index=False))
        out[design] = pd.read_parquet(outputs[design])
        by_dir = out[design].groupby("direction", sort=False)["golden"].agg(["sum", "size"])
        log.info("%s%s: golden/attempted per direction %s", design,
                 " (under ablation)" if lm_input_override else "",
                 {d: f"{int(r['sum'])}/{int(r['size'])}" for d, r in by_dir.iterrows()})
    return out


def last_token(adapter: VLMAdapter, model: str, table: pd.DataFrame, images: Path, seed: int, outputs: dict) -> None:
    """Fig 3 data: last-token interchange at every site over the golden pairs of `table`, and the mean curves."""
    golden = pairs.golden(table)
    sweep = patching.last_token(adapter, model, golden, images)
    curves = patching.curves(sweep, seed)
    atomic_write(outputs["sweep"], sweep.to_parquet(index=False))
    atomic_write(outputs["curves"], curves.to_parquet(index=False))
    log.info("last_token: %d golden pairs; transfer ranges %s", len(golden), patching.transfer_ranges(curves))


def outputs_of(output, design: str) -> dict:
    """The files a rule names `{design}`, `{design}_curves`, `{design}_stats`, `{design}_regions` (those it has),
    as `last_token` / `criss_cross` take them: {"sweep": ..., "curves": ..., "stats": ..., "regions": ...}."""
    names = {"sweep": design, "curves": f"{design}_curves", "stats": f"{design}_stats",
             "regions": f"{design}_regions"}
    return {key: getattr(output, name) for key, name in names.items() if hasattr(output, name)}


def criss_cross(adapter: VLMAdapter, model: str, setting: str, table: pd.DataFrame, images: Path, cfg: dict,
                directions, seed: int, outputs: dict, lm_input_override=None) -> None:
    """Figs 6/7 (or Fig 9 with the ablation's `lm_input_override`): object and strip swaps + random-region nulls at
    every site over the golden pairs of `table`; curves, flip tests and the swapped regions."""
    golden = pairs.golden(table)
    whatsup = setting == "whatsup"      # per-reference regions (config/whatsup_regions.yaml)
    directions = naturalistic.whatsup_directions(directions) if whatsup else directions
    variants = (patching.whatsup_criss_cross_variants(adapter.geometry, cfg["null_draws"], seed)[:2] if whatsup
                else None)
    sweep = patching.criss_cross(adapter, model, golden, images, cfg["strip_width"], cfg["null_draws"], seed,
                                 lm_input_override=lm_input_override, variants=variants)
    curves = patching.curves(sweep, seed)
    stats = patching.flip_tests(sweep, patching.pair_counts(table, directions), cfg["min_pairs"])
    stats["model"], stats["setting"] = model, setting
    regions = (patching.whatsup_region_table(adapter.geometry, cfg["null_draws"], seed, golden) if whatsup
               else patching.region_table(adapter.geometry, cfg["strip_width"], cfg["null_draws"], seed, golden))
    for key, df in (("sweep", sweep), ("curves", curves), ("stats", stats), ("regions", regions)):
        atomic_write(outputs[key], df.to_parquet(index=False))
    log.info("criss_cross%s: %d golden pairs\n%s", " (under ablation)" if lm_input_override else "", len(golden),
             stats[stats["direction"] == "all"].to_string(index=False))
