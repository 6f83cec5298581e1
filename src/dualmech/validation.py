"""The validation table: every claim detector run on models whose mechanism is known, against verdicts written
down before running (`config/expected_verdicts.yaml`).

`planted_probes` drives each planted fixture (`dualmech.planted`) through the same stimuli, extraction and
probing code as any checkpoint; `evaluate` runs the claims (`dualmech.claims.evaluate`, each fixture held to
its declared control) and `compare` writes fixture x claim -> expected, observed, agree. `verdicts` then says, per
claim, whether the claims table's verdicts count (`COUNT_RULE`).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from . import claims as cl
from . import probing
from .sites import LM_INPUT
from .stimuli import SETTINGS
from .stimuli.items import relation_items
from .stimuli.shifted import shifted_items

# the least resolution the fixtures' statistics get, whatever a quick run's `probing` settings: with 20
# permutations or 50 bootstrap resamples the permutation / sign-flip p cannot get clearly under alpha, and a
# validation run that cannot reach its expected verdicts validates nothing
FLOOR = dict(permutations=200, bootstrap=200)
MIN_TRIPLES = 24

COLUMNS = ["fixture", "claim", "short", "expected", "observed", "agree", "expected_reason", "observed_reason",
           "effect", "ci_low", "ci_high", "p", "note"]


def load_expected(path: Path | str) -> dict:
    """The expected-verdicts file, checked: every verdict is one of the claims table's three."""
    spec = yaml.safe_load(Path(path).read_text())
    allowed = {cl.SUPPORTED, cl.NOT_SUPPORTED, cl.NOT_TESTABLE}
    for name, f in spec["fixtures"].items():
        for claim, e in f["claims"].items():
            if e["verdict"] not in allowed or int(claim) not in cl.CLAIMS or not e.get("reason"):
                raise ValueError(f"{path}: {name} claim {claim}: need a verdict in {sorted(allowed)} and a reason")
        if f.get("control") and f["control"] not in spec["fixtures"]:
            raise ValueError(f"{path}: {name}: control {f['control']!r} is not a fixture")
    for name, f in spec.get("organisms", {}).items():
        for claim, e in f["claims"].items():
            if e["verdict"] not in allowed or int(claim) not in cl.CLAIMS or not e.get("reason"):
                raise ValueError(f"{path}: organism {name} claim {claim}: need a verdict in {sorted(allowed)} and "
                                 "a reason")
    return spec


# The rules that turn an organism's diagnostics (organism.json) into expected verdicts, before any claim is run.
# C: worst canonical cell; S: worst cell with the image-token order shuffled (what the visual tokens' content
# carries); A: mean accuracy with vision-derived ordering ablated (what the LM alone carries); P: the stage-1
# tower's slot probe on position-ambiguous tokens (two-stage organisms; none for end to end); T: the worst
# (setting, orientation) cell of `organism.strip_transfer` on position-ambiguous background tokens (at the LM
# input, the object tokens' slot code read on background strip tokens whose slot is not their cell's usual one:
# what claim 3's detector reads there, and what a code for the position cannot read). The organisms' truth is
# fixed on the relation settings they were trained on (ORGANISM_SETTINGS); the grids and the App C.8 backgrounds
# were never in training, so their verdicts are not compared.
CLEARLY_ABOVE_CHANCE = 0.5
CARRIES_ORDER = 0.8


def organism_expectations(info: dict) -> dict[int, dict]:
    """{claim: {verdict, reason}} for the claims an organism's diagnostics decide (organism_rules)."""
    d = info["diagnostics"]
    c, s, a = d["canonical"]["min"], d["shuffled"]["min"], d["ablated"]["mean"]
    history = info.get("stage1_history") or []
    p = history[-1]["probe_ambiguous_accuracy"] if history else None
    vision = s >= CARRIES_ORDER and p is not None and p >= cl.NEAR_PERFECT
    transfer = (d.get("strip_transfer") or {}).get("ambiguous")
    t = transfer["min"] if transfer else None
    t_cell = min(transfer["cells"], key=transfer["cells"].get) if transfer else None
    strips = vision and t is not None and t >= CLEARLY_ABOVE_CHANCE
    lm = a >= CLEARLY_ABOVE_CHANCE
    c_mean = d["canonical"]["mean"]
    share = (c_mean - a) / (c_mean - cl.CHANCE) if c_mean > cl.CHANCE else 0.0
    v = {True: cl.SUPPORTED, False: cl.NOT_SUPPORTED}
    return {
        2: dict(verdict=v[vision], reason=f"shuffled-order worst cell {s:.2f} (>= {CARRIES_ORDER} needed), tower slot "
                f"probe {'n/a' if p is None else f'{p:.2f}'} on ambiguous tokens (>= {cl.NEAR_PERFECT} needed)"),
        3: dict(verdict=v[strips],
                reason=("the visual tokens carry no usable order (shuffled-order accuracy near chance)" if not vision
                        else "strip transfer not measured" if t is None else
                        f"at the LM input the object tokens' code reads position-ambiguous background strip tokens "
                        f"at {t:.2f} in the worst cell ({t_cell}; >= {CLEARLY_ABOVE_CHANCE} needed)")),
        5: dict(verdict=v[share >= cl.MOSTLY and lm],
                reason=f"the ablation removes {share:.0%} of the above-chance accuracy (>= {cl.MOSTLY:.0%} needed) and "
                f"leaves {a:.2f} (>= {CLEARLY_ABOVE_CHANCE} needed)"),
        6: dict(verdict=v[lm], reason=f"ablated accuracy {a:.2f}: the LM {'orders' if lm else 'cannot order'} the "
                "entities without vision-derived ordering"),
        8: dict(verdict=v[c >= cl.NEAR_PERFECT], reason=f"worst canonical cell {c:.2f}"),
        9: dict(verdict=v[vision] if vision else cl.NOT_TESTABLE,
                reason="stage 1 trained the relative slot on jittered layouts" if vision
                else "the post-projector probe does not work, so relative vs absolute cannot be judged"),
    }


ORGANISM_SETTINGS = SETTINGS


def compare_organisms(spec: dict, claims: pd.DataFrame) -> pd.DataFrame:
    """organism x claim -> expected, observed (the claims table's summary rule over the ORGANISM_SETTINGS rows),
    agree; organisms the run did not analyse are left out."""
    detail = claims[(claims["level"] == "setting") & claims["setting"].isin(ORGANISM_SETTINGS)]
    summary = cl.summarise(detail)
    summary = summary.set_index(["model", "claim"])
    rows = []
    for name, f in spec.get("organisms", {}).items():
        for claim, e in f["claims"].items():
            if (name, int(claim)) not in summary.index:
                continue
            r = summary.loc[(name, int(claim))]
            rows.append(dict(fixture=name, claim=int(claim), short=cl.CLAIMS[int(claim)].short,
                             expected=e["verdict"], observed=r["verdict"], agree=e["verdict"] == r["verdict"],
                             expected_reason=e["reason"], observed_reason=r["reason"], effect=r["effect"],
                             ci_low=r["ci_low"], ci_high=r["ci_high"], p=r["p"], note=r.get("note", "")))
    return pd.DataFrame(rows, columns=COLUMNS)


def planted_probes(base: str, fixtures: dict, setting: str, probing_cfg: dict, seed: int, work_dir: Path | str,
                   triples: int | None = None, log=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe metrics (site lm_input) of every planted fixture on `setting`'s canonical and shifted stimuli, one
    block of rows per fixture (`model` = fixture name), and their per-triple units (`probing.probe_setting`);
    `triples`: only the first that many ordered triples. A fixture's optional `strength` and `background` set its
    code's norm (`planted.planted`)."""
    from . import extraction, planted              # the model side (torch); the comparisons below need neither
    from .models import ModelSpec, load
    work = Path(work_dir)
    probing_cfg = probing_cfg | {k: max(int(probing_cfg[k]), v) for k, v in FLOOR.items()}
    if triples is not None and triples < MIN_TRIPLES:
        raise ValueError(f"validation needs at least {MIN_TRIPLES} triples (the held-out units of its tests), "
                         f"got {triples}")
    adapter = load(ModelSpec(name="planted-base", path=base))
    geometry = adapter.geometry
    sets = {"canonical": relation_items(setting, geometry, adapter.palette, work / "canonical")}
    if probing_cfg["shifts"]:
        sets["shifted"] = shifted_items(setting, geometry, adapter.palette, work / "shifted", probing_cfg["shifts"])
    if triples is not None:
        sets = {k: t[t["triple"] < triples].reset_index(drop=True) for k, t in sets.items()}
    out, units = [], []
    for name, f in fixtures.items():
        code = planted.planted(adapter, f["code"], seed, f.get("strength", planted.STRENGTH),
                               f.get("background", 1.0))
        try:
            stores = {}
            for key, table in sets.items():
                store = extraction.ActivationStore(work / "activations" / name / key)
                images = table.drop_duplicates("image")[["image", "image_sha256"]].reset_index(drop=True)
                if len(images):
                    extraction.extract(adapter, images, work / key, store, [LM_INPUT],
                                       desc=f"{name} {key}")
                stores[key] = (table, store)
        finally:
            code.remove()
        table, store = stores["canonical"]
        canonical = {o: (table, store) for o in dict.fromkeys(table["orientation"])}
        shifted = {}
        if "shifted" in stores and len(stores["shifted"][0]):
            s_table, s_store = stores["shifted"]
            shifted = {o: (s_table, s_store) for o in dict.fromkeys(s_table["orientation"]) if o in canonical}
        metrics, _, per_unit = probing.probe_setting(setting, geometry, canonical, shifted, probing_cfg, seed, log)
        metrics.insert(0, "model", name)
        out.append(metrics)
        units.append(per_unit.assign(model=name))
    return pd.concat(out, ignore_index=True), pd.concat(units, ignore_index=True)


def evaluate(spec: dict, probes: pd.DataFrame, min_pairs: int, seed: int,
             units: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claims table of the fixtures, each held to its declared control (a paired test over the same held-out
    triples, from `units`: `planted_probes`' per-triple counts)."""
    names = list(spec["fixtures"])
    controls = {n: f["control"] for n, f in spec["fixtures"].items() if f.get("control")}
    ev = cl.Evidence(probes=probes, units=None if units is None else cl.probe_units(units, probes))
    return cl.evaluate(ev, names, [spec["setting"]], min_pairs, seed, twins=controls)


def compare(spec: dict, claims: pd.DataFrame) -> pd.DataFrame:
    """fixture x claim -> expected, observed (the summary verdict), agree, with both reasons."""
    summary = claims[claims["level"] == "model"].set_index(["model", "claim"])
    rows = []
    for name, f in spec["fixtures"].items():
        for claim, e in f["claims"].items():
            r = summary.loc[(name, int(claim))]
            detail = claims[(claims["level"] == "setting") & (claims["model"] == name)
                            & (claims["claim"] == int(claim))]
            rows.append(dict(fixture=name, claim=int(claim), short=cl.CLAIMS[int(claim)].short,
                             expected=e["verdict"], observed=r["verdict"], agree=e["verdict"] == r["verdict"],
                             expected_reason=e["reason"], observed_reason=r["reason"], effect=r["effect"],
                             ci_low=r["ci_low"], ci_high=r["ci_high"], p=r["p"],
                             note="; ".join(detail["note"])))
    return pd.DataFrame(rows, columns=COLUMNS)


def display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "Fixture": table["fixture"], "Claim": [f"{c}. {s}" for c, s in zip(table["claim"], table["short"])],
        "Expected": table["expected"], "Observed": [f"{v} ({r})" if r else v for v, r in
                                                   zip(table["observed"], table["observed_reason"])],
        "Effect [95% CI]": ["\u2014" if pd.isna(e) else f"{e:.2f} [{lo:.2f}, {hi:.2f}]"
                            for e, lo, hi in zip(table["effect"], table["ci_low"], table["ci_high"])],
        "Agree": ["yes" if a else "NO" for a in table["agree"]],
        "Why expected": table["expected_reason"]})


# When a verdict of the claims table counts: stated once, quoted by the verdicts table, the README and the manuscript.
COUNT_RULE = ("a claim's verdict on a model counts only if the same detector gave every model whose mechanism is "
              "known (the planted fixtures and the model organisms of the validation tables) its expected verdict "
              "on that claim, and at least one such model speaks to the claim; otherwise the verdict stands in "
              "the claims table but does not count")


def detector_status(known: pd.DataFrame) -> pd.DataFrame:
    """claim -> whether its detector's verdicts count (`COUNT_RULE`) and why, from the validation rows of every model
    whose mechanism is known (`compare` / `compare_organisms` tables, concatenated)."""
    rows = []
    for claim, c in cl.CLAIMS.items():
        k = known[known["claim"] == claim]
        right = k["agree"].astype(bool)
        if k.empty:
            why = f"no known answer: no planted fixture or model organism speaks to claim {claim}"
        elif not right.all():
            wrong = "; ".join(f"{r.fixture} (expected {r.expected}, observed {r.observed})"
                              for r in k[~right].itertuples())
            why = f"wrong on {wrong}; right on {int(right.sum())} of {len(k)}"
        else:
            kinds = k["expected"].value_counts()
            why = (f"right on all {len(k)} known answers ("
                   + ", ".join(f"{n} {v}" for v, n in kinds.items()) + ")")
        rows.append(dict(claim=claim, short=c.short, known=len(k), right=int(right.sum()),
                         counts=bool(len(k)) and bool(right.all()), detector=why))
    return pd.DataFrame(rows)


def verdicts(claims: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """Each model's summary verdict per claim (the claims table's `model` rows) with whether it counts and why
    (`status`: `detector_status`)."""
    summary = claims[claims["level"] == "model"][["claim", "model", "verdict", "reason", "effect", "ci_low",
                                                  "ci_high", "p"]]
    return summary.merge(status, on="claim", how="left")[
        ["claim", "short", "model", "verdict", "reason", "effect", "ci_low", "ci_high", "p", "counts", "known",
         "right", "detector"]]


def verdicts_display(table: pd.DataFrame) -> pd.DataFrame:
    """Claims x models (each verdict), with whether the claim's verdicts count and why."""
    first = table.drop_duplicates("claim").set_index("claim")
    wide = table.pivot(index="claim", columns="model", values="verdict")
    wide = wide.reindex(columns=list(dict.fromkeys(table["model"])))
    return pd.DataFrame({
        "Claim": [f"{c}. {first.loc[c, 'short']}" for c in wide.index],
        **{m: wide[m].fillna("\u2014").to_numpy() for m in wide.columns},
        "Counts": ["yes" if first.loc[c, "counts"] else "NO" for c in wide.index],
        "Detector on known mechanisms": [first.loc[c, "detector"] for c in wide.index]})
