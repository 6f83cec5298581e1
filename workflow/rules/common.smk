# Config validation, wildcard constraints and target lists shared by every rule file.
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from dualmech.config import BUILT_MODELS, ConfigError, controls, validate
from dualmech.resources import model_mem_mb as _model_mem_mb

# Checkpoints are checked (family, vision-language, forced family) once, by the main process, before any job;
# YAML syntax errors in config.yaml are located in the Snakefile, those of --configfile overlays by Snakemake.
CONFIG_FILES = ["config.yaml"] + [
    str(Path(f).relative_to(Path.cwd()) if Path(f).is_relative_to(Path.cwd()) else f)
    for f in workflow.overwrite_configfiles
]
try:
    _validated = validate(config, Path.cwd(), "config.yaml", CONFIG_FILES[1:], check_models=workflow.is_main_process)
except ConfigError as e:
    raise WorkflowError(str(e)) from None
config.clear()
config.update(_validated)

MODELS = [m["name"] for m in config["models"]]
SETTINGS = config["settings"]
GRIDS = [f"grid{k}" for k in config["grids"]]
ENV = "../../envs/dualmech.yaml"
# The figure code is an input of every figure-drawing rule, so editing a figure (a colour in plots/style.py)
# reruns the figure and table rules that use it, never a model job.
PLOT_CODE = sorted(str(p) for p in (Path(workflow.basedir) / "src/dualmech/plots").glob("*.py"))
# The verdict code is an input of the rules that decide claims, so a changed rule (a threshold, a test) always
# regenerates the claims and validation tables: a stale verdict is never kept.
VERDICT_CODE = [str(Path(workflow.basedir) / f"src/dualmech/{m}.py") for m in ("claims", "stats", "validation")]
# Likewise the probes' statistics (claims 2, 3 and 9 read them; no model runs in the probes rule).
PROBE_CODE = str(Path(workflow.basedir) / "src/dualmech/probing.py")


# What'sUp composites join Table 1, Figs 3/6/7 and the App C.7 probes only when data.whatsup_dir names the photos
# (paper §3.5, §5.1-§5.4).
WHATSUP = ["whatsup"] if config["data"]["whatsup_dir"] else []
# table -> setting -> why this run has no value for it (Table 1's caption, the published-vs-regenerated notes)
SKIPPED = {
    "Table 1": {} if WHATSUP else {"whatsup": "not run: data.whatsup_dir is not set"},
    "Probes": {} if WHATSUP else {"whatsup": "not run: data.whatsup_dir is not set"},
}
if not WHATSUP:
    from snakemake.logging import logger

    logger.info(
        "data.whatsup_dir is not set: What'sUp is skipped in Table 1, Figs 3, 6, 7 (App C.1, C.3) and the "
        "App C.7 probes (Fig 4, probe table); only the synthetic settings run"
    )


# App C.8: the canonical layouts on photo-like backgrounds, settings <setting>_bg (probes + criss-cross swaps).
from dualmech.stimuli.backgrounds import background_settings

BACKGROUNDS = background_settings(config["backgrounds"]["settings"])
if not BACKGROUNDS:
    from snakemake.logging import logger

    logger.info(
        "backgrounds.settings is empty: the realistic-background control (App C.8) is skipped in Figs 4, 6, 7, the "
        "probe table, the patching summary and the claims table"
    )


wildcard_constraints:
    model="|".join(map(re.escape, MODELS)),
    setting="|".join(SETTINGS + GRIDS + WHATSUP + BACKGROUNDS),


# Cluster runs: rules that only read tables and write figures/tables (seconds each) run where snakemake runs.
localrules:
    fig1_stimuli,
    fig1_default,
    table1,
    fig4,
    probe_depth,
    probe_table,
    fig3,
    fig6,
    fig7,
    fig9,
    patching_summary,
    table5,
    backup_layers,
    table2,
    fig_amplification,
    claims,
    verdicts,
    published_vs_regenerated,
    paper,
    download_coco,
    download_whatsup,


flag_for_report = report  # (in a function body, a line that starts with `report` is read as the directive)


def one_of(names):
    """A wildcard constraint matching exactly `names`; one that never matches when there are none (Snakemake reads
    an empty constraint as no constraint)."""
    return "|".join(map(re.escape, names)) or "(?!)"


def cell_files(pattern, cells):
    """`pattern` filled in for every (model, setting) cell."""
    return [pattern.format(model=m, setting=s) for m, s in cells]


def cell_figures(pattern, cells, caption, category, subcategory):
    """The figure of every (model, setting) cell, flagged for the report with the cell as its labels: the outputs
    of a figure rule that draws one paper figure for every cell in one job."""
    return [
        flag_for_report(
            pattern.format(model=m, setting=s),
            caption=caption,
            category=category,
            subcategory=subcategory.format(model=m, setting=s),
            labels={"model": m, "setting": s},
        )
        for m, s in cells
    ]


def stage1_input(wildcards):
    """A two-stage organism's stage-2 training reads the stage-1 vision tower (workflow/rules/organism.smk)."""
    two_stage = config["organism"]["variants"][wildcards.organism]["recipe"] == "two-stage"
    return {"stage1": "results/models/organism-stage1"} if two_stage else {}


def model_entry(name):
    return next(m for m in config["models"] if m["name"] == name)


def model_mem_mb(wildcards, attempt):
    """Memory of a job that loads the model: 4 GB + 1.25x its weights in the configured dtype, x attempt."""
    return _model_mem_mb(model_entry(wildcards.model), attempt)


# Files of a checkpoint directory that describe it without defining it: an organism's training record and
# diagnostics (read by `organisms_table`, which takes the whole directory).
CHECKPOINT_METADATA = {"organism.json", "README.md"}


def model_input(wildcards):
    """What defines the model: the checkpoint directory when the pipeline builds it (so Snakemake builds it
    first); for a checkpoint on disk, its files less CHECKPOINT_METADATA, so that a new diagnostic in an
    organism's `organism.json` reruns no model job; nothing for a Hugging Face id in the local cache."""
    path = model_entry(wildcards.model)["path"]
    if path.startswith(f"{BUILT_MODELS}/"):
        return path
    p = Path(path)
    if p.is_dir():
        return sorted(str(f) for f in p.iterdir() if f.name not in CHECKPOINT_METADATA)
    return path if p.exists() else []


def twin_spec(wildcards):
    """An organism's `spec` (architecture and initialisation, from its organism.json), which builds its untrained
    twin: a parameter of the twin rule, so a changed spec rebuilds the twin and a new diagnostic does not."""
    meta = Path(model_entry(wildcards.model)["path"]) / "organism.json"
    return json.loads(meta.read_text()).get("spec") if meta.is_file() else None


def all_targets():
    return [
        expand("results/checks/{model}.json", model=MODELS),
        expand("results/tables/table1.{ext}", ext=["csv", "md", "tex"]),
        "figures/table1_accuracy.pdf",
        "figures/fig1_stimuli.pdf",
        expand("results/tables/probes.{ext}", ext=["csv", "md", "tex"]),
        expand("figures/fig4_{model}_{setting}.pdf", model=MODELS, setting=SETTINGS + GRIDS + WHATSUP + BACKGROUNDS),
        [f"figures/probe_depth_{m['name']}.pdf" for m in config["models"] if not m.get("twin_of")],
        expand("results/tables/patching_summary.{ext}", ext=["csv", "md", "tex"]),
        expand("figures/fig{fig}_{model}_{setting}.pdf", fig=[3, 6, 7, 9], model=MODELS, setting=SETTINGS),
        expand("figures/fig{fig}_{model}_{setting}.pdf", fig=[3, 6, 7], model=MODELS, setting=WHATSUP),
        expand("figures/fig{fig}_{model}_{setting}.pdf", fig=[6, 7], model=MODELS, setting=BACKGROUNDS),
        expand("results/tables/table5.{ext}", ext=["csv", "md", "tex"]),
        expand("results/tables/backup_layers.{ext}", ext=["csv", "md", "tex"]),
        "figures/table5_ablation.pdf",
        amplification_targets(),
        expand("results/tables/validation.{ext}", ext=["csv", "md", "tex"]),
        expand("results/tables/organisms.{ext}", ext=["csv", "md", "tex"]) if RUN_ORGANISMS else [],
        expand("results/tables/validation_organisms.{ext}", ext=["csv", "md", "tex"]) if VALIDATED_ORGANISMS else [],
        expand("results/tables/verdicts.{ext}", ext=["csv", "md", "tex"]),
        paper_targets(),
    ]


# Table 2 testbeds (workflow/rules/amplification.smk)
from dualmech import naturalistic

AMP = config["amplification"]
DATA = config["data"]

for _key, _check in (("whatsup_dir", naturalistic.check_whatsup_dir), ("coco_dir", naturalistic.check_coco_dir)):
    if DATA[_key]:
        try:
            _check(DATA[_key])
        except naturalistic.DataError as e:
            raise WorkflowError(f"{' + '.join(CONFIG_FILES)}: data/{_key}: {e}") from None


def _amp_testbeds():
    """model -> the amplification testbeds it runs on (validated against the configured models)."""
    syn = MODELS if AMP["synthetic"]["models"] is None else AMP["synthetic"]["models"]
    wu = AMP["whatsup"]["models"] if DATA["whatsup_dir"] else []
    coco = [m["name"] for m in AMP["coco"]["models"]] if DATA["coco_dir"] else []
    unknown = sorted(set(syn + wu + coco) - set(MODELS))
    if unknown:
        raise WorkflowError(
            f"{' + '.join(CONFIG_FILES)}: amplification: unknown model name(s) {unknown}; models are {MODELS}"
        )
    return {m: [t for t, ms in (("synthetic", syn), ("whatsup", wu), ("coco", coco)) if m in ms] for m in MODELS}


AMP_TESTBEDS = _amp_testbeds()
AMP_PAIRS = [(m, t) for m, ts in AMP_TESTBEDS.items() for t in ts]


def amplification_targets():
    if not AMP_PAIRS:
        return []
    return [
        expand("results/tables/table2.{ext}", ext=["csv", "md", "tex"]),
        [f"figures/fig_amplification_{m}.pdf" for m, ts in AMP_TESTBEDS.items() if ts],
    ]


def _amp_files(kind, model=None):
    return [f"results/amplification/{m}/{t}/{kind}" for m, t in AMP_PAIRS if model is None or m == model]
