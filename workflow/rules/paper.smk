# The regenerated paper: the claims table, published values beside ours and the
# manuscript paper/main.tex, whose numbers, tables and figure blocks are generated into paper/generated/.
# Input functions and target lists: paper_inputs.smk.


rule claims:
    input:
        unpack(_claims_input),
    output:
        csv="results/tables/claims.csv",
        md=report("results/tables/claims.md", caption="../report/claims.rst", category="Paper", subcategory="Claims"),
        tex="results/tables/claims.tex",
        rules_csv="results/tables/claim_rules.csv",
        rules_md="results/tables/claim_rules.md",
        rules_tex="results/tables/claim_rules.tex",
    log:
        "results/logs/claims.log",
    conda:
        ENV
    params:
        models=MODELS,
        settings=SETTINGS,
        cells=CLAIM_CELLS,
        testbeds=lambda w: {m: ts for m, ts in AMP_TESTBEDS.items()} if AMP_PAIRS else {},
        amp_pairs=AMP_PAIRS,
        min_pairs=config["patching"]["min_pairs"],
        seed=config["seed"],
        controls=controls(config),  # model -> its control in the claims' control gate
    message:
        "Claims table: each of the paper's claims tested on every model run"
    script:
        "../scripts/claims.py"


rule published_vs_regenerated:
    input:
        unpack(_tables_input),
        published=PUBLISHED,
        checks=expand("results/checks/{model}.json", model=MODELS),  # each model's canvas geometry
    output:
        csv="results/tables/published_vs_regenerated.csv",
        md=report(
            "results/tables/published_vs_regenerated.md",
            caption="../report/published.rst",
            category="Paper",
            subcategory="Published values",
        ),
        tex="results/tables/published_vs_regenerated.tex",
    log:
        "results/logs/published_vs_regenerated.log",
    conda:
        ENV
    params:
        version=config["paper_version"],
        models=MODELS,
        strip_width=config["patching"]["strip_width"],
        skipped=SKIPPED,
    message:
        "Published values (paper {params.version}) beside this run's, flagged outside our 95% CI"
    script:
        "../scripts/published_vs_regenerated.py"


rule paper:
    input:
        unpack(_tables_input),
        claims="results/tables/claims.csv",
        verdicts="results/tables/verdicts.csv",
        published="results/tables/published_vs_regenerated.csv",
        figures=_paper_figures(),
        published_values=PUBLISHED,
        main=str(PAPER_SOURCES / "main.tex"),
        sections=sorted(str(p) for p in (PAPER_SOURCES / "sections").glob("*.tex")),
    output:
        # the PDF only where a TeX installation is present; without one the sources are still written
        *(
            [report("paper/main.pdf", caption="../report/paper.rst", category="Paper", subcategory="Manuscript")]
            if LATEXMK
            else []
        ),
        generated=directory("paper/generated"),
    log:
        "results/logs/paper.log",
    conda:
        ENV
    params:
        models=MODELS,
        settings=SETTINGS,
        directions=config["directions"],
        version=config["paper_version"],
        paper_sources=lambda w, input: str(Path(input.main).parent),
        latexmk=LATEXMK,
        patching=config["patching"],
        amplification=config["amplification"],
    message:
        "The regenerated paper: macros, tables and figure blocks into paper/generated/"
        + (", then latexmk" if LATEXMK else " (no TeX installation: sources only)")
    script:
        "../scripts/paper.py"
