# Canonical stimuli (paper §3): images + one item table per (model, setting); geometry from the model's adapter.
# The relation settings with a shifted-layout control (probing.shifts; App C.5) render it in the same job.
SHIFTED = SETTINGS if config["probing"]["shifts"] else []
UNSHIFTED = [s for s in SETTINGS + GRIDS + WHATSUP + BACKGROUNDS if s not in SHIFTED]


rule stimuli:
    input:
        model=model_input,
        check="results/checks/{model}.json",  # the model's canvas (geometry, palette, objects left out)
    output:
        table="results/stimuli/{model}/{setting}/items.parquet",
        images=directory("results/stimuli/{model}/{setting}/images"),
    log:
        "results/logs/stimuli/{model}/{setting}.log",
    wildcard_constraints:
        setting=one_of(UNSHIFTED),
    conda:
        ENV
    params:
        seed=config["seed"],
        directions=config["directions"],
        grid_images=config["grid_images"],
        data=config["data"],
        backgrounds=config["backgrounds"],
        shifts=config["probing"]["shifts"],
    message:
        "Rendering {wildcards.setting} stimuli for {wildcards.model}"
    script:
        "../scripts/stimuli.py"


# The relation settings' canonical stimuli and their shifted-layout control (the triple translated by +-k tokens;
# the position probes' control, workflow/rules/probing.smk) in one job.
use rule stimuli as relation_stimuli with:
    output:
        table="results/stimuli/{model}/{setting}/items.parquet",
        images=directory("results/stimuli/{model}/{setting}/images"),
        shifted_table="results/stimuli/{model}/{setting}_shifted/items.parquet",
        shifted_images=directory("results/stimuli/{model}/{setting}_shifted/images"),
    wildcard_constraints:
        setting=one_of(SHIFTED),
    message:
        "Rendering {wildcards.setting} stimuli and their shifted-layout control ({params.shifts} tokens) for "
        "{wildcards.model}"


rule fig1_stimuli:
    input:
        tables=expand("results/stimuli/{{model}}/{setting}/items.parquet", setting=SETTINGS + GRIDS),
        code=PLOT_CODE,
    output:
        report(
            "figures/fig1_stimuli_{model}.pdf",
            caption="../report/fig1.rst",
            category="Stimuli",
            labels={"model": "{model}"},
        ),
    log:
        "results/logs/fig1/{model}.log",
    conda:
        ENV
    message:
        "Fig 1: example stimuli"
    script:
        "../scripts/fig1.py"


rule fig1_default:
    input:
        f"figures/fig1_stimuli_{MODELS[0]}.pdf",
    output:
        "figures/fig1_stimuli.pdf",
    log:
        "results/logs/fig1/default.log",
    conda:
        ENV
    message:
        "Fig 1 for the first model in config.yaml"
    shell:
        "cp {input} {output} 2> {log}"
