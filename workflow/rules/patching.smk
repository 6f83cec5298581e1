# Causal mediation (paper §5.3, §5.4): counterfactual pairs -> last-token interchange (Fig 3) and criss-cross
# object / strip swaps (Figs 6, 7) -> summary table. Every (model, setting) gets its own figures (App C.1, C.3);
# the main-text ones are the first model's squares.

PATCHING = "results/patching/{model}/{setting}"
# patching summary cells: last-token and criss-cross (synthetic settings, What'sUp), criss-cross only (App C.8)
LAST_TOKEN_CELLS = [(m, s) for m in MODELS for s in SETTINGS + WHATSUP]
CRISS_CROSS_CELLS = LAST_TOKEN_CELLS + [(m, s) for m in MODELS for s in BACKGROUNDS]


# One job per (model, setting) loads the model once for the pairs and every sweep (Figs 3, 6, 7).
rule patching_sweeps:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        stimuli="results/stimuli/{model}/{setting}/items.parquet",
        predictions="results/behaviour/{model}/{setting}.parquet",  # canonical runs are looked up, not rerun
    output:
        pairs_last_token=f"{PATCHING}/pairs_last_token.parquet",
        pairs_criss_cross=f"{PATCHING}/pairs_criss_cross.parquet",
        images=directory(f"{PATCHING}/pair_images"),
        last_token=f"{PATCHING}/last_token.parquet",
        last_token_curves=f"{PATCHING}/last_token_curves.parquet",
        criss_cross=f"{PATCHING}/criss_cross.parquet",
        criss_cross_curves=f"{PATCHING}/criss_cross_curves.parquet",
        criss_cross_stats=f"{PATCHING}/criss_cross_stats.parquet",
        criss_cross_regions=f"{PATCHING}/criss_cross_regions.parquet",
    log:
        "results/logs/patching_sweeps/{model}/{setting}.log",
    wildcard_constraints:
        setting=one_of(SETTINGS + WHATSUP),
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
        "Counterfactual pairs (golden-filtered), last-token interchange and criss-cross object / strip swaps "
        "(+ random-region null) for {wildcards.model} on {wildcards.setting}"
    script:
        "../scripts/patching_sweeps.py"


# App C.8: the background settings have criss-cross pairs and swaps only (Figs 6, 7).
use rule patching_sweeps as background_sweeps with:
    output:
        pairs_criss_cross=f"{PATCHING}/pairs_criss_cross.parquet",
        images=directory(f"{PATCHING}/pair_images"),
        criss_cross=f"{PATCHING}/criss_cross.parquet",
        criss_cross_curves=f"{PATCHING}/criss_cross_curves.parquet",
        criss_cross_stats=f"{PATCHING}/criss_cross_stats.parquet",
        criss_cross_regions=f"{PATCHING}/criss_cross_regions.parquet",
    wildcard_constraints:
        setting=one_of(BACKGROUNDS),
    message:
        "Counterfactual pairs (golden-filtered) and criss-cross object / strip swaps (+ random-region null) for "
        "{wildcards.model} on {wildcards.setting} (App C.8 background)"


# Figs 3, 6, 7, 9: one rule per figure draws it for every cell in one job (a figure rule reads tables only).
FIG_CAPTION = "../report/patching.rst"


rule fig3:
    input:
        pairs=cell_files(f"{PATCHING}/pairs_last_token.parquet", LAST_TOKEN_CELLS),
        curves=cell_files(f"{PATCHING}/last_token_curves.parquet", LAST_TOKEN_CELLS),
        code=PLOT_CODE,
    output:
        cell_figures("figures/fig3_{model}_{setting}.pdf", LAST_TOKEN_CELLS, FIG_CAPTION, "Causal mediation", "Fig 3"),
    log:
        "results/logs/fig_patching/fig3.log",
    conda:
        ENV
    params:
        fig="3",
        cells=LAST_TOKEN_CELLS,
        directions=config["directions"],
        min_pairs=config["patching"]["min_pairs"],
    message:
        "Fig 3 (last-token interchange) for every model and setting"
    script:
        "../scripts/fig_patching.py"


rule fig6:
    input:
        pairs=cell_files(f"{PATCHING}/pairs_criss_cross.parquet", CRISS_CROSS_CELLS),
        curves=cell_files(f"{PATCHING}/criss_cross_curves.parquet", CRISS_CROSS_CELLS),
        stats=cell_files(f"{PATCHING}/criss_cross_stats.parquet", CRISS_CROSS_CELLS),
        code=PLOT_CODE,
    output:
        cell_figures("figures/fig6_{model}_{setting}.pdf", CRISS_CROSS_CELLS, FIG_CAPTION, "Causal mediation", "Fig 6"),
    log:
        "results/logs/fig_patching/fig6.log",
    conda:
        ENV
    params:
        fig="6",
        cells=CRISS_CROSS_CELLS,
        directions=config["directions"],
        min_pairs=config["patching"]["min_pairs"],
    message:
        "Fig 6 (object swap, criss-cross) for every model and setting"
    script:
        "../scripts/fig_patching.py"


use rule fig6 as fig7 with:
    output:
        cell_figures("figures/fig7_{model}_{setting}.pdf", CRISS_CROSS_CELLS, FIG_CAPTION, "Causal mediation", "Fig 7"),
    log:
        "results/logs/fig_patching/fig7.log",
    params:
        fig="7",
        cells=CRISS_CROSS_CELLS,
        directions=config["directions"],
        min_pairs=config["patching"]["min_pairs"],
    message:
        "Fig 7 (strip swap, criss-cross) for every model and setting"


# Fig 9 (paper §5.6): the object swap with the ordering ablation on both runs (workflow/rules/ablation.smk)
use rule fig6 as fig9 with:
    input:
        pairs=cell_files(f"{ABLATED}/pairs_criss_cross.parquet", ABLATION_CELLS),
        curves=cell_files(f"{ABLATED}/criss_cross_curves.parquet", ABLATION_CELLS),
        stats=cell_files(f"{ABLATED}/criss_cross_stats.parquet", ABLATION_CELLS),
        code=PLOT_CODE,
    output:
        cell_figures("figures/fig9_{model}_{setting}.pdf", ABLATION_CELLS, FIG_CAPTION, "Causal mediation", "Fig 9"),
    log:
        "results/logs/fig_patching/fig9.log",
    params:
        fig="9",
        cells=ABLATION_CELLS,
        directions=config["directions"],
        min_pairs=config["patching"]["min_pairs"],
    message:
        "Fig 9 (object swap under the ordering ablation) for every model and setting"


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
