# Where ordering lives (paper §5.2.1, Fig 4, App C.5-C.7): shifted-layout control stimuli -> one activation
# store per (model, image set) -> linear position probes per (model, setting) at every site -> Fig 4 heat maps,
# depth curves (trained model beside its untrained twin) and the probe table.

PROBING = config["probing"]
STORE = "results/activations/{model}/{imageset}"


# image sets a (model, setting) probe reads: the canonical set, plus the shifted control for relation settings
PROBE_SETS = {s: [s] + ([f"{s}_shifted"] if s in SETTINGS and PROBING["shifts"] else []) for s in SETTINGS + GRIDS}
PROBE_SETS.update({s: [s] for s in WHATSUP})  # App C.7: What'sUp composites (horizontal only, no shifted control)
PROBE_SETS.update({s: [s] for s in BACKGROUNDS})  # App C.8: canonical layouts on backgrounds (no shifted control)


rule extract_activations:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        table="results/stimuli/{model}/{imageset}/items.parquet",
        images="results/stimuli/{model}/{imageset}/images",
    output:
        tensors=f"{STORE}.safetensors",
        index=f"{STORE}.index.parquet",
    log:
        "results/logs/extract_activations/{model}/{imageset}.log",
    wildcard_constraints:
        imageset=one_of(UNSHIFTED),
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        sites=PROBING["sites"],
    message:
        "Extracting visual-token activations ({params.sites}) of {wildcards.model} on {wildcards.imageset}"
    script:
        "../scripts/extract_activations.py"


# A relation setting's canonical images and their shifted-layout control, on one loaded model.
use rule extract_activations as relation_activations with:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        table="results/stimuli/{model}/{imageset}/items.parquet",
        images="results/stimuli/{model}/{imageset}/images",
        shifted_table="results/stimuli/{model}/{imageset}_shifted/items.parquet",
        shifted_images="results/stimuli/{model}/{imageset}_shifted/images",
    output:
        tensors=f"{STORE}.safetensors",
        index=f"{STORE}.index.parquet",
        shifted_tensors=f"{STORE}_shifted.safetensors",
        shifted_index=f"{STORE}_shifted.index.parquet",
    wildcard_constraints:
        imageset=one_of(SHIFTED),
    message:
        "Extracting visual-token activations ({params.sites}) of {wildcards.model} on {wildcards.imageset} and its "
        "shifted-layout control"


rule probes:
    input:
        tables=lambda w: [f"results/stimuli/{w.model}/{s}/items.parquet" for s in PROBE_SETS[w.setting]],
        stores=lambda w: [f"results/activations/{w.model}/{s}.safetensors" for s in PROBE_SETS[w.setting]],
        code=PROBE_CODE,
    output:
        metrics="results/probes/{model}/{setting}.parquet",
        heatmaps="results/probes/{model}/{setting}_heatmaps.npz",
        units="results/probes/{model}/{setting}_units.parquet",
    log:
        "results/logs/probes/{model}/{setting}.log",
    conda:
        ENV
    params:
        probing=PROBING,
        seed=config["seed"],
    message:
        "Position probes for {wildcards.model} on {wildcards.setting}: every site, {params.probing[seeds]} splits, "
        "position-only / control-task / strip / shifted-layout controls"
    script:
        "../scripts/probes.py"


FIG4_CELLS = [(m, s) for m in MODELS for s in SETTINGS + GRIDS + WHATSUP + BACKGROUNDS]


rule fig4:
    input:
        heatmaps=cell_files("results/probes/{model}/{setting}_heatmaps.npz", FIG4_CELLS),
        code=PLOT_CODE,
    output:
        cell_figures("figures/fig4_{model}_{setting}.pdf", FIG4_CELLS, "../report/fig4.rst", "Probing", "{model}"),
    log:
        "results/logs/fig4.log",
    conda:
        ENV
    params:
        cells=FIG4_CELLS,
    message:
        "Fig 4: probe class probabilities on every visual token at the LM input, for every model and setting"
    script:
        "../scripts/fig4.py"


rule probe_depth:
    input:
        code=PLOT_CODE,
        metrics=lambda w: expand(
            "results/probes/{model}/{setting}.parquet",
            setting=SETTINGS + GRIDS,
            model=[w.model] + [m["name"] for m in config["models"] if m.get("twin_of") == w.model],
        ),
    output:
        report("figures/probe_depth_{model}.pdf", caption="../report/probe_depth.rst", category="Probing"),
    log:
        "results/logs/probe_depth/{model}.log",
    conda:
        ENV
    message:
        "Probe depth curves for {wildcards.model} (with its untrained twin where there is one)"
    script:
        "../scripts/probe_depth.py"


rule probe_table:
    input:
        expand(
            "results/probes/{model}/{setting}.parquet",
            model=MODELS,
            setting=SETTINGS + GRIDS + WHATSUP + BACKGROUNDS,
        ),
    output:
        csv="results/tables/probes.csv",
        md=report("results/tables/probes.md", caption="../report/probes.rst", category="Probing"),
        tex="results/tables/probes.tex",
    log:
        "results/logs/probe_table.log",
    conda:
        ENV
    message:
        "Probe table: accuracy, ambiguous-token accuracy, strip score and selectivity per site, with CIs"
    script:
        "../scripts/probe_table.py"
