# train: one run = (dataset, model, variant, seed) -> results/runs/{dataset}/{model}/{variant}/seed{seed}/
# A run killed midway leaves checkpoint.pt in its folder; running the workflow again resumes it.
# pretrain: models with a pre-training stage (S3-Rec, DSSRec) -> results/pretrain/{dataset}/{model}/{pretraining}/,
# one per dataset and `pretraining` name, shared by every fine-tuning run that names it; resumes likewise.


rule pretrain:
    input:
        sequences="resources/sequences/{dataset}.txt",
        attributes="resources/sequences/{dataset}.attributes.json",
    output:
        pretrained=f"{PRETRAIN_DIR}/pretrained.pt",
        metrics=f"{PRETRAIN_DIR}/metrics.json",
        history=f"{PRETRAIN_DIR}/history.csv",
    params:
        elcrec=ELCREC,
        settings=pretraining_settings_json,
        out_dir=lambda wildcards: PRETRAIN_DIR.format(**wildcards),
    threads: pretraining_threads
    resources:
        gpu=lambda wildcards: pretraining_gpu_resources(wildcards)["gpu"],
        gpu_slot=lambda wildcards: pretraining_gpu_resources(wildcards)["gpu_slot"],
    benchmark:
        f"{PRETRAIN_DIR}/benchmark.tsv"
    log:
        "logs/pretrain/{dataset}/{model}/{pretraining}.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} pretrain --sequences {input.sequences:q} --attributes {input.attributes:q}"
        " --model {wildcards.model:q} --settings {params.settings:q} --threads {threads}"
        " --dataset {wildcards.dataset:q} --out-dir {params.out_dir:q}"


# import_pretrained: an official pre-trained model (role `pretrained` of the dataset's route: S3-Rec's
# reproduce/*.pt) -> the pre-training named `official`, which fine-tuning runs name like their own
ruleorder: import_pretrained > pretrain


rule import_pretrained:
    input:
        state=official_pretrained_file,
        sequences="resources/sequences/{dataset}.txt",
        attributes="resources/sequences/{dataset}.attributes.json",
    output:
        pretrained="results/pretrain/{dataset}/{model}/official/pretrained.pt",
        metrics="results/pretrain/{dataset}/{model}/official/metrics.json",
    params:
        elcrec=ELCREC,
        settings=lambda wildcards: pretraining_settings_json(wildcards, "official"),
        out_dir="results/pretrain/{dataset}/{model}/official",
    log:
        "logs/pretrain/{dataset}/{model}/official.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} import-pretrained {input.state:q} --sequences {input.sequences:q}"
        " --attributes {input.attributes:q} --model {wildcards.model:q} --settings {params.settings:q}"
        " --dataset {wildcards.dataset:q} --out-dir {params.out_dir:q}"


rule train:
    input:
        sequences="resources/sequences/{dataset}.txt",
        pretrained=pretrained_input,
    output:
        metrics=f"{RUN_DIR}/metrics.json",
        history=f"{RUN_DIR}/history.csv",
        ranks=f"{RUN_DIR}/user_ranks.npz",
        model=f"{RUN_DIR}/model.pt",
    params:
        elcrec=ELCREC,
        settings=run_settings_json,
        run_dir=lambda wildcards: RUN_DIR.format(**wildcards),
        pretrained=pretrained_argument,
    threads: run_threads
    resources:
        gpu=lambda wildcards: run_gpu_resources(wildcards)["gpu"],
        gpu_slot=lambda wildcards: run_gpu_resources(wildcards)["gpu_slot"],
    benchmark:
        f"{RUN_DIR}/benchmark.tsv"
    log:
        "logs/train/{dataset}/{model}/{variant}/seed{seed}.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} train --sequences {input.sequences:q} --model {wildcards.model:q}"
        " --settings {params.settings:q} --threads {threads} --seed {wildcards.seed}"
        " --dataset {wildcards.dataset:q} --variant {wildcards.variant:q} --run-dir {params.run_dir:q}{params.pretrained}"
