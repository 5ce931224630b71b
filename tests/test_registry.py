from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, REPO, fetched
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from elcrec import ElcrecError
from elcrec.data.registry import attribute_sources, interaction_sources, load_registry, resolve_dataset, source_of

REGISTRY_FILE = REPO / "config" / "datasets.yaml"


@pytest.fixture
def registry():
    return load_registry([REGISTRY_FILE])


def test_registry_validates_and_names_every_dataset(registry):
    validate(registry, str(REPO / "config" / "datasets.schema.yaml"))
    assert {"beauty", "sports", "toys", "yelp", "ml-1m", "mind-small", "example-csv"} <= set(registry)


@pytest.mark.parametrize("dataset", ["beauty", "sports", "toys", "yelp"])
def test_the_paper_routes_digests_are_those_of_the_real_files(registry, dataset, tmp_path):
    # fetch verifies every byte against the registry's sha256 (and raises on a mismatch); the
    # released checkpoints are checked by rule `reference`'s test
    for source in registry[dataset]["routes"]["paper"]["sources"]:
        if source.get("role") != "reference":
            assert fetched(dataset, source["name"], tmp_path).stat().st_size > 0


def test_resolve_applies_route_and_overrides(registry, tmp_path):
    spec = resolve_dataset(registry, "mind-small", {"preprocessing": {"user_k": 3}}, tmp_path)
    assert spec["format"] == "mind_behaviors" and spec["preprocessing"] == {"user_k": 3, "item_k": 5, "dedupe": "first"}
    assert interaction_sources(spec) == ["MINDsmall_train.zip", "MINDsmall_dev.zip"]
    assert source_of(spec, "MINDsmall_dev.zip").algorithm == "md5"

    assert attribute_sources(spec) == ["MINDsmall_train.zip", "MINDsmall_dev.zip"]  # news.tsv in the same zips

    beauty = resolve_dataset(registry, "beauty", None, tmp_path)
    assert beauty["route"] == "paper" and interaction_sources(beauty) == ["Beauty.txt"]
    assert attribute_sources(beauty) == ["Beauty_item2attributes.json"]
    override = {
        "route": "raw",
        "sources": [{"name": "r.json.gz", "url": "file://tests/data/r.json.gz", "sha256": None}],
        "attributes": None,
    }
    raw = resolve_dataset(registry, "beauty", override, tmp_path)
    assert raw["format"] == "amazon_json" and raw["attributes"] is None and attribute_sources(raw) == []
    assert raw["sources"][0]["url"] == (tmp_path / "tests/data/r.json.gz").as_uri()  # relative to the repository
    assert source_of(raw, "r.json.gz").digest is None


def test_replaced_sources_that_drop_the_attribute_file_are_an_error_naming_both_ways_out(registry, tmp_path):
    override = {"route": "raw", "sources": [{"name": "r.json.gz", "url": "file://r.json.gz", "sha256": None}]}
    with pytest.raises(ElcrecError, match=r"datasets.beauty: the attributes are read from \['meta_Beauty.json.gz'\]"):
        resolve_dataset(registry, "beauty", override, tmp_path)
    assert resolve_dataset(registry, "example-csv", None, tmp_path)["attributes"] is None  # a route without any


def test_resolve_errors_name_the_key(registry, tmp_path):
    with pytest.raises(ElcrecError, match="config datasets.beauty.route: 'rare'"):
        resolve_dataset(registry, "beauty", {"route": "rare"}, tmp_path)
    with pytest.raises(ElcrecError, match="config datasets.netflix"):
        resolve_dataset(registry, "netflix", None, tmp_path)


def test_a_sequences_route_refuses_preprocessing_and_reader_options_it_could_not_apply(registry, tmp_path):
    with pytest.raises(ElcrecError, match=r"config datasets.beauty: route 'paper' .* so `preprocessing` \(") as error:
        resolve_dataset(registry, "beauty", {"preprocessing": {"user_k": 10}}, tmp_path)
    assert "{'preprocessing': {'user_k': 10}}" in str(error.value)
    with pytest.raises(ElcrecError, match="`reader` and `preprocessing`"):
        resolve_dataset(registry, "toys", {"reader": {"delimiter": ","}, "preprocessing": {"item_k": 2}}, tmp_path)
    # the same keys on a raw route apply, and a sequences route without them is fine
    assert resolve_dataset(registry, "beauty", {"route": "raw", "preprocessing": {"user_k": 10}}, tmp_path)
    assert resolve_dataset(registry, "beauty", {"preprocessing": {}}, tmp_path)["format"] == "sequences"


def test_a_dataset_defined_twice_is_an_error(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"beauty": {"title": "again"}}))
    with pytest.raises(ElcrecError, match="'beauty' is already defined"):
        load_registry([REGISTRY_FILE, extra])


def test_registry_schema_rejects_a_bad_digest(registry):
    registry["beauty"]["routes"]["paper"]["sources"][0]["sha256"] = "abc"
    with pytest.raises(WorkflowError, match="does not match"):
        validate(registry, str(REPO / "config" / "datasets.schema.yaml"))


def test_smoke_config_digests_match_the_fixtures():
    sums = dict(line.split()[::-1] for line in (FIXTURES / "SHA256SUMS").read_text().splitlines())
    smoke = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    for selection in smoke["datasets"].values():
        for source in selection["sources"]:
            relative = Path(source["url"].removeprefix("file://")).relative_to("tests/data").as_posix()
            assert relative in sums
            if source["sha256"] is not None:
                assert source["sha256"] == sums[relative], relative
