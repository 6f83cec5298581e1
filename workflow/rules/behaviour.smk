# Table 1: top-1 next-token accuracy on the canonical stimuli (paper §4.3, §5.1).


rule behaviour:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        table="results/stimuli/{model}/{setting}/items.parquet",
        images="results/stimuli/{model}/{setting}/images",
    output:
        "results/behaviour/{model}/{setting}.parquet",
    log:
        "results/logs/behaviour/{model}/{setting}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    message:
        "Scoring {wildcards.model} on {wildcards.setting}"
    script:
        "../scripts/behaviour.py"


rule table1:
    input:
        predictions=expand("results/behaviour/{model}/{setting}.parquet", model=MODELS, setting=SETTINGS + WHATSUP),
        code=PLOT_CODE,
    output:
        csv="results/tables/table1.csv",
        md=report("results/tables/table1.md", caption="../report/table1.rst", category="Behaviour"),
        tex="results/tables/table1.tex",
        figure=report("figures/table1_accuracy.pdf", caption="../report/table1.rst", category="Behaviour"),
    log:
        "results/logs/table1.log",
    conda:
        ENV
    params:
        skipped=SKIPPED["Table 1"],
    message:
        "Table 1: accuracy with Wilson 95% intervals"
    script:
        "../scripts/table1.py"
