import os

# ELCRec reproduction pipeline. Full run:   snakemake --cores all --resources gpu=1
# Smoke run (tiny data, CPU):              snakemake --cores 2 --configfile config/smoke.yaml
# Layout and data flow: README.md; config: config/config.yaml (validated by config/schema.yaml).

# Anchored to the repository so `--directory elsewhere` works; --configfile adds on top of it.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
