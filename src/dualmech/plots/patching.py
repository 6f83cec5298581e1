"""Fig 3 (last-token interchange) and Figs 6/7 (criss-cross object / strip swaps), from the patching tables."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import save

ROLE_STYLE = {   # colours of the paper's running example: clean Red, middle Green, ordinal Blue, cf Black
    "t0": ("tab:red", "t0 clean answer"), "t1": ("tab:green", "t1 middle"),
    "t2": ("tab:blue", "t2 clean item at cf ordinal"), "t3": ("black", "t3 cf answer"),
    "t4": ("tab:gray", "t4 cf far item"),
    "c0": ("tab:red", "c0 clean answer"), "c1": ("tab:green", "c1 middle"), "c2": ("tab:blue", "c2 cf answer"),
}
DIRECTION_ORDER = ("left", "right", "above", "below", "all")


def _panels(directions, pooled: bool) -> list[str]:
    return [d for d in DIRECTION_ORDER if d in set(directions) | ({"all"} if pooled else set())]


def _legend(fig, axes, ncol: int) -> None:
    for ax in axes:
        handles, names = ax.get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=7, frameon=False,
                       bbox_to_anchor=(0.5, -0.1))
            return


def _site_axis(ax, labels: list[str]) -> None:
    step = max(1, int(np.ceil(len(labels) / 12)))
    ax.set_xticks(range(0, len(labels), step))
    ax.set_xticklabels(labels[::step], fontsize=7)
    ax.set_xlim(-0.3, len(labels) - 0.7)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("site (Embed, then layer outputs)", fontsize=7)


def _line(ax, df: pd.DataFrame, role: str, **kw) -> None:
    d = df[df["candidate"] == role].sort_values("site_index")
    if d.empty:
        return
    colour, label = ROLE_STYLE[role]
    x = d["site_index"].to_numpy()
    ax.plot(x, d["mean"], color=colour, label=kw.pop("label", label), marker="o", ms=2.5, lw=1.2, **kw)
    ax.fill_between(x, d["ci_low"], d["ci_high"], color=colour, alpha=0.15, lw=0)


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=7, transform=ax.transAxes, wrap=True,
            bbox=dict(boxstyle="round", fc="lightyellow", ec="gray", lw=0.5))


def _panel(ax, direction: str, n: int, labels: list[str], df: pd.DataFrame, min_pairs: int) -> bool:
    """Title and site axis of one direction panel; False (with a note) when it has no curves to draw."""
    ax.set_title(f"{direction} (n={n})", fontsize=8)
    if labels:
        _site_axis(ax, labels)
    if df.empty:
        _note(ax, f"no golden pairs\n(not testable;\nneeds >= {min_pairs})")
        return False
    return True


def _labels(curves: pd.DataFrame, site_labels: list[str] | None) -> list[str]:
    if site_labels:
        return list(site_labels)
    return curves.drop_duplicates("site_index").sort_values("site_index")["site_label"].tolist()


def fig3_last_token(curves: pd.DataFrame, n_pairs: dict[str, int], ranges: dict[str, dict], out: Path | str,
                    title: str, min_pairs: int, site_labels: list[str] | None = None) -> None:
    """Probability of the five candidates after last-token interchange at each site: one panel per
    direction plus the pooled one; mean over pairs with bootstrap 95% bands. Shaded: sites where the
    mean curves put t2 on top (ordinal transfer, blue) or t3 (attribute transfer, gray)."""
    panels = _panels(n_pairs, pooled=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.6), sharey=True, squeeze=False)
    labels = _labels(curves, site_labels)
    for ax, direction in zip(axes[0], panels):
        n = n_pairs.get(direction, sum(n_pairs.values()) if direction == "all" else 0)
        df = curves[(curves["kind"] == "last_token") & (curves["direction"] == direction)]
        if not _panel(ax, direction, n, labels, df, min_pairs):
            continue
        r = ranges.get(direction, {})
        for key, colour in (("ordinal_sites", "tab:blue"), ("attribute_sites", "gray")):
            for k in r.get(key, []):
                ax.axvspan(k - 0.5, k + 0.5, color=colour, alpha=0.08, lw=0)
        for role in ("t0", "t1", "t2", "t3", "t4"):
            _line(ax, df, role)
        if n < min_pairs:
            _note(ax, f"only {n} golden pairs:\nnot testable (needs >= {min_pairs})")
    axes[0][0].set_ylabel("probability (summed variants)", fontsize=7)
    _legend(fig, axes[0], ncol=5)
    fig.suptitle(title, fontsize=9, y=1.04)   # above the panel titles of a one-row figure
    save(fig, out)


def fig_criss_cross(curves: pd.DataFrame, stats: pd.DataFrame, kind: str, n_pairs: dict[str, int], out: Path | str,
                    title: str, min_pairs: int, site_labels: list[str] | None = None) -> None:
    """Probability of c0 (clean answer), c1 (middle), c2 (cf answer) after swapping the two side regions
    (kind 'object' = Fig 6, 'strip' = Fig 7) at each site; one panel per direction, bootstrap 95% bands.
    Dashed: c2 under the random-region null; '*': the swap flips the top answer to c2 significantly more
    often than the null (exact sign test, Holm over sites)."""
    panels = _panels(n_pairs, pooled=False)
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(2.6 * max(1, len(panels)), 2.6), sharey=True,
                             squeeze=False)
    labels = _labels(curves, site_labels)
    for ax, direction in zip(axes[0], panels):
        n = n_pairs.get(direction, 0)
        df = curves[(curves["kind"] == kind) & (curves["direction"] == direction)]
        if not _panel(ax, direction, n, labels, df, min_pairs):
            continue
        for role in ("c0", "c1", "c2"):
            _line(ax, df, role)
        null = curves[(curves["kind"] == f"{kind}_null") & (curves["direction"] == direction) &
                      (curves["candidate"] == "c2")].sort_values("site_index")
        if not null.empty:
            ax.plot(null["site_index"], null["mean"], color="tab:blue", ls="--", lw=0.9, alpha=0.7,
                    label="c2, random-region null")
        sig = stats[(stats["kind"] == kind) & (stats["direction"] == direction) & stats["significant"].astype(bool)]
        for k in sig["site_index"]:
            ax.text(k, 0.97, "*", ha="center", va="top", fontsize=10, color="tab:blue")
        if n < min_pairs:
            _note(ax, f"only {n} golden pairs:\nnot testable (needs >= {min_pairs})")
    axes[0][0].set_ylabel("probability (summed variants)", fontsize=7)
    _legend(fig, axes[0], ncol=4)
    fig.suptitle(title, fontsize=9, y=1.04)   # above the panel titles of a one-row figure
    save(fig, out)


def patching_cell(fig: str, model: str, setting: str, pairs: Path | str, curves: Path | str, stats: Path | str,
                  directions: list[str], min_pairs: int, out: Path | str) -> None:
    """One (model, setting) cell of Fig 3 (last-token) or Figs 6/7/9 (criss-cross object / strip swap; Fig 9
    under the ordering ablation), from the patching tables' files."""
    from .. import patching_tables
    if setting == "whatsup":   # What'sUp composites are horizontal: left/right panels only
        directions = [d for d in directions if d in ("left", "right")]
    counts = patching_tables.pair_counts(pd.read_parquet(pairs), directions)
    curves = pd.read_parquet(curves)
    if fig == "3":
        ranges = {d: patching_tables.transfer_ranges(curves, d) for d in list(directions) + ["all"]}
        fig3_last_token(curves, counts, ranges, out, f"Fig 3 \u2014 last-token interchange, {model}, {setting}",
                        min_pairs)
        return
    kind = {"6": "object", "7": "strip", "9": "object"}[fig]
    under = " under the ordering ablation" if fig == "9" else ""
    fig_criss_cross(curves, pd.read_parquet(stats), kind, counts, out,
                    f"Fig {fig} \u2014 {kind} swap (criss-cross){under}, {model}, {setting}", min_pairs)
