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
