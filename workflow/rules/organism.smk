# The model organism: trained from scratch on this pipeline's own stimuli (`make organism` retrains it).


rule train_organism:
    output:
        directory("results/models/organism"),
    log:
        "results/logs/train_organism.log",
    conda:
        ENV
    threads: 8  # capped at --cores locally; the CPUs a cluster job asks for
    resources:
        mem_mb=8000,
        runtime=config["organism"]["train"]["max_minutes"] + 30,  # training cap + the acceptance check
    params:
        organism=config["organism"],
        train=config["organism"]["train"],
        seed=config["seed"],
    message:
        "Training the model organism from scratch (acceptance: held-out canonical accuracy >= "
        "{params.train[target_accuracy]} in every setting x direction)"
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
    message:
        "Untrained twin of {wildcards.model}: same architecture and seed, no training"
    script:
        "../scripts/untrained_twin.py"
