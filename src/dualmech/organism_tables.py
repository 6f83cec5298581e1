"""The organisms table: each organism's recipe, minutes per training stage and diagnostics, read from its
organism.json (`organism.train_and_accept` writes it); importable without torch, like the other summaries that
table rules read."""
from __future__ import annotations

import pandas as pd

CONDITIONS = ("canonical", "shuffled", "ablated")    # the diagnostics' conditions (`organism.diagnostics`)


def organisms_table(infos: dict[str, dict]) -> pd.DataFrame:
    """One row per organism (name -> organism.json): recipe, minutes per stage, accepted, and the diagnostics'
    mean and worst cell under each condition."""
    rows = []
    for name, info in infos.items():
        d = info.get("diagnostics") or {}
        minutes = info.get("stage_minutes") or {"end_to_end": info.get("train_minutes")}
        row = dict(organism=name, recipe="two-stage" if "stage2" in minutes else "end-to-end",
                   stage1_minutes=minutes.get("stage1"), stage2_minutes=minutes.get("stage2"),
                   end_to_end_minutes=minutes.get("end_to_end"), accepted=info.get("accepted"))
        for c in CONDITIONS:
            row[f"{c}_mean"] = d.get(c, {}).get("mean")
            row[f"{c}_min"] = d.get(c, {}).get("min")
        rows.append(row)
    return pd.DataFrame(rows)


def organisms_display(t: pd.DataFrame) -> pd.DataFrame:
    def cell(m, w):
        return "\u2014" if pd.isna(m) else f"{m:.2f} (worst {w:.2f})"

    def mins(r):
        if r.recipe == "end-to-end":
            return f"{r.end_to_end_minutes:.0f}"
        return f"{r.stage1_minutes:.0f} + {r.stage2_minutes:.0f}"
    return pd.DataFrame({
        "Organism": t["organism"], "Recipe": t["recipe"], "Minutes (stages)": [mins(r) for r in t.itertuples()],
        "Accepted": ["yes" if a else "no" for a in t["accepted"]],
        "Canonical": [cell(m, w) for m, w in zip(t["canonical_mean"], t["canonical_min"])],
        "Image order shuffled": [cell(m, w) for m, w in zip(t["shuffled_mean"], t["shuffled_min"])],
        "Vision ordering ablated": [cell(m, w) for m, w in zip(t["ablated_mean"], t["ablated_min"])]})
