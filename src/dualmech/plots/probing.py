"""Fig 4 / App C.5-C.7 probe heat maps and the probe depth curves. Inputs are the probe rule's files
(`results/probes/{model}/{setting}_heatmaps.npz` and metrics parquet), never models."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..sites import LM_INPUT, VISION_INPUT
from .style import save

FIG4_SITE = LM_INPUT


def site_label(site: str) -> str:
    """Short axis label: patch embeddings, vision block l, the LM input ("Embed"), LM layer l."""
    if site == VISION_INPUT:
        return "patch"
    if site.startswith("vision."):
        return f"V{site.split('.')[1]}"
    if site == FIG4_SITE:
        return "Embed"
    if site.startswith("resid_post."):
        return f"L{site.split('.')[1]}"
    return site


def load_heatmaps(path: Path | str) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a heat-map file: arrays '{orientation}/{site}' (K, N, N) mean class probabilities over
    held-out canonical images, '{orientation}/objects' (N, N) class of each object cell (-1 background)."""
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        arrays = {k: f[k] for k in f.files if k != "meta"}
    return meta, arrays


def _outline(ax, mask: np.ndarray, color: str) -> None:
    """Draw the boundary of a set of grid cells (crisp cell edges, no interpolation)."""
    n_r, n_c = mask.shape
    for r, c in zip(*np.nonzero(mask)):
        for dr, dc, seg in ((-1, 0, ([c - .5, c + .5], [r - .5, r - .5])), (1, 0, ([c - .5, c + .5], [r + .5, r + .5])),
                            (0, -1, ([c - .5, c - .5], [r - .5, r + .5])), (0, 1, ([c + .5, c + .5], [r - .5, r + .5]))):
            rr, cc = r + dr, c + dc
            if not (0 <= rr < n_r and 0 <= cc < n_c) or not mask[rr, cc]:
                ax.plot(*seg, color=color, lw=1.0, solid_capstyle="projecting")


def fig4_heatmaps(meta: dict, arrays: dict[str, np.ndarray], out: Path | str, title: str,
                  site: str = FIG4_SITE) -> None:
    """One row per orientation, one panel per class: mean probe probability of that class at every visual token
    (colour range 0-1); the class's own objects outlined in white, the other objects in grey."""
    if site not in meta["sites"]:
        site = meta["sites"][0]
    orientations = meta["orientations"]
    k = max(len(meta["classes"][o]) for o in orientations)
    fig, axes = plt.subplots(len(orientations), k, figsize=(1.9 * k + 0.8, 2.0 * len(orientations) + 0.5),
                             squeeze=False)
    im = None
    for i, o in enumerate(orientations):
        heat, objects = arrays[f"{o}/{site}"], arrays[f"{o}/objects"]
        acc = meta.get("acc", {}).get(f"{o}/{site}")
        for c in range(k):
            ax = axes[i, c]
            if c >= heat.shape[0]:
                ax.axis("off")
                continue
            im = ax.imshow(heat[c], vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
            _outline(ax, (objects >= 0) & (objects != c), "0.6")
            _outline(ax, objects == c, "white")
            ax.set_title(meta["classes"][o][c], fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(o + (f"\nobject acc {acc:.2f}" if acc is not None and np.isfinite(acc) else ""),
                              fontsize=8)
    fig.suptitle(f"{title}\nP(class) at {site_label(site)} ({site}), mean over held-out images", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    cax = fig.add_axes((0.91, 0.15, 0.015, 0.65))
    fig.colorbar(im, cax=cax).set_label("probability", fontsize=8)
    save(fig, out)


def probe_depth_figure(metrics: pd.DataFrame, out: Path | str, title: str) -> None:
    """Position-ambiguous-token accuracy and strip score vs site depth, one row per setting, bootstrap 95% CIs
    as bands; one colour per model (a trained model beside its untrained twin), solid = horizontal, dashed =
    vertical; grey = the position-only probe on the same tokens, dotted = chance / no strip. The patch-embedding
    site (no context mixing yet) is the reference for what position and the token's own content give."""
    df = metrics.copy()
    sites = (df[["site", "depth"]].drop_duplicates().sort_values("depth").drop_duplicates("site")["site"].tolist())
    x_of = {s: i for i, s in enumerate(sites)}
    df["x"] = df["site"].map(x_of)
    settings = list(dict.fromkeys(df["setting"]))
    models = list(dict.fromkeys(df["model"]))
    colours = dict(zip(models, sns.color_palette("colorblind", len(models))))
    styles = {"horizontal": "-", "vertical": "--"}
    panels = (("ambiguous_acc", "ambiguous_lo", "ambiguous_hi", "pos_ambiguous_acc", "ambiguous-token accuracy"),
              ("strip_score", "strip_lo", "strip_hi", None, "strip score"))
    fig, axes = plt.subplots(len(settings), 2, figsize=(7.5, 1.9 * len(settings) + 0.6), squeeze=False,
                             sharex=True)
    for i, setting in enumerate(settings):
        sub = df[df["setting"] == setting]
        for j, (col, lo, hi, pos, label) in enumerate(panels):
            ax = axes[i, j]
            if sub[col].notna().sum() == 0:
                ax.text(0.5, 0.5, "undefined: fixed layout\n(no position-ambiguous tokens)", ha="center",
                        va="center", transform=ax.transAxes, fontsize=7, color="0.4")
            for (model, orientation), g in sub.groupby(["model", "orientation"], sort=False):
                g = g.sort_values("x")
                if g[col].notna().sum() == 0:
                    continue
                first = model == models[0]                 # the trained model on top; twins with open markers
                ax.plot(g["x"], g[col], styles.get(orientation, ":"), marker="o", ms=3 if first else 5,
                        color=colours[model], mfc=colours[model] if first else "none", zorder=3 if first else 2,
                        label=f"{model}, {orientation}")
                ax.fill_between(g["x"], g[lo], g[hi], color=colours[model], alpha=0.15, lw=0)
                if pos and g[pos].notna().any():
                    ax.plot(g["x"], g[pos], styles.get(orientation, ":"), color="0.55", lw=0.8)
            if j == 0 and sub[col].notna().any():
                k = 3 if not setting.startswith("grid") else int(setting[4:])
                ax.axhline(1 / k, ls=":", color="0.3", lw=0.8)
            if j == 1:
                ax.axhline(0, ls=":", color="0.3", lw=0.8)
            if LM_INPUT in x_of:
                ax.axvline(x_of[LM_INPUT], color="0.85", lw=3, zorder=0)
            ax.set_ylim(-0.05 if j == 0 else -0.45, 1.05)
            ax.set_title(f"{setting}: {label}", fontsize=8)
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xticks(range(len(sites)))
        ax.set_xticklabels([site_label(s) for s in sites], fontsize=7)
        ax.set_xlabel("site (vision encoder \u2192 LM input \u2192 LM layers)", fontsize=7)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    handles.append(plt.Line2D([], [], color="0.55", lw=0.8))
    labels.append("position-only probe")
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.035 + 0.025 * ((len(labels) - 1) // 3), 1, 1))
    save(fig, out)
