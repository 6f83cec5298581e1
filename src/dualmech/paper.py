"""The regenerated paper: published values beside ours, LaTeX macros, generated tables and figure blocks.

Everything the manuscript (paper/main.tex + paper/sections/*.tex) shows that depends on a run is written
here into paper/generated/: numbers as macros (macros.tex), tables and figure environments as .tex files.
The hand-written sections only \\input them.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import claims as cl
from .sites import LM_INPUT

# The original paper's numbering of the artefacts this pipeline regenerates (macro name -> label).
ORIGINAL = {"OrigFigStimuli": "Fig.~1", "OrigFigLastToken": "Fig.~3", "OrigFigProbe": "Fig.~4",
            "OrigFigObjectSwap": "Fig.~6", "OrigFigStripSwap": "Fig.~7", "OrigFigBackup": "Fig.~9",
            "OrigTabAccuracy": "Table~1", "OrigTabAmplification": "Table~2", "OrigTabGeometry": "Table~4",
            "OrigTabAblation": "Table~5", "OrigSecProbes": "\\S5.2.1"}

NUMBER_WORDS = ["Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"]

# figures/ file name templates -> (paper section, caption). {model} / {setting} are filled from the config.
FIGURES = [
    ("fig1_stimuli.pdf", "stimuli",
     "Example stimuli (the paper's \\OrigFigStimuli): one canonical item per setting and orientation with its "
     "prompt and answer, and the grid layouts, at the geometry of the first configured model."),
    ("fig1_stimuli_{model}.pdf", "stimuli", "Example stimuli at the geometry of {model}."),
    ("table1_accuracy.pdf", "behaviour",
     "Top-1 accuracy per model and setting with Wilson 95\\% intervals (the paper's \\OrigTabAccuracy); chance "
     "is one in three."),
    ("fig4_{model}_{setting}.pdf", "probing",
     "Position probe applied to every visual token at the LM input (the paper's \\OrigFigProbe), {model}, "
     "{setting}: mean class probability per token over held-out images."),
    ("probe_depth_{model}.pdf", "probing",
     "Probe accuracy, strip score and controls at every site from the vision encoder through the LM, {model} "
     "(with its untrained twin where there is one)."),
    ("fig3_{model}_{setting}.pdf", "last_token",
     "Last-token interchange (the paper's \\OrigFigLastToken), {model}, {setting}: mean probability of the five "
     "candidates when the counterfactual run's final position is patched in at each site, 95\\% bootstrap CIs."),
    ("fig6_{model}_{setting}.pdf", "criss_cross",
     "Object-only swap (the paper's \\OrigFigObjectSwap), {model}, {setting}: probability of the clean answer "
     "(c0), the middle entity (c1) and the counterfactual answer (c2) after swapping the two side objects' "
     "tokens at each site; random-region swap as the null."),
    ("fig7_{model}_{setting}.pdf", "criss_cross",
     "Strip swap (the paper's \\OrigFigStripSwap), {model}, {setting}: as the object swap, with the two side "
     "strips swapped."),
    ("table5_ablation.pdf", "ablation",
     "Accuracy with vision-derived ordering removed at the LM input beside the clean accuracy (the paper's "
     "\\OrigTabAblation), Wilson 95\\% intervals; chance dashed."),
    ("fig9_{model}_{setting}.pdf", "ablation",
     "Object-only swap under the ordering ablation (the paper's \\OrigFigBackup), {model}, {setting}."),
    ("fig_amplification_{model}.pdf", "amplification",
     "Amplification sweep on the development split, {model}: failures fixed and correct items broken against "
     "the amplification strength, probe directions against random ones (the paper's \\OrigTabAmplification)."),
]
SECTIONS = ["stimuli", "behaviour", "probing", "last_token", "criss_cross", "ablation", "amplification", "other"]

# generated table files (paper/generated/tab_<name>.tex) -> caption
TABLE_CAPTIONS = {
    "claims": "The paper's claims tested on each model run: effect, 95\\% CI, p-value of the claim's test and the "
              "verdict (summary over settings; per-setting rows in the appendix).",
    "claims_detail": "Every claim per model and setting.",
    "validation": "Validation of the claim detectors: planted-mechanism fixtures (a slot code written into the "
                  "visual tokens on whole strips, on object tokens only, by absolute canvas third, or not at all), "
                  "the verdict expected before running and the verdict observed.",
    "verdicts": "Verdicts per claim and model, and whether the claim's verdicts count (\\VerdictCountRule): the "
                "last column says on which models of known mechanism the detector was right, or where it was wrong.",
    "table1": "Top-1 accuracy [Wilson 95\\% CI] (the paper's \\OrigTabAccuracy).",
    "table5": "Accuracy under the ordering ablation [Wilson 95\\% CI], exact McNemar test against the clean "
              "accuracy (the paper's \\OrigTabAblation).",
    "table2": "Amplifying ordering directions at the LM input, evaluation split (the paper's "
              "\\OrigTabAmplification).",
    "patching": "Causal-mediation summary: sites where a swap flips the answer significantly more often than a "
                "random-region swap (Holm over sites), and the last-token transfer ranges.",
    "backup": "Sites where the object swap flips the answer under the ordering ablation.",
    "probes": "Position probes at the LM input (post-projector visual tokens): held-out accuracy, strip score and "
              "relative-order control, with 95\\% CIs.",
    "published": "Published values beside this run's, for every configured model with a published "
                 "counterpart; flagged where the published value falls outside our 95\\% CI.",
}


# ------------------------------------------------------------------ LaTeX helpers
_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_UNICODE = {"\u2014": "---", "\u2013": "--", "\u2212": "-", "\u2264": r"$\leq$", "\u2265": r"$\geq$",
            "\u03b1": r"$\alpha$", "\u00b1": r"$\pm$", "\u2192": r"$\rightarrow$", "\u00d7": r"$\times$",
            "\u2026": r"\ldots{}", "\u2248": r"$\approx$"}


def tex_escape(text) -> str:
    s = "".join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))
    return tex_unicode(s)


def tex_unicode(s: str) -> str:
    return "".join(_UNICODE.get(ch, ch) for ch in s)


def tabular(df: pd.DataFrame, widths: Mapping[str, str] | None = None) -> str:
    """A booktabs longtable of formatted strings (p{} columns where `widths` says); the header repeats on
    every page, the caption (CAPTION, filled by table_block) only on the first."""
    widths = widths or {}
    spec = "".join(f">{{\\raggedright\\arraybackslash}}p{{{widths[c]}}}" if c in widths else "l" for c in df.columns)
    head = " & ".join(f"\\textbf{{{tex_escape(c)}}}" for c in df.columns) + r" \\"
    body = "\n".join(" & ".join(tex_escape(v) for v in row) + r" \\" for row in df.astype(str).to_numpy())
    return (f"\\begin{{longtable}}{{{spec}}}\n%CAPTION%\n\\toprule\n{head}\n\\midrule\n\\endfirsthead\n"
            f"\\toprule\n{head}\n\\midrule\n\\endhead\n{body}\n\\bottomrule\n\\end{{longtable}}\n")


def table_block(name: str, body: str, caption: str | None = None) -> str:
    """A captioned, labelled table around a tabular/longtable body (label tab:<name>)."""
    caption = caption if caption is not None else TABLE_CAPTIONS[name]
    if "longtable" in body:
        return (f"{{\\footnotesize\\setlength{{\\LTcapwidth}}{{\\linewidth}}\\setlength{{\\tabcolsep}}{{3pt}}\n"
                + body.replace("%CAPTION%", f"\\caption{{{caption}}}\\label{{tab:{name}}}\\\\", 1)
                + "}\n")
    return (f"\\begin{{table}}[htbp]\n\\centering\\footnotesize\n\\caption{{{caption}}}\\label{{tab:{name}}}\n"
            f"\\resizebox{{\\linewidth}}{{!}}{{%\n{body.strip()}\n}}\n\\end{{table}}\n")


def results_table(tex: str) -> str:
    """A tabular written by dualmech.tables.write, made safe for pdflatex."""
    return tex_unicode(tex.replace("&#", r"\&\#"))


def not_run_table(name: str) -> str:
    """The captioned, labelled place of a table that this configuration does not produce."""
    return (f"\\begin{{table}}[htbp]\n\\centering\\footnotesize\n\\caption{{{TABLE_CAPTIONS[name]}}}"
            f"\\label{{tab:{name}}}\n\\emph{{Not run in this configuration.}}\n\\end{{table}}\n")


def not_run_block(what: str) -> str:
    return f"\\par\\noindent\\emph{{{tex_escape(what)}}}\\par\n"


def macro_file(macros: Mapping[str, str]) -> str:
    lines = ["% Generated by the `paper` rule (dualmech.paper): every number the manuscript states."]
    for name, value in macros.items():
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise ValueError(f"macro name {name!r}: letters only")
        lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")
    return "\n".join(lines) + "\n"


def fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "$p<10^{-4}$" if p < 1e-4 else f"$p={p:.3f}$" if p >= 0.001 else f"$p={p:.1e}$"


def sf(name: str) -> str:
    """A model name, typeset as a name."""
    return f"\\textsf{{{tex_escape(name)}}}"


def word(n: int) -> str:
    return NUMBER_WORDS[n]


# ------------------------------------------------------------------ published values
def load_published(path: Path | str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def published_models(published: dict, version: str) -> set[str]:
    out = set()
    for key in ("table1", "table5", "table2", "probes", "table4"):
        out |= set((published.get(key, {}).get(version) or {}).keys())
    return out


def _compare(model, table, item, quantity, pub, ours=np.nan, lo=np.nan, hi=np.nan, ci="Wilson 95% CI",
             status=None, note="") -> dict:
    ours, lo, hi = (float(v) if v is not None else np.nan for v in (ours, lo, hi))
    outside = np.nan
    if status is None:
        if math.isnan(ours):
            status = "not run"
        elif math.isnan(lo) or math.isnan(hi):
            status = "no CI"
        else:
            outside = bool(pub < lo - 1e-12 or pub > hi + 1e-12)
            status = "published outside our CI" if outside else "published inside our CI"
    return dict(model=model, table=table, item=item, quantity=quantity, published=float(pub), ours=ours,
                ci_low=lo, ci_high=hi, ci=ci, outside_ci=outside, status=status, note=note)


def published_vs_regenerated(published: dict, version: str, models: Sequence[str], table1=None, table5=None,
                             table2=None, probes=None, geometry: Mapping[str, Mapping] | None = None,
                             skipped: Mapping[str, Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Every published value of `version` for each configured model of the same name, beside ours and our CI.

    A model without any published value gets one row saying so. `geometry`: model -> our canvas geometry
    (grid, px_per_token, object_tokens, gap_tokens, strip_width), compared exactly. `skipped`: table ("Table 1",
    "Probes") -> setting -> why this run has no value for it (e.g. What'sUp without data), the note of its rows."""
    geometry = geometry or {}
    skipped = skipped or {}
    known = published_models(published, version)
    rows = []
    for m in models:
        if m not in known:
            rows.append(dict(model=m, table="\u2014", item="\u2014", quantity="\u2014", published=np.nan, ours=np.nan,
                             ci_low=np.nan, ci_high=np.nan, ci="", outside_ci=np.nan,
                             status="no published counterpart",
                             note=f"the paper ({version}) reports no model named {m}; it reports "
                                  + ", ".join(sorted(known))))
            continue
        for setting, pub in ((published.get("table1", {}).get(version) or {}).get(m) or {}).items():
            r = _pick(table1, model=m, setting=setting, direction="all")
            note = skipped.get("Table 1", {}).get(setting, "") if r is None else ""
            rows.append(_compare(m, "Table 1", setting, "accuracy", pub, *_vals(r, "accuracy", "ci_low", "ci_high"),
                                 note=note))
        for setting, pub in ((published.get("table5", {}).get(version) or {}).get(m) or {}).items():
            r = _pick(table5, model=m, setting=setting, direction="all")
            rows.append(_compare(m, "Table 5", setting, "accuracy under ablation", pub,
                                 *_vals(r, "accuracy_ablated", "ci_low", "ci_high")))
        testbed = (published.get("table2", {}).get("testbed") or {}).get(version, "coco")
        for row, vals in ((published.get("table2", {}).get(version) or {}).get(m) or {}).items():
            r = _pick(table2, model=m, testbed=testbed, row=row)
            ci = "2.5-97.5% range over random directions" if row == "random" else "Wilson 95% CI"
            for quantity, pub in vals.items():
                cols = ("accuracy", "ci_low", "ci_high") if quantity == "accuracy" else ("fix_rate", "fix_low", "fix_high")
                rows.append(_compare(m, "Table 2", f"{row} ({testbed})", quantity.replace("_", " "), pub,
                                     *_vals(r, *cols), ci=ci))
        for setting, by_o in ((published.get("probes", {}).get(version) or {}).get(m) or {}).items():
            for orientation, pub in by_o.items():
                r = _pick(probes, model=m, setting=setting, orientation=orientation, site=LM_INPUT)
                note = skipped.get("Probes", {}).get(setting, "") if r is None else ""
                rows.append(_compare(m, "Probes", f"{setting} {orientation}", "probe accuracy", pub,
                                     *_vals(r, "acc", "acc_lo", "acc_hi"), ci="bootstrap 95% CI", note=note))
        for quantity, pub in ((published.get("table4", {}).get(version) or {}).get(m) or {}).items():
            ours = (geometry.get(m) or {}).get(quantity)
            if ours is None:
                rows.append(_compare(m, "Table 4", "geometry", quantity, pub, ci="exact", status="not run"))
            else:
                rows.append(_compare(m, "Table 4", "geometry", quantity, pub, ours, ci="exact",
                                     status="matches" if float(ours) == float(pub) else "differs"))
    cols = ["model", "table", "item", "quantity", "published", "ours", "ci_low", "ci_high", "ci", "outside_ci",
            "status", "note"]
    return pd.DataFrame(rows, columns=cols)


def _pick(df: pd.DataFrame | None, **where) -> pd.Series | None:
    if df is None or df.empty:
        return None
    mask = np.ones(len(df), bool)
    for k, v in where.items():
        if k not in df:
            return None
        mask &= (df[k] == v).to_numpy()
    return df[mask].iloc[0] if mask.any() else None


def _vals(r: pd.Series | None, value: str, lo: str, hi: str) -> tuple:
    if r is None:
        return (np.nan, np.nan, np.nan)
    return tuple(float(r[c]) if c in r and pd.notna(r[c]) else np.nan for c in (value, lo, hi))


def comparison_display(df: pd.DataFrame) -> pd.DataFrame:
    def ours(r):
        if math.isnan(r.ours):
            return "\u2014"
        if r.ci == "exact":
            return f"{r.ours:g}"
        return f"{r.ours:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]" if not math.isnan(r.ci_low) else f"{r.ours:.3f}"
    return pd.DataFrame({
        "Model": df["model"], "Table": df["table"], "Item": df["item"], "Quantity": df["quantity"],
        "Published": ["\u2014" if math.isnan(v) else f"{v:g}" for v in df["published"]],
        "Ours [95% CI]": [ours(r) for r in df.itertuples()],
        "Flag": ["OUTSIDE CI" if o is True else s for o, s in zip(df["outside_ci"], df["status"])],
    })


# ------------------------------------------------------------------ figures
def _template_regex(template: str, models: Sequence[str], settings: Sequence[str]) -> re.Pattern:
    alt = lambda xs: "|".join(re.escape(x) for x in sorted(xs, key=len, reverse=True)) or "(?!)"
    pattern = re.escape(template).replace(r"\{model\}", f"(?P<model>{alt(models)})")
    pattern = pattern.replace(r"\{setting\}", f"(?P<setting>{alt(settings)})")
    return re.compile(pattern + r"\Z")


def classify_figures(paths: Sequence[str], models: Sequence[str], settings: Sequence[str]) -> list[dict]:
    """Each figure -> dict(path, section, caption, model, setting, main) in FIGURES order. `main`: shown in
    the main text (the first model and first setting); the rest go to the appendix."""
    out = []
    for path in dict.fromkeys(paths):
        name = Path(path).name
        for i, (template, section, caption) in enumerate(FIGURES):
            m = _template_regex(template, models, settings).match(name)
            if m:
                g = m.groupdict()
                main = g.get("model", models[0]) == models[0] and g.get("setting", settings[0]) == settings[0]
                out.append(dict(path=path, section=section, order=i, model=g.get("model", ""),
                                setting=g.get("setting", ""), main=main,
                                caption=caption.format(model=tex_escape(g.get("model", "")),
                                                       setting=tex_escape(g.get("setting", "")))))
                break
        else:
            out.append(dict(path=path, section="other", order=len(FIGURES), model="", setting="", main=False,
                            caption=f"{tex_escape(name)}."))
    key = {m: i for i, m in enumerate(models)}
    skey = {s: i for i, s in enumerate(settings)}
    return sorted(out, key=lambda f: (SECTIONS.index(f["section"]), key.get(f["model"], -1), f["order"],
                                      skey.get(f["setting"], -1)))


def figure_block(figs: Sequence[dict], paper_dir: Path | str = "paper", empty: str = "") -> str:
    """Figure environments ([H]: in place) for `figs`, graphics paths relative to the paper directory."""
    if not figs:
        return not_run_block(empty) if empty else "% no figures\n"
    out = []
    for f in figs:
        rel = Path(f["path"]).resolve().relative_to(Path(paper_dir).resolve().parent)
        label = re.sub(r"[^A-Za-z0-9]+", "-", Path(f["path"]).stem)
        out.append(f"\\begin{{figure}}[H]\n\\centering\n\\includegraphics[width=\\linewidth,height=0.42\\textheight,"
                   f"keepaspectratio]{{../{rel.as_posix()}}}\n\\caption{{{f['caption']}}}\\label{{fig:{label}}}\n"
                   f"\\end{{figure}}\n")
    return "\n".join(out)


# ------------------------------------------------------------------ claims as text
def claim_sentence(claims: pd.DataFrame, claim: int) -> str:
    """'model: verdict (effect [CI], p)' for every model, from the summary rows."""
    rows = claims[(claims["level"] == "model") & (claims["claim"] == claim)]
    parts = []
    for r in rows.itertuples():
        if r.verdict == cl.NOT_TESTABLE:
            parts.append(f"\\textsf{{{tex_escape(r.model)}}}: not testable ({tex_escape(r.reason)})")
        else:
            parts.append(f"\\textsf{{{tex_escape(r.model)}}}: \\textbf{{{r.verdict}}} (effect {fmt(r.effect)} "
                         f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}], {fmt_p(r.p)}; {tex_escape(r.note)})")
    return "; ".join(parts) + "." if parts else "no model was run."


def validation_display(table: pd.DataFrame) -> pd.DataFrame:
    from .validation import display
    return display(table.fillna({"observed_reason": ""}))


def claims_tables(claims: pd.DataFrame) -> tuple[str, str]:
    w = {"Claim": "0.25\\linewidth", "Model": "0.13\\linewidth", "Setting": "0.08\\linewidth",
         "Verdict": "0.19\\linewidth", "Effect [95% CI]": "0.16\\linewidth"}
    summary = tabular(cl.display(claims, "model"), w)
    detail = tabular(cl.display(claims, "setting"), w)
    return summary, detail


def claim_macros(claims: pd.DataFrame, primary: str) -> dict[str, str]:
    out = {}
    for k in sorted(cl.CLAIMS):
        out[f"ClaimResult{word(k)}"] = claim_sentence(claims, k)
        r = claims[(claims["level"] == "model") & (claims["claim"] == k) & (claims["model"] == primary)]
        out[f"ClaimVerdict{word(k)}"] = r["verdict"].iloc[0] if len(r) else cl.NOT_TESTABLE
        out[f"ClaimTest{word(k)}"] = tex_escape(cl.CLAIMS[k].test)
        out[f"ClaimNull{word(k)}"] = tex_escape(cl.CLAIMS[k].null)
        out[f"ClaimThreshold{word(k)}"] = tex_escape(cl.CLAIMS[k].threshold)
        out[f"ClaimCorrection{word(k)}"] = tex_escape(cl.CLAIMS[k].correction)
        out[f"ClaimControl{word(k)}"] = tex_escape(cl.CLAIMS[k].control)
    prim = claims[(claims["level"] == "model") & (claims["model"] == primary)]
    for name, verdict in (("Supported", cl.SUPPORTED), ("NotSupported", cl.NOT_SUPPORTED),
                          ("NotTestable", cl.NOT_TESTABLE)):
        out[f"NClaims{name}"] = str(int((prim["verdict"] == verdict).sum()))
    out["NClaims"] = str(len(cl.CLAIMS))
    out["ClaimsControlRule"] = tex_escape(cl.CONTROL_RULE)
    out["ClaimsAlpha"] = f"{cl.ALPHA:g}"
    out["ClaimsNearPerfect"] = f"{cl.NEAR_PERFECT:.2f}"
    out["ClaimsChance"] = f"{cl.CHANCE:.2f}"
    return out


def probe_display(probes: pd.DataFrame) -> pd.DataFrame:
    d = probes[probes["site"] == LM_INPUT]

    def ci(v, lo, hi):
        return "\u2014" if pd.isna(v) else f"{v:.2f} [{fmt(lo)}, {fmt(hi)}]"
    g = lambda c: d[c] if c in d else pd.Series(np.nan, index=d.index)
    return pd.DataFrame({
        "Model": d["model"], "Setting": d["setting"], "Orientation": d["orientation"],
        "Accuracy": [ci(*v) for v in zip(g("acc"), g("acc_lo"), g("acc_hi"))],
        "Position-only": [fmt(v) for v in g("pos_acc")],
        "Strip score": [ci(*v) for v in zip(g("strip_score"), g("strip_lo"), g("strip_hi"))],
        "Selectivity": [ci(*v) for v in zip(g("selectivity"), g("selectivity_lo"), g("selectivity_hi"))],
        "Relative / absolute": ["\u2014" if pd.isna(a) else f"{a:.2f} / {fmt(b)}"
                                for a, b in zip(g("follow_relative"), g("follow_absolute"))],
    })


# ------------------------------------------------------------------ everything under paper/generated/
def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else "none"


def run_scope(models: Sequence[str], organisms: Sequence[str]) -> str:
    """What the run can and cannot show, from which models it analysed."""
    own = [m for m in models if m in organisms]
    real = [m for m in models if m not in organisms]
    parts = []
    if own:
        parts.append(f"{_join(map(sf, own))} "
                     f"{'is a model' if len(own) == 1 else 'are models'} built by this pipeline (the model organism, "
                     "a tiny vision-language model trained from scratch on these stimuli, and its untrained twin): "
                     "the results below are findings about how such a model solves the task, not evidence for or "
                     "against the paper's claims about the paper's models; they test that every analysis runs end "
                     "to end and that the statistics separate a trained model from an untrained one")
    if real:
        parts.append(f"{_join(map(sf, real))} "
                     f"{'is a checkpoint' if len(real) == 1 else 'are checkpoints'} named in the configuration, "
                     "analysed with the same code; only these can be compared with the published values")
    return "; ".join(parts) + "."


def accuracy_sentence(table1: pd.DataFrame | None, value: str = "accuracy") -> str:
    if table1 is None or table1.empty:
        return "not run"
    d = table1[table1["direction"] == "all"]
    out = []
    for m, g in d.groupby("model", sort=False):
        cells = ", ".join(f"{tex_escape(r['setting'])} {fmt(r[value])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
                          for _, r in g.iterrows())
        out.append(f"\\textsf{{{tex_escape(m)}}}: {cells}")
    return "; ".join(out)


def amplification_sentence(table2: pd.DataFrame | None) -> str:
    if table2 is None or table2.empty:
        return "not run in this configuration"
    out = []
    for (m, t), g in table2.groupby(["model", "testbed"], sort=False):
        g = g.set_index("row")
        s = f"\\textsf{{{tex_escape(m)}}} on the {tex_escape(t)} testbed: accuracy {fmt(g.loc['none', 'accuracy'])}"
        if "probe" in g.index:
            s += (f" without intervention, {fmt(g.loc['probe', 'accuracy'])} with the probe directions "
                  f"({fmt(100 * g.loc['probe', 'fix_rate'], 1)}\\% of {int(g.loc['probe', 'n_fail'])} failures fixed, "
                  f"{int(g.loc['probe', 'breaks'])} correct items broken)")
        if "random" in g.index:
            s += f", {fmt(g.loc['random', 'accuracy'])} with random directions"
        out.append(s)
    return "; ".join(out)


def published_sentence(comparison: pd.DataFrame, version: str) -> str:
    compared = comparison[comparison["outside_ci"].notna()]
    absent = comparison.loc[comparison["status"] == "no published counterpart", "model"].tolist()
    parts = []
    if len(compared):
        n_out = int(compared["outside_ci"].astype(bool).sum())
        parts.append(f"{n_out} of the {len(compared)} published values with a regenerated counterpart fall outside "
                     "our 95\\% CI")
    if absent:
        parts.append(f"{_join(map(sf, absent))} "
                     f"{'has' if len(absent) == 1 else 'have'} no published counterpart in paper {tex_escape(version)}, "
                     "so no published value applies to "
                     f"{'it' if len(absent) == 1 else 'them'}")
    return "; ".join(parts) + "." if parts else "nothing to compare."


def generate(out: Path | str, *, models: Sequence[str], settings: Sequence[str], directions: Sequence[str],
             version: str, published: dict, claims: pd.DataFrame, comparison: pd.DataFrame,
             tables: Mapping[str, pd.DataFrame], tex: Mapping[str, str], figures: Sequence[str],
             organisms: Sequence[str], patching: Mapping, amplification: Mapping,
             paper_dir: Path | str = "paper") -> dict[str, str]:
    """Write macros.tex, tab_*.tex and figs_*.tex into `out`; returns {file name: text}."""
    from .planted import SPEAKS_TO      # here, not at the top: planted needs torch, the paper rule does not
    from .validation import COUNT_RULE, verdicts_display
    from .tables import atomic_write
    files: dict[str, str] = {}
    primary = models[0]
    t1, t2, t5 = tables.get("table1"), tables.get("table2"), tables.get("table5")
    macros = {
        "ArxivId": tex_escape(published["paper"]["arxiv"]),
        "PaperTitle": tex_escape(published["paper"]["title"][version]),
        "PaperVersion": tex_escape(version),
        "ModelsRun": _join([f"\\textsf{{{tex_escape(m)}}}" for m in models]),
        "NModels": str(len(models)),
        "PrimaryModel": f"\\textsf{{{tex_escape(primary)}}}",
        "RunScope": run_scope(models, organisms),
        "SettingsRun": _join([tex_escape(s) for s in settings]),
        "NSettings": str(len(settings)),
        "DirectionsRun": _join([tex_escape(d) for d in directions]),
        "PairsPerDirection": str(patching["pairs_per_direction"]),
        "MinPairs": str(patching["min_pairs"]),
        "NRandomDirections": str(amplification["n_random"]),
        "CILevel": "95\\%",
        "AccuracySentence": accuracy_sentence(t1),
        "AblationSentence": accuracy_sentence(t5, "accuracy_ablated"),
        "AmplificationSentence": amplification_sentence(t2),
        "PublishedSentence": published_sentence(comparison, version),
        **ORIGINAL,
        **claim_macros(claims, primary),
        "PlantedClaims": _join([str(k) for k in SPEAKS_TO]),
        "VerdictCountRule": tex_escape(COUNT_RULE),
    }
    files["macros.tex"] = macro_file(macros)

    summary, detail = claims_tables(claims)
    files["tab_claims.tex"] = table_block("claims", summary)
    files["tab_claims_detail.tex"] = table_block("claims_detail", detail)
    val = tables.get("validation")
    files["tab_validation.tex"] = (table_block("validation", tabular(validation_display(val), {
        "Fixture": "0.12\\linewidth", "Claim": "0.17\\linewidth", "Expected": "0.09\\linewidth",
        "Observed": "0.16\\linewidth", "Effect [95% CI]": "0.11\\linewidth", "Agree": "0.04\\linewidth",
        "Why expected": "0.24\\linewidth"})) if val is not None else not_run_table("validation"))
    ver = tables.get("verdicts")
    if ver is not None:
        shown = verdicts_display(ver)
        model_width = f"{0.40 / max(1, shown.shape[1] - 3):.3f}\\linewidth"     # the columns between Claim and Counts
        files["tab_verdicts.tex"] = table_block("verdicts", tabular(shown, {
            "Claim": "0.17\\linewidth", "Detector on known mechanisms": "0.26\\linewidth",
            **{m: model_width for m in shown.columns[1:-2]}}))
    else:
        files["tab_verdicts.tex"] = not_run_table("verdicts")
    files["tab_published.tex"] = table_block("published", tabular(comparison_display(comparison), {
        "Model": "0.12\\linewidth", "Table": "0.07\\linewidth", "Item": "0.13\\linewidth",
        "Quantity": "0.12\\linewidth", "Ours [95% CI]": "0.16\\linewidth",
        "Flag": "0.14\\linewidth"}))
    for name, key in (("table1", "table1"), ("table5", "table5"), ("table2", "table2"),
                      ("patching", "patching_summary"), ("backup", "backup_layers")):
        files[f"tab_{name}.tex"] = (table_block(name, results_table(tex[key])) if key in tex
                                    else not_run_table(name))
    probes = tables.get("probes")
    probe_widths = {"Model": "0.12\\linewidth", "Setting": "0.07\\linewidth", "Orientation": "0.08\\linewidth",
                    "Position-only": "0.07\\linewidth", "Relative / absolute": "0.08\\linewidth"}
    files["tab_probes.tex"] = (table_block("probes", tabular(probe_display(probes), probe_widths)) if probes is not None
                               else not_run_table("probes"))

    figs = classify_figures(figures, models, list(settings) + sorted(
        {s for s in (probes["setting"] if probes is not None else [])} - set(settings)))
    for section in SECTIONS:
        in_section = [f for f in figs if f["section"] == section]
        files[f"figs_{section}.tex"] = figure_block([f for f in in_section if f["main"]], paper_dir,
                                                   "No figure of this kind in this configuration.")
        files[f"figs_{section}_appendix.tex"] = figure_block([f for f in in_section if not f["main"]], paper_dir)
    for name, text in files.items():
        atomic_write(Path(out) / name, text)
    return files
