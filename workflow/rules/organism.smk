# The model organisms: tiny LLaVAs trained on this pipeline's own stimuli (`make organisms` retrains them all).
# End to end (organism-lm), or the two-stage LLaVA recipe: stage 1 pretrains the vision tower alone
# (pretrain_vision), stage 2 trains projector + LM on the frozen tower (organism-vision, organism-dual).
# Training runs on one thread: the thread count changes the order of floating-point sums, and with it the
# trajectory (organism-dual, retrained on two threads, missed its bars after 8,000 steps; on one thread it is
# the committed checkpoint). Two organisms train side by side on two cores.

ORGANISMS = config["organism"]["variants"]


rule pretrain_vision:
    output:
        directory("results/models/organism-stage1"),
    log:
        "results/logs/pretrain_vision.log",
    conda:
        ENV
    threads: 1  # one thread (above): retraining reproduces the committed checkpoints
    resources:
        mem_mb=4000,
        runtime=config["organism"]["stage1"]["max_minutes"] + 10,
    params:
        stage1=config["organism"]["stage1"],
        seed=config["seed"],
    message:
        "Stage 1: pretraining the organisms' vision tower alone (objectives: {params.stage1[losses]})"
    script:
        "../scripts/pretrain_vision.py"


rule train_organism:
    input:
        unpack(stage1_input),
    output:
        directory("results/models/{organism}"),
    log:
        "results/logs/train_organism/{organism}.log",
    wildcard_constraints:
        organism=one_of(ORGANISMS),
    conda:
        ENV
    threads: 1  # as pretrain_vision
    resources:
        mem_mb=8000,
        runtime=max(config["organism"]["train"]["max_minutes"], config["organism"]["stage2"].get("max_minutes", 0)) + 30,
        # training cap + the acceptance check
    params:
        organism=config["organism"],
        seed=config["seed"],
    message:
        "Training the model organism {wildcards.organism} (acceptance: held-out canonical accuracy >= "
        "{params.organism[train][target_accuracy]} in every setting x direction, and the variant's bars)"
    script:
        "../scripts/train_organism.py"


rule untrained_twin:
    input:
        model_input,
    output:
        directory("results/models/{model}-untrained"),
    log:
        "results/logs/untrained_twin/{model}.log",
    conda:
        ENV
    resources:
        mem_mb=model_mem_mb,  # the twin has the weights of {model}
    params:
        seed=config["seed"],
        spec=twin_spec,  # read by the script from organism.json; here so that a changed spec rebuilds the twin
    message:
        "Untrained twin of {wildcards.model}: same architecture and seed, no training"
    script:
        "../scripts/untrained_twin.py"


# the run's organisms (config models whose name is an organism.variants entry) and their diagnostics
RUN_ORGANISMS = [m for m in MODELS if m in ORGANISMS]


rule organisms_table:
    input:
        [model_entry(m)["path"] for m in RUN_ORGANISMS],
        [f"{model_entry(m)['path']}/organism.json" for m in RUN_ORGANISMS],  # edited in place: the folder's time stays
    output:
        csv="results/tables/organisms.csv",
        md="results/tables/organisms.md",
        tex="results/tables/organisms.tex",
    log:
        "results/logs/organisms_table.log",
    conda:
        ENV
    params:
        organisms=RUN_ORGANISMS,
    message:
        "Organisms table: recipe, minutes per stage and diagnostics (canonical / shuffled / ablated)"
    script:
        "../scripts/organisms_table.py"
