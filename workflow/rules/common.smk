# Config validation, wildcard constraints and target lists shared by every rule file.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from dualmech.config import BUILT_MODELS, ConfigError, validate

try:
    _validated = validate(config, Path.cwd())
except ConfigError as e:
    raise WorkflowError(str(e)) from None
config.clear()
config.update(_validated)

MODELS = [m["name"] for m in config["models"]]
SETTINGS = config["settings"]
GRIDS = [f"grid{k}" for k in config["grids"]]
ENV = "../../envs/dualmech.yaml"


wildcard_constraints:
    model="|".join(map(re.escape, MODELS)),
    setting="|".join(SETTINGS + GRIDS),


def model_entry(name):
    return next(m for m in config["models"] if m["name"] == name)


def model_input(wildcards):
    """The checkpoint directory, so Snakemake builds it first when the pipeline makes it."""
    path = model_entry(wildcards.model)["path"]
    return path if path.startswith(f"{BUILT_MODELS}/") or Path(path).exists() else []


def all_targets():
    return [
        expand("results/checks/{model}.json", model=MODELS),
        expand("results/tables/table1.{ext}", ext=["csv", "md", "tex"]),
        "figures/table1_accuracy.pdf",
        "figures/fig1_stimuli.pdf",
        expand("results/tables/probes.{ext}", ext=["csv", "md", "tex"]),
        expand("figures/fig4_{model}_{setting}.pdf", model=MODELS, setting=SETTINGS + GRIDS),
        [f"figures/probe_depth_{m['name']}.pdf" for m in config["models"] if not m.get("twin_of")],
        expand("results/tables/patching_summary.{ext}", ext=["csv", "md", "tex"]),
        expand("figures/fig{fig}_{model}_{setting}.pdf", fig=[3, 6, 7, 9], model=MODELS, setting=SETTINGS),
        expand("results/tables/table5.{ext}", ext=["csv", "md", "tex"]),
        expand("results/tables/backup_layers.{ext}", ext=["csv", "md", "tex"]),
        "figures/table5_ablation.pdf",
        amplification_targets(),
        paper_targets(),
    ]
