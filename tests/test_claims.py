"""Claims logic on small hand-made tables: a supported, a not-supported and a not-testable case per evidence."""
import numpy as np
import pandas as pd
import pytest

from dualmech import claims as cl


def table1(acc_by_model: dict[str, float], n: int = 480) -> pd.DataFrame:
    from dualmech.stats import wilson
    rows = []
    for m, a in acc_by_model.items():
        k = round(a * n)
        lo, hi = wilson(k, n)
        rows.append(dict(model=m, setting="squares", direction="all", n=n, correct=k, accuracy=k / n, ci_low=lo,
                         ci_high=hi))
    return pd.DataFrame(rows)


def test_claim8_verdicts():
    t1 = table1({"good": 0.99, "chance": 0.34})
    good = cl.claim8("good", "squares", t1)
    assert good["verdict"] == cl.SUPPORTED and good["p"] < 1e-10
    assert good["ci_low"] <= good["effect"] <= good["ci_high"]
    assert cl.claim8("chance", "squares", t1)["verdict"] == cl.NOT_SUPPORTED
    missing = cl.claim8("good", "squares", None)
    assert missing["verdict"] == cl.NOT_TESTABLE and missing["reason"] == cl.NOT_RUN


def table5(clean: float, ablated: float, mcnemar_p: float, n: int = 480) -> pd.DataFrame:
    from dualmech.stats import wilson
    lo, hi = wilson(round(ablated * n), n)
    return pd.DataFrame([dict(model="m", setting="squares", direction="all", n=n, accuracy_clean=clean,
                              accuracy_ablated=ablated, ci_low=lo, ci_high=hi, chance=1 / 3, drop=clean - ablated,
                              mcnemar_p=mcnemar_p, above_chance=lo > 1 / 3)])


def test_claim5_drop_above_chance():
    assert cl.claim5("m", "squares", table5(1.0, 0.6, 1e-30))["verdict"] == cl.SUPPORTED
    # at chance after the ablation: the conjunction fails and p is the larger of the two tests'
    r = cl.claim5("m", "squares", table5(1.0, 0.33, 1e-30))
    assert r["verdict"] == cl.NOT_SUPPORTED and r["p"] > 0.05
    # a significant but small drop is not "a lot": 1.00 -> 0.95 removes 8% of the above-chance accuracy
    small = cl.claim5("m", "squares", table5(1.0, 0.95, 1e-7))
    assert small["verdict"] == cl.NOT_SUPPORTED and "8% of the above-chance accuracy" in small["note"]
    # a model at chance has no ordering to remove
    assert cl.claim5("m", "squares", table5(0.33, 0.33, 1.0))["verdict"] == cl.NOT_TESTABLE


def flip_stats(strip_embed: float, object_embed: float, n: int = 100, testable: bool = True,
               sig_strip=(True, False, False), sig_object=(False, False, False)) -> pd.DataFrame:
    rows = []
    for kind, rate0, sig in (("strip", strip_embed, sig_strip), ("object", object_embed, sig_object)):
        for k, label in enumerate(["Embed", "0", "1"]):
            rate = rate0 if k == 0 else 0.1
            rows.append(dict(model="m", setting="squares", kind=kind, direction="all", site=label, site_index=k,
                             site_label=label, n_pairs=n, testable=testable, flip_rate=rate,
                             flip_ci_low=max(rate - 0.1, 0), flip_ci_high=min(rate + 0.1, 1), null_flip_rate=0.05,
                             p_flip_holm=1e-6 if sig[k] else 0.5, significant=sig[k]))
    return pd.DataFrame(rows)


def flip_sweep(strip_flips: np.ndarray, object_flips: np.ndarray) -> pd.DataFrame:
    rows = []
    for kind, flips in (("strip", strip_flips), ("object", object_flips)):
        for pair, f in enumerate(flips):
            rows.append(dict(kind=kind, draw=0, direction="left", pair=pair, site_index=0, candidate="c2",
                             flipped=bool(f)))
    return pd.DataFrame(rows)


def test_claim4_strip_vs_object():
    n = 100
    strip, obj = np.arange(n) < 90, np.arange(n) < 5
    ok = cl.claim4("m", "squares", flip_stats(0.9, 0.05), flip_sweep(strip, obj))
    assert ok["verdict"] == cl.SUPPORTED and ok["effect"] == pytest.approx(0.9)
    # the object swap flips as often as the strip swap: not supported
    same = cl.claim4("m", "squares", flip_stats(0.9, 0.9, sig_object=(True, False, False)), flip_sweep(strip, strip))
    assert same["verdict"] == cl.NOT_SUPPORTED
    few = cl.claim4("m", "squares", flip_stats(0.9, 0.05, n=3, testable=False), None)
    assert few["verdict"] == cl.NOT_TESTABLE and "few" in few["reason"]


def test_claim6_missing_input_is_not_run():
    r = cl.claim6("m", "squares", None)
    assert r["verdict"] == cl.NOT_TESTABLE and r["reason"] == cl.NOT_RUN
    # flips at an LM layer, not at Embed: the LM's backup ordering
    backup = flip_stats(0.05, 0.05, sig_object=(False, True, False))
    assert cl.claim6("m", "squares", backup)["verdict"] == cl.SUPPORTED
    assert cl.claim6("m", "squares", flip_stats(0.05, 0.05))["verdict"] == cl.NOT_SUPPORTED


def last_token_sweep(ordinal: bool, n: int = 40, seed: int = 0) -> pd.DataFrame:
    """Three sites: clean answer on top, then t2 (if `ordinal`) or t0, then t3."""
    g = np.random.default_rng(seed)
    top = ["t0", "t2" if ordinal else "t0", "t3"]
    rows = []
    for pair in range(n):
        for k, best in enumerate(top):
            for c in ("t0", "t1", "t2", "t3", "t4"):
                p = (0.7 if c == best else 0.05) + g.uniform(0, 0.02)
                rows.append(dict(kind="last_token", direction="left", pair=pair, site_index=k,
                                 site_label=["Embed", "0", "1"][k], candidate=c, probability=p))
    return pd.DataFrame(rows)


def test_claim1_ordinal_then_attribute():
    yes = cl.claim1("m", "squares", last_token_sweep(True), min_pairs=10)
    assert yes["verdict"] == cl.SUPPORTED and yes["effect"] > 0.5 and yes["p"] < 0.05
    no = cl.claim1("m", "squares", last_token_sweep(False), min_pairs=10)
    assert no["verdict"] == cl.NOT_SUPPORTED
    few = cl.claim1("m", "squares", last_token_sweep(True, n=3), min_pairs=10)
    assert few["verdict"] == cl.NOT_TESTABLE


def probes(acc: float, sel_p: float, strip: float, strip_p: float, rel=np.nan, absrel_p=np.nan) -> pd.DataFrame:
    return pd.DataFrame([dict(model="m", setting="squares", orientation=o, site="lm_input", depth=0, acc=acc,
                              acc_lo=acc - 0.02, acc_hi=min(acc + 0.02, 1), pos_acc=1.0, selectivity=acc - 0.4,
                              selectivity_p=sel_p, strip_score=strip, strip_lo=strip - 0.05, strip_hi=strip + 0.05,
                              strip_p=strip_p, strip_p_holm=strip_p, follow_relative=rel, follow_absolute=1 - rel,
                              absrel_p=absrel_p, ambiguous_acc=np.nan, note="")
                         for o in ("horizontal", "vertical")])


def test_probe_claims():
    good = probes(1.0, 0.001, 0.6, 0.001, rel=0.9, absrel_p=0.001)
    assert [cl.claim2("m", "squares", good)["verdict"], cl.claim3("m", "squares", good)["verdict"],
            cl.claim9("m", "squares", good)["verdict"]] == [cl.SUPPORTED] * 3
    weak = probes(0.6, 0.001, -0.1, 0.9, rel=0.2, absrel_p=0.001)
    assert [cl.claim2("m", "squares", weak)["verdict"], cl.claim3("m", "squares", weak)["verdict"],
            cl.claim9("m", "squares", weak)["verdict"]] == [cl.NOT_SUPPORTED] * 3
    assert cl.claim9("m", "squares", probes(1.0, 0.001, 0.6, 0.001))["verdict"] == cl.NOT_TESTABLE
    assert cl.claim2("m", "squares", None)["reason"] == cl.NOT_RUN


def test_claim7_amplification():
    def t2(fix, rand_fix, p_null, n_fail=50):
        base = dict(model="m", testbed="synthetic", n=200, n_fail=n_fail)
        return pd.DataFrame([
            dict(base, row="none", accuracy=0.75, fix_rate=np.nan, breaks=0),
            dict(base, row="random", accuracy=0.76, fix_rate=rand_fix, breaks=1.0),
            dict(base, row="probe", accuracy=0.75 + fix * n_fail / 200, fix_rate=fix, fix_low=fix - 0.1,
                 fix_high=fix + 0.1, breaks=0, p_null=p_null, p_vs_none=1e-6)])
    assert cl.claim7("m", "synthetic", t2(0.5, 0.05, 1 / 21))["verdict"] == cl.SUPPORTED
    assert cl.claim7("m", "synthetic", t2(0.05, 0.05, 0.6))["verdict"] == cl.NOT_SUPPORTED
    assert cl.claim7("m", "synthetic", t2(0.0, 0.0, 1.0, n_fail=0))["verdict"] == cl.NOT_TESTABLE


def test_evaluate_summarises_per_model():
    ev = cl.Evidence(table1=table1({"good": 0.99, "chance": 0.34}))
    out = cl.evaluate(ev, ["good", "chance"], ["squares"], min_pairs=10, twins={"good": "chance"})
    summary = out[out["level"] == "model"]
    assert sorted(summary["claim"].unique()) == list(range(1, 10))
    assert len(summary) == 9 * 2                                  # one row per claim x model
    v = summary.set_index(["claim", "model"])["verdict"]
    assert v[8, "good"] == cl.SUPPORTED and v[8, "chance"] == cl.NOT_SUPPORTED
    assert v[6, "good"] == cl.NOT_TESTABLE                        # Fig 9 inputs absent: not run, no error
    notes = summary.set_index(["claim", "model"])["note"]
    assert "untrained twin chance: not supported" in notes[8, "good"]
    assert set(out["verdict"]) <= {cl.SUPPORTED, cl.NOT_SUPPORTED, cl.NOT_TESTABLE}
    shown = cl.display(out)
    assert list(shown.columns) == ["Claim", "Model", "Effect [95% CI]", "p", "Verdict"]
    assert (shown["Verdict"].str.startswith("not testable (not run")).any()


def test_summary_keeps_the_failing_setting():
    rows = [cl._row(8, "m", "squares", cl.SUPPORTED, 0.99, (0.98, 1.0), 1e-9),
            cl._row(8, "m", "shapes", cl.NOT_SUPPORTED, 0.5, (0.45, 0.55), 1e-5),
            cl.not_testable(8, "m", "objects", cl.NOT_RUN)]
    s = cl.summarise(pd.DataFrame(rows, columns=cl.COLUMNS)).iloc[0]
    assert s["verdict"] == cl.NOT_SUPPORTED and s["effect"] == 0.5
    assert "1 of 2" in s["note"] and "objects" in s["note"]
