# Table 2: amplifying vision-derived ordering directions at the LM input (paper §5.7), with the α chosen on a
# held-out development split, random-direction nulls and every item re-evaluated. Testbeds:
#   synthetic  harder synthetic scenes (cluttered, photo-like backgrounds) - the default, every model
#   whatsup    What'sUp composites (paper v1's testbed) - only when data.whatsup_dir is set
#   coco       COCO-spatial two-object questions (paper v2's Table 2) - only when data.coco_dir is set
rule amp_testbed:
    input:
        model=model_input,
        check="results/checks/{model}.json",  # the model's canvas
    output:
        table="results/amplification/{model}/{testbed}/items.parquet",
        images=directory("results/amplification/{model}/{testbed}/images"),
    log:
        "results/logs/amplification/{model}/{testbed}_testbed.log",
    wildcard_constraints:
        testbed="synthetic|whatsup|coco",
    conda:
        ENV
    params:
        amp=AMP,
        data=DATA,
        seed=config["seed"],
        settings=SETTINGS,
        directions=config["directions"],
    message:
        "Amplification testbed '{wildcards.testbed}' for {wildcards.model}"
    script:
        "../scripts/amp_testbed.py"


rule amplify:
    input:
        model=model_input,
        check="results/checks/{model}.json",
        table="results/amplification/{model}/{testbed}/items.parquet",
        images="results/amplification/{model}/{testbed}/images",
    output:
        baseline="results/amplification/{model}/{testbed}/baseline.parquet",
        outcomes="results/amplification/{model}/{testbed}/outcomes.parquet",
        meta="results/amplification/{model}/{testbed}/meta.json",
    log:
        "results/logs/amplification/{model}/{testbed}.log",
    wildcard_constraints:
        testbed="synthetic|whatsup|coco",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=model_mem_mb,  # scales with the checkpoint (dualmech.resources)
    params:
        amp=AMP,
        seed=config["seed"],
        settings=SETTINGS,
    message:
        "Amplifying ordering directions: {wildcards.model} on {wildcards.testbed} "
        "({params.amp[n_random]} random directions, α chosen on the development split)"
    script:
        "../scripts/amplify.py"


rule table2:
    input:
        baseline=_amp_files("baseline.parquet"),
        outcomes=_amp_files("outcomes.parquet"),
        meta=_amp_files("meta.json"),
    output:
        csv="results/tables/table2.csv",
        md=report("results/tables/table2.md", caption="../report/table2.rst", category="Amplification"),
        tex="results/tables/table2.tex",
    log:
        "results/logs/table2.log",
    conda:
        ENV
    message:
        "Table 2: amplification vs none / random directions (evaluation split)"
    script:
        "../scripts/table2.py"


rule fig_amplification:
    input:
        outcomes=lambda w: _amp_files("outcomes.parquet", w.model),
        meta=lambda w: _amp_files("meta.json", w.model),
        code=PLOT_CODE,
    output:
        report(
            "figures/fig_amplification_{model}.pdf",
            caption="../report/table2.rst",
            category="Amplification",
            labels={"model": "{model}"},
        ),
    log:
        "results/logs/fig_amplification/{model}.log",
    conda:
        ENV
    message:
        "Amplification curves for {wildcards.model}"
    script:
        "../scripts/fig_amplification.py"


# ---------------------------------------------------------------- opt-in downloads (never part of `all`)
# Run these once, on a machine with internet, with data.*_dir unset; then set data.coco_dir: data/coco
# (data.whatsup_dir: data/whatsup) in config.yaml. gdown (pip install gdown) fetches the What'sUp files
# from the authors' Google Drive (ids from amitakamath/whatsup_vlms, dataset_zoo/aro_datasets.py).


rule download_coco:
    output:
        questions="data/coco/coco_qa_two_obj.json",
        instances="data/coco/annotations/instances_val2017.json",
        images=directory("data/coco/val2017"),
    log:
        "results/logs/download_coco.log",
    localrule: True
    conda:
        ENV
    message:
        "Downloading COCO val2017 images + instances and What'sUp's coco_qa_two_obj.json into data/coco"
    shell:
        "mkdir -p data/coco && (cd data/coco"
        " && curl -fL -o val2017.zip http://images.cocodataset.org/zips/val2017.zip && unzip -q val2017.zip"
        " && curl -fL -o annotations.zip http://images.cocodataset.org/annotations/annotations_trainval2017.zip"
        " && unzip -q -o annotations.zip annotations/instances_val2017.json"
        " && gdown --id 1TCEoM0mgFmz8T4cF7PQ3XJmO6JjtiQ-s --output coco_qa_two_obj.json"
        " && rm -f val2017.zip annotations.zip) > {log} 2>&1"


rule download_whatsup:
    output:
        directory("data/whatsup/controlled_images"),
    log:
        "results/logs/download_whatsup.log",
    localrule: True
    conda:
        ENV
    message:
        "Downloading What'sUp controlled images into data/whatsup"
    shell:
        "mkdir -p data/whatsup && (cd data/whatsup"
        " && gdown --no-cookies 19KGYVQjrV3syb00GgcavB2nZTW5NXX0H --output controlled_images.tar.gz"
        " && tar -xzf controlled_images.tar.gz && rm -f controlled_images.tar.gz) > {log} 2>&1"
