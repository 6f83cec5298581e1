# The validation table (results/tables/validation.*): the claim detectors run on planted-mechanism fixtures,
# real checkpoints with a slot code written into their visual tokens by construction, against the verdicts
# written down before running (config/expected_verdicts.yaml), and the run's model organisms (their
# claims-table rows against the verdicts their diagnostics predict). Every row must agree.

VALIDATION = config["validation"]
REPO = Path(workflow.basedir)
# organisms of this run with expected verdicts (config/expected_verdicts.yaml `organisms`): their rows of the
# claims table join the validation table
import yaml as _yaml

VALIDATED_ORGANISMS = [
    m
    for m in MODELS
    if m in _yaml.safe_load((REPO / VALIDATION["expected"]).read_text()).get("organisms", {})
]


rule validation:
    input:
        expected=str(REPO / VALIDATION["expected"]),
        claims=["results/tables/claims.csv"] if VALIDATED_ORGANISMS else [],
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
