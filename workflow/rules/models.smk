# Per-model gate before any analysis: hooked forward with no-op edits == plain forward, token layout == grid.


rule check_model:
    message:
        "Checking adapter parity and token layout for {wildcards.model}"
    input:
        model=model_input,
    output:
        "results/checks/{model}.json",
    log:
        "results/logs/check_model/{model}.log",
    conda:
        ENV
    script:
        "../scripts/check_model.py"
