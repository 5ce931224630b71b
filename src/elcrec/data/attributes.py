"""Item attributes: the data stage's `{dataset}.attributes.json`, beside the sequence file.

The file maps every item id of the sequence file (a JSON string key, as in S3-Rec's
`*_item2attributes.json`) to the sorted, de-duplicated list of its attribute ids (from 1);
an item without attributes maps to `[]`. A dataset whose route has no attribute source gets a
file holding JSON `null`, the explicit marker that it has none, so the workflow always has the
same outputs and a model that needs attributes stops in `load_attributes` naming the dataset.

Sets, not lists with repeats: S3-Rec turns an item's attributes into a multi-hot vector
(aHuiWang/CIKM2020-S3Rec datasets.py, PretrainDataset.__getitem__, `attribute[a] = 1`), so the
repeats its data_process.py leaves in (a category named in two category paths) change nothing.

Raw routes name attributes by string; `number_attributes` gives them ids in the order of first
appearance, walking the items by id and each item's names in source order (S3-Rec numbers them
in first-appearance order over its meta file: data_process.py, get_attribute_Amazon).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from elcrec import ElcrecError
from elcrec.data.readers import MalformedInput, _lines, _parse_record, open_text
from elcrec.data.sequences import SequenceData
from elcrec.fileio import write_text_atomic

Attributes = dict[int, list[int]]


def read_item2attributes(path: Path, items: set[int]) -> Attributes:
    """S3-Rec's `*_item2attributes.json` checked against the sequence file's items: every item a
    key, no other key, attribute ids integers from 1."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise MalformedInput(str(path), None, f"expected a JSON object of item id -> attribute ids: {error}") from error
    if not isinstance(raw, dict):
        raise MalformedInput(str(path), None, f"expected a JSON object of item id -> attribute ids, found {type(raw)}")
    attributes: Attributes = {}
    for key, values in raw.items():
        if not key.isdigit() or int(key) < 1:
            raise MalformedInput(str(path), None, f"expected item ids (integers from 1) as keys, found {key!r}")
        if not isinstance(values, list) or not all(type(value) is int and value >= 1 for value in values):
            raise MalformedInput(
                str(path), None, f"item {key}: expected a list of attribute ids (integers from 1), found {values!r}"
            )
        attributes[int(key)] = sorted(set(values))
    missing, extra = sorted(items - attributes.keys()), sorted(attributes.keys() - items)
    if missing or extra:
        raise MalformedInput(
            str(path),
            None,
            f"its items are not those of the sequence file: {len(missing)} missing (first {missing[:5]}), "
            f"{len(extra)} not in the sequences (first {extra[:5]})",
        )
    return dict(sorted(attributes.items()))


def number_attributes(names: dict[str, list[str]], item_names: list[str]) -> Attributes:
    """Attribute names of raw items -> ids, for the items of the sequence file (`item_names[i]`
    is the raw id of item i + 1). Items outside the sequences are left out before numbering,
    so the vocabulary holds only attributes some item of the dataset has."""
    vocabulary: dict[str, int] = {}
    attributes: Attributes = {}
    for index, raw_item in enumerate(item_names, 1):
        ids = {vocabulary.setdefault(name, len(vocabulary) + 1) for name in names.get(raw_item, [])}
        attributes[index] = sorted(ids)
    return attributes


def read_movielens_genres(
    paths: list[Path], member: str | None = "movies.dat", encoding: str = "latin-1"
) -> dict[str, list[str]]:
    """MovieLens 1M `movies.dat`: `MovieID::Title::Genre|Genre|...`; the genres are the attributes."""
    names: dict[str, list[str]] = {}
    for path in paths:
        with open_text(path, member, encoding) as (handle, where):
            for number, line in _lines(handle, where):
                fields = line.split("::")
                if len(fields) != 3 or not fields[0].strip().isdigit():
                    raise MalformedInput(
                        where, number, f"expected 'MovieID::Title::Genre|Genre' (3 fields), found {line[:80]!r}"
                    )
                names[fields[0].strip()] = [genre for genre in fields[2].split("|") if genre]
    return names


def read_mind_news(paths: list[Path], member: str | None = "news.tsv") -> dict[str, list[str]]:
    """MIND `news.tsv` (train and dev): the news item's category and subcategory. Prefixed, since
    the two are separate vocabularies whose names may coincide."""
    names: dict[str, list[str]] = {}
    for path in paths:
        with open_text(path, member) as (handle, where):
            for number, line in _lines(handle, where):
                fields = line.split("\t")
                if len(fields) < 3 or not fields[0] or not fields[1]:
                    raise MalformedInput(
                        where, number, f"expected tab-separated 'id, category, subcategory, ...', found {line[:80]!r}"
                    )
                item = [f"category:{fields[1]}"] + ([f"subcategory:{fields[2]}"] if fields[2] else [])
                names.setdefault(fields[0], item)
    return names


def read_amazon_meta(paths: list[Path], member: str | None = None) -> dict[str, list[str]]:
    """Amazon 2014 `meta_<Name>.json.gz`: the brand, then every category of every category path
    but its first (the top category, which every item of the dump shares), as S3-Rec did
    (data_process.py, get_attribute_Amazon; its attribute_core 0 keeps them all). An empty brand
    is no brand here (S3-Rec's code would count "" as one attribute)."""
    names: dict[str, list[str]] = {}
    for path in paths:
        with open_text(path, member) as (handle, where):
            for number, line in _lines(handle, where):
                record = _parse_record(line, where, number)
                if "asin" not in record:
                    raise MalformedInput(where, number, f"missing field 'asin' (fields found: {sorted(record)[:8]})")
                paths_ = record.get("categories", [])
                if not isinstance(paths_, list) or not all(isinstance(part, list) for part in paths_):
                    raise MalformedInput(where, number, f"field 'categories': expected lists, found {paths_!r}")
                brand = record.get("brand")
                item = [brand] if isinstance(brand, str) and brand else []
                names[str(record["asin"])] = item + [name for part in paths_ for name in part[1:]]
    return names


def read_yelp_business(paths: list[Path], member: str | None = None) -> dict[str, list[str]]:
    """Yelp `yelp_academic_dataset_business.json`: the comma-separated `categories` (null for some
    businesses), stripped, as S3-Rec did (data_process.py, get_attribute_Yelp)."""
    names: dict[str, list[str]] = {}
    for path in paths:
        with open_text(path, member) as (handle, where):
            for number, line in _lines(handle, where):
                record = _parse_record(line, where, number)
                if "business_id" not in record:
                    raise MalformedInput(where, number, "missing field 'business_id'")
                categories = record.get("categories") or ""
                if not isinstance(categories, str):
                    raise MalformedInput(where, number, f"field 'categories': expected a string, found {categories!r}")
                parts = [part.strip() for part in categories.split(",")]
                names[str(record["business_id"])] = [part for part in parts if part]
    return names


ATTRIBUTE_READERS: dict[str, Callable[..., dict[str, list[str]]]] = {
    "movielens_genres": read_movielens_genres,
    "mind_news": read_mind_news,
    "amazon_meta": read_amazon_meta,
    "yelp_business": read_yelp_business,
}
ITEM2ATTRIBUTES = "item2attributes"
"""The paper routes' format: the S3-Rec file, already in item ids."""


def read_attribute_names(format_name: str, paths: Iterable[Path], options: dict | None = None) -> dict[str, list[str]]:
    if format_name not in ATTRIBUTE_READERS:
        known = sorted([*ATTRIBUTE_READERS, ITEM2ATTRIBUTES])
        raise ElcrecError(f"unknown attribute format {format_name!r}; known formats: {known}")
    try:
        return ATTRIBUTE_READERS[format_name](list(map(Path, paths)), **(options or {}))
    except TypeError as error:
        raise ElcrecError(f"attribute reader {format_name!r}: bad reader options {options}: {error}") from error


def build_attributes(
    spec: dict, inputs: Iterable[str | Path], data: SequenceData, item_names: list[str] | None
) -> Attributes | None:
    """The attributes of a dataset's items from its route's attribute block (None: it has none).
    `inputs` are the verified raw files, found by source name; `item_names` the raw id of each
    item of a raw route (build_sequences), None for a `sequences` route, already in item ids."""
    block = spec.get("attributes")
    if not block:
        return None
    by_name = {Path(path).name: Path(path) for path in inputs}
    missing = [name for name in block["sources"] if name not in by_name]
    if missing:
        raise ElcrecError(f"dataset {spec['name']}: the attribute source(s) {missing} are not among the inputs")
    paths = [by_name[name] for name in block["sources"]]
    if block["format"] == ITEM2ATTRIBUTES:
        if len(paths) != 1 or block.get("reader"):
            raise ElcrecError(f"dataset {spec['name']}: the {ITEM2ATTRIBUTES!r} format reads one file, as it is")
        return read_item2attributes(paths[0], {int(item) for item in np.unique(data.items)})
    if item_names is None:
        raise ElcrecError(
            f"dataset {spec['name']}: attributes in the {block['format']!r} format name raw items, but the route's "
            f"sequences are already in item ids (use the {ITEM2ATTRIBUTES!r} format)"
        )
    return number_attributes(read_attribute_names(block["format"], paths, block.get("reader")), item_names)


def write_attributes(path: str | Path, attributes: Attributes | None) -> None:
    """One item per line (keys in id order), so the file diffs and greps; `null` when there are none."""
    if attributes is None:
        write_text_atomic(path, "null\n")
        return
    lines = [f"{json.dumps(str(item))}: {json.dumps(ids)}" for item, ids in sorted(attributes.items())]
    write_text_atomic(path, "{\n" + ",\n".join(lines) + "\n}\n" if lines else "{}\n")


def attribute_stats(attributes: Attributes | None) -> dict | None:
    """The stats.json counts; None (JSON null) says the dataset has no attributes."""
    if attributes is None:
        return None
    used = {value for ids in attributes.values() for value in ids}
    return {
        "items": len(attributes),
        "items_with_attributes": sum(1 for ids in attributes.values() if ids),
        "vocabulary": len(used),
        "max_attribute_id": max(used, default=0),
        "mean_per_item": sum(map(len, attributes.values())) / len(attributes) if attributes else 0.0,
    }


def load_attributes(path: str | Path, dataset: str) -> Attributes:
    """What a model that needs attributes (S3-Rec's AAP and MAP) calls; a dataset without them
    is an error naming it, never an empty mapping the model would silently train on."""
    attributes = read_attributes(path, dataset)
    if attributes is None:
        raise ElcrecError(
            f"dataset {dataset} has no item attributes (its route names no attribute source): choose a model "
            f"or variant that needs none, or a route with attributes (config/datasets.yaml, `attributes`)"
        )
    return attributes


def read_attributes(path: str | Path, dataset: str) -> Attributes | None:
    """The data stage's attributes file; None for its `null` marker (the dataset has none), for a
    caller that lets the model decide whether it needs them (pre-training: S3-Rec's ISP does not)."""
    path = Path(path)
    if not path.is_file():
        raise ElcrecError(f"dataset {dataset}: no attributes file {path} (the data stage writes it: rule `sequences`)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ElcrecError(f"{path}: not valid JSON ({error})") from error
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ElcrecError(f"{path}: expected a JSON object of item id -> attribute ids, or null")
    return {int(item): list(ids) for item, ids in raw.items()}
