#!/usr/bin/env python
"""Maintainer command: one training step of the OFFICIAL Caser (graytowne/caser_pytorch) and its
full score matrix, on six users of tests/data/benchmark/Beauty.txt, written as the fixture
tests/data/official/caser_train.{npz,json} that tests/test_official_caser.py compares ours against
(docs/OFFICIAL.md):

    git clone https://github.com/graytowne/caser_pytorch
    git -C caser_pytorch checkout c4e10e4c12f0fce8a0cba12008b3aff5d07a26d1
    python workflow/scripts/official/caser_train.py caser_pytorch

(the checkout's datasets/ml1m files are not needed). Nothing of the official code is copied here:
its modules (train_caser, interactions, caser, utils) are imported from the checkout; the argument
defaults are replayed from train_caser.py's own `add_argument` calls (train_caser.py:282-309), then
`main`'s statements (train_caser.py:312-335) run with a tiny size (d 16, every other default: L 5,
T 3, nv 4, nh 16, drop 0.5, ReLU, 3 negatives, batch 512 windows, seed 1234), on the CPU
(`--use_cuda False`: only then does the official set_seed seed torch's CPU generator, utils.py:70-77)
and for one epoch (`n_iter 1`): the official `Recommender.fit` itself runs the step, on its own
training instances (`Interactions.to_sequence`: every window of L + T of each user's training
items, interactions.py:95-177, 209-236). Its 14 windows are one minibatch of the official size.

The data: each user's training items s_1..s_{n-2} (our protocol's split), written in the official
`user item rating` format, items renamed 1..K by first appearance, so that the official ids (its
own map, +1 for padding: interactions.py:130-134) are the fixture's ids; ours are the same.

What fit draws, made once and stored, handed to both sides:
- the window order: the official `shuffle` (train_caser.py:126-128) is wrapped to record its
  permutation (it calls the official shuffle with indices=True: the same numpy draw);
- the negatives: ours are one per target position (the same one for each window that predicts
  that position), the official code's 3 per window, drawn independently (train_caser.py:130,
  203-234). So that one draw can be given to both, the official sampler itself
  (`_generate_negative_samples`: uniform over the items the user has not trained on) is called
  once per target position (n 1), and each window gets the draws under its T targets;
- dropout (on: fit calls `self._net.train()`, train_caser.py:124): a hook on the official
  `dropout` module records the exact mask of its draw (the same dropout call on ones, from the
  generator state it started from) and checks output == input * mask; ours gets the same mask.
The step's losses are read from fit's own locals on its return (`positive_loss`, `negative_loss`,
`loss`, train_caser.py:166-170), the gradients after its `loss.backward()` with `optimizer.step`
made a no-op (the weights stay the seeded initialisation). The scores are the official
`Recommender.predict(user)` (eval mode, every item id 0..K, train_caser.py:236-278), for the six
users, from their `test_sequences` (the last L training items).

The npz is written with fixed zip timestamps: a second run gives the same bytes.
"""

import argparse
import ast
import json
import os
import sys
import tempfile

import numpy as np
import torch
from fixture import save_arrays, save_record

REPOSITORY = "graytowne/caser_pytorch"
COMMIT = "c4e10e4c12f0fce8a0cba12008b3aff5d07a26d1"
FIXTURE = "caser_train"
# Beauty.txt lines (0-based) of the six users: n = 6, 7, 9, 10, 12, 16 interactions, so training
# lengths m = 4, 5, 7 (one window, padded in front), 8 (exactly one full window), 10 and 14 (3 and 7)
LINES = (10, 4, 3, 0, 14, 25)
HIDDEN = 16  # official d 50; tiny here
OFFICIAL_LINES = {
    "positive_loss": "train_caser.py:166-167 (-mean log sigmoid of the targets' scores)",
    "negative_loss": "train_caser.py:168-169 (-mean log(1 - sigmoid) of the negatives' scores)",
    "loss": "train_caser.py:170 (positive_loss + negative_loss); backward :174",
    "items_to_predict": "train_caser.py:154-162 (targets then negatives, one forward, split)",
    "forward": "caser.py:70-127 (vertical conv :95-97, horizontal conv + max-pool :100-106, dropout :111, "
    "fc1 + ReLU :114, [z, user] :115, baddbmm with W2, b2 :117-125)",
    "initialisation": "caser.py:38-66 (torch defaults for conv and fc1; normal(0, 1/dim) for the embeddings "
    "and W2; b2 zero)",
    "windows": "interactions.py:95-177 to_sequence, :209-219 _sliding_window (from the end; shorter "
    "sequences padded in front), :222-236 _generate_sequences",
    "negatives": "train_caser.py:130, 203-234 (_generate_negative_samples: 3 per window, uniform over the "
    "items the user has not trained on)",
    "shuffle": "train_caser.py:126-128, utils.py:39-58",
    "scores": "train_caser.py:236-278 (predict: eval mode, test_sequences, every item id) and caser.py:120-123",
    "arguments": "train_caser.py:282-309; seed train_caser.py:312-313, utils.py:70-77",
}
PARAMETER_ROWS = ("item_embeddings.weight", "W2.weight", "b2.weight")  # stored as their nonzero rows


def official_configs(checkout, str2bool):
    """train_caser.py's two parsers, built from its own add_argument calls; their defaults."""
    path = os.path.join(checkout, "train_caser.py")
    with open(path) as handle:
        tree = ast.parse(handle.read(), filename=path)
    parsers = {"parser": argparse.ArgumentParser(), "model_parser": argparse.ArgumentParser()}
    calls = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            eval(compile(ast.Expression(body=node), path, "eval"), {**parsers, "str2bool": str2bool})
            calls += 1
    assert calls == 17, calls
    return parsers["parser"].parse_args([]), parsers["model_parser"].parse_args([])


def main():
    cli = argparse.ArgumentParser()
    cli.add_argument("checkout")
    cli.add_argument("--sequences", default="tests/data/benchmark/Beauty.txt")
    cli.add_argument("--out", default="tests/data/official")
    opt = cli.parse_args()
    checkout = os.path.abspath(opt.checkout)
    torch.set_num_threads(1)
    sys.path.insert(0, checkout)
    import train_caser  # official (its __main__ block does not run)
    import utils  # official
    from interactions import Interactions  # official

    # 1. the six users' training items, renamed by first appearance, in the official file format
    with open(opt.sequences) as handle:
        lines = handle.read().splitlines()
    picked = [lines[index].split() for index in LINES]
    training = [[int(item) for item in fields[1:-2]] for fields in picked]  # s_1..s_{n-2}
    rename = {}
    for items in training:
        for item in items:
            rename.setdefault(item, len(rename) + 1)
    training = [[rename[item] for item in items] for items in training]
    lengths = [len(items) for items in training]
    folder = tempfile.mkdtemp(prefix="caser-official-")
    train_file = os.path.join(folder, "train.txt")
    with open(train_file, "w") as handle:
        for user, items in enumerate(training):
            handle.writelines(f"{user} {item} 1\n" for item in items)

    # 2. train_caser.py's main with its defaults, a tiny d, CPU, one epoch
    config, model_config = official_configs(checkout, utils.str2bool)
    config.train_root, config.use_cuda, config.n_iter = train_file, False, 1
    model_config.d = HIDDEN
    model_config.L = config.L
    utils.set_seed(config.seed, cuda=config.use_cuda)
    train = Interactions(config.train_root)
    train.to_sequence(config.L, config.T)
    assert all(train.item_map[str(item)] == item for item in range(1, len(rename) + 1))
    assert all(train.user_map[str(user)] == user for user in range(len(training)))
    recommender = train_caser.Recommender(
        n_iter=config.n_iter,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        l2=config.l2,
        neg_samples=config.neg_samples,
        model_args=model_config,
        use_cuda=config.use_cuda,
    )
    recommender._initialize(train)  # what fit does first (train_caser.py:114-115): torch's draws only
    net = recommender._net
    weights = {name: parameter.detach().clone() for name, parameter in net.named_parameters()}

    # 3. the official windows, in to_sequence's order: per user, from the end (window k ends k items
    #    before the last); checked against its arrays
    L, T = config.L, config.T
    size = L + T
    origin = [(user, k) for user, m in enumerate(lengths) for k in range(max(m - size + 1, 1))]
    assert len(origin) == len(train.sequences.sequences) <= config.batch_size
    for j, (user, k) in enumerate(origin):
        padded = [0] * max(size - lengths[user], 0) + training[user]
        window = padded[len(padded) - k - size : len(padded) - k]
        assert train.sequences.user_ids[j] == user
        assert train.sequences.sequences[j].tolist() == window[:L] and train.sequences.targets[j].tolist() == window[L:]
    assert all(m >= T for m in lengths)  # no window has a padding target

    # 4. what fit draws, recorded
    width = max(lengths)
    drawn = {}
    official_shuffle = train_caser.shuffle

    def recorded_shuffle(*arrays):
        result, indices = official_shuffle(*arrays, indices=True)
        drawn["order"] = indices
        return result

    official_negatives = recommender._generate_negative_samples

    def per_position_negatives(users, interactions, n):
        assert n == T == config.neg_samples
        assert users[:, 0].tolist() == [origin[j][0] for j in drawn["order"]]
        positions = [(user, p) for user, m in enumerate(lengths) for p in range(1, m)]  # targets s_2..s_m
        draws = official_negatives(np.array([[user] for user, _ in positions]), interactions, n=1)[:, 0]
        grid = np.zeros((len(lengths), width), dtype=np.int64)  # right-aligned like the items
        for (user, p), item in zip(positions, draws, strict=True):
            grid[user, width - lengths[user] + p] = item
        drawn["position_negatives"] = grid
        out = np.zeros((len(users), n), dtype=np.int64)
        for i, j in enumerate(drawn["order"]):
            user, k = origin[j]
            last = width - 1 - k  # column of the window's last target
            out[i] = grid[user, last - T + 1 : last + 1]
        return out

    def before_dropout(module, inputs):
        drawn["generator"] = torch.get_rng_state()

    def after_dropout(module, inputs, output):
        if not module.training:
            return
        after = torch.get_rng_state()
        torch.set_rng_state(drawn["generator"])
        with torch.no_grad():
            mask = torch.nn.functional.dropout(torch.ones_like(inputs[0]), module.p, True)
        assert torch.equal(torch.get_rng_state(), after)
        assert torch.equal(output, inputs[0] * mask)
        drawn["dropout_mask"] = mask

    train_caser.shuffle = recorded_shuffle
    recommender._generate_negative_samples = per_position_negatives
    recommender._optimizer.step = lambda *args, **kwargs: None  # the weights stay the initialisation
    net.dropout.register_forward_pre_hook(before_dropout)
    net.dropout.register_forward_hook(after_dropout)
    fit_locals = {}

    def on_return(frame, event, arg):
        if event == "return" and frame.f_code is train_caser.Recommender.fit.__code__:
            fit_locals.update(frame.f_locals)

    sys.setprofile(on_return)
    try:
        recommender.fit(train, None, verbose=False)
    finally:
        sys.setprofile(None)
        train_caser.shuffle = official_shuffle
    assert fit_locals["minibatch_num"] == 0  # one minibatch: the step
    assert all(torch.equal(weights[name], parameter) for name, parameter in net.named_parameters())
    gradients = {name: parameter.grad.detach().clone() for name, parameter in net.named_parameters()}

    # 5. the official scores: every item id for each user, eval mode
    scores = np.stack([recommender.predict(user) for user in range(len(lengths))]).astype(np.float32)

    # 6. save
    items = np.zeros((len(lengths), width), dtype=np.int64)
    for user, row in enumerate(training):
        items[user, width - len(row) :] = row
    order = drawn["order"]
    arrays = {f"weight/{name}": value.numpy() for name, value in weights.items()}
    arrays |= {
        "users": np.arange(len(lengths), dtype=np.int64),
        "train_items": items,
        "position_negatives": drawn["position_negatives"],
        "batch_users": fit_locals["batch_users"].numpy(),
        "batch_sequences": fit_locals["batch_sequences"].numpy(),
        "batch_targets": fit_locals["batch_targets"].numpy(),
        "batch_negatives": fit_locals["batch_negatives"].numpy(),
        "window_user": np.array([origin[j][0] for j in order], dtype=np.int64),
        "window_offset": np.array([origin[j][1] for j in order], dtype=np.int64),
        "dropout_mask": drawn["dropout_mask"].numpy(),
        "test_sequences": recommender.test_sequence.sequences.astype(np.int64),
    }
    losses = {name: float(fit_locals[name].item()) for name in ("positive_loss", "negative_loss", "loss")}
    arrays |= {f"loss/{name}": np.float64(value) for name, value in losses.items()}
    for name, gradient in gradients.items():
        gradient = gradient.numpy()
        if name in PARAMETER_ROWS:
            rows = np.nonzero(np.any(gradient.reshape(len(gradient), -1) != 0, axis=1))[0].astype(np.int64)
            arrays[f"grad_rows/{name}"], arrays[f"grad/{name}"] = rows, gradient[rows]
        else:
            arrays[f"grad/{name}"] = gradient
    arrays["scores"] = scores
    save_arrays(opt.out, FIXTURE, arrays)

    record = {
        "repository": REPOSITORY,
        "commit": COMMIT,
        "command": f"python workflow/scripts/official/caser_train.py caser_pytorch --sequences {opt.sequences}",
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "seed": config.seed,
        "config": {key: value for key, value in sorted(vars(config).items()) if key not in ("train_root", "test_root")},
        "model_args": dict(sorted(vars(model_config).items())),
        "data": {
            "file": opt.sequences,
            "lines": list(LINES),
            "user_ids": [int(fields[0]) for fields in picked],
            "training_lengths": lengths,
            "items": len(rename),
            "num_items (official: items + 1, 0 = padding)": int(train.num_items),
            "num_users": int(train.num_users),
            "item_renaming": "first appearance in the six users' training items -> 1..K (the official map is then "
            "the identity)",
        },
        "windows": len(origin),
        "shapes": {
            key: list(np.shape(value)) for key, value in arrays.items() if not key.startswith(("weight/", "grad"))
        },
        "sampling": "utils.set_seed(1234, cuda=False) (numpy, random, torch); Recommender._initialize draws the "
        "initialisation from torch's generator; fit: the official shuffle of the 14 windows (numpy, recorded as "
        "window_user/window_offset: window k ends k items before the user's last training item), then the "
        "official _generate_negative_samples called once per target position (users s_2..s_m, n 1, numpy) instead "
        "of once per window with n 3: position_negatives, and each window's 3 negatives are the draws under its 3 "
        "targets (batch_negatives); dropout (train mode) draws from torch's generator: dropout_mask (0 or "
        "1/(1-drop)) is that draw, checked: dropout output == input * mask.",
        "patches": [
            "train_caser.shuffle wrapped: calls the official shuffle with indices=True (the same draw) to record it",
            "recommender._generate_negative_samples wrapped: the official sampler per target position (see sampling)",
            "recommender._optimizer.step -> no-op (the step's gradients on the seeded initialisation)",
            "hooks on net.dropout only record; sys.setprofile reads fit's locals on its return",
            "recommender._initialize(train) called before fit (fit then skips it): the same torch draws",
        ],
        "losses": losses,
        "official_lines": OFFICIAL_LINES,
        "parameter_names": list(weights),
    }
    save_record(opt.out, FIXTURE, record)
    print(json.dumps(losses), f"{len(origin)} windows, scores {scores.shape}")


if __name__ == "__main__":
    main()
