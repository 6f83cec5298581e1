# The validation table (results/tables/validation.*): the claim detectors run on planted-mechanism fixtures,
# real checkpoints with a slot code written into their visual tokens by construction, against the verdicts
# written down before running (config/expected_verdicts.yaml). Every row must agree.

VALIDATION = config["validation"]
REPO = Path(workflow.basedir)


rule validation:
    input:
        expected=str(REPO / VALIDATION["expected"]),
    output:
        csv="results/tables/validation.csv",
        md=report(
            "results/tables/validation.md",
            caption="../report/validation.rst",
            category="Paper",
            subcategory="Validation",
        ),
        tex="results/tables/validation.tex",
    log:
        "results/logs/validation.log",
    conda:
        ENV
    params:
        probing=config["probing"],
        triples=VALIDATION["triples"],
        min_pairs=config["patching"]["min_pairs"],
        seed=config["seed"],
    message:
        "Validation: claim detectors on planted-mechanism fixtures against their expected verdicts"
    script:
        "../scripts/validation.py"
