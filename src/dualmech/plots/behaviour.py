"""Fig 1 (example stimuli) and the Table 1 figure."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from PIL import Image

from .style import save


def fig1_stimuli(tables: dict[str, tuple[pd.DataFrame, Path]], out: Path | str) -> None:
    """One example per (setting, orientation) and one per grid layout, with its prompt and answer."""
    panels = []
    for name, (items, root) in tables.items():
        if "orientation" in items:
            for orientation, df in items.groupby("orientation", sort=False):
                row = df.iloc[0]
                panels.append((root / row["image"], f"{name}, {orientation}",
                               f"{row['prompt'].strip()} \u2192 {row['answer']}"))
        else:
            panels.append((root / items.iloc[0]["image"], f"{name} layout", ""))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.8), squeeze=False)
    for ax, (path, title, caption) in zip(axes[0], panels):
        ax.imshow(Image.open(path), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(_wrap(caption, 28), fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    save(fig, out)


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width and line:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join(lines + [line])


def table1_figure(acc: pd.DataFrame, out: Path | str, chance: float = 1 / 3) -> None:
    """Accuracy per setting x direction, one bar per model, Wilson 95% CIs, chance level dashed."""
    df = acc[acc["direction"] != "all"].copy()
    grid = sns.catplot(data=df, x="direction", y="accuracy", hue="model", col="setting", kind="bar",
                       height=2.6, aspect=1.0, errorbar=None, legend_out=True)
    for ax, (setting, sub) in zip(grid.axes.flat, df.groupby("setting", sort=False)):
        for bars, (_, m) in zip(ax.containers, sub.groupby("model", sort=False)):
            xs = [b.get_x() + b.get_width() / 2 for b in bars]
            y, lo, hi = (m[c].to_numpy() for c in ("accuracy", "ci_low", "ci_high"))
            ax.errorbar(xs, y, yerr=[y - lo, hi - y],
                        fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        ax.axhline(chance, ls="--", color="gray", lw=0.8)
        ax.set_ylim(0, 1.02)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("", "top-1 accuracy")
    save(grid.figure, out)


def table5_figure(t5: pd.DataFrame, out: Path | str, chance: float = 1 / 3) -> None:
    """Clean vs ablated accuracy per setting x direction, one panel per model, Wilson CIs, chance dashed."""
    df = t5[t5["direction"] != "all"]
    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 2.8), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        d = df[df["model"] == model].reset_index(drop=True)
        x = range(len(d))
        ax.bar([i - 0.2 for i in x], d["accuracy_clean"], width=0.4, label="clean", color="0.7")
        ax.bar([i + 0.2 for i in x], d["accuracy_ablated"], width=0.4, label="ablated", color="C3",
               yerr=[d["accuracy_ablated"] - d["ci_low"], d["ci_high"] - d["accuracy_ablated"]], capsize=2)
        ax.axhline(chance, ls="--", color="gray", lw=0.8)
        ax.set_xticks(list(x), [f"{s[:3]}\n{dr}" for s, dr in zip(d["setting"], d["direction"])], fontsize=6)
        ax.set_title(model, fontsize=9)
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("top-1 accuracy")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    save(fig, out)
