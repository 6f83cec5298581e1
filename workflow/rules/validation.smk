# The validation table (results/tables/validation.*): the claim detectors run on planted-mechanism fixtures,
# real checkpoints with a slot code written into their visual tokens by construction, against the verdicts
# written down before running (config/expected_verdicts.yaml). Every row must agree.

VALIDATION = config["validation"]
REPO = Path(workflow.basedir)


rule validation:
    input:
        expected=str(REPO / VALIDATION["expected"]),
        code=VERDICT_CODE + [PROBE_CODE],  # the fixtures are probed here
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


# The model organisms of this run with expected verdicts (config/expected_verdicts.yaml `organisms`, derived
# from their diagnostics): their rows of the claims table against those verdicts. A rule of its own because the
# claims table itself reads the fixtures' validation table.
import yaml as _yaml

VALIDATED_ORGANISMS = [
    m for m in MODELS if m in _yaml.safe_load((REPO / VALIDATION["expected"]).read_text()).get("organisms", {})
]


rule validation_organisms:
    input:
        expected=str(REPO / VALIDATION["expected"]),
        code=VERDICT_CODE,
        claims="results/tables/claims.csv",
    output:
        csv="results/tables/validation_organisms.csv",
        md="results/tables/validation_organisms.md",
        tex="results/tables/validation_organisms.tex",
    log:
        "results/logs/validation_organisms.log",
    conda:
        ENV
    message:
        "Validation: the claims table's verdicts on the model organisms against those their diagnostics predict"
    script:
        "../scripts/validation_organisms.py"


# The claims table's verdicts with whether each counts: its detector gave every model whose mechanism is known
# (the two validation tables) the expected verdict on that claim (dualmech.validation.COUNT_RULE).
rule verdicts:
    input:
        code=VERDICT_CODE,
        claims="results/tables/claims.csv",
        known=["results/tables/validation.csv"]
        + (["results/tables/validation_organisms.csv"] if VALIDATED_ORGANISMS else []),
    output:
        csv="results/tables/verdicts.csv",
        md=report(
            "results/tables/verdicts.md", caption="../report/verdicts.rst", category="Paper", subcategory="Claims"
        ),
        tex="results/tables/verdicts.tex",
    log:
        "results/logs/verdicts.log",
    conda:
        ENV
    params:
        organisms=VALIDATED_ORGANISMS,
    message:
        "Verdicts table: each model's verdict per claim, and whether it counts (its detector right on every known mechanism)"
    script:
        "../scripts/verdicts.py"
