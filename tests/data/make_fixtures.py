"""Write the tiny committed fixtures in every format the pipeline reads.

    python tests/data/make_fixtures.py           # rewrite tests/data/{benchmark,raw}/ + SHA256SUMS

The data are synthetic (real MovieLens and MIND files may not be redistributed): users draw
items from one or two "intent" clusters and within a cluster mostly step to the next item, so
sequential models have something to learn in smoke runs. Output is byte-for-byte deterministic
(fixed seeds, gzip mtime 0, fixed zip dates); tests/test_fixtures.py checks that.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import zipfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def synthetic_sequences(seed: int, n_users: int, n_items: int, n_clusters: int) -> list[list[int]]:
    """Item indices from 0, per user, in time order."""
    rng = random.Random(seed)
    cluster_size = n_items // n_clusters
    sequences = []
    for _ in range(n_users):
        intents = rng.sample(range(n_clusters), 2)
        position = rng.randrange(cluster_size)
        sequence = []
        for _ in range(rng.randint(6, 16)):
            cluster = intents[0] if rng.random() < 0.75 else intents[1]
            position = (position + (1 if rng.random() < 0.7 else rng.randrange(cluster_size))) % cluster_size
            sequence.append(cluster * cluster_size + position)
        sequences.append(sequence)
    return sequences


def benchmark_file(seed: int) -> str:
    """The benchmark format: `user item item ...`, ids from 1, every id used."""
    lines, _ = benchmark_ids(seed)
    return "\n".join(lines) + "\n"


def benchmark_ids(seed: int) -> tuple[list[str], dict[int, int]]:
    """The benchmark file's lines and its item ids (synthetic item index -> id)."""
    sequences = synthetic_sequences(seed, n_users=120, n_items=60, n_clusters=6)
    ids: dict[int, int] = {}
    lines = []
    for user, sequence in enumerate(sequences, 1):
        mapped = [ids.setdefault(item, len(ids) + 1) for item in sequence]
        lines.append(" ".join(map(str, [user, *mapped])))
    return lines, ids


def item_attribute_names(item: int, cluster_size: int) -> list[str]:
    """An item's "intent" cluster, its position's parity and, for every third item, a shared tag:
    attributes that say something about the clusters the sequences are drawn from."""
    names = [f"cluster{item // cluster_size}", "even" if item % 2 == 0 else "odd"]
    return names + (["tagged"] if item % 3 == 0 else [])


def item2attributes_json(seed: int) -> str:
    """S3-Rec's `*_item2attributes.json` for the benchmark fixture, in its shape: item ids as
    string keys in no particular order, unsorted ids numbered by first appearance, and a repeat
    (a name met twice, as S3-Rec's category paths give)."""
    _, ids = benchmark_ids(seed)
    rng = random.Random(seed + 100)
    items = sorted(ids)
    rng.shuffle(items)
    vocabulary: dict[str, int] = {}
    result = {}
    for index, item in enumerate(items):
        names = item_attribute_names(item, 10)
        rng.shuffle(names)
        if index % 9 == 0:
            names.append(names[0])
        result[str(ids[item])] = [vocabulary.setdefault(name, len(vocabulary) + 1) for name in names]
    return json.dumps(result)


def timed_interactions(seed: int, start: int) -> list[tuple[int, int, int]]:
    """(user, item, unix time) rows in a shuffled file order, with some equal times per user
    (the stable tie-break must keep file order) and a few users/items that k-core removes."""
    rng = random.Random(seed)
    rows = []
    for user, sequence in enumerate(synthetic_sequences(seed, n_users=90, n_items=48, n_clusters=4)):
        moment = start + rng.randrange(86_400 * 30)
        for item in sequence:
            moment += rng.choice([0, 3600, 86_400])
            rows.append((user, item, moment))
    for user in range(90, 94):  # short users: removed by the 5-core
        rows.extend((user, rng.randrange(48), start + k) for k in range(3))
    rows.extend((rng.randrange(90), 48 + k, start) for k in range(4))  # rare items: removed too
    rng.shuffle(rows)
    return rows


def amazon_json_gz() -> bytes:
    lines = []
    for index, (user, item, moment) in enumerate(timed_interactions(11, 1_356_998_400)):
        record = {"reviewerID": f"A{user:05d}X", "asin": f"B{item:07d}", "overall": 5.0, "unixReviewTime": moment}
        # the older dumps are Python literals, not JSON: mix both styles
        lines.append(repr(record) if index % 7 == 0 else json.dumps(record))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(("\n".join(lines) + "\n").encode())
    return buffer.getvalue()


def amazon_meta_json_gz() -> bytes:
    """`meta_<Name>.json.gz` for the reviews fixture: Python-literal lines (as the 2014 dumps are),
    category paths under the top category, a brand on most items (one empty, some missing), and an
    item no review names."""
    lines = []
    for item in [*range(52), 99]:
        record: dict = {"asin": f"B{item:07d}", "title": f"product {item}"}
        names = item_attribute_names(item, 12)
        record["categories"] = [["Sports & Outdoors", *names[:2]], ["Sports & Outdoors", *names[1:]]]
        if item % 5:
            record["brand"] = f"brand{item % 4}" if item % 7 else ""
        lines.append(repr(record))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(("\n".join(lines) + "\n").encode())
    return buffer.getvalue()


def yelp_business_json() -> str:
    """`yelp_academic_dataset_business.json`: comma-separated categories, null for some businesses."""
    lines = []
    for item in range(52):
        categories = None if item % 11 == 5 else ", ".join(item_attribute_names(item, 12))
        lines.append(json.dumps({"business_id": f"b{item:04d}", "name": f"place {item}", "categories": categories}))
    return "\n".join(lines) + "\n"


def yelp_json() -> str:
    rows = timed_interactions(12, 1_546_300_800)  # 2019-01-01
    rows += [(0, 1, 1_514_764_800), (1, 2, 1_577_923_200)]  # 2018 and 2020: outside the window
    lines = []
    for index, (user, item, moment) in enumerate(rows):
        date = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            json.dumps(
                {
                    "review_id": f"r{index}",
                    "user_id": f"u{user:04d}",
                    "business_id": f"b{item:04d}",
                    "stars": 4.0,
                    "date": date,
                }
            )
        )
    return "\n".join(lines) + "\n"


def zip_bytes(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_DATE), text)
    return buffer.getvalue()


def movielens_zip() -> bytes:
    rows = timed_interactions(13, 978_300_000)
    ratings = "".join(f"{user + 1}::{item + 1}::{(user + item) % 5 + 1}::{moment}\n" for user, item, moment in rows)
    genres = ["Action", "Comedy", "Drama", "Horror"]
    movies = ""
    for item in range(52):  # a genre per cluster, and a second one for every third movie
        movie_genres = [genres[item // 12 % 4], *(["Romance"] if item % 3 == 0 else [])]
        movies += f"{item + 1}::Movie {item + 1} (2000)::{'|'.join(movie_genres)}\n"
    return zip_bytes(
        {
            "ml-1m/ratings.dat": ratings,
            "ml-1m/movies.dat": movies,
            "ml-1m/README": "synthetic fixture in the ML-1M format\n",
        }
    )


def mind_zips() -> tuple[bytes, bytes]:
    rng = random.Random(14)
    sequences = synthetic_sequences(14, n_users=70, n_items=40, n_clusters=4)
    train, dev = [], []
    for user, sequence in enumerate(sequences):
        history, clicks = sequence[:4], sequence[4:]
        for part, rows, day in ((clicks[: len(clicks) // 2], train, 11), (clicks[len(clicks) // 2 :], dev, 15)):
            for hour, news in enumerate(part):
                shown = [f"N{news}-1"] + [f"N{rng.randrange(40)}-0" for _ in range(3)]
                rng.shuffle(shown)
                moment = f"11/{day}/2019 {hour % 12 + 1}:0{hour % 6}:00 {'AM' if hour < 12 else 'PM'}"
                rows.append(
                    f"{len(train) + len(dev) + 1}\tU{user}\t{moment}\t"
                    f"{' '.join(f'N{item}' for item in history)}\t{' '.join(shown)}"
                )
    # each split's news.tsv holds the news of that split's days (overlapping, as MIND's do)
    categories = ["sports", "news", "finance", "lifestyle"]

    def news(items: range) -> str:
        return "".join(
            f"N{item}\t{categories[item // 10]}\t{categories[item // 10]}_{item % 2}\tTitle {item}\tAbstract\t"
            f"https://example.invalid/N{item}\t[]\t[]\n"
            for item in items
        )

    return (
        zip_bytes({"behaviors.tsv": "\n".join(train) + "\n", "news.tsv": news(range(0, 30))}),
        zip_bytes({"behaviors.tsv": "\n".join(dev) + "\n", "news.tsv": news(range(10, 40))}),
    )


def interactions_csv() -> str:
    rows = timed_interactions(15, 1_600_000_000)
    return "user_id,item_id,rating,timestamp\n" + "".join(
        f"user{user},item{item},{(user * item) % 5 + 1},{moment}\n" for user, item, moment in rows
    )


def s3rec_official_state(seed: int) -> bytes:
    """A state dict in the layout of the S3-Rec authors' pre-trained models (reproduce/*.pt: the
    ICLRec encoder, 64 dims, 2 layers, max length 50, the attribute table and four heads), sized
    for the Beauty fixture and filled with seeded N(0, 0.02) values: what rule import_pretrained
    imports in the smoke run."""
    import torch  # only this fixture needs it

    _, ids = benchmark_ids(seed)
    attributes = json.loads(item2attributes_json(seed))
    shapes = {
        "item_embeddings.weight": (len(ids) + 2, 64),
        "attribute_embeddings.weight": (max(max(values) for values in attributes.values()) + 1, 64),
        "position_embeddings.weight": (50, 64),
    }
    for layer in range(2):
        block = f"item_encoder.layer.{layer}"
        for name in ("query", "key", "value", "dense"):
            shapes |= {f"{block}.attention.{name}.weight": (64, 64), f"{block}.attention.{name}.bias": (64,)}
        shapes |= {f"{block}.attention.LayerNorm.weight": (64,), f"{block}.attention.LayerNorm.bias": (64,)}
        shapes |= {f"{block}.intermediate.dense_1.weight": (256, 64), f"{block}.intermediate.dense_1.bias": (256,)}
        shapes |= {f"{block}.intermediate.dense_2.weight": (64, 256), f"{block}.intermediate.dense_2.bias": (64,)}
        shapes |= {f"{block}.intermediate.LayerNorm.weight": (64,), f"{block}.intermediate.LayerNorm.bias": (64,)}
    shapes |= {"LayerNorm.weight": (64,), "LayerNorm.bias": (64,)}
    for head in ("aap", "mip", "map", "sp"):
        shapes |= {f"{head}_norm.weight": (64, 64), f"{head}_norm.bias": (64,)}
    generator = torch.Generator().manual_seed(seed)
    state = {name: torch.randn(shape, generator=generator) * 0.02 for name, shape in shapes.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def fixtures() -> dict[str, bytes]:
    train, dev = mind_zips()
    return {
        "benchmark/Beauty.txt": benchmark_file(1).encode(),
        "benchmark/Beauty_item2attributes.json": item2attributes_json(1).encode(),
        "benchmark/S3Rec-Beauty-epochs-150.pt": s3rec_official_state(1),
        "benchmark/Toys_and_Games.txt": benchmark_file(2).encode(),
        "raw/reviews_Sports_and_Outdoors_5.json.gz": amazon_json_gz(),
        "raw/meta_Sports_and_Outdoors.json.gz": amazon_meta_json_gz(),
        "raw/yelp_academic_dataset_review.json": yelp_json().encode(),
        "raw/yelp_academic_dataset_business.json": yelp_business_json().encode(),
        "raw/ml-1m.zip": movielens_zip(),
        "raw/MINDsmall_train.zip": train,
        "raw/MINDsmall_dev.zip": dev,
        "raw/interactions.csv": interactions_csv().encode(),
    }


def write(root: Path = HERE) -> dict[str, str]:
    digests = {}
    for name, payload in fixtures().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        digests[name] = hashlib.sha256(payload).hexdigest()
    (root / "SHA256SUMS").write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items())))
    return digests


if __name__ == "__main__":
    for name, digest in write().items():
        print(f"{digest}  {name}")
