"""Table 5 from the ablation's predictions beside Table 1's (paper §5.5). Pandas and statsmodels only: the table
rule never imports torch."""
from __future__ import annotations

import pandas as pd

from .stats import accuracy_summary, mcnemar_exact


def table5(clean: pd.DataFrame, ablated: pd.DataFrame) -> pd.DataFrame:
    """Accuracy with and without the ablation per (model, setting, direction), Wilson CIs, McNemar per cell."""
    df = clean.merge(ablated, on=["model", "item"])
    out = []
    for (model, setting), d in df.groupby(["model", "setting"], sort=False):
        groups = [*d.groupby("direction", sort=False)] + [("all", d)]
        for direction, g in groups:
            a = accuracy_summary(g["correct_ablated"])
            row = dict(model=model, setting=setting, direction=direction, n=a["n"],
                       accuracy_clean=float(g["correct"].mean()), accuracy_ablated=a["accuracy"],
                       ci_low=a["ci_low"], ci_high=a["ci_high"], chance=1 / 3,
                       drop=float(g["correct"].mean()) - a["accuracy"],
                       mcnemar_p=mcnemar_exact(g["correct"], g["correct_ablated"]),
                       above_chance=bool(a["ci_low"] > 1 / 3))
            if "correct_control" in g:                   # the own-slot control, paired with the ablation
                c = accuracy_summary(g["correct_control"])
                row |= dict(accuracy_control=c["accuracy"], control_ci_low=c["ci_low"], control_ci_high=c["ci_high"],
                            drop_vs_control=c["accuracy"] - a["accuracy"],
                            mcnemar_control_p=mcnemar_exact(g["correct_control"], g["correct_ablated"]))
            out.append(row)
    return pd.DataFrame(out)


def table5_display(t: pd.DataFrame) -> pd.DataFrame:
    overall = t[t["direction"] == "all"]
    rows = []
    for r in overall.itertuples():
        rows.append({"Model": r.model, "Setting": r.setting, "Clean": f"{r.accuracy_clean:.2f}",
                     "Ablated [95% CI]": f"{r.accuracy_ablated:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]",
                     "McNemar p": f"{r.mcnemar_p:.1e}", "Above chance (1/3)": "yes" if r.above_chance else "no",
                     **({"Own-slot control [95% CI]": f"{r.accuracy_control:.2f} [{r.control_ci_low:.2f}, "
                                                      f"{r.control_ci_high:.2f}]"}
                        if "accuracy_control" in t and pd.notna(r.accuracy_control) else {})})
    return pd.DataFrame(rows)
