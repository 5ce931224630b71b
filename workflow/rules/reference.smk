# reference: the authors' released ELCRec checkpoints (a `reference` source of a dataset's paper
# route, fetched and verified by rule `download`) -> imported with that dataset's ELCRec layers and
# clusters -> evaluated with our evaluator on the dataset's sequence file. Table 1 shows the
# numbers beside the paper's ELCRec row and our runs.


rule reference:
    input:
        checkpoint=reference_checkpoint,
        sequences="resources/sequences/{dataset}.txt",
    output:
        model="results/reference/{dataset}/model.pt",
        metrics="results/reference/{dataset}/metrics.json",
    params:
        elcrec=ELCREC,
        layers=lambda wildcards: reference_setting(wildcards, "layers"),
        clusters=lambda wildcards: reference_setting(wildcards, "clusters"),
    log:
        "logs/reference/{dataset}.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "({params.elcrec} import-reference {input.checkpoint:q} --layers {params.layers} --clusters {params.clusters}"
        " --output {output.model:q}"
        " && {params.elcrec} evaluate {output.model:q} --sequences {input.sequences:q} --device cpu"
        " --json {output.metrics:q}) 2> {log:q}"
