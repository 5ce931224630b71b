# analysis: every run directory under results/runs -> the paper's tables in results/tables/*.csv
# (seed aggregation, significance tests, paper comparison, missing runs); reads no model weights.


rule analyse:
    input:
        runs=run_targets(),
        stats=[f"resources/sequences/{name}.stats.json" for name in DATASETS],
        paper=PAPER_FILE,
        claims=CLAIMS_FILE,
        reference=reference_targets(),
        official=official_check_targets(),
    output:
        [f"results/tables/{name}.csv" for name in TABLE_NAMES],
    params:
        elcrec=ELCREC,
        seeds=" ".join(map(str, ANALYSIS_SEEDS)),
        tolerance=config["report"]["tolerance_pct"],
        configs=" ".join(shlex.quote(path) for path in CONFIG_FILES),
    log:
        "logs/analyse.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} analyse --runs results/runs --sequences-dir resources/sequences"
        " --paper {input.paper:q} --claims {input.claims:q} --reference results/reference"
        " --seeds {params.seeds} --tolerance {params.tolerance} --out results/tables"
        " --grid-configs {params.configs}"


# Checked against the official code (docs/OFFICIAL.md): our model on the official weights of a dataset
# whose route ships them, against the fixture the official code made (tests/data/official)
rule official_check:
    wildcard_constraints:
        dataset="(?!fixture$)[^/]+",
    input:
        unpack(official_check_inputs),
        sequences="resources/sequences/{dataset}.txt",
        attributes="resources/sequences/{dataset}.attributes.json",
    output:
        "results/official/{dataset}/{model}.json",
    params:
        elcrec=ELCREC,
    log:
        "logs/official/{dataset}/{model}.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} check-official --model {wildcards.model:q} --weights {input.weights:q}"
        " --sequences {input.sequences:q} --attributes {input.attributes:q} --json {output:q}"


# The scale study (beyond the paper): ELCRec's cluster step vs ICLRec's E-step against the number
# of users, on synthetic data; it takes every core so that no other job disturbs its timings.
rule scale:
    output:
        "results/tables/scale.csv",
    params:
        elcrec=ELCREC,
        users=" ".join(str(users) for users in config["scale"]["users"]),
        clusters=config["scale"]["clusters"],
        threads=config["scale"]["threads"],
    threads: workflow.cores
    log:
        "logs/scale.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} scale --users {params.users} --clusters {params.clusters}"
        " --threads {params.threads} --out {output:q}"


# ... and where the fixture holds the official weights itself (a seeded initialisation): no data needed
rule official_check_fixture:
    wildcard_constraints:
        check="|".join(map(re.escape, OFFICIAL_CHECKS)),  # a model's, or a variant's official code
    input:
        fixture=lambda wildcards: official_fixture_files(wildcards.check),
    output:
        "results/official/fixture/{check}.json",
    params:
        elcrec=ELCREC,
    log:
        "logs/official/fixture/{check}.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} check-official --model {wildcards.check:q} --json {output:q}"
