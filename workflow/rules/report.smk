# report: results/tables -> figures + Jinja2 -> results/report/report.html (self-contained) and report.md.
# Reads only the tables and the templates, so it re-renders without touching any run.


rule report:
    input:
        tables=[f"results/tables/{name}.csv" for name in TABLE_NAMES],
        scale=SCALE_TABLES,
        templates=REPORT_TEMPLATES,
    output:
        html="results/report/report.html",
        markdown="results/report/report.md",
    params:
        elcrec=ELCREC,
    log:
        "logs/report.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} report --tables results/tables --out results/report"


# `snakemake --cores 1 rerender`: the tables and the report again from whatever runs results/runs
# holds, whichever config trained them; it trains nothing and needs no --configfile. (The
# report's own target, results/report/report.html, is the report of this config's grid, so it
# first trains whatever runs of the grid are missing.) No output files: it runs whenever named.
rule rerender:
    input:
        paper=PAPER_FILE,
        claims=CLAIMS_FILE,
        templates=REPORT_TEMPLATES,
    params:
        elcrec=ELCREC,
        tolerance=config["report"]["tolerance_pct"],
    log:
        analyse="logs/rerender/analyse.log",
        report="logs/rerender/report.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log.analyse:q} analyse --runs results/runs --sequences-dir resources/sequences"
        " --paper {input.paper:q} --claims {input.claims:q} --reference results/reference"
        " --tolerance {params.tolerance} --out results/tables"
        " && {params.elcrec} --log {log.report:q} report --tables results/tables --out results/report"
