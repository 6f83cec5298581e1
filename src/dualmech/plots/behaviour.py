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
            ax.errorbar(xs, m["accuracy"], yerr=[m["accuracy"] - m["ci_low"], m["ci_high"] - m["accuracy"]],
                        fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        ax.axhline(chance, ls="--", color="gray", lw=0.8)
        ax.set_ylim(0, 1.02)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("", "top-1 accuracy")
    save(grid.figure, out)
