"""The Snakemake workflow as a user runs it: lint, the full DAG, config errors, the smoke run
end to end offline, and the paper route reproducing the benchmark files bit for bit."""

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, mirror_with
from run_helpers import markdown_tables

from elcrec.official import checks

# the checks against the official code whose fixture holds the weights: one job each, no data needed
FIXTURE_CHECKS = sorted(model for model, spec in checks().items() if spec["weights"] is None)

PROTOCOL_STATS = {  # PROTOCOL.md "Data": users / items / interactions
    "beauty": ("Beauty.txt", 22363, 12101, 198502),
    "sports": ("Sports_and_Outdoors.txt", 35598, 18357, 296337),
    "toys": ("Toys_and_Games.txt", 19412, 11924, 167597),
    "yelp": ("Yelp.txt", 30431, 20033, 316354),
}
SMOKE_DATASETS = ["beauty", "toys", "sports", "yelp", "ml-1m", "mind-small", "example-csv"]


def snakemake(*args: str, workdir: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    if workdir is not None:
        command += ["--directory", str(workdir)]
    command += args  # last: --config and --configfile take every value after them
    # the timeout guards against a hang, it checks no timing
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    return {name: int(count) for name, count in (line.split() for line in table)}


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout")
def test_own_data_folder_is_ignored_but_no_source_or_fixture_folder_is():
    # --no-index: the patterns alone decide, whether or not a path is tracked
    paths = ["data/purchases.tsv", "tests/data/new.csv", "src/elcrec/data/new.py"]
    result = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True)
    assert result.stdout.split() == ["data/purchases.tsv"], result.stderr


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr


def test_dry_run_of_the_full_config_lists_the_whole_dag(tmp_path):
    result = snakemake("-n", workdir=tmp_path)
    assert result.returncode == 0, result.stderr
    # 4 benchmark files + their 4 S3-Rec attribute files + ml-1m.zip + the two MIND zips + the 4
    # released checkpoints (rule `reference` imports and evaluates each) + the official S3-Rec Beauty
    # model; one sequence file per dataset; the experiment grid of config.yaml: Table 1 (all 14
    # columns) 168, the ablation 48 (12 shared with Table 1), sensitivity 36 (4 shared), cost 12,
    # departures 204, domains 12, official-weights 3, strong-baselines 36: 503 runs; S3-Rec's ISP,
    # default and train-negatives and DSSRec's default and e300 pre-trainings on each benchmark: 20
    # pre-trainings, and the imported official one
    assert job_counts(result.stdout) == {
        "download": 16,
        "sequences": 6,
        "pretrain": 20,
        "import_pretrained": 1,
        "official_check": 2,
        "official_check_fixture": len(FIXTURE_CHECKS),
        "train": 503,
        "reference": 4,
        "analyse": 1,
        "scale": 1,
        "report": 1,
        "all": 1,
        "total": 556 + len(FIXTURE_CHECKS),
    }
    assert "results/runs/beauty/elcrec/B+ICL/seed3/metrics.json" in result.stdout
    assert "results/pretrain/yelp/s3rec/ISP/pretrained.pt" in result.stdout
    assert "pending" not in result.stderr  # no Table 1 column waits for a model
    assert "503 distinct runs in all, 21 pre-trainings" in result.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("downlaod:\n  retries: 3\n", "config: an unknown key 'downlaod' (did you mean 'download'?); allowed here:"),
        ("download:\n  retries: three\n", "config download.retries: 'three' is not of type 'integer'"),
        ("datasets:\n  beauty: {route: paper, sorces: []}\n", "config datasets.beauty: an unknown key 'sorces'"),
        ("models:\n  sasrec: {variant: {}}\n", "config models.sasrec: an unknown key 'variant' (did you mean"),
        ("models:\n  elcrec: {datasets: {beauty: {alfa: 1}}}\n", "unknown setting(s) ['alfa']"),
        ("training: {epochs: three}\n", "config training.epochs: 'three' is not a whole number"),
        ("training: {device: gpu}\n", "config training.device: 'gpu' is not auto, cpu, cuda or cuda:N"),
        ("training: {lr: -0.001}\n", "config training.lr: -0.001 must be greater than 0"),
        (
            "models:\n  elcrec: {datasets: {beauty: {alpha: ten}}}\n",
            "models.elcrec.datasets.beauty.alpha: 'ten' is not",
        ),
        ("datasets:\n  beauty: {preprocessing: {user_k: 10}}\n", "config datasets.beauty: route 'paper' has"),
        ("experiments:\n  ablation: {datasets: [beuty]}\n", "experiments.ablation.datasets: ['beuty'] are not"),
        ("experiments:\n  cost: {runs: [[elcrec, fast]]}\n", "experiments.cost: models.elcrec: no variant 'fast'"),
    ],
)
def test_config_errors_stop_before_any_job_and_name_the_key(tmp_path, override, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(override)
    result = snakemake("-n", "--configfile", str(bad), workdir=tmp_path)
    assert result.returncode != 0 and expected in result.stdout + result.stderr
    assert not (tmp_path / "resources").exists()
    # the cause is the message, not the first line of a dump of the schema and the whole config
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) <= 6 and expected in "\n".join(lines[-3:]), lines


def test_unknown_route_is_one_clear_error(tmp_path):
    result = snakemake("-n", "--config", "datasets={'beauty': {'route': 'rare'}}", workdir=tmp_path)
    assert result.returncode != 0 and "config datasets.beauty.route: 'rare'" in result.stdout + result.stderr


def test_a_failing_job_s_own_message_reaches_the_terminal_and_its_log(tmp_path):
    source = {"name": "interactions.csv", "url": (FIXTURES / "raw/interactions.csv").as_uri(), "sha256": "0" * 64}
    config = tmp_path / "bad.yaml"
    config.write_text(json.dumps({"datasets": {"example-csv": {"sources": [source]}}}))  # JSON is YAML
    target = "resources/raw/example-csv/interactions.csv"
    result = snakemake("--cores", "1", "--configfile", str(config), "--", target, workdir=tmp_path)
    cause = "elcrec download: error: interactions.csv: sha256 mismatch for the file from"
    assert result.returncode != 0 and cause in result.stderr  # snakemake's own output, not only the log
    assert cause in (tmp_path / "logs/download/example-csv/interactions.csv.log").read_text()
    assert not (tmp_path / target).exists()


def test_trust_on_first_use_through_the_workflow_fix_reset_and_a_forced_re_download_that_fails(tmp_path):
    source = tmp_path / "mine" / "purchases.csv"
    source.parent.mkdir()
    shutil.copyfile(FIXTURES / "raw/interactions.csv", source)
    config = tmp_path / "mine.yaml"
    entry = {"name": "interactions.csv", "url": source.as_uri(), "sha256": None}
    config.write_text(json.dumps({"datasets": {"example-csv": {"sources": [entry]}}}))
    target = "resources/raw/example-csv/interactions.csv"
    record = f"{target}.tofu.sha256"
    provenance = tmp_path / "resources/provenance/example-csv/interactions.csv.json"

    def download(*options):
        return snakemake("--cores", "1", *options, "--configfile", str(config), "--", target, workdir=tmp_path)

    assert download().returncode == 0 and (tmp_path / record).exists()
    first = (tmp_path / target).read_bytes()

    # fixing the source re-runs its download, which stops and names the record that trusts the old bytes,
    # every time until that record is deleted
    fixed = first + b"u999,i1,1700000000\n"
    source.write_bytes(fixed)
    later = (tmp_path / target).stat().st_mtime + 10
    os.utime(source, (later, later))
    for _ in range(2):
        refused = download()
        assert refused.returncode != 0 and f"recorded when it was first trusted in {record}" in refused.stderr
        assert f"delete {record} and run again" in refused.stderr and not (tmp_path / target).exists()

    (tmp_path / record).unlink()  # the documented reset
    assert download().returncode == 0 and (tmp_path / target).read_bytes() == fixed
    assert (tmp_path / record).read_text().split()[0] == hashlib.sha256(fixed).hexdigest()

    # a forced re-download that cannot reach its source puts the verified file back, and says so
    source.unlink()
    forced = download("--forcerun", "download")
    assert forced.returncode == 0 and "elcrec download: warning: interactions.csv: trust-on-first-use" in forced.stderr
    assert (tmp_path / target).read_bytes() == fixed
    assert "no such file" in json.loads(provenance.read_text())["download_error"]


def test_own_data_config_plans_only_its_chosen_runs_and_a_target_goes_before_configfile_or_after_dashes(tmp_path):
    own = str(REPO / "config" / "own-data.yaml")
    result = snakemake("-n", "--configfile", own, workdir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {"download": 1, "sequences": 1, "train": 2, "analyse": 1, "report": 1, "all": 1, "total": 9}
    counts["official_check_fixture"] = 2  # SASRec's checks against its official codes; ELCRec's needs its weights
    assert job_counts(result.stdout) == counts  # none of the paper's 352 runs, no scale study
    assert "experiment mine: 2 runs (0 shared with other experiments)\n2 distinct runs in all" in result.stderr
    assert "results/runs/example-csv/elcrec/ELCRec/seed1/metrics.json" in result.stdout

    target = "results/runs/example-csv/sasrec/default/seed1/metrics.json"
    for args in ((target, "--configfile", own), ("--configfile", own, "--", target)):
        one = snakemake("-n", *args, workdir=tmp_path)
        assert one.returncode == 0 and job_counts(one.stdout) == {"download": 1, "sequences": 1, "train": 1, "total": 3}
    # docs/DATASETS.md shows the file as it is
    assert (REPO / "config" / "own-data.yaml").read_text() in (REPO / "docs" / "DATASETS.md").read_text()


def test_rerender_makes_tables_and_report_from_the_runs_there_whichever_config_trained_them(tmp_path):
    from run_helpers import write_run

    for seed in (1, 2):  # as a smoke run leaves them: two seeds, where config.yaml expects three
        write_run(tmp_path / "results/runs", "beauty", "elcrec", "ELCRec", seed, 0.5)
        write_run(tmp_path / "results/runs", "beauty", "sasrec", "default", seed, 0.4)
    # the report's own target is the report of the config's grid: without the config of the runs, it trains
    grid = snakemake("-n", "results/report/report.html", workdir=tmp_path)
    assert grid.returncode == 0 and job_counts(grid.stdout)["train"] == 503
    for config in ([], ["--configfile", str(REPO / "config" / "smoke.yaml")]):
        planned = snakemake("-n", "rerender", *config, workdir=tmp_path)
        assert planned.returncode == 0 and job_counts(planned.stdout) == {"rerender": 1, "total": 1}

    before = {path: path.stat().st_mtime_ns for path in (tmp_path / "results/runs").rglob("*")}
    result = snakemake("--cores", "1", "rerender", workdir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert before == {path: path.stat().st_mtime_ns for path in (tmp_path / "results/runs").rglob("*")}
    assert "prov-beauty--elcrec--ELCRec" in (tmp_path / "results/report/report.html").read_text()
    missing = (tmp_path / "results/tables/missing.csv").read_text().splitlines()
    seeds = {line.split(",")[4] for line in missing[1:]}
    assert missing[0].split(",")[4] == "seed" and seeds == {"1", "2"}  # the runs' seeds, not config.yaml's 1-3


def test_smoke_profile_runs_download_to_trained_runs_offline(tmp_path):
    result = snakemake("--cores", "2", "--configfile", str(REPO / "config" / "smoke.yaml"), workdir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in SMOKE_DATASETS:
        stats = json.loads((tmp_path / f"resources/sequences/{name}.stats.json").read_text())
        text = (tmp_path / f"resources/sequences/{name}.txt").read_bytes()
        assert stats["sequence_sha256"] == hashlib.sha256(text).hexdigest()
        assert stats["min_length"] >= 5 and stats["users"] > 50, name
    yelp = json.loads((tmp_path / "resources/sequences/yelp.stats.json").read_text())
    assert yelp["steps"]["time_window"]["interactions"] == yelp["steps"]["raw"]["interactions"] - 2
    assert yelp["sources"][0]["verification"].startswith("trust-on-first-use")
    assert (tmp_path / "resources/raw/yelp/yelp_academic_dataset_review.json.tofu.sha256").exists()
    # every dataset's attributes file: a mapping over all its items, or the null marker (toys, example-csv)
    for name in SMOKE_DATASETS:
        stats = json.loads((tmp_path / f"resources/sequences/{name}.stats.json").read_text())
        attributes = json.loads((tmp_path / f"resources/sequences/{name}.attributes.json").read_text())
        if name in ("toys", "example-csv"):
            assert attributes is None and stats["attributes"] is None, name
        else:
            assert sorted(map(int, attributes)) == list(range(1, stats["max_item_id"] + 1)), name
            assert stats["attributes"]["items_with_attributes"] > 0, name

    runs = sorted(path.relative_to(tmp_path / "results/runs") for path in tmp_path.glob("results/runs/*/*/*/*"))
    variants = [
        "bert4rec/default",
        "bprmf/default",
        "caser/default",
        "cl4srec/default",
        "dcrec/default",
        "dssrec/default",
        "elcrec/B",
        "elcrec/B+ELCM",
        "elcrec/B+ICL",
        "elcrec/ELCRec",
        "gru4rec/default",
        "iclrec/default",
        "iocrec/default",
        "maerec/default",
        "pop/default",
        "s3rec/ISP",
        "sasrec/default",
        "sasrec/ce",  # beyond the paper: experiment strong-baselines
        "iclrec/ce",
        "elcrec/ce",
    ]
    extra = [  # one seed each: the sensitivity points, the cost runs, the departures, the domains
        "beauty/bert4rec/lr1e-3/seed1",
        "beauty/bprmf/adam-lr1e-3/seed1",
        "beauty/caser/e300/seed1",
        "beauty/cl4srec/sslrec/seed1",
        "beauty/dcrec/aligned-sim/seed1",
        "beauty/elcrec/alpha-0.1/seed1",
        "beauty/elcrec/cost/seed1",
        "beauty/elcrec/k-2/seed1",
        "beauty/elcrec/paper-loss/seed1",
        "beauty/elcrec/random-init/seed1",
        "beauty/elcrec/shared-views/seed1",
        "beauty/iclrec/cost/seed1",
        "beauty/iclrec/fresh-kmeans/seed1",
        "beauty/dssrec/pretrain300/seed1",
        "beauty/iocrec/e300/seed1",
        "beauty/iocrec/last-item/seed1",
        "beauty/maerec/e300/seed1",
        "beauty/maerec/paper-paths/seed1",
        "beauty/s3rec/cost/seed1",
        "beauty/s3rec/default/seed1",
        "beauty/s3rec/official-pretrained/seed1",
        "beauty/s3rec/train-negatives/seed1",
        "beauty/sasrec/kang205/seed1",
        "mind-small/elcrec/ELCRec/seed1",
        "mind-small/iclrec/default/seed1",
        "ml-1m/elcrec/ELCRec/seed1",
        "ml-1m/iclrec/default/seed1",
    ]
    expected = sorted([f"beauty/{v}/seed{s}" for v in variants for s in (1, 2)] + extra)
    assert sorted(str(path) for path in runs) == expected
    for run in runs:
        metrics = json.loads((tmp_path / "results/runs" / run / "metrics.json").read_text())
        assert metrics["epochs_run"] <= 3 and metrics["settings"]["clusters" if "elcrec" in str(run) else "epochs"]
        assert {"benchmark.tsv", "history.csv", "user_ranks.npz", "model.pt"} <= {
            path.name for path in (tmp_path / "results/runs" / run).iterdir()
        }
    elcrec = json.loads((tmp_path / "results/runs/beauty/elcrec/ELCRec/seed1/metrics.json").read_text())
    assert (elcrec["settings"]["clusters"], elcrec["settings"]["alpha"], elcrec["settings"]["fusion"]) == (
        4,
        10,
        "shift",
    )

    def settings(run):
        return json.loads((tmp_path / "results/runs" / run / "metrics.json").read_text())["settings"]

    assert (
        settings("beauty/elcrec/alpha-0.1/seed1")["alpha"],
        settings("beauty/elcrec/alpha-0.1/seed1")["clusters"],
    ) == (
        0.1,
        4,
    )
    assert (
        settings("beauty/elcrec/k-2/seed1")["clusters"] == 2
        and settings("ml-1m/elcrec/ELCRec/seed1")["fusion"] == "concat"
    )
    cost = json.loads((tmp_path / "results/runs/beauty/iclrec/cost/seed1/metrics.json").read_text())
    assert cost["epochs_run"] == 2 and cost["mean_memory_bytes"] > 0  # fixed epochs, Table 2's memory
    assert settings("beauty/bprmf/default/seed1")["optimizer"] == "rmsprop-tf1"  # the official loop
    assert settings("beauty/bprmf/adam-lr1e-3/seed1")["optimizer"] == "adam"
    assert settings("beauty/caser/e300/seed1")["epochs"] == 2
    kang205 = settings("beauty/sasrec/kang205/seed1")  # Table 12's SASRec code: its encoder and sampler
    assert (kang205["architecture"], kang205["batch_unit"], kang205["epochs"]) == ("kang205", "random-users", 2)
    assert (
        settings("beauty/elcrec/random-init/seed1")["centre_init"],
        settings("beauty/elcrec/paper-loss/seed1")["cluster_loss"],
        settings("beauty/elcrec/shared-views/seed1")["shared_views"],
        settings("beauty/elcrec/shared-views/seed1")["clusters"],
    ) == ("random", "paper", True, 4)
    assert elcrec["test_other_masking"]["masking"] == "exclude"  # evidence for the report's Paper vs code

    html = (tmp_path / "results/report/report.html").read_text()
    assert "Not the paper's data" in html and "prov-beauty--elcrec--B_ICL" in html
    assert 'href="#prov-beauty--bprmf--adam-lr1e-3"' in html  # the departures sit beside Table 1
    assert 'href="#prov-beauty--elcrec--shared-views"' in html
    assert (tmp_path / "results/report/report.md").exists() and (tmp_path / "results/tables/table1.csv").exists()
    # the paper's claims: a verdict per claim, some decided on the smoke runs (ML-1M's gain over ICLRec
    # has both runs), the rest waiting for runs or pending models
    with open(tmp_path / "results/tables/claims.csv", newline="", encoding="utf-8") as handle:
        verdicts = {row["verdict"] for row in csv.DictReader(handle)}
    assert "not yet testable" in verdicts and verdicts & {"holds", "does not hold"} and 'id="claims"' in html
    # the analysis ran after the smoke grid finished: the runs the paper's tables need beyond it are outside it
    assert "every run of the grid of <code>config/config.yaml + config/smoke.yaml</code>" in html
    for model in ("dcrec", "maerec", "iocrec", "dssrec"):  # Baselines II and III are trained and shown
        assert f'href="#prov-beauty--{model}--default"' in html
    assert 'href="#prov-beauty--s3rec--ISP"' in html and 'href="#prov-beauty--s3rec--default"' in html
    # pre-trained once per (dataset, model, pretraining) and fine-tuned from: S3-Rec's three, DSSRec's two
    pretrained = sorted(
        str(p.relative_to(tmp_path / "results/pretrain")) for p in tmp_path.glob("results/pretrain/*/*/*")
    )
    assert pretrained == [
        "beauty/dssrec/default",
        "beauty/dssrec/e300",
        "beauty/s3rec/ISP",
        "beauty/s3rec/default",
        "beauty/s3rec/official",
        "beauty/s3rec/train-negatives",
    ]
    official = json.loads((tmp_path / "results/pretrain/beauty/s3rec/official/metrics.json").read_text())
    assert official["imported_from"]["file"] == "S3Rec-Beauty-epochs-150.pt" and official["pretraining_seconds"] is None
    record = json.loads((tmp_path / "results/runs/beauty/s3rec/official-pretrained/seed1/metrics.json").read_text())
    assert record["pretraining"]["file"] == "results/pretrain/beauty/s3rec/official/pretrained.pt"
    check = json.loads((tmp_path / "results/official/beauty/s3rec.json").read_text())
    assert check["status"].startswith("not compared: S3Rec-Beauty-epochs-150.pt is not the official file")
    assert 'id="official"' in html and "not the official file" in html
    for model in FIXTURE_CHECKS:  # on the fixtures' own weights: compared in the smoke run too
        record = json.loads((tmp_path / f"results/official/fixture/{model}.json").read_text())
        assert record["status"] == "equal within float32 rounding", model
    for seed in (1, 2):
        record = json.loads((tmp_path / f"results/runs/beauty/s3rec/ISP/seed{seed}/metrics.json").read_text())
        assert record["pretraining"]["file"] == "results/pretrain/beauty/s3rec/ISP/pretrained.pt"
        assert record["pretraining"]["epochs_run"] == 2
    isp = json.loads((tmp_path / "results/pretrain/beauty/s3rec/ISP/metrics.json").read_text())
    assert set(isp["final_losses"]) == {"loss_mip", "loss_sp", "loss_total"}  # no attribute objectives
    default = json.loads((tmp_path / "results/pretrain/beauty/s3rec/default/metrics.json").read_text())
    assert {"loss_aap", "loss_map"} <= set(default["final_losses"])
    s3rec_cost = json.loads((tmp_path / "results/runs/beauty/s3rec/cost/seed1/metrics.json").read_text())
    assert s3rec_cost["pretraining"]["pretraining"] == "default"  # the cost run starts from the default one
    with open(tmp_path / "results/tables/efficiency.csv", newline="", encoding="utf-8") as handle:
        rows = {(row["dataset"], row["column"]): row for row in csv.DictReader(handle)}
    assert float(rows[("beauty", "S3-Rec")]["pretraining_seconds"]) > 0
    scale = (tmp_path / "results/tables/scale.csv").read_text().splitlines()
    assert len(scale) == 1 + 2 * 2 and 'id="scale"' in html and "iclrec_estep" in html  # 2 methods x 2 sizes

    again = snakemake("--cores", "2", "--configfile", str(REPO / "config" / "smoke.yaml"), workdir=tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    # the report re-renders from existing results without touching any run
    before = {path: path.stat().st_mtime_ns for path in (tmp_path / "results/runs").rglob("*") if path.is_file()}
    for folder in ("results/report", "results/tables"):
        shutil.rmtree(tmp_path / folder)
    smoke = ("--configfile", str(REPO / "config" / "smoke.yaml"))  # last: it takes every value after it
    rerender = snakemake("--cores", "1", "results/report/report.html", *smoke, workdir=tmp_path)
    assert rerender.returncode == 0, rerender.stderr[-3000:]
    assert job_counts(rerender.stdout + rerender.stderr) == {"analyse": 1, "scale": 1, "report": 1, "total": 3}
    after = {path: path.stat().st_mtime_ns for path in (tmp_path / "results/runs").rglob("*") if path.is_file()}
    assert after == before and (tmp_path / "results/report/report.html").exists()

    # the smoke report's Markdown tables are whole, and two renders of the same tables are identical
    for rows in markdown_tables((tmp_path / "results/report/report.md").read_text(encoding="utf-8")):
        assert len({len(row.strip().strip("|").split("|")) for row in rows}) == 1, rows[:2]
    renders = []
    for name in ("one", "two"):
        command = [sys.executable, "-m", "elcrec", "report", "--tables", "results/tables", "--out", f"renders/{name}"]
        environment = os.environ | {"SOURCE_DATE_EPOCH": "1700000000", "PYTHONPATH": str(REPO / "src")}
        subprocess.run(command, cwd=tmp_path, env=environment, check=True, capture_output=True)
        renders.append([(tmp_path / "renders" / name / file).read_bytes() for file in ("report.html", "report.md")])
    assert renders[0] == renders[1]
    section = (tmp_path / "results/report/report.html").read_text(encoding="utf-8").split('id="cross-entropy"')[1]
    assert "These are not the paper's experiments" in section and "Not the paper's data" in section


def test_paper_route_reproduces_the_benchmark_files_bit_for_bit(tmp_path):
    from elcrec.data.registry import load_registry

    registry = load_registry([REPO / "config" / "datasets.yaml"])
    sums = {s["name"]: s["sha256"] for name in PROTOCOL_STATS for s in registry[name]["routes"]["paper"]["sources"]}
    attribute_files = [filename.replace(".txt", "_item2attributes.json") for filename, *_ in PROTOCOL_STATS.values()]
    mirror = mirror_with(tmp_path / "mirror", *(filename for filename, *_ in PROTOCOL_STATS.values()), *attribute_files)
    targets = [f"resources/sequences/{name}.stats.json" for name in PROTOCOL_STATS]
    result = snakemake("--cores", "2", "--config", f"mirror_dir={mirror}", "--", *targets, workdir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (filename, users, items, interactions) in PROTOCOL_STATS.items():
        produced = (tmp_path / f"resources/sequences/{name}.txt").read_bytes()
        assert hashlib.sha256(produced).hexdigest() == sums[filename]
        stats = json.loads((tmp_path / f"resources/sequences/{name}.stats.json").read_text())
        assert (stats["users"], stats["items"], stats["interactions"]) == (users, items, interactions)
        assert stats["sources"][0]["verification"] == "registry checksum"
        # the attributes are S3-Rec's file: the same items with the same attribute ids (as sets: S3-Rec
        # reads them into a multi-hot vector, so its few repeats carry nothing)
        s3rec_name = filename.replace(".txt", "_item2attributes.json")
        assert stats["sources"][1]["verification"] == "registry checksum"
        assert stats["sources"][1]["sha256"] == sums[s3rec_name]
        s3rec = json.loads((mirror / s3rec_name).read_text())
        written = json.loads((tmp_path / f"resources/sequences/{name}.attributes.json").read_text())
        assert written == {item: sorted(set(ids)) for item, ids in s3rec.items()}
        assert list(written) == sorted(written, key=int)
        assert stats["attributes"]["items"] == items and stats["attributes"]["vocabulary"] == len(
            {value for ids in s3rec.values() for value in ids}
        )


def test_released_checkpoints_can_be_left_out(tmp_path):
    result = snakemake("-n", "--config", "released_checkpoints=False", workdir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    assert "reference" not in counts and counts["download"] == 12  # no released checkpoint (the S3-Rec model is)


def test_rule_reference_evaluates_the_released_beauty_checkpoint_to_table_1(tmp_path):
    mirror = mirror_with(tmp_path / "mirror", "Beauty.txt", "Beauty_item2attributes.json", "ELCRec-Beauty-1.pt")
    target = "results/reference/beauty/metrics.json"
    result = snakemake("--cores", "2", "--config", f"mirror_dir={mirror}", "--", target, workdir=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / target).read_text())["metrics"]
    published = {"HR@5": 0.0529, "NDCG@5": 0.0355, "HR@20": 0.1079, "NDCG@20": 0.0509}  # Table 1
    assert {name: round(metrics[name], 4) for name in published} == published
    record = json.loads((tmp_path / "resources/provenance/beauty/ELCRec-Beauty-1.pt.json").read_text())
    assert record["verification"] == "registry checksum"


def test_the_slurm_profile_keeps_what_a_real_scheduler_needed():
    # found by running the smoke profile on a one-node SLURM (workflow/scripts/slurm_local.sh; README)
    import yaml

    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["config"] == ["jobs_per_gpu=1"]
    assert profile["cores"] >= 1  # remote execution leaves workflow.cores unset: rule scale needs it
    assert profile["slurm-status-command"] == "squeue"  # sacct hangs without slurmdbd
    defaults = profile["default-resources"]
    assert not {"cpus_per_task", "slurm_account", "slurm_partition", "gres"} & set(defaults)  # threads; defaults
    assert {"runtime", "mem_mb"} <= set(defaults)
