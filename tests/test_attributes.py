"""Item attributes: the readers, the numbering through the sequences' item ids, the `null`
marker of a dataset without attributes, and the paper route against S3-Rec's own file."""

import json

import numpy as np
import pytest
from conftest import fetched, write_lines

from elcrec import ElcrecError
from elcrec.cli import main
from elcrec.data.attributes import (
    attribute_stats,
    load_attributes,
    number_attributes,
    read_amazon_meta,
    read_item2attributes,
    read_mind_news,
    read_movielens_genres,
    read_yelp_business,
    write_attributes,
)
from elcrec.data.readers import MalformedInput
from elcrec.data.sequences import SequenceData


def test_numbering_follows_the_sequences_item_ids_and_first_appearance():
    names = {"m7": ["Drama", "Comedy", "Drama"], "m3": ["Comedy"], "m9": ["Horror"], "m1": []}
    # item 1 is raw m3, item 2 m7, item 3 m1 (no attributes), item 4 m5 (not in the source);
    # m9 is no item of the dataset, so Horror gets no id
    assert number_attributes(names, ["m3", "m7", "m1", "m5"]) == {1: [1], 2: [1, 2], 3: [], 4: []}


def test_item2attributes_is_sorted_deduplicated_and_must_cover_exactly_the_items(tmp_path):
    path = tmp_path / "x_item2attributes.json"
    path.write_text('{"2": [5, 1, 5], "1": [3]}')
    assert read_item2attributes(path, {1, 2}) == {1: [3], 2: [1, 5]}
    with pytest.raises(MalformedInput, match=r"1 missing \(first \[3\]\), 0 not in the sequences"):
        read_item2attributes(path, {1, 2, 3})
    path.write_text('{"1": [0]}')
    with pytest.raises(MalformedInput, match="item 1: expected a list of attribute ids"):
        read_item2attributes(path, {1})


def test_movielens_genres_from_the_zip_member(fixtures):
    genres = read_movielens_genres([fixtures / "raw" / "ml-1m.zip"])
    assert genres["1"] == ["Action", "Romance"] and genres["2"] == ["Action"] and genres["14"] == ["Comedy"]
    assert len(genres) == 52


def test_mind_news_category_and_subcategory_from_both_zips(fixtures):
    zips = [fixtures / "raw" / "MINDsmall_train.zip", fixtures / "raw" / "MINDsmall_dev.zip"]
    news = read_mind_news(zips)
    assert len(news) == 40  # N0..N29 in train, N10..N39 in dev
    assert news["N0"] == ["category:sports", "subcategory:sports_0"]
    assert news["N39"] == ["category:lifestyle", "subcategory:lifestyle_1"]


def test_amazon_meta_takes_the_brand_and_every_category_but_the_top_one(tmp_path):
    path = write_lines(
        tmp_path / "meta.json",
        [
            "{'asin': 'A1', 'brand': 'Acme', 'categories': [['Beauty', 'Skin', 'Face'], ['Beauty', 'Face']]}",
            '{"asin": "A2", "categories": [["Beauty"]]}',
            '{"asin": "A3", "brand": "", "categories": [["Beauty", "Hair"]]}',
        ],
    )
    meta = read_amazon_meta([path])
    assert meta == {"A1": ["Acme", "Skin", "Face", "Face"], "A2": [], "A3": ["Hair"]}
    assert number_attributes(meta, ["A3", "A1"]) == {1: [1], 2: [2, 3, 4]}  # Hair, then Acme, Skin, Face


def test_yelp_business_categories_split_on_commas_and_null_is_none(tmp_path):
    path = write_lines(
        tmp_path / "business.json",
        ['{"business_id": "b1", "categories": "Bars, Nightlife ,Pubs"}', '{"business_id": "b2", "categories": null}'],
    )
    assert read_yelp_business([path]) == {"b1": ["Bars", "Nightlife", "Pubs"], "b2": []}


def test_malformed_attribute_lines_name_the_file_and_line(tmp_path):
    path = write_lines(tmp_path / "movies.dat", ["1::Toy Story (1995)::Animation", "2::Jumanji"])
    with pytest.raises(MalformedInput, match=r"movies.dat:2: expected 'MovieID::Title::Genre\|Genre'"):
        read_movielens_genres([path], member=None)


def test_write_then_load_round_trips_and_stats_count_by_hand(tmp_path):
    attributes = {2: [1, 3], 1: [], 3: [2]}
    write_attributes(tmp_path / "a.json", attributes)
    assert (tmp_path / "a.json").read_text() == '{\n"1": [],\n"2": [1, 3],\n"3": [2]\n}\n'
    assert load_attributes(tmp_path / "a.json", "mine") == {1: [], 2: [1, 3], 3: [2]}
    assert attribute_stats(attributes) == {
        "items": 3,
        "items_with_attributes": 2,
        "vocabulary": 3,
        "max_attribute_id": 3,
        "mean_per_item": 1.0,
    }


def test_a_dataset_without_attributes_is_the_null_marker_and_load_names_the_dataset(tmp_path):
    write_attributes(tmp_path / "none.json", None)
    assert json.loads((tmp_path / "none.json").read_text()) is None and attribute_stats(None) is None
    with pytest.raises(ElcrecError, match="dataset toys has no item attributes"):
        load_attributes(tmp_path / "none.json", "toys")
    with pytest.raises(ElcrecError, match="dataset toys: no attributes file"):
        load_attributes(tmp_path / "missing.json", "toys")


def test_cli_sequences_maps_movielens_genres_through_the_item_ids(tmp_path, fixtures):
    spec = {
        "name": "ml-1m",
        "route": "raw",
        "format": "movielens_dat",
        "sources": [{"name": "ml-1m.zip", "url": None}],
        "reader": {"member": "ratings.dat", "encoding": "latin-1"},
        "preprocessing": {"user_k": 5, "item_k": 5},
        "attributes": {"format": "movielens_genres", "sources": ["ml-1m.zip"], "reader": {"member": "movies.dat"}},
    }
    out = {name: tmp_path / name for name in ("s.txt", "s.json", "a.json")}
    args = ["sequences", "--spec", json.dumps(spec), "--inputs", str(fixtures / "raw" / "ml-1m.zip")]
    assert (
        main([*args, "--output", str(out["s.txt"]), "--stats", str(out["s.json"]), "--attributes", str(out["a.json"])])
        == 0
    )
    data = SequenceData.load(out["s.txt"])
    attributes = load_attributes(out["a.json"], "ml-1m")
    assert sorted(attributes) == list(range(1, data.max_item_id + 1))
    # numbering by hand: first appearance of each genre walking the item ids, through the raw movie ids
    genres = read_movielens_genres([fixtures / "raw" / "ml-1m.zip"])
    raw_ids = _raw_ids(fixtures)
    vocabulary = {}
    for item in range(1, data.max_item_id + 1):
        for genre in genres[raw_ids[item - 1]]:
            vocabulary.setdefault(genre, len(vocabulary) + 1)
    assert attributes == {
        item: sorted(vocabulary[genre] for genre in genres[raw_ids[item - 1]])
        for item in range(1, data.max_item_id + 1)
    }
    stats = json.loads(out["s.json"].read_text())["attributes"]
    assert stats["items_with_attributes"] == data.max_item_id and stats["vocabulary"] == len(vocabulary) == 5
    assert np.isclose(stats["mean_per_item"], sum(map(len, attributes.values())) / data.max_item_id)


def _raw_ids(fixtures):
    from elcrec.data.preprocess import build_sequences
    from elcrec.data.readers import read_movielens_dat

    _, _, items = build_sequences(read_movielens_dat([fixtures / "raw" / "ml-1m.zip"]), {"user_k": 5, "item_k": 5})
    return items


def test_cli_sequences_of_a_route_without_attributes_writes_the_null_marker(tmp_path, fixtures):
    spec = {"name": "toys", "route": "paper", "format": "sequences", "sources": [], "attributes": None}
    out = tmp_path / "a.json"
    args = ["sequences", "--spec", json.dumps(spec), "--inputs", str(fixtures / "benchmark" / "Toys_and_Games.txt")]
    assert (
        main([*args, "--output", str(tmp_path / "s"), "--stats", str(tmp_path / "s.json"), "--attributes", str(out)])
        == 0
    )
    assert out.read_text() == "null\n" and json.loads((tmp_path / "s.json").read_text())["attributes"] is None


def test_the_beauty_fixture_is_in_s3rec_shape_and_reads_as_its_sets(fixtures):
    raw = json.loads((fixtures / "benchmark" / "Beauty_item2attributes.json").read_text())
    assert any(len(ids) != len(set(ids)) for ids in raw.values())  # a repeat, as S3-Rec's files have
    items = {int(item) for item in np.unique(SequenceData.load(fixtures / "benchmark" / "Beauty.txt").items)}
    assert read_item2attributes(fixtures / "benchmark" / "Beauty_item2attributes.json", items) == {
        int(item): sorted(set(ids)) for item, ids in raw.items()
    }


@pytest.mark.parametrize("name", ["Beauty", "Sports_and_Outdoors", "Toys_and_Games", "Yelp"])
def test_the_real_s3rec_files_cover_exactly_the_benchmark_items(name, tmp_path):
    dataset = {"Sports_and_Outdoors": "sports", "Toys_and_Games": "toys"}.get(name, name.lower())
    attributes_path = fetched(dataset, f"{name}_item2attributes.json", tmp_path)
    sequences_path = fetched(dataset, f"{name}.txt", tmp_path)
    items = {int(item) for item in np.unique(SequenceData.load(sequences_path).items)}
    attributes = read_item2attributes(attributes_path, items)
    raw = json.loads(attributes_path.read_text())
    assert attributes == {int(item): sorted(set(ids)) for item, ids in raw.items()}
