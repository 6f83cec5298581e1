"""Fig (Table 2 companion): fraction of failures fixed vs alpha, probe directions against the random band."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import save

STYLE = {"probe": ("Probe (all image tokens)", "C3", "-"),
         "probe_objects": ("Probe, object tokens only", "C0", "--"),
         "probe_background": ("Probe, background tokens only", "C2", "-."),
         "synthetic_probe": ("Probe trained on synthetic", "C4", ":")}


def fig_amplification(curves: pd.DataFrame, out: Path | str, title: str = "") -> None:
    """One column per testbed; top: % of baseline failures fixed, bottom: % of correct items broken, vs alpha.

    `curves` (amplification.curves + a `testbed` and a `selected_alpha` column): random directions are drawn as
    their mean and 2.5-97.5 percentile band over directions; dots mark each probe's alpha chosen on the
    development split."""
    testbeds = list(dict.fromkeys(curves["testbed"]))
    fig, axes = plt.subplots(2, len(testbeds), figsize=(3.6 * len(testbeds), 4.8), squeeze=False, sharex=True)
    for j, tb in enumerate(testbeds):
        df = curves[curves["testbed"] == tb]
        for i, (metric, label) in enumerate((("fix_rate", "% of failures fixed"), ("break_rate", "% of correct broken"))):
            ax = axes[i, j]
            rnd = df[df["kind"] == "random"].pivot_table(index="alpha", columns="direction", values=metric)
            if not rnd.empty:
                vals = 100 * rnd.to_numpy(dtype=float)
                with np.errstate(all="ignore"):
                    lo, hi = np.nanpercentile(vals, 2.5, axis=1), np.nanpercentile(vals, 97.5, axis=1)
                ax.fill_between(rnd.index, lo, hi, color="0.8", lw=0, label=f"Random ({rnd.shape[1]} dirs, 95% range)")
                ax.plot(rnd.index, np.nanmean(vals, axis=1), color="0.45", lw=1, label="Random (mean)")
            for kind, (name, colour, ls) in STYLE.items():
                d = df[df["kind"] == kind].sort_values("alpha")
                if d.empty:
                    continue
                ax.plot(d["alpha"], 100 * d[metric], color=colour, ls=ls, lw=1.4, label=name)
                sel = d[d["alpha"] == d["selected_alpha"]]
                ax.plot(sel["alpha"], 100 * sel[metric], "o", color=colour, ms=4)
            ax.set_ylim(-2, 102)
            if j == 0:
                ax.set_ylabel(label)
            if i == 0:
                n_fail = int(df["n_fail"].max()) if len(df) else 0
                n_ok = int(df["n_correct"].max()) if len(df) else 0
                ax.set_title(f"{tb} ({n_fail} failures, {n_ok} correct; dev split)", fontsize=8)
            else:
                ax.set_xlabel("α")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.06))
    if title:
        fig.suptitle(title, fontsize=9)
    save(fig, out)
