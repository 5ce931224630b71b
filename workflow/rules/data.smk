# download -> resources/raw/{dataset}/{filename} (+ provenance record)
# sequences -> resources/sequences/{dataset}.txt (+ stats for the dataset tables, + the item
#              attributes: JSON null for a dataset without, src/elcrec/data/attributes.py)


# Downloads run on the submitting host: cluster compute nodes often have no internet.
localrules:
    download,


# A file:// source is an input, so fixing the file re-runs its download (which, for a source
# trusted on first use, then names the record to delete: docs/DATASETS.md "Checksums"). Snakemake deletes
# the outputs before a re-run; `elcrec download` keeps the verified file under .verified/ and
# puts it back when a re-download cannot reach its source (src/elcrec/data/download.py).
rule download:
    input:
        local_source,
    output:
        file="resources/raw/{dataset}/{filename}",
        record="resources/provenance/{dataset}/{filename}.json",
    params:
        elcrec=ELCREC,
        args=download_args,
    log:
        "logs/download/{dataset}/{filename}.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} download {params.args} --dest {output.file:q} --record {output.record:q}"


rule sequences:
    input:
        raw=raw_files,
        records=provenance_records,
    output:
        sequences="resources/sequences/{dataset}.txt",
        stats="resources/sequences/{dataset}.stats.json",
        attributes="resources/sequences/{dataset}.attributes.json",
    params:
        elcrec=ELCREC,
        spec=dataset_spec,
    log:
        "logs/sequences/{dataset}.log",
    conda:
        "../../envs/elcrec.yaml"
    shell:
        "{params.elcrec} --log {log:q} sequences --spec {params.spec:q} --inputs {input.raw:q}"
        " --records {input.records:q} --output {output.sequences:q} --stats {output.stats:q}"
        " --attributes {output.attributes:q}"
