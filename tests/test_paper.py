"""The regenerated paper: published values, comparison flags, generated files, and no hand-typed numbers."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dualmech import claims as cl
from dualmech import paper

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = paper.load_published(REPO / "config/published.yaml")
MANUSCRIPT = [REPO / "paper/main.tex", *sorted((REPO / "paper/sections").glob("*.tex"))]


def test_published_values_cover_both_versions_and_the_paper_models():
    paper_models = {m["name"] for m in yaml.safe_load((REPO / "config/paper.yaml").read_text())["models"]}
    for key in ("table1", "table5", "probes", "table4"):
        for version in ("v1", "v2"):
            assert set(PUBLISHED[key][version]) <= paper_models, (key, version)
    assert PUBLISHED["table5"]["v1"]["gemma3-4b"]["squares"] == 0.64       # v1: partial-grid ablation
    assert PUBLISHED["table5"]["v2"]["gemma3-4b"]["squares"] == 0.57
    assert PUBLISHED["table1"]["v2"]["qwen2vl-7b"]["whatsup"] == 0.73       # shared via a YAML merge
    assert PUBLISHED["table2"]["v2"]["qwen2vl-2b"]["probe"]["fix_rate"] == 0.545
    assert PUBLISHED["table4"]["v2"]["gemma3-4b"]["px_per_token"] == 56
    assert set(PUBLISHED["table2"]["v2"]) <= paper_models


def _table1(model: str, acc: float, lo: float, hi: float) -> pd.DataFrame:
    return pd.DataFrame([dict(model=model, setting=s, direction="all", n=480, correct=int(acc * 480), accuracy=acc,
                              ci_low=lo, ci_high=hi) for s in ("squares", "shapes", "objects")])


def test_published_vs_regenerated_flags_values_outside_our_ci():
    t1 = pd.concat([_table1("qwen2vl-7b", 0.99, 0.98, 1.0), _table1("organism", 1.0, 0.99, 1.0)])
    t1.loc[(t1["model"] == "qwen2vl-7b") & (t1["setting"] == "shapes"), ["accuracy", "ci_low", "ci_high"]] = [0.9, 0.87,
                                                                                                               0.93]
    geometry = {"qwen2vl-7b": dict(grid=12, px_per_token=28, object_tokens=2, gap_tokens=2, strip_width=3)}
    df = paper.published_vs_regenerated(PUBLISHED, "v2", ["organism", "qwen2vl-7b"], table1=t1, geometry=geometry)
    org = df[df["model"] == "organism"]
    assert len(org) == 1 and org["status"].iloc[0] == "no published counterpart"
    q = df[(df["model"] == "qwen2vl-7b") & (df["table"] == "Table 1")].set_index("item")
    assert q.loc["squares", "outside_ci"] == False                       # noqa: E712 - 1.00 in [0.98, 1.0]
    assert q.loc["shapes", "outside_ci"] == True                         # noqa: E712 - 1.00 outside [0.87, 0.93]
    assert q.loc["whatsup", "status"] == "not run"
    geo = df[df["table"] == "Table 4"].set_index("quantity")["status"]
    assert geo["grid"] == "matches" and geo["strip_width"] == "differs"
    assert (df[(df["model"] == "qwen2vl-7b") & (df["table"] == "Table 5")]["status"] == "not run").all()
    shown = paper.comparison_display(df)
    assert (shown["Flag"] == "OUTSIDE CI").sum() == 1


def _generate(tmp_path: Path) -> dict[str, str]:
    models = ["organism", "organism-untrained"]
    t1 = pd.concat([_table1("organism", 0.99, 0.98, 1.0), _table1("organism-untrained", 0.34, 0.30, 0.38)])
    claims = cl.evaluate(cl.Evidence(table1=t1), models, ["squares"], min_pairs=10)
    comparison = paper.published_vs_regenerated(PUBLISHED, "v2", models, table1=t1)
    figs = [str(tmp_path / "figures" / f) for f in ("fig1_stimuli.pdf", "table1_accuracy.pdf",
                                                     "fig3_organism_squares.pdf", "fig7_organism-untrained_squares.pdf",
                                                     "fig_amplification_organism.pdf", "something_else.pdf")]
    tex = {"table1": "\\begin{tabular}{ll}\n\\toprule\nA & α \\\\\n\\bottomrule\n\\end{tabular}\n"}
    return paper.generate(tmp_path / "paper/generated", models=models, settings=["squares"], directions=["left"],
                          version="v2", published=PUBLISHED, claims=claims, comparison=comparison,
                          tables={"table1": t1}, tex=tex, figures=figs, organisms=models,
                          patching=dict(pairs_per_direction=200, min_pairs=10), amplification=dict(n_random=20),
                          paper_dir=tmp_path / "paper")


def test_generated_files_define_every_macro_the_manuscript_uses(tmp_path):
    files = _generate(tmp_path)
    defined = set(re.findall(r"\\newcommand\{\\([A-Za-z]+)\}", files["macros.tex"]))
    used = set()
    for f in MANUSCRIPT:
        used |= set(re.findall(r"\\([A-Z][A-Za-z]*)", f.read_text()))
    assert used <= defined, f"undefined in generated/macros.tex: {sorted(used - defined)}"
    inputs = {m for f in MANUSCRIPT for m in re.findall(r"\\input\{generated/([^}]+)\}", f.read_text())}
    assert {f"{i}.tex" for i in inputs} <= set(files), sorted({f"{i}.tex" for i in inputs} - set(files))
    assert (tmp_path / "paper/generated/macros.tex").read_text() == files["macros.tex"]
    assert "\\textsf{organism}" in files["macros.tex"]                  # names the model actually run
    assert "$\\alpha$" in files["tab_table1.tex"]                        # unicode made safe for pdflatex


def test_figures_go_to_their_sections(tmp_path):
    files = _generate(tmp_path)
    assert "../figures/fig3_organism_squares.pdf" in files["figs_last_token.tex"]          # main text
    assert "fig7_organism-untrained_squares.pdf" in files["figs_criss_cross_appendix.tex"]  # other models: appendix
    assert "fig_amplification_organism.pdf" in files["figs_amplification.tex"]
    assert "something_else.pdf" in files["figs_other_appendix.tex"]
    assert "No figure" in files["figs_ablation.tex"]


def _strip_allowed(text: str) -> str:
    """Remove what may carry digits without stating a number: comments, references, file inputs, package
    options, graphics options and LaTeX lengths."""
    text = re.sub(r"(?<!\\)%.*", "", text)
    text = re.sub(r"\\(?:ref|eqref|pageref|autoref|cref|label|input|include|includegraphics|usepackage|"
                  r"documentclass|graphicspath|cite)\*?(?:\[[^\]]*\])?\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*=[^\]]*\]", "", text)                                       # key=value options
    text = re.sub(r"-?\d*\.?\d+\s*(?:pt|cm|mm|in|em|ex|bp|pc|sp)\b", "", text)           # lengths
    text = re.sub(r"-?\d*\.?\d+\\(?:linewidth|textwidth|textheight|columnwidth)", "", text)
    return text


@pytest.mark.parametrize("path", MANUSCRIPT, ids=lambda p: p.name)
def test_no_hand_typed_numbers_in_the_manuscript(path):
    text = _strip_allowed(path.read_text())
    lines = [f"{i}: {line.strip()}" for i, line in enumerate(text.splitlines(), 1) if re.search(r"\d", line)]
    assert not lines, f"{path.name} states numbers that the pipeline did not produce:\n" + "\n".join(lines)


def test_the_digit_scan_catches_a_typed_number():
    assert re.search(r"\d", _strip_allowed("accuracy was 0.98 (Table~\\ref{tab:x})"))
    assert not re.search(r"\d", _strip_allowed("\\includegraphics[width=0.5\\linewidth]{fig3.pdf} % 12\n"
                                               "\\usepackage[T1]{fontenc}\\vspace{2ex}"))


def test_macro_names_are_letters_only():
    with pytest.raises(ValueError):
        paper.macro_file({"Table1": "x"})
    assert paper.macro_file({"A": "1"}).strip().endswith("\\newcommand{\\A}{1}")


def test_claim_sentences_carry_verdicts():
    rows = [cl._row(8, "m", "all", cl.SUPPORTED, 0.99, (0.98, 1.0), 1e-9, level="model", note="n"),
            cl._row(8, "u", "all", cl.NOT_TESTABLE, reason=cl.NOT_RUN, level="model")]
    s = paper.claim_sentence(pd.DataFrame(rows, columns=cl.COLUMNS), 8)
    assert "\\textbf{supported}" in s and "0.99 [0.98, 1.00]" in s and "not testable (not run)" in s
    assert np.isnan(pd.DataFrame(rows)["effect"].iloc[1])
