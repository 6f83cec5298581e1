# Table 5: accuracy after removing vision-derived ordering at the LM input (paper §5.5), and Fig 9 (paper §5.6;
# App C.3/C.4): the object swap with the ablation on both runs - the LM's backup ordering. One job per (model,
# setting) loads the model once for both; the Fig 9 pairs take the canonical runs' Table 5 predictions.
ABLATED = "results/ablation/{model}/{setting}"
ABLATION_CELLS = [(m, s) for m in MODELS for s in SETTINGS]


rule ablation:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        table="results/stimuli/{model}/{setting}/items.parquet",
        images="results/stimuli/{model}/{setting}/images",
    output:
        references=f"{ABLATED}/references.safetensors",
        predictions=f"{ABLATED}/predictions.parquet",
        pairs_criss_cross=f"{ABLATED}/pairs_criss_cross.parquet",
        pair_images=directory(f"{ABLATED}/pair_images"),
        criss_cross=f"{ABLATED}/criss_cross.parquet",
        criss_cross_curves=f"{ABLATED}/criss_cross_curves.parquet",
        criss_cross_stats=f"{ABLATED}/criss_cross_stats.parquet",
        criss_cross_regions=f"{ABLATED}/criss_cross_regions.parquet",
    log:
        "results/logs/ablation/{model}/{setting}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        patching=config["patching"],
        seed=config["seed"],
        directions=config["directions"],
    message:
        "Scoring {wildcards.model} on {wildcards.setting} with vision-derived ordering removed (isolated-middle and "
        "empty-canvas references first), then the object / strip swaps under the ablation (+ random-region null)"
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


rule backup_layers:
    input:
        pairs=cell_files(f"{ABLATED}/pairs_criss_cross.parquet", ABLATION_CELLS),
        stats=cell_files(f"{ABLATED}/criss_cross_stats.parquet", ABLATION_CELLS),
    output:
        csv="results/tables/backup_layers.csv",
        md=report("results/tables/backup_layers.md", caption="../report/backup_layers.rst", category="Ablation"),
        tex="results/tables/backup_layers.tex",
    log:
        "results/logs/backup_layers.log",
    conda:
        ENV
    params:
        cells=ABLATION_CELLS,
        directions=config["directions"],
        min_pairs=config["patching"]["min_pairs"],
    message:
        "LM backup ordering: sites where the object swap flips the answer under the ablation"
    script:
        "../scripts/backup_layers.py"
