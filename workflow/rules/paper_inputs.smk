# Inputs of the paper stage (paper.smk) and the named targets (targets.smk): what the configured workflow
# produces, so that a rule never asks for a file that no rule of this configuration writes.
import shutil

PAPER_SOURCES = Path(workflow.basedir) / "paper"
PUBLISHED = str(Path(workflow.basedir) / "config" / "published.yaml")
LATEXMK = shutil.which("latexmk")


def paper_targets():
    return [
        expand("results/tables/{name}.{ext}", name=["claims", "published_vs_regenerated"], ext=["csv", "md", "tex"]),
        "paper/generated",
        ["paper/main.pdf"] if LATEXMK else [],
    ]


def _flat(x):
    if isinstance(x, (list, tuple)):
        return [f for item in x for f in _flat(item)]
    return [str(x)]


def _final_targets():
    """The configured workflow's final targets (all_targets()), less the paper's own outputs."""
    own = {"claims", "published_vs_regenerated"}
    return [f for f in _flat(all_targets()) if not f.startswith("paper/") and Path(f).name.split(".")[0] not in own]


def _produced(path):
    """Some rule of this workflow writes `path`."""
    return any(r.is_producer(path) for r in workflow.rules)


def _cell_files(pattern, cells=ABLATION_CELLS):
    files = cell_files(pattern, cells)
    return files if files and all(_produced(f) for f in files) else []


# (model, setting) cells of each per-cell input of the claims rule: the patching sweeps also cover What'sUp
# (both designs) and the App C.8 background settings (criss-cross only); the ordering ablation (ABLATION_CELLS,
# the default of _cell_files: the clean predictions it is compared with too) the synthetic ones
CLAIM_CELLS = dict(
    last_token=LAST_TOKEN_CELLS,
    criss_cross=CRISS_CROSS_CELLS,
    criss_cross_stats=CRISS_CROSS_CELLS,
    ablated_stats=ABLATION_CELLS,
)


def _tables_input(wildcards):
    """Result tables the configured workflow produces (a table it does not produce is left out)."""
    targets = set(_final_targets())
    names = dict(
        table1="table1",
        table5="table5",
        table2="table2",
        probes="probes",
        patching_summary="patching_summary",
        backup_layers="backup_layers",
        validation="validation",
    )
    return {k: f"results/tables/{v}.csv" for k, v in names.items() if f"results/tables/{v}.csv" in targets}


def _claims_input(wildcards):
    """The result tables, and the per-item files the control gate pairs a model with its control on."""
    inputs = _tables_input(wildcards) | {"code": VERDICT_CODE}
    if "probes" in inputs:
        inputs["probe_units"] = [
            f"results/probes/{m}/{s}_units.parquet" for m in MODELS for s in SETTINGS + GRIDS + WHATSUP
        ]
    if "table5" in inputs:
        inputs |= dict(
            clean=_cell_files("results/behaviour/{model}/{setting}.parquet"),
            ablated=_cell_files("results/ablation/{model}/{setting}/predictions.parquet"),
        )
    if "table2" in inputs:
        inputs |= dict(amp_baseline=_amp_files("baseline.parquet"), amp_outcomes=_amp_files("outcomes.parquet"))
    if "patching_summary" in inputs:
        inputs |= {
            name: _cell_files(f"results/patching/{{model}}/{{setting}}/{name}.parquet", CLAIM_CELLS[name])
            for name in ("last_token", "criss_cross", "criss_cross_stats")
        }
    if any(f.startswith("figures/fig9_") for f in _final_targets()):
        inputs["ablated_stats"] = _cell_files("results/ablation/{model}/{setting}/criss_cross_stats.parquet")
    return inputs


def _paper_figures():
    return [f for f in _final_targets() if f.startswith("figures/") and f.endswith(".pdf")]


def _named(*prefixes):
    """Final targets whose path starts with one of `prefixes` (the named targets of targets.smk)."""
    return [f for f in _flat(all_targets()) if f.startswith(prefixes)]
