# Canonical stimuli (paper §3): images + one item table per (model, setting); geometry from the model's adapter.


rule stimuli:
    input:
        model=model_input,
    output:
        table="results/stimuli/{model}/{setting}/items.parquet",
        images=directory("results/stimuli/{model}/{setting}/images"),
    log:
        "results/logs/stimuli/{model}/{setting}.log",
    conda:
        ENV
    params:
        seed=config["seed"],
        directions=config["directions"],
        grid_images=config["grid_images"],
        data=config["data"],
        backgrounds=config["backgrounds"],
    message:
        "Rendering {wildcards.setting} stimuli for {wildcards.model}"
    script:
        "../scripts/stimuli.py"


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
