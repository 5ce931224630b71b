"""elcrec.cli.runs: `elcrec train`, `pretrain` and `evaluate` end to end on the fixtures."""

import json
import platform

from elcrec.cli import main


def test_train_then_evaluate_a_run(tmp_path, fixtures, capsys):
    sequences = str(fixtures / "benchmark" / "Beauty.txt")
    settings = json.dumps({"epochs": 2, "clusters": 4, "layers": 1, "device": "cpu"})
    run_dir = tmp_path / "run"
    args = ["train", "--sequences", sequences, "--model", "elcrec", "--settings", settings, "--seed", "2"]
    assert main([*args, "--threads", "1", "--run-dir", str(run_dir), "--variant", "ELCRec"]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["settings"]["threads"] == 1 and metrics["variant"] == "ELCRec"
    if platform.machine() in ("x86_64", "AMD64"):  # elcrec.process's FTZ/DAZ, recorded with the run
        assert metrics["device"].endswith(", subnormals flushed")
    kept = tmp_path / "kept"
    assert main(["--keep-subnormals", *args, "--threads", "1", "--run-dir", str(kept)]) == 0
    kept_metrics = json.loads((kept / "metrics.json").read_text())
    assert not kept_metrics["device"].endswith("flushed") and kept_metrics["test"] == metrics["test"]
    capsys.readouterr()
    assert (
        main(["evaluate", str(run_dir / "model.pt"), "--sequences", sequences, "--json", str(tmp_path / "m.json")]) == 0
    )
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert float(printed["NDCG@20"]) == round(metrics["test"]["NDCG@20"], 4)


def test_pretrain_then_fine_tune_from_it(tmp_path, fixtures, capsys):
    sequences = str(fixtures / "benchmark" / "Beauty.txt")
    attributes = str(fixtures / "benchmark" / "Beauty_item2attributes.json")
    settings = json.dumps({"pretrain_epochs": 1, "epochs": 1, "layers": 1, "device": "cpu", "pretrain_batch_size": 256})
    out = tmp_path / "pretrain"
    args = [
        "pretrain",
        "--sequences",
        sequences,
        "--attributes",
        attributes,
        "--model",
        "s3rec",
        "--settings",
        settings,
    ]
    assert main([*args, "--out-dir", str(out), "--dataset", "beauty"]) == 0
    assert "s3rec pre-training default: 1 epochs" in capsys.readouterr().err
    train = [
        "train",
        "--sequences",
        sequences,
        "--model",
        "s3rec",
        "--settings",
        settings,
        "--run-dir",
        str(tmp_path / "run"),
    ]
    assert main(train) == 2
    assert "fine-tunes a pre-training: give --pretrained" in capsys.readouterr().err
    assert main([*train, "--pretrained", str(out / "pretrained.pt")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["pretraining"]["epochs_run"] == 1 and metrics["pretraining"]["pretraining"] == "default"
    sasrec = ["train", "--sequences", sequences, "--model", "sasrec", "--settings", '{"epochs": 1}']
    assert main([*sasrec, "--run-dir", str(tmp_path / "s"), "--pretrained", str(out / "pretrained.pt")]) == 2
    assert "no pre-training stage" in capsys.readouterr().err
    # a dataset without attributes (the data stage's null marker): the default names it, ISP runs
    (tmp_path / "none.json").write_text("null\n")
    none = ["pretrain", "--sequences", sequences, "--attributes", str(tmp_path / "none.json"), "--model", "s3rec"]
    assert main([*none, "--settings", settings, "--out-dir", str(tmp_path / "p2"), "--dataset", "toys"]) == 2
    assert "dataset toys has no item attributes" in capsys.readouterr().err
    isp = json.dumps(json.loads(settings) | {"aap_weight": 0, "map_weight": 0})
    assert main([*none, "--settings", isp, "--out-dir", str(tmp_path / "p3")]) == 0


def test_train_refuses_unknown_settings(fixtures, tmp_path, capsys):
    args = ["train", "--sequences", str(fixtures / "benchmark" / "Beauty.txt"), "--model", "sasrec"]
    assert main([*args, "--settings", '{"alpah": 1}', "--run-dir", str(tmp_path)]) == 2
    assert "unknown setting(s) ['alpah'] for model 'sasrec'" in capsys.readouterr().err
    assert main([*args, "--settings", "[1]", "--run-dir", str(tmp_path)]) == 2


def test_evaluate_refuses_another_dataset(fixtures, tmp_path, capsys):
    beauty = str(fixtures / "benchmark" / "Beauty.txt")
    other = tmp_path / "other.txt"
    other.write_text("".join(f"{user} {user} {user + 1} {user + 2} 300\n" for user in range(1, 20)))
    settings = '{"epochs": 1, "device": "cpu", "layers": 1}'
    args = ["train", "--sequences", beauty, "--model", "sasrec", "--settings", settings, "--run-dir", str(tmp_path)]
    assert main(args) == 0
    code = main(["evaluate", str(tmp_path / "model.pt"), "--sequences", str(other)])
    assert code == 2 and "not the dataset this model was trained on" in capsys.readouterr().err
