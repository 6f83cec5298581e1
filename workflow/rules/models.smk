# Per-model gate before any analysis: hooked forward with no-op edits == plain forward, token layout == grid.


rule check_model:
    input:
        model=model_input,
    output:
        "results/checks/{model}.json",
    log:
        "results/logs/check_model/{model}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    message:
        "Checking adapter parity and token layout for {wildcards.model}"
    script:
        "../scripts/check_model.py"
