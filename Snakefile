# Reproduction of "The Dual Mechanisms of Spatial Reasoning in Vision-Language Models" (arXiv 2603.22278).
# `snakemake --cores N` regenerates every figure and table for the models named in config.yaml.
from snakemake.utils import min_version

min_version("9.19")

import sys

sys.path.insert(0, f"{workflow.basedir}/src")
from dualmech.config import ConfigError, read_yaml

try:  # Snakemake's own message for a YAML error names neither file nor line
    read_yaml("config.yaml")
except ConfigError as e:
    raise WorkflowError(str(e)) from None


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/organism.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/stimuli.smk"
include: "workflow/rules/behaviour.smk"
include: "workflow/rules/probing.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/patching.smk"
include: "workflow/rules/amplification.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/paper_inputs.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/targets.smk"  # named targets (snakemake fig7, table2, paper, ...): keep last


rule all:
    default_target: True
    input:
        all_targets(),
