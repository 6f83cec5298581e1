# Table 5: accuracy after removing vision-derived ordering at the LM input (paper §5.5).


rule ablation:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        table="results/stimuli/{model}/{setting}/items.parquet",
        images="results/stimuli/{model}/{setting}/images",
    output:
        references="results/ablation/{model}/{setting}/references.safetensors",
        predictions="results/ablation/{model}/{setting}/predictions.parquet",
    log:
        "results/logs/ablation/{model}/{setting}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        colour_pool=config["patching"]["colour_pool"],
    message:
        "Scoring {wildcards.model} on {wildcards.setting} with vision-derived ordering removed (isolated-middle and "
        "empty-canvas references first)"
    script:
        "../scripts/ablation.py"


rule table5:
    input:
        clean=expand("results/behaviour/{model}/{setting}.parquet", model=MODELS, setting=SETTINGS),
        ablated=expand("results/ablation/{model}/{setting}/predictions.parquet", model=MODELS, setting=SETTINGS),
        code=PLOT_CODE,
    output:
        csv="results/tables/table5.csv",
        md=report("results/tables/table5.md", caption="../report/table5.rst", category="Ablation"),
        tex="results/tables/table5.tex",
        figure=report("figures/table5_ablation.pdf", caption="../report/table5.rst", category="Ablation"),
    log:
        "results/logs/table5.log",
    conda:
        ENV
    message:
        "Table 5: accuracy under the ablation beside Table 1, McNemar tests"
    script:
        "../scripts/table5.py"


# Fig 9 (paper §5.6; App C.3/C.4): the object swap with the ablation on both runs - the LM's backup ordering.
ABLATED = "results/ablation/{model}/{setting}"


rule ablation_pairs:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        references=f"{ABLATED}/references.safetensors",
        stimuli="results/stimuli/{model}/{setting}/items.parquet",
        predictions=f"{ABLATED}/predictions.parquet",  # canonical runs under the ablation are looked up, not rerun
    output:
        criss_cross=f"{ABLATED}/pairs_criss_cross.parquet",
        images=directory(f"{ABLATED}/pair_images"),
    log:
        "results/logs/ablation_pairs/{model}/{setting}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        patching=config["patching"],
        seed=config["seed"],
        directions=config["directions"],
    message:
        "Criss-cross pairs for {wildcards.model} on {wildcards.setting}, golden under the ordering ablation"
    script:
        "../scripts/patching_pairs.py"


rule ablation_criss_cross:
    input:
        model=model_input,
        references=f"{ABLATED}/references.safetensors",
        pairs=f"{ABLATED}/pairs_criss_cross.parquet",
        images=f"{ABLATED}/pair_images",
    output:
        sweep=f"{ABLATED}/criss_cross.parquet",
        curves=f"{ABLATED}/criss_cross_curves.parquet",
        stats=f"{ABLATED}/criss_cross_stats.parquet",
        regions=f"{ABLATED}/criss_cross_regions.parquet",
    log:
        "results/logs/ablation_criss_cross/{model}/{setting}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        patching=config["patching"],
        seed=config["seed"],
        directions=config["directions"],
    message:
        "Object / strip swaps under the ordering ablation (+ random-region null) for {wildcards.model} on "
        "{wildcards.setting}"
    script:
        "../scripts/criss_cross.py"


rule backup_layers:
    input:
        pairs=expand(f"{ABLATED}/pairs_criss_cross.parquet", model=MODELS, setting=SETTINGS),
        stats=expand(f"{ABLATED}/criss_cross_stats.parquet", model=MODELS, setting=SETTINGS),
    output:
        csv="results/tables/backup_layers.csv",
        md=report("results/tables/backup_layers.md", caption="../report/backup_layers.rst", category="Ablation"),
        tex="results/tables/backup_layers.tex",
    log:
        "results/logs/backup_layers.log",
    conda:
        ENV
    params:
        cells=[(m, s) for m in MODELS for s in SETTINGS],
        directions=config["directions"],
        min_pairs=config["patching"]["min_pairs"],
    message:
        "LM backup ordering: sites where the object swap flips the answer under the ablation"
    script:
        "../scripts/backup_layers.py"
