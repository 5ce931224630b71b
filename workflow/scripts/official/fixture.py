"""What every maintainer script shares: its fixture written the one way (tests/data/official/<name>.npz
and .json; docs/OFFICIAL.md) and a file's sha256."""

import hashlib
import json
import os

import numpy as np


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def save_arrays(out_dir, name, arrays):
    """<name>.npz: the arrays by sorted key, compressed (numpy's fixed dates: the same arrays give the
    same bytes); returns its path and sha256."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{name}.npz")
    np.savez_compressed(path, **dict(sorted(arrays.items())))
    return path, sha256(path)


def save_record(out_dir, name, record, hide=None):
    """<name>.json: the record, indented, each path of `hide` (a scratch folder) replaced by its stand-in."""
    text = json.dumps(record, indent=1)
    for path, stand_in in (hide or {}).items():
        text = text.replace(path, stand_in)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as handle:
        handle.write(text + "\n")
