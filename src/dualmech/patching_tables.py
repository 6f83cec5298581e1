"""Curves, flip tests and summary tables of the patching sweeps (Figs 3, 6, 7, 9; `patching_summary`,
`backup_layers`). Pandas and scipy only: the figure and table rules that read them never import torch."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .seeding import torch_seed
from .stats import bootstrap_ci, holm, wilson

KINDS = ("object", "strip")
ALPHA = 0.05
ROLES = {"last_token": ("t0", "t1", "t2", "t3", "t4"), "criss_cross": ("c0", "c1", "c2")}
ROLE_NAMES = {"t0": "clean answer", "t1": "middle", "t2": "clean item at cf ordinal", "t3": "cf answer",
              "t4": "cf far item", "c0": "clean answer", "c1": "middle", "c2": "cf answer"}

def _with_pooled(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    out = [(d, g) for d, g in df.groupby("direction", sort=False)]
    return out + [("all", df)] if out else []


def curves(sweep: pd.DataFrame, seed: int, n_resamples: int = 2000) -> pd.DataFrame:
    """Mean candidate probability per (kind, direction + 'all', site, candidate) with bootstrap 95% CIs over
    pairs (null draws averaged within a pair first); also the fraction of pairs whose top answer is it."""
    cols = ["model", "setting", "kind", "direction", "site", "site_index", "site_label", "candidate", "word_role",
            "n_pairs", "mean", "ci_low", "ci_high", "top_fraction"]
    out = []
    if sweep.empty:
        return pd.DataFrame(columns=cols)
    model, setting = sweep["model"].iloc[0], sweep["setting"].iloc[0]
    per_pair = (sweep.assign(is_top=sweep["top"] == sweep["candidate"])
                .groupby(["kind", "direction", "pair", "site_index", "candidate"], sort=False)
                .agg(p=("probability", "mean"), t=("is_top", "mean")).reset_index())
    sites = sweep.drop_duplicates("site_index").set_index("site_index")[["site", "site_label"]]
    for kind, kdf in per_pair.groupby("kind", sort=False):
        for direction, df in _with_pooled(kdf):
            wide = df.pivot_table(index="pair", columns=["site_index", "candidate"], values=["p", "t"], sort=True)
            for k in sorted(df["site_index"].unique()):
                roles = sorted(df.loc[df["site_index"] == k, "candidate"].unique())
                vals = wide["p"][k][roles].to_numpy()
                lo, hi = bootstrap_ci(vals, seed=torch_seed(seed, "bootstrap", model, setting, kind, direction, k),
                                      n_resamples=n_resamples)
                for j, role in enumerate(roles):
                    out.append(dict(model=model, setting=setting, kind=kind, direction=direction,
                                    site=sites.loc[k, "site"], site_index=int(k), site_label=sites.loc[k, "site_label"],
                                    candidate=role, word_role=ROLE_NAMES[role], n_pairs=len(vals),
                                    mean=float(vals[:, j].mean()), ci_low=float(lo[j]), ci_high=float(hi[j]),
                                    top_fraction=float(wide["t"][k][role].mean())))
    return pd.DataFrame(out, columns=cols)


def flip_tests(sweep: pd.DataFrame, n_pairs: dict[str, int], min_pairs: int) -> pd.DataFrame:
    """Per (kind, direction + 'all', site): does the swap flip the top answer to c2 more often than a
    random-region swap of the same size?

    flip_rate (Wilson CI) vs null_flip_rate (per pair: mean over null draws); p_flip = one-sided exact sign
    test on the per-pair differences (= exact McNemar with one draw); p_prob = one-sided Wilcoxon
    signed-rank on c2 probability (swap - null). Holm over sites within (kind, direction). A cell with
    fewer than `min_pairs` pairs is 'not testable'. `n_pairs` gives each direction's pair count (also
    those with none)."""
    from scipy.stats import binomtest, wilcoxon
    cols = ["model", "setting", "kind", "direction", "site", "site_index", "site_label", "n_pairs", "testable",
            "flip_rate", "flip_ci_low", "flip_ci_high", "null_flip_rate", "p_c2", "null_p_c2", "p_flip",
            "p_flip_holm", "p_prob", "p_prob_holm", "significant"]
    out = []
    c2 = sweep[sweep["candidate"] == "c2"]
    per_pair = c2.groupby(["kind", "direction", "pair", "site_index"], sort=False).agg(
        flip=("flipped", "mean"), p=("probability", "mean")).reset_index()
    sites = sweep.drop_duplicates("site_index").set_index("site_index")[["site", "site_label"]]
    counts = dict(n_pairs) | {"all": sum(n_pairs.values())}
    for kind in KINDS:
        for direction in counts:
            real = per_pair[(per_pair["kind"] == kind) & ((per_pair["direction"] == direction) | (direction == "all"))]
            null = per_pair[(per_pair["kind"] == f"{kind}_null") & ((per_pair["direction"] == direction) | (direction == "all"))]
            n = counts[direction]
            testable = n >= min_pairs
            rows = []
            for k in sites.index:
                r = real[real["site_index"] == k].sort_values("pair")
                z = null[null["site_index"] == k].sort_values("pair")
                row = dict(model=sweep["model"].iloc[0] if len(sweep) else None,
                           setting=sweep["setting"].iloc[0] if len(sweep) else None, kind=kind, direction=direction,
                           site=sites.loc[k, "site"], site_index=int(k), site_label=sites.loc[k, "site_label"],
                           n_pairs=n, testable=testable)
                if len(r):
                    lo, hi = wilson(int(round(r["flip"].sum())), len(r))
                    row |= dict(flip_rate=r["flip"].mean(), flip_ci_low=lo, flip_ci_high=hi,
                                null_flip_rate=z["flip"].mean(), p_c2=r["p"].mean(), null_p_c2=z["p"].mean())
                if testable and len(r):
                    d = r["flip"].to_numpy() - z["flip"].to_numpy()
                    pos, neg = int((d > 0).sum()), int((d < 0).sum())
                    row["p_flip"] = binomtest(pos, pos + neg, 0.5, alternative="greater").pvalue if pos + neg else 1.0
                    dp = r["p"].to_numpy() - z["p"].to_numpy()
                    row["p_prob"] = (wilcoxon(dp, alternative="greater").pvalue if np.any(dp != 0) else 1.0)
                rows.append(row)
            frame = pd.DataFrame(rows, columns=cols)
            frame["p_flip_holm"] = holm(frame["p_flip"].astype(float))
            frame["p_prob_holm"] = holm(frame["p_prob"].astype(float))
            frame["significant"] = (frame["p_flip_holm"] < ALPHA) & (frame["flip_rate"] > frame["null_flip_rate"])
            out.append(frame)
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def site_ranges(labels: Sequence[str], indices: Sequence[int]) -> str:
    """'Embed–1, 4' style list of the sites at `indices` (positions in the sweep order)."""
    idx = sorted(set(int(i) for i in indices))
    if not idx:
        return "none"
    runs, start, prev = [], idx[0], idx[0]
    for i in idx[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        runs.append(labels[start] if start == prev else f"{labels[start]}\u2013{labels[prev]}")
        if i is not None:
            start = prev = i
    return ", ".join(runs)


def transfer_ranges(curves_: pd.DataFrame, direction: str = "all") -> dict:
    """Sites where, on the mean curves, the top candidate is t2 (ordinal transfer) or t3 (attribute
    transfer); also where t0 (no effect yet) is top."""
    df = curves_[(curves_["kind"] == "last_token") & (curves_["direction"] == direction)]
    if df.empty:
        return dict(n_pairs=0, ordinal_sites=[], attribute_sites=[], clean_sites=[], ordinal_range="none",
                    attribute_range="none", clean_range="none")
    labels = df.drop_duplicates("site_index").sort_values("site_index")["site_label"].tolist()
    best = df.loc[df.groupby("site_index")["mean"].idxmax()].set_index("site_index")["candidate"]
    out = dict(n_pairs=int(df["n_pairs"].iloc[0]))
    for name, role in (("clean", "t0"), ("ordinal", "t2"), ("attribute", "t3")):
        sites = [int(k) for k, r in best.items() if r == role]
        out[f"{name}_sites"] = sites
        out[f"{name}_range"] = site_ranges(labels, sites)
    return out


def pair_counts(pairs: pd.DataFrame, directions: Sequence[str]) -> dict[str, int]:
    """Golden pairs per direction (every configured direction, zeros included)."""
    g = pairs[pairs["golden"]] if "golden" in pairs else pairs
    return {d: int((g["direction"] == d).sum()) for d in directions}


def summary_table(cells: list[dict], directions: Sequence[str], min_pairs: int,
                  kinds: Sequence[str] = ("last_token",) + KINDS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per (model, setting, kind): pair counts, testability, sites where the swap significantly
    flips the answer (pooled and per direction) and, for last-token, the Fig 3 transfer ranges.

    cells: dicts with model, setting, counts_criss_cross (direction -> n) and stats (the criss-cross flip
    tests), plus counts_last_token and curves (the last-token curves) when `kinds` has last_token. A cell may
    narrow `kinds` (e.g. criss-cross only) and `directions` (What'sUp: left/right); the other directions of the
    table read "not run" there."""
    rows = []
    for c in cells:
        run = c.get("directions", directions)
        for kind in c.get("kinds", kinds):
            counts = c["counts_last_token"] if kind == "last_token" else c["counts_criss_cross"]
            n = sum(counts.values())
            testable = n >= min_pairs
            row = dict(model=c["model"], setting=c["setting"], kind=kind, n_pairs=n,
                       **{f"n_{d}": counts.get(d, 0) for d in directions}, testable=testable,
                       status="ok" if testable else f"not testable (n={n} < {min_pairs})")
            if kind == "last_token":
                r = transfer_ranges(c["curves"]) if testable else {}
                row |= dict(significant_sites="", ordinal_range=r.get("ordinal_range", "not testable"),
                            attribute_range=r.get("attribute_range", "not testable"),
                            clean_range=r.get("clean_range", "not testable"), max_flip_rate=np.nan, max_flip_site="")
                row |= {f"significant_{d}": "" for d in directions}
            else:
                st = c["stats"][c["stats"]["kind"] == kind]
                labels = st.drop_duplicates("site_index").sort_values("site_index")["site_label"].tolist()

                def sig(direction):
                    if direction != "all" and direction not in run:
                        return "not run"
                    s = st[st["direction"] == direction]
                    if s.empty or not bool(s["testable"].iloc[0]):
                        return "not testable"
                    return site_ranges(labels, s.loc[s["significant"].astype(bool), "site_index"])
                pooled = st[st["direction"] == "all"]
                best = pooled.loc[pooled["flip_rate"].astype(float).idxmax()] if pooled["flip_rate"].notna().any() else None
                row |= dict(significant_sites=sig("all"), ordinal_range="", attribute_range="", clean_range="",
                            max_flip_rate=float(best["flip_rate"]) if best is not None else np.nan,
                            max_flip_site=best["site_label"] if best is not None else "")
                row |= {f"significant_{d}": sig(d) for d in directions}
            rows.append(row)
    long = pd.DataFrame(rows)
    if long.empty:
        return long, long
    short = {"left": "L", "right": "R", "above": "A", "below": "B"}
    display = pd.DataFrame({
        "Model": long["model"], "Setting": long["setting"], "Kind": long["kind"].str.replace("_", "-"),
        "Pairs": [f"{n} (" + "/".join(str(r[f'n_{d}']) for d in directions) + ")" for n, (_, r) in
                  zip(long["n_pairs"], long.iterrows())],
        "Status": long["status"],
        "Flip sites (pooled)": [s if k != "last_token" else "\u2014" for s, k in zip(long["significant_sites"], long["kind"])],
        "Flip sites by direction": ["; ".join(f"{short.get(d, d)}: {r[f'significant_{d}']}" for d in directions)
                                    if r["kind"] != "last_token" else "\u2014" for _, r in long.iterrows()],
        "Max flip rate": [f"{v:.2f} @ {s}" if v == v else "\u2014" for v, s in zip(long["max_flip_rate"], long["max_flip_site"])],
        "Ordinal transfer (t2 top)": [v or "\u2014" for v in long["ordinal_range"]],
        "Attribute transfer (t3 top)": [v or "\u2014" for v in long["attribute_range"]],
    })
    return long, display
