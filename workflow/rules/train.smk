# train: one run = (dataset, model, variant, seed) -> results/runs/{dataset}/{model}/{variant}/seed{seed}/
# A run killed midway leaves checkpoint.pt in its folder; running the workflow again resumes it.


rule train:
    input:
        sequences="resources/sequences/{dataset}.txt",
    output:
        metrics=f"{RUN_DIR}/metrics.json",
        history=f"{RUN_DIR}/history.csv",
        ranks=f"{RUN_DIR}/user_ranks.npz",
        model=f"{RUN_DIR}/model.pt",
    params:
        elcrec=ELCREC,
        settings=run_settings_json,
        run_dir=lambda wildcards: RUN_DIR.format(**wildcards),
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
        " --dataset {wildcards.dataset:q} --variant {wildcards.variant:q} --run-dir {params.run_dir:q}"
