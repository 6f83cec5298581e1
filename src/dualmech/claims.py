"""The paper's claims (numbered 1-9) tested on the pipeline's own result tables.

Every claim is evaluated per (model, setting) from the table(s) that carry its evidence and gets a row with
the measured effect, its 95% CI, the test and its null, a p-value and a verdict:

- ``supported``: the test rejects its null at ALPHA and the effect points the claimed way;
- ``not supported``: it was tested and the condition above fails;
- ``not testable``: the evidence does not exist for this model or data (`reason` says why: the analysis was
  not run, too few golden pairs, no failures to fix, an undefined statistic ...).

Claims that join several conditions ("drops, but stays above chance") are intersection-union tests: every
condition must hold, and the reported p is the largest of the conditions' p-values (no multiplicity
correction is needed for a conjunction). Existential claims over a layer sweep ("flips at some layer") use
Holm-adjusted p-values over the sweep and report the smallest.

Every claim's verdict rule (statistic, null, threshold, correction, control) is stated once, in `CLAIMS`
below; `rules()` renders it as the table the README and the manuscript quote.

Negative controls enter the verdicts: where a model has a declared control (its untrained twin, `twin_of`
in the config), a setting is supported only if the model's effect exceeds the control's by a paired test over
the same items (`control_gate`, rule `CONTROL_RULE`, per-unit statistic `Claim.control`), and the per-setting
verdicts are listed in `claims.md` beside the summary.

Then one row per (claim, model) summarises the settings: ``supported`` when every testable setting is,
``not supported`` when any testable setting is not, ``not testable`` when none is testable; its effect, CI
and p are those of the setting that decides the verdict (the weakest supported one, or the first failing one).

All functions are pure functions of DataFrames (None = the input does not exist in this run).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .seeding import rng
from .sites import LM_INPUT
from .stats import bootstrap_ci, holm, wilson

ALPHA = 0.05
CHANCE = 1 / 3              # three visible entities
NEAR_PERFECT = 0.9          # "~100%" (claim 2) and "competent" (claim 8)
MOSTLY = 0.5                # "drops accuracy a lot" (claim 5): share of the above-chance accuracy removed
SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE = "supported", "not supported", "not testable"
NOT_RUN = "not run"


@dataclass(frozen=True)
class Claim:
    """One claim's verdict rule. `effect` is the statistic (larger = more of the claimed mechanism), `test` and
    `null` the test, `threshold` the decision, `correction` the multiplicity handling; every claim also
    passes the control gate (`CONTROL_RULE`) where the model has a declared control; `control` is the per-unit
    statistic (and units) of that paired test."""
    number: int
    short: str
    statement: str
    evidence: str
    effect: str
    test: str
    null: str
    threshold: str = f"p < {ALPHA} and the effect points the claimed way"
    correction: str = "none (one pre-specified site; a conjunction is an intersection-union test: largest p)"
    control: str = "none: no paired units reach the claims rule, so the control cannot veto"


CLAIMS = {c.number: c for c in [
    Claim(1, "ordering before attribute",
          "The answer is found by first computing the queried entity's ordinal position, content-free, and "
          "only later retrieving its attribute.",
          "Fig 3 (last-token interchange)",
          "mean P(t2) - max(P(t0), P(t3)) at the best site",
          "one-sided Wilcoxon signed-rank over pairs per site; attribute transfer (t3 on top) must follow at a "
          "later site that is not the last one (patching the final position after the last layer reproduces "
          "the counterfactual's answer by construction)",
          "the clean item at the counterfactual's ordinal slot (t2) is never more probable than both answers",
          f"Holm-adjusted p < {ALPHA} at some site with a positive mean, then attribute transfer at a later "
          "site before the last",
          "Holm over the sites of the sweep (existential claim); not testable when the smallest attainable "
          "adjusted p (2^-pairs x sites) is not below alpha",
          "per golden pair (the same pair id: the same entity tuple, images and prompts), P(t2) - max(P(t0), "
          "P(t3)) at each model's own best site; pairs golden for both. An untrained twin has no golden pairs (it "
          "answers neither item of a pair), so it shares none and cannot veto: an interchange effect is measured "
          "against answers it never gives, and the claim's own null (the clean item's slot) is a within-model "
          "control on the same pairs"),
    Claim(2, "ordering decodable after the projector",
          "Ordering is linearly decodable from the post-projector visual tokens, before any LM layer, with "
          "near-perfect accuracy.",
          "probe table (site lm_input, canonical and shifted layouts)",
          "held-out probe accuracy on position-ambiguous object tokens (shifted layouts; worst orientation)",
          "95% bootstrap CI over held-out images of the accuracy on position-ambiguous tokens against the "
          "position-only probe on the same tokens",
          "the probe does no better than the grid cell alone (position-only baseline); on canonical layouts "
          "slot = cell, and a control task of identity labels is passed by any model that names the entity",
          f"canonical accuracy >= {NEAR_PERFECT:.2f} and the ambiguous-token CI above both the position-only "
          "baseline and chance, in every orientation",
          "none (one pre-specified site; orientations: intersection-union)",
          'per held-out triple: correct predictions on its position-ambiguous tokens (weight: their number)'),
    Claim(3, "ordering lives in strips",
          "The ordering signal is not confined to object tokens: the probe labels background tokens by the "
          "strip (columns / rows) they share with an object.",
          "Fig 4, probe table (site lm_input)",
          "strip score on background tokens (worst orientation), read by the probe trained on canonical + shifted "
          "layouts where the setting has the shifted control (on canonical layouts alone slot = cell, and a probe "
          "can read the cell instead of the ordering code); where shifted layouts put background tokens in a "
          "strip whose slot differs from their cell's canonical slot (conflict tokens), also the share of fixed-"
          "cell pairs in which that probe, refitted on position-centred features, gives a conflict token more "
          "evidence for the strip's (relative) slot over the cell's (absolute) one, log p(relative) - "
          "log p(absolute), than the same cell gets in the triple's other layout, where its strip has the cell's "
          "slot (`probing.follow_pairs`), provided that probe reads the held-out object tokens' slot",
          "permutation test at the pre-specified site (the LM input); on the fixed-cell pairs, the sign-flip "
          "test over held-out triples of their hits minus one half",
          "the probe's predictions shuffled among each image's background tokens; at a fixed cell, the evidence "
          "exchangeable between the triple's two layouts (hits 1/2)",
          f"permutation p < {ALPHA} and strip score > 0 in every orientation, and where fixed-cell pairs exist, "
          f"their share > 0.5 with p < {ALPHA} in every orientation (on canonical layouts a strip is a canvas third, "
          "so strips alone credit a code for the canvas position, such as an untrained model's position "
          "embeddings; at a fixed cell such a code is the same in both layouts), read by a probe that reads the "
          "objects: the same fixed-cell share on the held-out object tokens (an object whose slot differs from "
          f"its cell's canonical one against an object of the cell's slot there) > 0.5 with p < {ALPHA} in every "
          "orientation (`reads_objects`; otherwise its evidence on the background reads no code of theirs: an "
          "untrained twin's blank background moves with the layout by thousandths of a nat, consistently, while "
          "its probe reads nothing on the objects); not testable where there are background pairs but no object "
          "pairs to check the probe on",
          "none: one pre-specified site (the other probed sites are descriptive); orientations and the two "
          "tests: intersection-union",
          "per held-out triple: its fixed-cell pairs' hits minus one half (weight: their number; the contrast the "
          "claim's own test decides on) where the setting has them, else the strip score of its background "
          "tokens (weight 1); none in an orientation where the probe does not read the objects (a control "
          "without an ordering code on its objects has none to spread: no veto)"),
    Claim(4, "strip swap is causal, object swap is not",
          "Swapping the left and right strips between clean and counterfactual runs flips the answer at the "
          "visual-embedding slot; swapping only the object tokens does not.",
          "Figs 6 and 7 (criss-cross object / strip swaps)",
          "strip-swap flip rate at Embed",
          "at Embed (pre-specified): one-sided exact sign test strip swap vs a random-region swap of the same "
          "size, one-sided exact McNemar test strip vs object swap, and the object swap's own sign test vs the "
          "random-region swap",
          "the strip swap flips no more often than a random-region swap or than the object swap",
          f"strip vs random p < {ALPHA}, strip vs object p < {ALPHA}, and the object swap NOT above the "
          f"random-region swap (its p >= {ALPHA})",
          "none (one pre-specified site; conjunction: largest p)",
          "per golden pair: the strip swap flips the answer at Embed (1/0); pairs golden for both, as for claim 1 (an"
          " untrained twin shares none and cannot veto)"),
    Claim(5, "vision encoder is the main source of ordering",
          "Removing vision-derived ordering at the LM input lowers accuracy a lot but leaves it above chance.",
          "Table 5",
          "share of the above-chance accuracy the ablation removes beyond the own-slot control (each entity "
          "re-encoded alone at its own slot): (control - ablated) / (control - chance); the clean accuracy "
          "stands in for the control where it was not run",
          "exact McNemar test (own-slot control vs ablated, paired over items) and one-sided exact binomial test "
          "of the ablated accuracy vs chance",
          f"no drop beyond the control's (identity / context damage), or accuracy at chance ({CHANCE:.2f})",
          f"both p < {ALPHA} and the lower end of the share's 95% CI (from the ablated accuracy's Wilson "
          f"interval) >= {MOSTLY:.0%}",
          "none (conjunction: largest p)",
          "per item: own-slot control correct minus ablated correct (the clean answer where the control was not run):"
          " the accuracy the ablation removes beyond its control"),
    Claim(6, "the LM builds a backup ordering",
          "Under that ablation the LM backbone builds its own ordering on the object tokens in middle layers: "
          "the object-only swap now flips the answer there, not at the visual-embedding slot.",
          "Fig 9 (object swap under the ablation)",
          "largest object-swap flip rate over LM layers",
          "one-sided exact sign test vs a random-region swap per LM layer; no significant flip at Embed; and the "
          "ablated model still answers above chance (Table 5: one-sided exact binomial test)",
          "the object swap flips no more often than a random-region swap at any LM layer, or the ablated model "
          "answers at chance although it answers above chance clean (no backup that works: not supported, "
          "however few golden pairs remain)",
          f"Holm-adjusted p < {ALPHA} at some LM layer, no significant flip at Embed, and ablated accuracy above "
          f"chance (p < {ALPHA})",
          "Holm over the LM layers (existential claim)",
          "none: only the pooled flip tests under the ablation reach the claims rule, so there are no paired units "
          "and the control cannot veto"),
    Claim(7, "amplifying ordering fixes failures",
          "Amplifying the vision-derived ordering (probe) directions at the LM input corrects many failures, "
          "far more than random directions.",
          "Table 2",
          "fraction of the evaluation split's ordering failures (every wrong answer names another entity of the "
          "scene, not a colour absent from it) fixed by the probe directions",
          "rank of the probe's fixes among random directions' (permutation p) and exact McNemar vs none",
          "random directions fix as many: each a Gaussian subspace of the probe's shape that moves every token "
          "by exactly the probe's per-token step (only the direction differs), its alpha chosen on the "
          "development split as the probe's; accuracy unchanged",
          f"both p < {ALPHA}, more fixes than random and accuracy above none; not testable when "
          "1 / (random directions + 1) is not below alpha or there is no ordering failure to fix",
          "none (conjunction: largest p)",
          "per evaluation item that both models fail with an ordering error at baseline: fixed by the probe direction"
          " (1/0); a control with no such failure cannot veto"),
    Claim(8, "the models are competent",
          "The models solve the tasks (a mechanism of success needs success).",
          "Table 1",
          f"top-1 accuracy; required >= {NEAR_PERFECT:.2f}",
          "one-sided exact binomial test vs chance",
          f"accuracy at chance ({CHANCE:.2f})",
          f"p < {ALPHA} and accuracy >= {NEAR_PERFECT:.2f}",
          control='none: competence is judged against chance, not against a control'),
    Claim(9, "ordering is relative, not absolute",
          "Controls: the ordering code follows the entities' relative order, not their absolute position "
          "(shifted layouts). The realistic-background control (App C.8) is tested as its own settings "
          "(<setting>_bg) of claims 3 and 4.",
          "probe table (site lm_input, shifted-layout control)",
          "fraction of conflicting shifted-object tokens labelled by relative order (worst orientation), beside "
          "its chance level (the probe's own share of readings of that slot's class over the conflict tokens)",
          "two-sided sign-flip test over held-out triples of relative minus absolute matches, each beyond chance",
          "the probe follows absolute position as often as relative order, beyond what its class shares give",
          f"p < {ALPHA} and relative > absolute beyond chance in every orientation; not testable unless the "
          "canonical probe "
          "works (its accuracy CI above chance) and the geometry's shifts give conflict tokens",
          "none (one pre-specified site; orientations: intersection-union)",
          "per held-out triple: conflict tokens labelled by their relative slot minus those labelled by their "
          "absolute one, each beyond chance (weight: their number; the contrast the claim's own test decides on)"),
]}

CONTROL_PERMUTATIONS = 10_000
CONTROL_RULE = (f"paired test over the same items: each claim's effect is recomputed per unit (the paired-units "
                f"statistic stated with the claim) for the model and for its declared control (the untrained twin) "
                f"on the units both have; statistic: sum over units of (model - control) / sum of the weights; "
                f"null: model and control exchangeable within each unit (one-sided sign-flip test, "
                f"{CONTROL_PERMUTATIONS:,} seeded flips); a supported setting stays supported only if p < {ALPHA} "
                f"and the difference > 0 in every orientation (intersection-union); a control with no unit in "
                f"common with the model cannot veto")
UNIT_COLUMNS = ["claim", "model", "setting", "part", "unit", "num", "den"]


def rules() -> pd.DataFrame:
    """The verdict rules, one row per claim: what README and manuscript quote (written by the claims rule)."""
    return pd.DataFrame([dict(Claim=f"{c.number}. {c.short}", Statistic=c.effect, Test=c.test, Null=c.null,
                              Threshold=c.threshold, Correction=c.correction, Control=c.control)
                         for c in CLAIMS.values()])

COLUMNS = ["claim", "short", "model", "setting", "level", "verdict", "reason", "effect_name", "effect", "ci_low",
           "ci_high", "p", "test", "null", "evidence", "note"]


def _row(claim: int, model: str, setting: str, verdict: str, effect=np.nan, ci=(np.nan, np.nan), p=np.nan,
         reason: str = "", note: str = "", level: str = "setting") -> dict:
    c = CLAIMS[claim]
    return dict(claim=claim, short=c.short, model=model, setting=setting, level=level, verdict=verdict,
                reason=reason, effect_name=c.effect, effect=float(effect), ci_low=float(ci[0]), ci_high=float(ci[1]),
                p=float(p), test=c.test, null=c.null, evidence=c.evidence, note=note)


def not_testable(claim: int, model: str, setting: str, reason: str, note: str = "") -> dict:
    return _row(claim, model, setting, NOT_TESTABLE, reason=reason, note=note)


def _verdict(ok: bool) -> str:
    return SUPPORTED if ok else NOT_SUPPORTED


def _binom_greater(k: int, n: int, p0: float) -> float:
    from scipy.stats import binomtest
    return float(binomtest(int(k), int(n), p0, alternative="greater").pvalue) if n else np.nan


def smallest_p_wilcoxon(n: int) -> float:
    """Smallest one-sided exact Wilcoxon signed-rank p with n pairs (every difference positive)."""
    return 0.5 ** n


def smallest_p(n_layers: int, pairs: int, permutations: int, n_random: int) -> dict[int, float]:
    """The smallest p-value each claim's rule can attain (after its correction) on a model with `n_layers` LM
    layers (sweep = Embed + every layer), `pairs` golden pairs, `permutations` probe permutations / sign
    flips and `n_random` random directions. A rule is only informative where this is well under ALPHA."""
    sites = n_layers + 1
    return {1: min(1.0, smallest_p_wilcoxon(pairs) * sites),    # Holm over the sweep: the smallest p x sites
            2: 0.0,                                             # a CI rule (bootstrap over images), no p floor
            3: 1 / (permutations + 1),                          # one pre-specified site
            4: 0.5 ** pairs,                                    # exact sign / McNemar tests at Embed
            5: 0.0,                                             # exact McNemar / binomial over items
            6: min(1.0, 0.5 ** pairs * n_layers),               # Holm over the LM layers
            7: 1 / (n_random + 1),                              # rank among random directions
            8: 0.0,                                             # exact binomial over items
            9: 1 / (permutations + 1)}                          # sign-flip test, one site


def _f(x, digits: int = 2) -> str:
    return "NA" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


# ------------------------------------------------------------------ claim 1: Fig 3
def claim1(model: str, setting: str, sweep: pd.DataFrame | None, min_pairs: int, seed: int = 0) -> dict:
    """Last-token interchange sweep (rows pair x site x candidate t0..t4, directions pooled)."""
    if sweep is None:
        return not_testable(1, model, setting, NOT_RUN)
    df = sweep[sweep["kind"] == "last_token"] if "kind" in sweep else sweep
    n = df[["direction", "pair"]].drop_duplicates().shape[0] if len(df) else 0
    if n < min_pairs:
        return not_testable(1, model, setting, f"too few golden pairs: {n} < {min_pairs}")
    n_sites = df["site_index"].nunique()
    if smallest_p_wilcoxon(n) * n_sites >= ALPHA:
        return not_testable(1, model, setting, f"underpowered: smallest Holm-adjusted p over {n_sites} sites with "
                                               f"{n} pairs is {smallest_p_wilcoxon(n) * n_sites:.2g}")
    wide = df.pivot_table(index=["direction", "pair"], columns=["site_index", "candidate"], values="probability")
    sites = sorted(df["site_index"].unique())
    labels = df.drop_duplicates("site_index").set_index("site_index")["site_label"]
    d = np.stack([wide[(k, "t2")].to_numpy() - np.maximum(wide[(k, "t0")], wide[(k, "t3")]).to_numpy()
                  for k in sites], axis=1)                                     # (pairs, sites)
    from scipy.stats import wilcoxon
    p = np.array([wilcoxon(col, alternative="greater").pvalue if np.any(col != 0) else 1.0 for col in d.T])
    p_holm = holm(p)
    mean = d.mean(0)
    best = int(np.argmax(mean))
    lo, hi = bootstrap_ci(d[:, best], seed=seed)
    ordinal = [sites[i] for i in range(len(sites)) if p_holm[i] < ALPHA and mean[i] > 0]
    means = df.groupby(["site_index", "candidate"])["probability"].mean().unstack()
    attribute = [k for k in sites[:-1] if means.loc[k].idxmax() == "t3"]    # the last site: by construction
    ok = bool(ordinal) and any(a > min(ordinal) for a in attribute)
    note = (f"{n} pairs; ordinal transfer (t2 above t0 and t3) at {_labels(labels, ordinal)}; attribute "
            f"transfer (t3 on top) at {_labels(labels, attribute)}; best site {labels[sites[best]]}")
    return _row(1, model, setting, _verdict(ok), mean[best], (float(lo), float(hi)), float(np.nanmin(p_holm)),
                note=note)


def _labels(labels: Mapping, sites: Sequence[int]) -> str:
    return ", ".join(str(labels[s]) for s in sites) if len(sites) else "no site"


# ------------------------------------------------------------------ claims 2, 3, 9: probes at lm_input
def _probe_rows(probes: pd.DataFrame, model: str, setting: str) -> pd.DataFrame:
    return probes[(probes["model"] == model) & (probes["setting"] == setting) & (probes["site"] == LM_INPUT)]


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name].astype(float) if name in df else pd.Series(np.nan, index=df.index)


def claim2(model: str, setting: str, probes: pd.DataFrame | None) -> dict:
    """Canonical accuracy >= NEAR_PERFECT and, on position-ambiguous tokens (shifted layouts), a bootstrap CI
    above the position-only probe's accuracy on the same tokens. The identity control task is not used: any
    model that can name the entity passes it (control ~1.0), so selectivity <= 0 for every competent model."""
    if probes is None:
        return not_testable(2, model, setting, NOT_RUN)
    r = _probe_rows(probes, model, setting)
    r = r[_col(r, "acc").notna()]
    if r.empty:
        return not_testable(2, model, setting, "no post-projector (lm_input) probe")
    amb, base = _col(r, "ambiguous_acc"), _col(r, "pos_ambiguous_acc")
    if amb.isna().any():
        return not_testable(2, model, setting, "no position-ambiguous tokens (no shifted layouts): slot = cell")
    acc, lo = _col(r, "acc"), _col(r, "ambiguous_lo")
    w = amb.idxmin()
    # above the position-only probe AND above chance: where the shifts leave strict cell majorities the
    # position-only baseline is ~0 on these tokens, and beating 0 is not "decodable"
    ok = bool((acc >= NEAR_PERFECT).all() and (lo > np.maximum(base, CHANCE)).all())
    note = "; ".join(f"{o}: canonical acc {_f(a)}, ambiguous acc {_f(m)} vs position-only {_f(b)}"
                     for o, a, m, b in zip(r["orientation"], acc, amb, base))
    return _row(2, model, setting, _verdict(ok), amb[w], (r.loc[w, "ambiguous_lo"], r.loc[w, "ambiguous_hi"]),
                note=note)


def claim3(model: str, setting: str, probes: pd.DataFrame | None) -> dict:
    if probes is None:
        return not_testable(3, model, setting, NOT_RUN)
    r = _probe_rows(probes, model, setting)
    r = r[_col(r, "strip_score").notna()]
    if r.empty:
        return not_testable(3, model, setting, "no strip score at lm_input: no background tokens")
    score = _col(r, "strip_score")
    p = _col(r, "strip_p")                               # the pre-specified site: no correction over sites
    if p.isna().any():
        return not_testable(3, model, setting, "no strip permutation test: 0 permutations")
    w = score.idxmin()
    ok = bool((score > 0).all() and (p < ALPHA).all())
    note = "; ".join(f"{o}: strip score {_f(s)}" for o, s in zip(r["orientation"], score))
    follow, p_follow = _col(r, "strip_follow"), _col(r, "strip_follow_p")
    tested = p_follow.notna()                   # shifted layouts: does the strip follow the entities?
    reason = ""
    if tested.any() and _col(r, "object_follow_p")[tested].isna().any():
        return not_testable(3, model, setting, "background conflict tokens but no object tokens at a fixed cell to "
                            "check the probe on (the geometry's shifts never put objects of two slots on one cell)",
                            note=note)
    if tested.any():
        reads = reads_objects(r)[tested]
        ok = ok and bool((follow[tested] > 0.5).all() and (p_follow[tested] < ALPHA).all() and reads.all())
        if not reads.all():
            reason = ("the probe does not read the objects' own slot at a fixed cell, so its evidence on the "
                      "background reads no ordering code of theirs")
        p = pd.concat([p, p_follow[tested]])
        note += "; the objects at a fixed cell, evidence for their own slot higher (chance 0.50): " + ", ".join(
            f"{o} {_f(a)}, p {_p(q)}" for o, a, q in zip(r["orientation"][tested], _col(r, "object_follow")[tested],
                                                      _col(r, "object_follow_p")[tested]))
        note += "; background conflict tokens against the same cell in the triple's other layout, evidence for " \
                "the strip's slot higher (chance 0.50): " + ", ".join(
                    f"{o} {_f(f)}" for o, f in zip(r["orientation"][tested], follow[tested]))
        note += "; their readings, relative vs absolute (chance): " + ", ".join(
            f"{o} {_f(a)} ({_f(ca)}) vs {_f(b)} ({_f(cb)})" for o, a, ca, b, cb in zip(
                r["orientation"], _col(r, "strip_relative"), _col(r, "strip_relative_chance"),
                _col(r, "strip_absolute"), _col(r, "strip_absolute_chance")))
    return _row(3, model, setting, _verdict(ok), score[w], (r.loc[w, "strip_lo"], r.loc[w, "strip_hi"]), p.max(),
                reason=reason, note=note)


def reads_objects(rows: pd.DataFrame) -> pd.Series:
    """Per probe row: whether claim 3's fixed-cell probe (refitted on position-centred features) reads the
    objects' own slot at a fixed cell (`probing.follow_pairs` on the held-out object tokens: share > 1/2 with
    sign-flip p < ALPHA). Only then is its evidence on background tokens a reading of the objects' ordering
    code: the paper reads the background with probes that read the objects (object-token accuracy ~1.0, Fig 4).
    No such object pairs: not shown, so False."""
    return (_col(rows, "object_follow") > 0.5) & (_col(rows, "object_follow_p") < ALPHA)


def claim9(model: str, setting: str, probes: pd.DataFrame | None) -> dict:
    if probes is None:
        return not_testable(9, model, setting, NOT_RUN)
    r = _probe_rows(probes, model, setting)
    rel, ab, p = _col(r, "follow_relative"), _col(r, "follow_absolute"), _col(r, "absrel_p")
    r = r[rel.notna() & p.notna()]
    if r.empty:
        return not_testable(9, model, setting, "no shifted-layout tokens whose absolute and relative slots differ "
                                               "(no feasible shift crosses a strip boundary in this geometry)")
    rel, ab, p = rel[r.index], ab[r.index], p[r.index]
    chance = 1 / 3
    if not (_col(r, "acc_lo") > chance).all():
        return not_testable(9, model, setting, "the canonical probe does not work (accuracy CI not above chance)",
                            note=f"canonical acc {', '.join(_f(a) for a in _col(r, 'acc'))}")
    w = rel.idxmin()
    ok = bool((_col(r, "follow_excess") > 0).all() and (p < ALPHA).all())
    note = "; ".join(f"{o}: relative {_f(a)} ({_f(ca)}) vs absolute {_f(b)} ({_f(cb)}), ambiguous-token acc {_f(c)}"
                     for o, a, ca, b, cb, c in zip(r["orientation"], rel, _col(r, "follow_relative_chance"), ab,
                                                   _col(r, "follow_absolute_chance"), _col(r, "ambiguous_acc")))
    note += " (chance levels in brackets)"
    return _row(9, model, setting, _verdict(ok), rel[w],
                (_col(r, "follow_relative_lo")[w], _col(r, "follow_relative_hi")[w]), p.max(),
                note=note)


# ------------------------------------------------------------------ claims 4, 6: criss-cross flip tests
def _pooled(stats: pd.DataFrame, kind: str) -> pd.DataFrame:
    return stats[(stats["kind"] == kind) & (stats["direction"] == "all")].sort_values("site_index")


def _sig_sites(st: pd.DataFrame) -> list[str]:
    return st.loc[st["significant"].fillna(False).astype(bool), "site_label"].tolist()


def claim4(model: str, setting: str, stats: pd.DataFrame | None, sweep: pd.DataFrame | None) -> dict:
    """stats: criss-cross flip tests; sweep: per-pair rows (for the paired strip-vs-object test at Embed)."""
    if stats is None:
        return not_testable(4, model, setting, NOT_RUN)
    strip, obj = _pooled(stats, "strip"), _pooled(stats, "object")
    if strip.empty or not bool(strip["testable"].iloc[0]) or strip["flip_rate"].isna().all():
        n = int(strip["n_pairs"].iloc[0]) if len(strip) else 0
        return not_testable(4, model, setting, f"too few golden pairs: {n}")
    s0, o0 = strip.iloc[0], obj.iloc[0]                       # site_index 0 = Embed (lm_input)
    p_vs_object = np.nan
    if sweep is not None:
        f = sweep[(sweep["candidate"] == "c2") & (sweep["site_index"] == 0) & (sweep["draw"] == 0)
                  & sweep["kind"].isin(["strip", "object"])]
        flips = f.pivot_table(index=["direction", "pair"], columns="kind", values="flipped", aggfunc="max")
        if {"strip", "object"} <= set(flips.columns):
            s, o = flips["strip"].astype(bool), flips["object"].astype(bool)
            only_s, only_o = int((s & ~o).sum()), int((~s & o).sum())
            p_vs_object = _binom_greater(only_s, only_s + only_o, 0.5) if only_s + only_o else 1.0
    p_strip = float(s0.get("p_flip", s0["p_flip_holm"]))          # Embed is pre-specified: unadjusted
    p_object = float(o0.get("p_flip", o0["p_flip_holm"]))
    p = max(p_strip, p_vs_object) if not np.isnan(p_vs_object) else p_strip
    ok = (p_strip < ALPHA and not np.isnan(p_vs_object) and p_vs_object < ALPHA
          and float(s0["flip_rate"]) > float(o0["flip_rate"]) and not p_object < ALPHA)
    note = (f"{int(s0['n_pairs'])} pairs; at Embed strip {_f(s0['flip_rate'])} vs object {_f(o0['flip_rate'])} vs "
            f"random-region {_f(s0['null_flip_rate'])} (object vs random p {p_object:.2g}); strip swap significant at "
            f"{', '.join(_sig_sites(strip)) or 'no site'}; object swap significant at "
            f"{', '.join(_sig_sites(obj)) or 'no site'}")
    return _row(4, model, setting, _verdict(ok), s0["flip_rate"], (s0["flip_ci_low"], s0["flip_ci_high"]), p,
                note=note)


def claim6(model: str, setting: str, ablated_stats: pd.DataFrame | None, table5: pd.DataFrame | None = None) -> dict:
    """ablated_stats: the criss-cross flip tests with the ordering ablation on both runs (Fig 9); table5: the
    clean and ablated accuracies. A backup ordering that does not answer is no backup: where a model that is
    above chance clean answers at chance under the ablation, the claim is not supported, whatever the (then
    few) golden pairs would show; a model at chance clean has nothing to back up (not testable, as claim 5)."""
    if ablated_stats is None:
        return not_testable(6, model, setting, NOT_RUN)
    r = _table5_row(table5, model, setting)
    if r is not None:
        n, acc = int(r["n"]), float(r["accuracy_ablated"])
        if not _above_chance(r["accuracy_clean"], n):     # as claim 5
            return not_testable(6, model, setting, "clean accuracy not above chance: no ordering to back up",
                                note=f"clean accuracy {_f(float(r['accuracy_clean']))}")
        p_chance = _binom_greater(int(round(acc * n)), n, CHANCE)
        if not p_chance < ALPHA:
            return _row(6, model, setting, NOT_SUPPORTED, p=p_chance, reason="the ablated model answers at chance",
                        note=f"ablated accuracy {_f(acc)} (n {n}) is not above chance ({CHANCE:.2f}): under the "
                             f"ablation the LM does not order the entities")
    obj = _pooled(ablated_stats, "object")
    if obj.empty or not bool(obj["testable"].iloc[0]) or obj["flip_rate"].isna().all():
        n = int(obj["n_pairs"].iloc[0]) if len(obj) else 0
        return not_testable(6, model, setting, f"too few golden pairs under the ablation: {n}")
    embed, lm = obj.iloc[0], obj.iloc[1:]
    if lm.empty:
        return not_testable(6, model, setting, "no LM layer in the sweep")
    best = lm.loc[lm["flip_rate"].astype(float).idxmax()]
    p = float(lm["p_flip_holm"].astype(float).min())
    embed_sig = bool(embed["significant"]) if pd.notna(embed["significant"]) else False
    ok = p < ALPHA and not embed_sig
    note = (f"{int(embed['n_pairs'])} pairs golden under the ablation; object swap significant at "
            f"{', '.join(_sig_sites(obj)) or 'no site'}; flip rate at Embed {_f(embed['flip_rate'])}, "
            f"best LM layer {best['site_label']}")
    return _row(6, model, setting, _verdict(ok), best["flip_rate"], (best["flip_ci_low"], best["flip_ci_high"]), p,
                note=note)


# ------------------------------------------------------------------ claim 5: Table 5
def _table5_row(table5: pd.DataFrame | None, model: str, setting: str) -> pd.Series | None:
    """The model's Table 5 row over all directions, None where the table has none (or no item)."""
    if table5 is None:
        return None
    r = table5[(table5["model"] == model) & (table5["setting"] == setting) & (table5["direction"] == "all")]
    return None if r.empty or int(r["n"].iloc[0]) == 0 else r.iloc[0]


def _above_chance(accuracy: float, n: int) -> bool:
    """The accuracy's Wilson 95% interval lies above chance."""
    return bool(wilson(int(round(accuracy * n)), n)[0] > CHANCE)


def claim5(model: str, setting: str, table5: pd.DataFrame | None) -> dict:
    r = _table5_row(table5, model, setting)
    if r is None:
        return not_testable(5, model, setting, NOT_RUN)
    n = int(r["n"])
    if not _above_chance(r["accuracy_clean"], n):
        return not_testable(5, model, setting, "clean accuracy not above chance: no ordering to remove",
                            note=f"clean accuracy {_f(r['accuracy_clean'])}")
    control = float(r.get("accuracy_control", np.nan))
    if not np.isnan(control) and not _above_chance(control, n):
        return not_testable(5, model, setting, "the own-slot control is at chance: the ablation's damage is not "
                                               "about order", note=f"own-slot control {_f(control)}")
    ref, p_drop = ((control, float(r["mcnemar_control_p"])) if not np.isnan(control)
                   else (float(r["accuracy_clean"]), float(r["mcnemar_p"])))
    p_chance = _binom_greater(int(round(r["accuracy_ablated"] * n)), n, CHANCE)
    p = max(p_drop, p_chance)
    room = ref - CHANCE
    removed = (ref - r["accuracy_ablated"]) / room               # the paper's models (vs clean): 0.55-0.86
    ci = ((ref - r["ci_high"]) / room, (ref - r["ci_low"]) / room)
    ok = bool(ci[0] >= MOSTLY and p < ALPHA)
    against = "clean (no own-slot control run)" if np.isnan(control) else f"own-slot control {_f(control)}"
    note = (f"clean {_f(r['accuracy_clean'])}, {against}, ablated {_f(r['accuracy_ablated'])}: removes {removed:.0%} "
            f"[{ci[0]:.0%}, {ci[1]:.0%}] of the above-chance accuracy (CI must reach {MOSTLY:.0%}), McNemar p "
            f"{p_drop:.2g}, n {n}")
    return _row(5, model, setting, _verdict(ok), removed, ci, p, note=note)


# ------------------------------------------------------------------ claim 7: Table 2
def claim7(model: str, testbed: str, table2: pd.DataFrame | None) -> dict:
    if table2 is None:
        return not_testable(7, model, testbed, NOT_RUN)
    t = table2[(table2["model"] == model) & (table2["testbed"] == testbed)].set_index("row")
    if "probe" not in t.index:
        return not_testable(7, model, testbed, NOT_RUN)
    pr = t.loc["probe"]
    if int(pr["n_fail"]) == 0:
        return not_testable(7, model, testbed, "no ordering failures on the evaluation split (a wrong answer that "
                                               "names no entity of the scene is not one)")
    if "random" not in t.index or pd.isna(pr.get("p_null", np.nan)):
        return not_testable(7, model, testbed, "no random-direction null")
    rnd, none = t.loc["random"], t.loc["none"]
    n_random = rnd.get("directions", np.nan)
    if pd.notna(n_random) and 1 / (int(n_random) + 1) >= ALPHA:
        return not_testable(7, model, testbed, f"underpowered: {int(n_random)} random directions, smallest p "
                                               f"1/{int(n_random) + 1}")
    p = max(float(pr["p_null"]), float(pr["p_vs_none"]))
    ok = bool(pr["fix_rate"] > rnd["fix_rate"] and pr["accuracy"] > none["accuracy"] and p < ALPHA)
    note = (f"accuracy {_f(none['accuracy'])} -> {_f(pr['accuracy'])} (random {_f(rnd['accuracy'])}); fixed "
            f"{_f(pr['fix_rate'])} vs random {_f(rnd['fix_rate'])}; {int(pr['breaks'])} correct items broken; "
            f"{int(pr['n_fail'])} ordering failures of {int(pr['n'])} items")
    return _row(7, model, testbed, _verdict(ok), pr["fix_rate"], (pr["fix_low"], pr["fix_high"]), p, note=note)


# ------------------------------------------------------------------ claim 8: Table 1
def claim8(model: str, setting: str, table1: pd.DataFrame | None) -> dict:
    if table1 is None:
        return not_testable(8, model, setting, NOT_RUN)
    r = table1[(table1["model"] == model) & (table1["setting"] == setting) & (table1["direction"] == "all")]
    if r.empty or int(r["n"].iloc[0]) == 0:
        return not_testable(8, model, setting, NOT_RUN)
    r = r.iloc[0]
    p = _binom_greater(int(r["correct"]), int(r["n"]), CHANCE)
    ok = bool(r["accuracy"] >= NEAR_PERFECT and p < ALPHA)
    return _row(8, model, setting, _verdict(ok), r["accuracy"], (r["ci_low"], r["ci_high"]), p,
                note=f"{int(r['correct'])}/{int(r['n'])} correct")


# ------------------------------------------------------------------ all claims
@dataclass
class Evidence:
    """Every input a claim may need; None / missing key = not produced by this run."""
    table1: pd.DataFrame | None = None
    table5: pd.DataFrame | None = None
    table2: pd.DataFrame | None = None
    probes: pd.DataFrame | None = None
    last_token: dict = field(default_factory=dict)          # (model, setting) -> last-token sweep
    criss_cross_stats: dict = field(default_factory=dict)   # (model, setting) -> flip tests
    criss_cross: dict = field(default_factory=dict)         # (model, setting) -> criss-cross sweep
    ablated_stats: dict = field(default_factory=dict)       # (model, setting) -> flip tests under the ablation
    units: pd.DataFrame | None = None                        # per-unit values for the control gate (UNIT_COLUMNS)


def evaluate(ev: Evidence, models: Sequence[str], settings: Sequence[str], min_pairs: int, seed: int = 0,
             testbeds: Mapping[str, Sequence[str]] | None = None,
             twins: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per-(claim, model, setting) rows, then one summary row per (claim, model). `twins`: model -> its
    untrained twin; the twin's verdict is noted beside the model's (an effect the untrained twin shows as
    well comes from the architecture, not from training).

    Settings beyond `settings` enter the claims their evidence speaks to: probe settings (grids, What'sUp, the
    App C.8 backgrounds) claims 2 and 3 (and 9 where a shifted control can exist), patching settings (What'sUp:
    both designs; backgrounds: the criss-cross swaps) claims 1 and 4."""
    from .stimuli.backgrounds import base_setting
    testbeds = testbeds or {}
    probe_settings = list(settings)
    if ev.probes is not None:
        probe_settings += [s for s in dict.fromkeys(ev.probes["setting"]) if s not in probe_settings]
    patched = [s for _, s in list(ev.last_token) + list(ev.criss_cross_stats)]
    patch_settings = [s for s in dict.fromkeys(patched) if s not in settings]
    rows = []
    for m in models:
        cells = []
        for s in settings:
            key = (m, s)
            cells += [claim1(m, s, ev.last_token.get(key), min_pairs, seed),
                      claim4(m, s, ev.criss_cross_stats.get(key), ev.criss_cross.get(key)),
                      claim5(m, s, ev.table5),
                      claim6(m, s, ev.ablated_stats.get(key), ev.table5),
                      claim8(m, s, ev.table1)]
        for s in patch_settings:
            key = (m, s)
            if key in ev.last_token:
                cells.append(claim1(m, s, ev.last_token[key], min_pairs, seed))
            if key in ev.criss_cross_stats:
                cells.append(claim4(m, s, ev.criss_cross_stats[key], ev.criss_cross.get(key)))
        for s in probe_settings:
            cells += [claim2(m, s, ev.probes), claim3(m, s, ev.probes)]
            if not s.startswith("grid") and not base_setting(s):
                cells.append(claim9(m, s, ev.probes))
        beds = list(testbeds.get(m, []))
        cells += [claim7(m, t, ev.table2) for t in beds] or [not_testable(7, m, "-", NOT_RUN)]
        rows += cells
    units = pd.concat([u for u in [ev.units, patching_units(ev)] if u is not None and len(u)] or
                      [pd.DataFrame(columns=UNIT_COLUMNS)], ignore_index=True)
    detail = control_gate(pd.DataFrame(rows, columns=COLUMNS), twins or {}, units, seed)
    summary = summarise(detail)
    verdicts = summary.set_index(["claim", "model"])["verdict"]
    for i, r in summary.iterrows():
        twin = (twins or {}).get(r["model"])
        if twin and (r["claim"], twin) in verdicts.index:
            summary.loc[i, "note"] += f"; untrained twin {twin}: {verdicts[r['claim'], twin]}"
    out = pd.concat([summary, detail], ignore_index=True)
    order = dict(claim=out["claim"], model=out["model"].map({m: i for i, m in enumerate(models)}),
                 level=(out["level"] == "setting").astype(int))
    return out.iloc[np.lexsort([order["level"], order["model"], order["claim"]])].reset_index(drop=True)[COLUMNS]


def control_gate(detail: pd.DataFrame, controls: Mapping[str, str], units: pd.DataFrame | None = None,
                 seed: int = 0) -> pd.DataFrame:
    """Apply CONTROL_RULE to the setting rows: `controls` maps a model to its declared control (the untrained
    twin), `units` holds the per-unit values (UNIT_COLUMNS) the paired test runs on. A supported setting that
    does not exceed its control becomes not supported; every gated row's note gives the control's verdict and
    effect and the paired difference with its CI and p."""
    out = detail.copy()
    units = units if units is not None else pd.DataFrame(columns=UNIT_COLUMNS)
    by = {k: g for k, g in units.groupby(["claim", "model", "setting"], sort=False)}
    key = out.set_index(["claim", "model", "setting"]).index
    where = {k: i for i, k in zip(out.index, key)}
    for i, r in out.iterrows():
        control = controls.get(r["model"])
        j = where.get((r["claim"], control, r["setting"])) if control else None
        if j is None:
            continue
        c = out.loc[j]
        seen = f"control {control}: {c['verdict']}, {_f(c['effect'])} [{_f(c['ci_low'])}, {_f(c['ci_high'])}]"
        test = paired_test(by.get((r["claim"], r["model"], r["setting"])), by.get((r["claim"], control, r["setting"])),
                           seed, r["claim"], r["setting"])
        if test is None:
            out.loc[i, "note"] = _join(r["note"], f"{seen}; no paired unit in common: no veto")
            continue
        above = bool(test["p"] < ALPHA and test["diff"] > 0)
        out.loc[i, "note"] = _join(r["note"], f"{seen}; paired difference {test['diff']:.3f} [{test['lo']:.3f}, "
                                              f"{test['hi']:.3f}] over {test['n']} units, sign-flip p "
                                              f"{_p(test['p'])}: {'exceeds' if above else 'does not exceed'} it")
        if r["verdict"] == SUPPORTED and not above:
            out.loc[i, "verdict"] = NOT_SUPPORTED
            out.loc[i, "reason"] = "does not exceed the control (paired test over the same items)"
    return out


def paired_test(model: pd.DataFrame | None, control: pd.DataFrame | None, seed: int = 0, *names,
                n_flip: int = CONTROL_PERMUTATIONS, n_boot: int = 2000) -> dict | None:
    """CONTROL_RULE on the units of one (claim, setting): per part (orientation), units present (num not NaN)
    for both, d = num_model - num_control, statistic sum(d) / sum(den_model), one-sided sign-flip p and a
    percentile bootstrap CI over units; over parts the smallest difference and the largest p
    (intersection-union). None when model and control share no unit."""
    if model is None or control is None:
        return None
    parts = []
    for part, m in model.groupby("part", sort=True):
        j = m.merge(control[control["part"] == part], on="unit", suffixes=("_m", "_c"))
        j = j[j["num_m"].notna() & j["num_c"].notna() & (j["den_m"] > 0)]
        if j.empty:
            continue
        d, w = (j["num_m"] - j["num_c"]).to_numpy(float), j["den_m"].to_numpy(float)
        g = rng(seed, "control-sign-flip", *names, part)
        signs = g.choice([-1.0, 1.0], size=(n_flip, len(d)))
        p = (1 + np.sum(signs @ d >= d.sum() - 1e-12)) / (1 + n_flip)
        idx = g.integers(0, len(d), size=(n_boot, len(d)))
        boot = d[idx].sum(1) / w[idx].sum(1)
        parts.append(dict(part=part, diff=d.sum() / w.sum(), lo=float(np.percentile(boot, 2.5)),
                          hi=float(np.percentile(boot, 97.5)), p=float(p), n=len(d)))
    if not parts:
        return None
    worst = min(parts, key=lambda x: x["diff"])
    return dict(worst, p=max(x["p"] for x in parts), n=sum(x["n"] for x in parts))


# ------------------------------------------------------------------ per-unit values for the control gate
def units_frame(claim: int, model: str, setting: str, part, unit, num, den=1.0) -> pd.DataFrame:
    """Rows of UNIT_COLUMNS for one (claim, model, setting)."""
    df = pd.DataFrame({"part": part, "unit": unit, "num": num, "den": den})
    return df.assign(claim=claim, model=model, setting=setting)[UNIT_COLUMNS]


def probe_units(units: pd.DataFrame, probes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Claims 2, 3, 9 from the probes' per-triple counts at the LM input (`probing.probe_setting`'s units):
    ambiguous-token hits / count; the background conflict tokens' fixed-cell hits beyond one half
    (`probing.follow_pairs`; claim 3, else the strip score); on the objects (claim 9) relative minus absolute
    readings / conflict tokens, each beyond its chance level (`probing.conflict_chance`):
    the contrast each claim's own test decides on, so that a control which reads conflict tokens as the relative and the absolute slot alike
    cannot veto a model that tells them apart, nor pass one that does not. With `probes` (the probe table), claim
    3's fixed-cell units are dropped in the (model, setting, orientation) rows whose probe does not read the
    objects (`reads_objects`): there the hits read no code of the objects'."""
    u = units[units["site"] == LM_INPUT]
    if probes is not None and "strip_follow_excess" in u:
        rows = probes[probes["site"] == LM_INPUT]
        blind = rows.loc[~reads_objects(rows), ["model", "setting", "orientation"]].assign(_blind=True)
        u = u.merge(blind, on=["model", "setting", "orientation"], how="left")
        u = u.assign(strip_follow_excess=u["strip_follow_excess"].where(u["_blind"].isna()))
    out = []
    for (model, setting), g in u.groupby(["model", "setting"], sort=False):
        out += [units_frame(2, model, setting, g["orientation"], g["unit"], g["amb_hit"].where(g["amb_n"] > 0),
                            g["amb_n"]),
                (units_frame(3, model, setting, g["orientation"], g["unit"],
                             g["strip_follow_excess"].where(g["strip_follow_n"] > 0), g["strip_follow_n"])
                 if "strip_follow_n" in g and (g["strip_follow_n"] > 0).any()
                 else units_frame(3, model, setting, g["orientation"], g["unit"], g["strip_score"])),
                units_frame(9, model, setting, g["orientation"], g["unit"],
                            g["conf_excess"].where(g["conf_n"] > 0), g["conf_n"])]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=UNIT_COLUMNS)


def ablation_units(clean: pd.DataFrame, ablated: pd.DataFrame) -> pd.DataFrame:
    """Claim 5 per item: own-slot control (clean where not run) correct minus ablated correct."""
    df = clean.merge(ablated, on=["model", "item"])
    ref = (np.where(df["correct_control"].isna(), df["correct"], df["correct_control"]) if "correct_control" in df
           else df["correct"])
    return units_frame(5, df["model"], df["setting"], "all", df["item"],
                       np.asarray(ref, float) - df["correct_ablated"].astype(float)) if len(df) else \
        pd.DataFrame(columns=UNIT_COLUMNS)


def amplification_units(model: str, testbed: str, baseline: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Claim 7 per evaluation item that the model fails with an ordering error (`ordering_failure`; every
    failure where the testbed does not say): fixed by the probe direction at its chosen alpha."""
    b = baseline[(baseline["split"] == "eval") & ~baseline["dropped"]].set_index("item")
    fail = b["ordering_failure"] if "ordering_failure" in b else ~b["correct"].astype(bool)
    items = b.index[fail.astype(bool)]
    sel = outcomes[(outcomes["split"] == "eval") & outcomes["selected"] & (outcomes["direction"] == "probe")]
    fixed = sel.set_index("item")["correct"].reindex(items).eq(True).astype(float)
    return units_frame(7, model, testbed, "all", items, fixed.to_numpy())


def patching_units(ev: "Evidence") -> pd.DataFrame:
    """Claims 1 and 4 per golden pair (pair ids name the same tuple for every model): P(t2) - max(P(t0), P(t3))
    at the model's best site; the strip swap's flip at Embed."""
    out = []
    for (model, setting), sweep in ev.last_token.items():
        df = sweep[sweep["kind"] == "last_token"] if "kind" in sweep else sweep
        if not len(df):
            continue
        wide = df.pivot_table(index="pair", columns=["site_index", "candidate"], values="probability")
        d = pd.DataFrame({k: wide[(k, "t2")] - np.maximum(wide[(k, "t0")], wide[(k, "t3")])
                          for k in sorted(df["site_index"].unique())})
        best = d.mean().idxmax()
        out.append(units_frame(1, model, setting, "all", d.index, d[best].to_numpy()))
    for (model, setting), sweep in ev.criss_cross.items():
        f = sweep[(sweep["candidate"] == "c2") & (sweep["site_index"] == 0) & (sweep["draw"] == 0)
                  & (sweep["kind"] == "strip")]
        if len(f):
            flips = f.groupby("pair")["flipped"].max().astype(float)
            out.append(units_frame(4, model, setting, "all", flips.index, flips.to_numpy()))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=UNIT_COLUMNS)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def summarise(detail: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, model) over its settings (see the module docstring)."""
    out = []
    for (claim, model), g in detail[detail["level"] == "setting"].groupby(["claim", "model"], sort=False):
        tested = g[g["verdict"] != NOT_TESTABLE]
        if tested.empty:
            reasons = "; ".join(dict.fromkeys(f"{r}" for r in g["reason"]))
            row = _row(claim, model, "all", NOT_TESTABLE, reason=reasons, level="model",
                       note=", ".join(g["setting"]) + ": not testable")
        else:
            failing = tested[tested["verdict"] == NOT_SUPPORTED]
            decide = failing.iloc[0] if len(failing) else tested.loc[tested["p"].fillna(np.inf).idxmax()]
            verdict = NOT_SUPPORTED if len(failing) else SUPPORTED
            n_ok = int((tested["verdict"] == SUPPORTED).sum())
            untested = g[g["verdict"] == NOT_TESTABLE]
            note = f"supported in {n_ok} of {len(tested)} tested settings; effect from {decide['setting']}"
            if len(untested):
                note += f"; not testable: {', '.join(untested['setting'])}"
            row = _row(claim, model, "all", verdict, decide["effect"], (decide["ci_low"], decide["ci_high"]),
                       decide["p"], reason=decide["reason"] if len(failing) else "", level="model", note=note)
        out.append(row)
    return pd.DataFrame(out, columns=COLUMNS)


def _p(p: float) -> str:
    if np.isnan(p):
        return "\u2014"
    return "<1e-4" if p < 1e-4 else f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def verdict_text(r) -> str:
    """The verdict with its reason (a table read back from CSV holds NaN where there is none)."""
    reason = r["reason"] if isinstance(r["reason"], str) else ""
    return f"{r['verdict']} ({reason})" if r["verdict"] != SUPPORTED and reason else r["verdict"]


def display(claims: pd.DataFrame, level: str = "model") -> pd.DataFrame:
    """Formatted rows of one level ('model': one row per claim x model; 'setting': every cell; 'all': both, the
    summary row (setting 'all') first)."""
    d = claims if level == "all" else claims[claims["level"] == level]
    return pd.DataFrame({
        "Claim": [f"{c}. {s}" for c, s in zip(d["claim"], d["short"])],
        "Model": d["model"].to_numpy(),
        **({"Setting": d["setting"].to_numpy()} if level != "model" else {}),
        "Effect [95% CI]": ["\u2014" if np.isnan(e) else
                            f"{e:.2f} [{_f(lo)}, {_f(hi)}]" for e, lo, hi in zip(d["effect"], d["ci_low"], d["ci_high"])],
        "p": [_p(p) for p in d["p"]],
        "Verdict": [verdict_text(r) for _, r in d.iterrows()],
    })
