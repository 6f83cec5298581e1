# The model organism: trained from scratch on this pipeline's own stimuli (`make organism` retrains it).


rule train_organism:
    message:
        "Training the model organism from scratch (acceptance: held-out canonical accuracy >= "
        "{params.train[target_accuracy]} in every setting x direction)"
    output:
        directory("results/models/organism"),
    log:
        "results/logs/train_organism.log",
    params:
        organism=config["organism"],
        train=config["organism"]["train"],
        seed=config["seed"],
    threads: 8  # capped at --cores locally; the CPUs a cluster job asks for
    resources:
        mem_mb=8000,
        runtime=config["organism"]["train"]["max_minutes"] + 30,  # training cap + the acceptance check
    conda:
        ENV
    script:
        "../scripts/train_organism.py"


rule untrained_twin:
    message:
        "Untrained twin of {wildcards.model}: same architecture and seed, no training"
    input:
        model_input,
    output:
        directory("results/models/{model}-untrained"),
    log:
        "results/logs/untrained_twin/{model}.log",
    params:
        seed=config["seed"],
    resources:
        mem_mb=model_mem_mb,  # the twin has the weights of {model}
    conda:
        ENV
    script:
        "../scripts/untrained_twin.py"
