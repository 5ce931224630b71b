"""The live comparison (slow: `pytest -m slow tests/test_official_live.py`): each maintainer command of
workflow/scripts/official/ re-run on a checkout of the official code, its fresh fixture compared array
by array with the committed one, and our check run on the fresh fixture.

Set ELCREC_OFFICIAL_CHECKOUTS to a folder holding the checkouts under their repository names, each at
the commit its fixture records (docs/OFFICIAL.md and each script's docstring say how to get them);
ELCREC_OFFICIAL_PYTHON_TF and ELCREC_OFFICIAL_PYTHON_DGL to the interpreters of the TensorFlow and DGL
environments the scripts' docstrings set up (the others run here). ELCRec's and S3-Rec's need the real
files through ELCREC_TEST_MIRRORS (tests/conftest.py). A model whose checkout, interpreter or files are
missing is skipped, saying which.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, mirror_with

from elcrec.official import check, checks
from elcrec.official.common import load_fixture

SCRIPTS = REPO / "workflow" / "scripts" / "official"
# check -> (script, checkout, environment, output option, extra arguments)
LIVE = {
    "bert4rec": ("bert4rec_train.py", "BERT4Rec", "tf", "--out-dir", ()),
    "bprmf": ("bprmf_train.py", "neural_graph_collaborative_filtering", "tf", "--out-dir", ()),
    "gru4rec": ("gru4rec_train.py", "Sequential_Recommendation_Tensorflow", "tf", "--out-dir", ()),
    "caser": ("caser_train.py", "caser_pytorch", "torch", "--out", ()),
    "dcrec": ("dcrec_train.py", "DCRec", "dgl", "--out", ()),
    "dssrec": ("dssrec_pretrain.py", "DSSRec", "torch", "--out-dir", ()),
    "iocrec": ("iocrec_train.py", "IOCRec", "torch", "--out", ()),
    "maerec": ("maerec_train.py", "MAERec", "torch", "--out", ()),
    "sasrec": ("iclrec_train.py", "ICLRec", "torch", "--out", ("--only", "sasrec")),
    "sasrec_kang205": ("sasrec_kang205_train.py", "SASRec", "tf", "--out-dir", ()),
    "cl4srec_sslrec": ("cl4srec_sslrec_train.py", "SSLRec", "torch", "--out-dir", ()),
    "cl4srec": ("iclrec_train.py", "ICLRec", "torch", "--out", ("--only", "cl4srec")),
    "iclrec": ("iclrec_train.py", "ICLRec", "torch", "--out", ("--only", "iclrec")),
    "elcrec": ("elcrec_train.py", "ELCRec", "torch", "--out", ("--ckpt", "ELCRec-Beauty-1.pt", "--data_dir", "")),
    "s3rec": (
        "s3rec_pretrain.py",
        "CIKM2020-S3Rec",
        "torch",
        "--out-dir",
        ("--data-dir", "", "--weights", "S3Rec-Beauty-epochs-150.pt"),
    ),
}
ENVIRONMENTS = {
    "tf": ("ELCREC_OFFICIAL_PYTHON_TF", {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}),
    "dgl": ("ELCREC_OFFICIAL_PYTHON_DGL", {"DGLBACKEND": "pytorch"}),
    "torch": (None, {"OMP_NUM_THREADS": "1"}),
}
MIRRORED = ("Beauty.txt", "Beauty_item2attributes.json")  # the real files a `--data-dir` / `--data_dir` holds


def test_every_checked_model_has_a_live_command():
    from elcrec.official import CHECKED

    assert set(LIVE) == set(CHECKED)
    assert all((SCRIPTS / script).is_file() for script, *_ in LIVE.values())


def arguments(extra: tuple[str, ...], tmp_path: Path) -> list[str]:
    """The extra arguments, a real file's name made its mirror path and "" the data folder."""
    made = []
    for argument in extra:
        if argument == "":
            made.append(str(mirror_with(tmp_path / "data", *MIRRORED)) + os.sep)  # the official codes join by +
        elif argument.endswith(".pt"):
            made.append(str(mirror_with(tmp_path / "weights", argument) / argument))
        else:
            made.append(argument)
    return made


def same_arrays(fresh: dict[str, np.ndarray], committed: dict[str, np.ndarray]) -> list[str]:
    """The keys whose arrays differ beyond float32 rounding (integers: exactly)."""
    differing = sorted(set(fresh) ^ set(committed))
    for key in set(fresh) & set(committed):
        one, two = fresh[key], committed[key]
        if one.shape != two.shape:
            differing.append(key)
        elif np.issubdtype(one.dtype, np.floating):
            if not np.allclose(one, two, rtol=1e-5, atol=1e-6 * max(float(np.abs(two).max(initial=0)), 1.0)):
                differing.append(key)
        elif not np.array_equal(one, two):
            differing.append(key)
    return sorted(differing)


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(LIVE))
def test_the_official_code_run_again_gives_the_committed_fixture_and_ours_still_equals_it(model, tmp_path):
    script, checkout_name, kind, out_option, extra = LIVE[model]
    folder = os.environ.get("ELCREC_OFFICIAL_CHECKOUTS")
    checkout = Path(folder or "") / checkout_name
    if not folder or not checkout.is_dir():
        pytest.skip(f"needs the official checkout {checkout_name}/ under $ELCREC_OFFICIAL_CHECKOUTS")
    spec = checks()[model]
    committed, record = load_fixture(spec["fixture"])
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.stdout.strip() != record["commit"]:
        found = head.stdout.strip()[:12] or "no commit"
        pytest.skip(f"{checkout} is at {found}, the fixture was made at {record['commit'][:12]}")
    variable, settings = ENVIRONMENTS[kind]
    python = os.environ.get(variable) if variable else sys.executable
    if not python:
        pytest.skip(f"needs ${variable}: the interpreter of the environment {script}'s docstring sets up")
    out = tmp_path / "fixtures"
    command = [python, str(SCRIPTS / script), str(checkout), out_option, str(out), *arguments(extra, tmp_path)]
    done = subprocess.run(command, cwd=REPO, env=os.environ | settings, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh, _ = load_fixture(spec["fixture"], out)
    assert same_arrays(fresh, committed) == [], f"{spec['fixture']}: the official code now gives other numbers"
    files = {}
    if spec["weights"] is not None:  # checked on the real weights and data
        data = mirror_with(tmp_path / "data", *MIRRORED)
        files = {"weights": mirror_with(tmp_path / "weights", spec["weights"]) / spec["weights"]}
        files |= {"sequences": data / MIRRORED[0], "attributes": data / MIRRORED[1]}
    assert check(model, folder=out, **files)["status"] == "equal within float32 rounding"
