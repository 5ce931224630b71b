"""Fake run directories in the run format (metrics.json, history.csv, user_ranks.npz) for the
analysis and report tests: the numbers are chosen, so the tables can be checked by hand."""

import json

import numpy as np

METRICS = ["HR@5", "HR@20", "NDCG@5", "NDCG@20"]


def ranks_for(hr5: float, n_users: int = 100, seed: int = 0) -> np.ndarray:
    """0-based target ranks with a fraction `hr5` of users inside the top 5."""
    generator = np.random.default_rng(seed)
    hits = int(round(hr5 * n_users))
    ranks = np.concatenate([generator.integers(0, 5, hits), generator.integers(5, 40, n_users - hits)])
    return generator.permutation(ranks)


def write_run(
    root, dataset, model, variant, seed, hr5, settings=None, epochs=3, other_masking=True, pretraining=None, data=None
):
    """`pretraining`: a fine-tuning run's record of its pre-training (training.run's `pretraining`);
    `data`: the sha256 of the sequence file it trained on."""
    run_dir = root / dataset / model / variant / f"seed{seed}"
    run_dir.mkdir(parents=True)
    ranks = ranks_for(hr5, seed=seed)
    test = {
        "HR@5": float(np.mean(ranks < 5)),
        "HR@20": float(np.mean(ranks < 20)),
        "NDCG@5": float(np.mean(np.where(ranks < 5, 1 / np.log2(ranks + 2), 0))),
        "NDCG@20": float(np.mean(np.where(ranks < 20, 1 / np.log2(ranks + 2), 0))),
    }
    record = {
        "test": test,
        "valid": test,
        "settings": {"masking": "zero", "alpha": 10, "clusters": 256, **(settings or {})},
        "best_epoch": epochs - 1,
        "epochs_run": epochs,
        "training_seconds": 10.0 * epochs,
        "seconds_per_epoch": 10.0,
        "peak_memory_bytes": 512 * 2**20,
        "mean_memory_bytes": 384 * 2**20,
        "peak_memory_kind": "cpu peak rss",
        "data_sha256": data or "ab" * 32,
        "code_version": "v0-test",
        "device": "cpu (test)",
        "libraries": {"torch": "2.13.0"},
        "pretraining": pretraining,
    }
    if other_masking:
        record["test_other_masking"] = {"masking": "exclude", "metrics": {k: v + 0.01 for k, v in test.items()}}
    (run_dir / "metrics.json").write_text(json.dumps(record))
    lines = ["epoch,loss_next_item,loss_total,valid_HR@5,train_seconds,valid_seconds"]
    lines += [
        f"{epoch},{1.0 - 0.1 * epoch},{1.0 - 0.1 * epoch},{hr5 * (epoch + 1) / epochs},1,1" for epoch in range(epochs)
    ]
    (run_dir / "history.csv").write_text("\n".join(lines) + "\n")
    np.savez(run_dir / "user_ranks.npz", test=ranks, valid=ranks, users=np.arange(len(ranks)))
    if model == "elcrec":  # t-SNE snapshots: 40 users, 8 dims, two well-separated intents
        generator = np.random.default_rng(seed)
        intents = np.repeat([[0] * 20 + [1] * 20], 4, axis=0).astype(np.int32)
        embeddings = generator.normal(size=(4, 40, 8)) + 5.0 * intents[..., None]
        labels = ["epoch 0", "epoch 1", "epoch 2", f"best (epoch {epochs - 1})"]
        np.savez(
            run_dir / "embeddings.npz",
            users=np.arange(40),
            epochs=np.array([0, 1, 2, epochs - 1]),
            labels=np.array(labels),
            embeddings=embeddings.astype(np.float16),
            intents=intents,
        )
    return run_dir


def write_stats(folder):
    """The sequences stage's stats files for Beauty (fixture-sized), ML-1M and MIND-small (raw counts)."""
    folder.mkdir(parents=True, exist_ok=True)
    stats = {"users": 120, "items": 60, "interactions": 1322, "avg_length": 11.0, "sparsity": 0.8}
    # the sequence files' sha256 is the one write_run records (a run of other data is left out)
    (folder / "beauty.stats.json").write_text(json.dumps(stats | {"sequence_sha256": "ab" * 32}))
    raw = {"steps": {"raw": {"users": 10, "items": 5, "interactions": 40}}, "sequence_sha256": "ab" * 32}
    (folder / "ml-1m.stats.json").write_text(json.dumps(raw))
    mind = {"steps": {"raw": {"users": 70, "items": 40, "interactions": 2405}}}
    (folder / "mind-small.stats.json").write_text(json.dumps(mind))
    return folder


def write_diverged_run(root, dataset, model, variant, seed, epoch=4, step=7):
    """A run directory as training.run writes it when the loss turned non-finite (on_divergence: record)."""
    run_dir = root / dataset / model / variant / f"seed{seed}"
    run_dir.mkdir(parents=True)
    message = f"{model}: non-finite loss at epoch {epoch}, step {step}: total = nan"
    record = {
        "status": "diverged",
        "divergence": {"epoch": epoch, "step": step, "losses": {"total": float("nan")}, "message": message},
        "test": {},
        "valid": {},
        "settings": {"masking": "zero"},
        "best_epoch": epoch - 1,
        "epochs_run": epoch,
        "training_seconds": 10.0 * epoch,
        "seconds_per_epoch": 10.0,
        "device": "cpu (test)",
    }
    (run_dir / "metrics.json").write_text(json.dumps(record))
    (run_dir / "history.csv").write_text("epoch,loss_total\n" + "".join(f"{e},1.0\n" for e in range(epoch)))
    np.savez(run_dir / "user_ranks.npz", test=np.zeros(0), valid=np.zeros(0), users=np.zeros(0))
    return run_dir


def markdown_tables(markdown: str) -> list[list[str]]:
    """Every Markdown table of a document: its rows (runs of lines starting with "|")."""
    found, current = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found
