import json

import numpy as np
import pytest
import torch
from conftest import FIXTURES, fetched

from elcrec import ElcrecError
from elcrec.data.sequences import SequenceData
from elcrec.settings import model_defaults
from elcrec.training import CHECKPOINT, NonFiniteLoss, Trainer, history_csv, load_model_file, run, scheduled_lr

BEAUTY = FIXTURES / "benchmark" / "Beauty.txt"


@pytest.fixture(scope="module")
def split():
    return SequenceData.load(BEAUTY).split(max_len=50)


def settings(model="elcrec", **overrides):
    small = {"epochs": 3, "device": "cpu", "threads": 1, "hidden_size": 16, "inner_size": 32, "layers": 1}
    if "clusters" in model_defaults(model):
        small["clusters"] = 4
    return model_defaults(model) | small | overrides


def test_a_run_writes_the_run_directory(split, tmp_path):
    record = run(split, "sasrec", settings("sasrec"), 1, tmp_path, {"dataset": "beauty", "data_sha256": "abc"})
    assert {p.name for p in tmp_path.iterdir()} == {
        "metrics.json",
        "history.csv",
        "user_ranks.npz",
        "model.pt",
        "train.log",
        "embeddings.npz",
    }
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(record))
    for key in (
        "test",
        "valid",
        "best_epoch",
        "epochs_run",
        "training_seconds",
        "seconds_per_epoch",
        "peak_memory_bytes",
        "settings",
        "data_sha256",
        "code_version",
        "device",
        "libraries",
    ):
        assert key in saved
    assert saved["epochs_run"] == 3 and set(saved["test"]) >= {"HR@5", "NDCG@20", "MRR"}
    assert saved["peak_memory_bytes"] > 0 and saved["data_sha256"] == "abc"
    # Table 2's average memory: at most the peak (two kernel counters, equal to within 1%)
    assert 0 < saved["mean_memory_bytes"] <= saved["peak_memory_bytes"] * 1.01
    # the same weights tested under the other history masking (evidence for the report)
    other = saved["test_other_masking"]
    assert other["masking"] == "exclude" and set(other["metrics"]) == set(saved["test"])
    assert all(0.0 <= value <= 1.0 for value in other["metrics"].values())
    history = (tmp_path / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss_next_item,loss_total,valid_HR@5") and len(history) == 4
    assert "memory_mb" in history[0].split(",")
    ranks = np.load(tmp_path / "user_ranks.npz")
    assert ranks["test"].shape == (split.n_users,)
    hr20 = float((ranks["test"] < 20).mean())
    assert hr20 == pytest.approx(saved["test"]["HR@20"])
    model, stored = load_model_file(tmp_path / "model.pt")
    assert stored["model"] == "sasrec" and stored["vocab_size"] == split.vocab_size


def recording_e_steps(monkeypatch) -> dict[str, list]:
    """(epoch, centroids) after every ICLRec E-step, in call order, under "calls"."""
    from elcrec.models.iclrec import ICLRec

    recorded: dict[str, list] = {"calls": []}
    original = ICLRec.on_epoch_start

    def recording(self, context):
        original(self, context)
        recorded["calls"].append((context.epoch, self.centroids.clone()))

    monkeypatch.setattr(ICLRec, "on_epoch_start", recording)
    return recorded


@pytest.mark.parametrize("model", ["elcrec", "iclrec"])
def test_resume_after_a_kill_ends_identically(split, tmp_path, monkeypatch, model):
    """ICLRec's E-step continues from the last epoch's centroids (`kmeans_start: continue`): they
    live in a model buffer, so the checkpoint carries them and the resumed E-steps match too."""
    chosen = settings(model, epochs=4)
    e_steps = recording_e_steps(monkeypatch)
    straight = run(split, model, chosen, 3, tmp_path / "straight")
    straight_e_steps, e_steps["calls"] = e_steps["calls"], []

    original = Trainer.train_epoch

    def killed_at_epoch_2(self):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_epoch", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run(split, model, chosen, 3, tmp_path / "resumed")
    saved = torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=False)
    assert saved["epoch"] == 2 and not (tmp_path / "resumed" / "metrics.json").exists()
    monkeypatch.setattr(Trainer, "train_epoch", original)
    resumed = run(split, model, chosen, 3, tmp_path / "resumed")
    assert resumed["test"] == straight["test"] and resumed["valid"] == straight["valid"]
    if model == "iclrec":  # epochs 0, 1 before the kill; 2, 3 after the resume
        assert [epoch for epoch, _ in straight_e_steps] == [0, 1, 2, 3]
        assert [epoch for epoch, _ in e_steps["calls"]] == [0, 1, 2, 3]
        assert all(torch.equal(a, b) for (_, a), (_, b) in zip(straight_e_steps, e_steps["calls"], strict=True))
    assert resumed["best_epoch"] == straight["best_epoch"]
    assert not (tmp_path / "resumed" / CHECKPOINT).exists()
    first = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)["state"]
    second = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)["state"]
    assert all(torch.equal(first[key], second[key]) for key in first)
    # the t-SNE snapshots survive the kill too: epochs 0, 1, 2 and the best weights, identical
    straight_snaps, resumed_snaps = (np.load(tmp_path / name / "embeddings.npz") for name in ("straight", "resumed"))
    assert straight_snaps["labels"].tolist() == [
        "epoch 0",
        "epoch 1",
        "epoch 2",
        f"best (epoch {straight['best_epoch']})",
    ]
    for key in ("users", "epochs", "embeddings", "intents"):
        assert np.array_equal(straight_snaps[key], resumed_snaps[key])
    assert straight_snaps["embeddings"].dtype == np.float16 and straight_snaps["intents"].max() < 4  # 4 clusters
    assert straight_snaps["intents"].min() >= 0 and len(straight_snaps["users"]) == min(512, split.n_users)


def test_a_checkpoint_of_another_run_is_refused(split, tmp_path):
    trainer = Trainer(split, "sasrec", settings("sasrec"), 1)
    trainer.save_checkpoint(tmp_path / CHECKPOINT)
    with pytest.raises(ElcrecError, match="different run \\(seed differ"):
        Trainer(split, "sasrec", settings("sasrec"), 2).load_checkpoint(tmp_path / CHECKPOINT)
    Trainer(split, "sasrec", settings("sasrec", threads=2), 1).load_checkpoint(tmp_path / CHECKPOINT)  # threads may


def test_non_finite_loss_names_epoch_and_component(split, monkeypatch):
    trainer = Trainer(split, "elcrec", settings("elcrec", ablation="B+ELCM"), 1)
    loss = trainer.model.loss

    def poisoned(batch):
        losses = loss(batch)
        losses["cluster"] = losses["cluster"] * float("nan")
        return losses

    monkeypatch.setattr(trainer.model, "loss", poisoned)
    with pytest.raises(NonFiniteLoss, match="epoch 0, step 0: cluster = nan"):
        trainer.train_epoch()


def test_the_first_non_finite_step_is_reported_at_the_epoch_end(split, monkeypatch):
    trainer = Trainer(split, "sasrec", settings("sasrec", batch_size=16), 1)  # 120 users: 8 steps
    loss, seen = trainer.model.loss, []

    def poisoned_from_step_2(batch):
        losses = loss(batch)
        seen.append(len(seen))
        if len(seen) >= 3:  # steps 2, 3, ... (counted from 0)
            losses["total"] = losses["total"] + float("inf")
        return losses

    monkeypatch.setattr(trainer.model, "loss", poisoned_from_step_2)
    with pytest.raises(NonFiniteLoss, match="epoch 0, step 2: total = inf") as caught:
        trainer.train_epoch()
    assert len(seen) == 8  # checked once, after the epoch's last step: no host read per step
    assert (caught.value.epoch, caught.value.step) == (0, 2) and caught.value.losses["total"] == float("inf")


def test_early_stopping_restores_the_best_epoch(split):
    trainer = Trainer(split, "sasrec", settings("sasrec", epochs=10, patience=2, lr=0.0), 1)
    trainer.fit(log=lambda line: None)
    assert len(trainer.history) == 3  # epoch 0 is best; two epochs without a strict improvement stop it
    assert trainer.best["epoch"] == 0


def test_the_learning_rate_decays_in_steps_as_steplr(split):
    assert [scheduled_lr({"lr": 1.0, "lr_decay_every": 0, "lr_decay": 0.2}, epoch) for epoch in (0, 99)] == [1.0, 1.0]
    decayed = [scheduled_lr({"lr": 1e-3, "lr_decay_every": 30, "lr_decay": 0.2}, epoch) for epoch in (0, 29, 30, 60)]
    assert decayed == pytest.approx([1e-3, 1e-3, 2e-4, 4e-5])
    trainer = Trainer(split, "sasrec", settings("sasrec", epochs=2, lr_decay_every=1, lr_decay=0.5), 1)
    trainer.fit(log=lambda line: None)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)  # the second epoch's


def test_same_seed_same_numbers_on_cpu(split, tmp_path):
    first = run(split, "cl4srec", settings("cl4srec", epochs=2), 5, tmp_path / "a")
    second = run(split, "cl4srec", settings("cl4srec", epochs=2), 5, tmp_path / "b")
    assert first["test"] == second["test"]


def test_history_csv_takes_the_union_of_columns():
    text = history_csv([{"epoch": 0, "a": 1}, {"epoch": 1, "b": 2}])
    assert text.splitlines() == ["epoch,a,b", "0,1,", "1,,2"]


@pytest.mark.slow
def test_sasrec_learns_on_the_real_beauty_file(tmp_path):
    # measured: valid NDCG@20 0.0111 after epoch 0 and 0.0123 after epoch 1 (2 layers, seed 1);
    # a model that does not learn stays near 20 / 12103 ~ 0.0007
    beauty = SequenceData.load(fetched("beauty", "Beauty.txt", tmp_path)).split(max_len=50)
    trainer = Trainer(beauty, "sasrec", model_defaults("sasrec") | {"epochs": 2, "device": "cpu"}, 1)
    trainer.fit(log=lambda line: None)
    assert trainer.history[-1]["valid_NDCG@20"] > 0.008


def test_a_diverged_run_is_recorded_with_its_epoch_and_step_and_no_metrics(split, tmp_path, monkeypatch):
    import json

    import elcrec.training as training

    original = training.Trainer.train_epoch

    def diverging(self):
        if self.epoch == 1:  # one good epoch, then the loss turns NaN at step 3
            raise NonFiniteLoss(
                "sasrec: non-finite loss at epoch 1, step 3: total = nan", 1, 3, {"total": float("nan")}
            )
        return original(self)

    monkeypatch.setattr(training.Trainer, "train_epoch", diverging)
    record = run(split, "sasrec", settings("sasrec"), 1, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == saved["status"] == "diverged" and saved["test"] == {} and saved["epochs_run"] == 1
    assert (saved["divergence"]["epoch"], saved["divergence"]["step"]) == (1, 3)
    assert {"history.csv", "user_ranks.npz", "model.pt"} <= {path.name for path in (tmp_path / "run").iterdir()}
    assert not (tmp_path / "run" / CHECKPOINT).exists()
    model, _ = load_model_file(tmp_path / "run" / "model.pt")  # the best weights before the divergence
    assert model.name == "sasrec"
    with pytest.raises(NonFiniteLoss, match="epoch 1, step 3"):
        run(split, "sasrec", settings("sasrec", on_divergence="fail"), 1, tmp_path / "failing")
    with pytest.raises(ElcrecError, match="on_divergence must be one of"):
        run(split, "sasrec", settings("sasrec", on_divergence="ignore"), 1, tmp_path / "bad")
