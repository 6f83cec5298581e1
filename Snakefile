# Reproduction of "The Dual Mechanisms of Spatial Reasoning in Vision-Language Models" (arXiv 2603.22278).
# `snakemake --cores N` regenerates every figure and table for the models named in config.yaml.
from snakemake.utils import min_version

min_version("9.19")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/organism.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/stimuli.smk"
include: "workflow/rules/behaviour.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/patching.smk"
include: "workflow/rules/amplification.smk"


rule all:
    default_target: True
    input:
        all_targets(),
