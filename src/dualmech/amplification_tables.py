"""Table 2 and the amplification curves from the amplification rule's outcomes (paper §5.7). Pandas, numpy and
statsmodels only: the table and figure rules never import torch."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import mcnemar_exact, wilson

AXES = ("horizontal", "vertical")

LABELS = {"none": "None", "random": "Random (mean, 95% range)", "probe": "Probe", "probe_star": "Probe* (oracle)",
          "probe_objects": "Probe, object tokens only", "probe_background": "Probe, background tokens only",
          "synthetic_probe": "Probe trained on synthetic", "shuffle": "Control: image shuffled",
          "swap": "Control: subject/object swapped"}
# The controls' expected outcomes and verdict rules, stated once. Both on the evaluation split.
STRICT_CHANCE = 0.25    # both orderings right by a uniform guesser (the two-ordering protocol)
CONTROL_ALPHA = 0.05
CONTROLS = {
    "shuffle": ("falls to chance: below the baseline (exact McNemar p < 0.05) and the Wilson 95% CI reaches "
                f"{STRICT_CHANCE}"),
    "swap": ("answers flip: more than half of the baseline-correct items answer the swapped question with the "
             "opposite relation (exact binomial test, one-sided p < 0.05)"),
}


def summarise(baseline: pd.DataFrame, outcomes: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """Table 2 rows for one (model, testbed), all measured on the evaluation split."""
    kept = baseline[(baseline["split"] == "eval") & ~baseline["dropped"]].set_index("item")
    base = kept["correct"].astype(bool)
    items = base.index
    # failures to fix: ordering failures only (the answer names another entity of the scene); every failure
    # where the testbed does not list the scene's entities
    fail = kept["ordering_failure"].astype(bool) if "ordering_failure" in kept else ~base
    n, n_fail = len(base), int(fail.sum())
    sel = outcomes[(outcomes["split"] == "eval") & outcomes["selected"]]
    after = {d: g.set_index("item")["correct"].reindex(items) for d, g in sel.groupby("direction")}
    common = dict(model=meta["model"], testbed=meta["testbed"], n=n, n_fail=n_fail)
    rows = [dict(common, row="none", alpha=0.0, **_acc(base), fixes=0, breaks=0, net=0, p_vs_none=1.0)]

    def stats(d):
        a = after[d].astype(bool)
        fixes, breaks = int((a & fail).sum()), int((~a & base).sum())
        return a, fixes, breaks

    rand = sorted(d for d in after if d.startswith("random_"))
    r_stats = {d: stats(d) for d in rand}
    if rand:
        acc = np.array([r_stats[d][0].mean() for d in rand])
        fixr = np.array([r_stats[d][1] / n_fail if n_fail else np.nan for d in rand])
        brk = np.array([r_stats[d][2] for d in rand])
        rows.append(dict(common, row="random", alpha=float(np.median([meta["selected_alpha"][d] for d in rand])),
                         accuracy=acc.mean(), ci_low=np.percentile(acc, 2.5), ci_high=np.percentile(acc, 97.5),
                         correct=float(np.mean([r_stats[d][0].sum() for d in rand])),
                         fixes=float(np.mean([r_stats[d][1] for d in rand])), fix_rate=np.nanmean(fixr) if n_fail else np.nan,
                         fix_low=np.nanpercentile(fixr, 2.5) if n_fail else np.nan,
                         fix_high=np.nanpercentile(fixr, 97.5) if n_fail else np.nan,
                         breaks=brk.mean(), breaks_low=np.percentile(brk, 2.5), breaks_high=np.percentile(brk, 97.5),
                         net=float(np.mean([r_stats[d][1] - r_stats[d][2] for d in rand])),
                         p_vs_none=float(np.median([mcnemar_exact(base, r_stats[d][0]) for d in rand])),
                         directions=len(rand)))
    for kind in ("probe", "probe_objects", "probe_background", "synthetic_probe"):
        if kind not in after:
            continue
        a, fixes, breaks = stats(kind)
        flo, fhi = wilson(fixes, n_fail)
        row = dict(common, row=kind, alpha=meta["selected_alpha"][kind], **_acc(a), fixes=fixes,
                   fix_rate=fixes / n_fail if n_fail else np.nan, fix_low=flo, fix_high=fhi, breaks=breaks,
                   net=fixes - breaks, p_vs_none=mcnemar_exact(base, a))
        if rand:
            row["p_vs_random"] = max(mcnemar_exact(r_stats[d][0], a) for d in rand)
            row["p_null"] = (1 + sum(r_stats[d][1] >= fixes for d in rand)) / (1 + len(rand))
        rows.append(row)
        if kind == "probe":
            rows.append(_oracle(outcomes, base, fail, common, kind))
    for control in CONTROLS:
        col = f"{control}_correct"
        if col in baseline:
            after_c = baseline[(baseline["split"] == "eval") & ~baseline["dropped"]].set_index("item")[col]
            rows.append(control_row(control, base, after_c.reindex(items).fillna(False).astype(bool), common))
    notes = _notes(meta, n_fail, int((~base & ~fail).sum()))
    out = pd.DataFrame(rows)
    out.insert(3, "label", out["row"].map(LABELS))
    out["note"] = notes
    return out


def control_row(control: str, base: pd.Series, after: pd.Series, common: dict) -> dict:
    """A Table 2 row for one control with its verdict (rules: `CONTROLS`). `base`: baseline correctness per
    item; `after`: correctness of the same items under the control (against the control's answer)."""
    from scipy.stats import binomtest
    b, a = base.to_numpy(bool), after.to_numpy(bool)
    row = dict(common, row=control, alpha=np.nan, **_acc(a), fixes=np.nan, breaks=np.nan, net=np.nan,
               p_vs_none=mcnemar_exact(b, a) if len(a) else np.nan, expected=CONTROLS[control])
    if control == "shuffle":
        ok = len(a) > 0 and a.mean() < b.mean() and row["p_vs_none"] < CONTROL_ALPHA and row["ci_low"] <= STRICT_CHANCE
        row.update(p_control=row["p_vs_none"], verdict="as expected" if ok else "not as expected")
    else:
        flips, n = int((a & b).sum()), int(b.sum())
        lo, hi = wilson(flips, n)
        p = binomtest(flips, n, 0.5, alternative="greater").pvalue if n else np.nan
        verdict = ("not testable (no item answered correctly at baseline)" if n == 0
                   else "as expected" if p < CONTROL_ALPHA else "not as expected")
        row.update(flip_rate=flips / n if n else np.nan, flip_low=lo, flip_high=hi, flips=flips, correct_base=n,
                   p_control=float(p),
                   verdict=verdict)
    return row


def _acc(correct) -> dict:
    c = np.asarray(correct, bool)
    lo, hi = wilson(int(c.sum()), len(c))
    return dict(correct=int(c.sum()), accuracy=float(c.mean()) if len(c) else np.nan, ci_low=lo, ci_high=hi)


def _oracle(outcomes, base, fail, common, kind) -> dict:
    """Per-item oracle over alpha > 0 on the evaluation's ordering failures: an upper bound, never a result."""
    fails = base.index[fail.to_numpy()]
    sub = outcomes[(outcomes["split"] == "eval") & (outcomes["direction"] == kind) & (outcomes["alpha"] > 0)
                   & outcomes["item"].isin(set(fails))]
    fixed = int(sub.groupby("item")["correct"].any().reindex(fails, fill_value=False).sum())
    n, n_fail = common["n"], common["n_fail"]
    correct = int(base.sum()) + fixed
    lo, hi = wilson(correct, n)
    flo, fhi = wilson(fixed, n_fail)
    return dict(common, row="probe_star", alpha=np.nan, correct=correct, accuracy=correct / n if n else np.nan,
                ci_low=lo, ci_high=hi, fixes=fixed, fix_rate=fixed / n_fail if n_fail else np.nan, fix_low=flo,
                fix_high=fhi, breaks=np.nan, net=np.nan)


def _notes(meta: dict, n_fail: int, other_fail: int = 0) -> str:
    notes = []
    if other_fail:
        notes.append(f"{other_fail} failure(s) name no entity of the scene: not ordering failures, not counted as "
                     "failures to fix")
    boxes = {k: v for k, v in meta.get("box_status", {}).items() if k != "ok"}
    if boxes:
        notes.append(f"{sum(boxes.values())} of {meta['items']} items give no probe rows ("
                     + ", ".join(f"{v} {k}" for k, v in sorted(boxes.items())) + "); they are still asked")
    if n_fail == 0:
        notes.append("no ordering failures on the evaluation split: nothing to fix")
    for axis in AXES:
        d = meta["probes"].get(axis, {})
        if d and not d.get("available", True):
            notes.append(f"{axis}: {d['note']} (amplification is a no-op there)")
    return "; ".join(notes)


def curves(outcomes: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Fix rate (over baseline failures) and break rate (over baseline-correct items) per direction x alpha on
    one split. alpha = 0 is the unmodified model (asserted during the run) and is added as 0 for every direction."""
    df = outcomes[(outcomes["split"] == split) & (outcomes["alpha"] > 0)]
    if split == "eval":   # on the evaluation split only the failures were swept over alpha
        df = df[~df["baseline_correct"]]
    g = df.assign(fix=df["correct"] & ~df["baseline_correct"], brk=~df["correct"] & df["baseline_correct"],
                  fail=~df["baseline_correct"], ok=df["baseline_correct"])
    agg = g.groupby(["direction", "kind", "alpha"], sort=True)[["fix", "brk", "fail", "ok"]].sum().reset_index()
    zero = agg.drop_duplicates("direction").assign(alpha=0.0, fix=0, brk=0)
    agg = pd.concat([zero, agg], ignore_index=True).sort_values(["direction", "alpha"]).reset_index(drop=True)
    agg["fix_rate"] = agg["fix"] / agg["fail"].where(agg["fail"] > 0)
    agg["break_rate"] = agg["brk"] / agg["ok"].where(agg["ok"] > 0)
    return agg.rename(columns={"fix": "fixes", "brk": "breaks", "fail": "n_fail", "ok": "n_correct"}).assign(split=split)


def table2_display(long: pd.DataFrame) -> pd.DataFrame:
    """Formatted Table 2: accuracy [95% CI], % failures fixed, breaks, tests; all on the evaluation split."""
    out = []
    for r in long.itertuples():
        if r.row == "random":
            acc = f"{r.accuracy:.2f} ({r.ci_low:.2f}–{r.ci_high:.2f})"
            fixed = "—" if np.isnan(r.fix_rate) else f"{100 * r.fix_rate:.1f} ({100 * r.fix_low:.1f}–{100 * r.fix_high:.1f})"
            brk = f"{r.breaks:.1f} ({r.breaks_low:.0f}–{r.breaks_high:.0f})"
        else:
            acc = f"{r.accuracy:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]"
            fixed = ("—" if r.row == "none" or np.isnan(r.fix_rate)
                     else f"{100 * r.fix_rate:.1f} [{100 * r.fix_low:.1f}, {100 * r.fix_high:.1f}]")
            brk = "—" if np.isnan(r.breaks) else f"{int(r.breaks)}"
        alpha = "—" if np.isnan(r.alpha) or r.row == "none" else f"{r.alpha:g}"
        pv = getattr(r, "p_vs_random", np.nan)
        control = "—"
        if r.row == "shuffle":
            brk, control = "—", f"expected: falls to chance ({STRICT_CHANCE:g}); {r.verdict}"
        elif r.row == "swap":
            brk = "—"
            control = (f"expected: answers flip; {100 * r.flip_rate:.1f}% [{100 * r.flip_low:.1f}, "
                       f"{100 * r.flip_high:.1f}] of {int(r.correct_base)} flip (p {_p(r.p_control)}); {r.verdict}"
                       if not np.isnan(r.flip_rate) else f"expected: answers flip; {r.verdict}")
        out.append({"Model": r.model, "Testbed": f"{r.testbed} (n={r.n}, {r.n_fail} fail)", "Intervention": r.label,
                    "α": alpha, "Accuracy": acc, "% failures fixed": fixed, "Breaks": brk,
                    "p vs none": "—" if r.row in ("none", "probe_star") else _p(r.p_vs_none),
                    "p vs random": "—" if pv is None or np.isnan(pv) else _p(pv), "Control check": control})
    out = pd.DataFrame(out)
    return out if long["row"].isin(list(CONTROLS)).any() else out.drop(columns="Control check")


def _p(p: float) -> str:
    return "<0.001" if p < 1e-3 else f"{p:.3f}"
