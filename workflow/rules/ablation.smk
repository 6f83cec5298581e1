# Table 5: accuracy after removing vision-derived ordering at the LM input (paper §5.5).


rule ablation_references:
    message:
        "Isolated-middle and empty-canvas references for {wildcards.model} / {wildcards.setting}"
    input:
        model=model_input,
        check="results/checks/{model}.json",
    output:
        "results/ablation/{model}/{setting}/references.safetensors",
    log:
        "results/logs/ablation_references/{model}/{setting}.log",
    conda:
        ENV
    script:
        "../scripts/ablation_references.py"


rule ablation:
    message:
        "Scoring {wildcards.model} on {wildcards.setting} with vision-derived ordering removed"
    input:
        model=model_input,
        table="results/stimuli/{model}/{setting}/items.parquet",
        images="results/stimuli/{model}/{setting}/images",
        references="results/ablation/{model}/{setting}/references.safetensors",
    output:
        "results/ablation/{model}/{setting}/predictions.parquet",
    log:
        "results/logs/ablation/{model}/{setting}.log",
    conda:
        ENV
    script:
        "../scripts/ablation.py"


rule table5:
    message:
        "Table 5: accuracy under the ablation beside Table 1, McNemar tests"
    input:
        clean=expand("results/behaviour/{model}/{setting}.parquet", model=MODELS, setting=SETTINGS),
        ablated=expand("results/ablation/{model}/{setting}/predictions.parquet", model=MODELS, setting=SETTINGS),
    output:
        csv="results/tables/table5.csv",
        md=report("results/tables/table5.md", caption="../report/table5.rst", category="Ablation"),
        tex="results/tables/table5.tex",
        figure=report("figures/table5_ablation.pdf", caption="../report/table5.rst", category="Ablation"),
    log:
        "results/logs/table5.log",
    conda:
        ENV
    script:
        "../scripts/table5.py"
