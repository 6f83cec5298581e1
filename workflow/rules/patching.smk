# Causal mediation (paper §5.3, §5.4): counterfactual pairs -> last-token interchange (Fig 3) and criss-cross
# object / strip swaps (Figs 6, 7) -> summary table. Every (model, setting) gets its own figures (App C.1, C.3);
# the main-text ones are the first model's squares.

PATCHING = "results/patching/{model}/{setting}"
# patching summary cells: last-token and criss-cross (synthetic settings, What'sUp), criss-cross only (App C.8)
LAST_TOKEN_CELLS = [(m, s) for m in MODELS for s in SETTINGS + WHATSUP]
CRISS_CROSS_CELLS = LAST_TOKEN_CELLS + [(m, s) for m in MODELS for s in BACKGROUNDS]


wildcard_constraints:
    fig="3|6|7|9",


rule patching_pairs:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        stimuli="results/stimuli/{model}/{setting}/items.parquet",
        predictions="results/behaviour/{model}/{setting}.parquet",  # canonical runs are looked up, not rerun
    output:
        last_token=f"{PATCHING}/pairs_last_token.parquet",
        criss_cross=f"{PATCHING}/pairs_criss_cross.parquet",
        images=directory(f"{PATCHING}/pair_images"),
    log:
        "results/logs/patching_pairs/{model}/{setting}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        patching=config["patching"],
        seed=config["seed"],
        directions=config["directions"],
        data=config["data"],
        backgrounds=config["backgrounds"],
    message:
        "Counterfactual pairs for {wildcards.model} on {wildcards.setting} (golden-filtered)"
    script:
        "../scripts/patching_pairs.py"


rule last_token:
    input:
        model=model_input,
        pairs=f"{PATCHING}/pairs_last_token.parquet",
        images=f"{PATCHING}/pair_images",
    output:
        sweep=f"{PATCHING}/last_token.parquet",
        curves=f"{PATCHING}/last_token_curves.parquet",
    log:
        "results/logs/last_token/{model}/{setting}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        seed=config["seed"],
    message:
        "Last-token interchange sweep for {wildcards.model} on {wildcards.setting}"
    script:
        "../scripts/last_token.py"


rule criss_cross:
    input:
        model=model_input,
        pairs=f"{PATCHING}/pairs_criss_cross.parquet",
        images=f"{PATCHING}/pair_images",
    output:
        sweep=f"{PATCHING}/criss_cross.parquet",
        curves=f"{PATCHING}/criss_cross_curves.parquet",
        stats=f"{PATCHING}/criss_cross_stats.parquet",
        regions=f"{PATCHING}/criss_cross_regions.parquet",
    log:
        "results/logs/criss_cross/{model}/{setting}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        patching=config["patching"],
        seed=config["seed"],
        directions=config["directions"],
    message:
        "Criss-cross object / strip swap sweeps (+ random-region null) for {wildcards.model} on {wildcards.setting}"
    script:
        "../scripts/criss_cross.py"


rule fig_patching:
    input:
        unpack(_fig_patching_input),
    output:
        report(
            "figures/fig{fig}_{model}_{setting}.pdf",
            caption="../report/patching.rst",
            category="Causal mediation",
            subcategory="Fig {fig}",
            labels={"model": "{model}", "setting": "{setting}"},
        ),
    log:
        "results/logs/fig_patching/fig{fig}_{model}_{setting}.log",
    conda:
        ENV
    params:
        directions=config["directions"],
        min_pairs=config["patching"]["min_pairs"],
    message:
        "Fig {wildcards.fig} for {wildcards.model} on {wildcards.setting}"
    script:
        "../scripts/fig_patching.py"


rule patching_summary:
    input:
        lt_pairs=cell_files(f"{PATCHING}/pairs_last_token.parquet", LAST_TOKEN_CELLS),
        curves=cell_files(f"{PATCHING}/last_token_curves.parquet", LAST_TOKEN_CELLS),
        cc_pairs=cell_files(f"{PATCHING}/pairs_criss_cross.parquet", CRISS_CROSS_CELLS),
        stats=cell_files(f"{PATCHING}/criss_cross_stats.parquet", CRISS_CROSS_CELLS),
    output:
        csv="results/tables/patching_summary.csv",
        md=report(
            "results/tables/patching_summary.md",
            caption="../report/patching_summary.rst",
            category="Causal mediation",
            subcategory="Summary",
        ),
        tex="results/tables/patching_summary.tex",
    log:
        "results/logs/patching_summary.log",
    conda:
        ENV
    params:
        cells=CRISS_CROSS_CELLS,
        last_token_cells=LAST_TOKEN_CELLS,
        directions=config["directions"],
        min_pairs=config["patching"]["min_pairs"],
    message:
        "Causal-mediation summary: significant flip sites and Fig 3 transfer ranges"
        + (" (with What'sUp)" if WHATSUP else "")
        + (f" (with the App C.8 background settings {BACKGROUNDS})" if BACKGROUNDS else "")
    script:
        "../scripts/patching_summary.py"
