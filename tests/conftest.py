import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data"

# Tests that need the real benchmark files or the authors' released checkpoints get them through
# the pipeline's own download (checksums of config/datasets.yaml), from mirror folders named in
# this variable (separated by os.pathsep); without them they skip, saying how to run them.
MIRRORS_VARIABLE = "ELCREC_TEST_MIRRORS"


@pytest.fixture(autouse=True)
def _subnormals_off_after_each_test():
    """`elcrec` commands called in-process flush subnormals (elcrec.process); no test inherits that."""
    yield
    from elcrec.process import flush_subnormals

    flush_subnormals(False)


def mirror_folders() -> list[Path]:
    return [Path(folder) for folder in os.environ.get(MIRRORS_VARIABLE, "").split(os.pathsep) if folder]


def mirrored(name: str) -> Path | None:
    return next((folder / name for folder in mirror_folders() if (folder / name).is_file()), None)


def mirror_with(folder: Path, *names: str) -> Path:
    """`folder` made a `mirror_dir` holding `names` (links into the mirror folders), or skip."""
    missing = [name for name in names if mirrored(name) is None]
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)}: set {MIRRORS_VARIABLE} to folder(s) holding them "
            '(README "Tests on the real files" says which files, from where, and how to check them)'
        )
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(mirrored(name).resolve())
    return folder


def fetched(dataset: str, name: str, destination: Path) -> Path:
    """`name`, a source of `dataset`'s paper route, fetched and verified as rule `download` does."""
    from elcrec.data.download import fetch
    from elcrec.data.registry import load_registry, resolve_dataset, source_of

    mirror = mirror_with(destination / "mirror", name)
    spec = resolve_dataset(load_registry([REPO / "config" / "datasets.yaml"]), dataset, {"route": "paper"}, REPO)
    fetch(source_of(spec, name), destination / name, mirror_dir=mirror, retries=0)
    return destination / name


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
