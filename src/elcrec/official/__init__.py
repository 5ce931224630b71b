"""Checks against the official code (docs/OFFICIAL.md): our model given the weights and the batch a
fixture of the official code was made with, and every loss, gradient (and, where compared, score)
compared with the fixture's. The fixtures (tests/data/official/) hold only the official code's
numbers and inputs; their maintainer commands (workflow/scripts/official/) run the official code.

`OFFICIAL_CODE` is every Table 1 model's official code (the paper's Table 12, pinned where the
check is built); `CHECKED` the checks with a fixture, each by its module here (`elcrec.official.<name>`:
`CHECK` and `check(fixture, record, weights, sequences, attributes)`); a check named otherwise than its
model (the official code of a variant) says which model in its CHECK's `model`. `check` writes
what rule `official_check` gives the report; this module imports no torch (the analysis reads only
the records, `table`).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pandas as pd

from elcrec import ElcrecError

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "data" / "official"
# float32 rounding: a loss within 1e-5 of itself + 1e-6; a gradient within 1e-4 of its tensor's largest
# entry + 1e-6; a score within 1e-5 of the largest score + 1e-6
LOSS_SHARE, LOSS_FLOOR, GRADIENT_SHARE, GRADIENT_FLOOR = 1e-5, 1e-6, 1e-4, 1e-6
SCORE_SHARE, SCORE_FLOOR = 1e-5, 1e-6
ICLREC = "salesforce/ICLRec @ 2890e6c3ff6a22c6699fc19cb863b66786c1cde4"  # ELCRec's code base; it runs all three
OFFICIAL_CODE = {
    "bprmf": "xiangwang1223/neural_graph_collaborative_filtering @ a718a4f2df7c3942ca0df6759926975762c61eed (TF)",
    "gru4rec": "slientGe/Sequential_Recommendation_Tensorflow @ f06053cd7a0bfb101872cf9f91885edea1fe50df (TF)",
    "caser": "graytowne/caser_pytorch @ c4e10e4c12f0fce8a0cba12008b3aff5d07a26d1",
    "sasrec": f"as the ICLRec code base runs it: {ICLREC}; variant kang205: "
    "kang205/SASRec @ e3738967fddab206d6eeb4fda433e7a7034dd8b1 (TF)",
    "bert4rec": "FeiSun/BERT4Rec @ 615eaf2004abecda487a38d5b0c72f3dcfcae5b3 (TensorFlow)",
    "dssrec": "no official code; the re-implementation the paper cites: "
    "abis330/DSSRec @ eb0ca62c7599e97ee006f344fd2a5438ba8a4408",
    "s3rec": "aHuiWang/CIKM2020-S3Rec @ 49a890dcb516c9ed3126564495234ea74d5cd566",
    "cl4srec": f"as the ICLRec code base runs it: {ICLREC}; variant sslrec: "
    "HKUDS/SSLRec @ 7597c31ce3f78c7497918d886b90df6d4d02cad5",
    "dcrec": "HKUDS/DCRec @ 23382332f79351b1340033946982b4dd93ae46ae",
    "maerec": "HKUDS/MAERec @ bd92f2c7776d52a83361ef5c4ca5dc6635ccec00",
    "iocrec": "LFM-bot/IOCRec @ a1b91db459920b4640dd14f1044684a3a5c162d5",
    "iclrec": ICLREC,
    "elcrec": "yueliu1999/ELCRec @ ad6e1c806c43df406f92e5671149ef28a705180f",
}
# the models with a fixture of their official code, each compared by elcrec.official.<model>, whose
# CHECK says which fixture, which official weights (None: the fixture holds them) and what is compared
CHECKED = (
    "s3rec",
    "elcrec",
    "sasrec",
    "cl4srec",
    "iclrec",
    "iocrec",
    "dssrec",
    "caser",
    "dcrec",
    "maerec",
    "bprmf",
    "bert4rec",
    "gru4rec",
    "sasrec_kang205",
    "cl4srec_sslrec",
)


def checks() -> dict[str, dict]:
    """Each checked model's CHECK (importing its module imports torch)."""
    return {name: importlib.import_module(f"elcrec.official.{name}").CHECK for name in CHECKED}


def check(
    model_name: str,
    weights: Path | None = None,
    sequences: Path | None = None,
    attributes: Path | None = None,
    folder: Path = FIXTURES,
) -> dict:
    """The record rule `official_check` writes: what was compared and the largest differences, or,
    when `weights` is not the file the fixture was made with (the smoke run's stand-in), why not.
    A check whose weights are in its fixture (its CHECK's `weights` None) needs no files."""
    from elcrec.official.common import load_fixture

    if model_name not in CHECKED:
        raise ElcrecError(f"no check against the official code for {model_name!r} (checked: {sorted(CHECKED)})")
    module = importlib.import_module(f"elcrec.official.{model_name}")
    spec = module.CHECK
    fixture, record = load_fixture(spec["fixture"], folder)
    result = {
        "model": model_name,
        "trained_model": spec.get("model", model_name),
        "official_code": f"{record.get('repository') or record.get('repo')} @ {record['commit']}",
        "compared": spec["compared"],
        "departures": spec["departures"],
        "fixture": f"tests/data/official/{spec['fixture']}",
    }
    if spec["weights"] is not None:
        from elcrec.fileio import file_digest

        if weights is None or sequences is None:
            raise ElcrecError(f"{model_name}: its check needs the official {spec['weights']} and the sequence file")
        digest = file_digest(weights, "sha256")
        if digest != spec["weights_sha256"]:
            why = f"{Path(weights).name} is not the official file (sha256 {digest[:12]})"
            return result | {"status": f"not compared: {why}"}
    differences = module.check(fixture, record, weights, sequences, attributes)
    status = "equal within float32 rounding" if differences["within_tolerance"] else "DIFFERS"
    return result | {"status": status} | differences


TABLE_COLUMNS = [
    "model",
    "dataset",
    "official_code",
    "status",
    "compared",
    "largest_loss_share",
    "largest_gradient_share",
    "largest_score_share",
    "gradient_parameter",
    "departures",
]


def table(root: str | Path) -> pd.DataFrame:
    """The report's "Checked against the official code": every Table 1 model, with the records rule
    `official_check` wrote under `root` ({dataset}/{model}.json), or why it has none yet."""
    records = {}
    for path in sorted(Path(root).glob("*/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        records.setdefault(record.get("trained_model", path.stem), []).append((path.parent.name, record))
    rows = []
    for model, code in OFFICIAL_CODE.items():
        if model not in records and model in CHECKED:  # e.g. ELCRec's check needs the released checkpoint
            status = (
                "not run here: this config does not train it or lacks the official files its check needs "
                "(the check itself: tests/test_official*.py, docs/OFFICIAL.md)"
            )
            rows.append({"model": model, "official_code": code, "status": status})
            continue
        if model not in records:
            status = "not checked yet: no fixture of its official code (it rests on reading it)"
            rows.append({"model": model, "official_code": code, "status": status})
            continue
        for dataset, record in records[model]:
            name = record.get("model", model)  # a variant's check: "sasrec_kang205" -> "sasrec (kang205)"
            label = name if name == model else f"{model} ({name.removeprefix(model + '_')})"
            gradient = record.get("largest_gradient") or {}
            share = gradient["difference"] / (gradient["largest"] + GRADIENT_FLOOR) if gradient else None
            rows.append(
                {
                    "model": label,
                    "dataset": dataset,
                    "official_code": record["official_code"],
                    "status": record["status"],
                    "compared": record["compared"],
                    "largest_loss_share": record.get("largest_loss_share"),
                    "largest_gradient_share": share,
                    "largest_score_share": record.get("largest_score_share"),
                    "gradient_parameter": gradient.get("parameter"),
                    "departures": record.get("departures"),
                }
            )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
