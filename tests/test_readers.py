import gzip
import zipfile

import pytest
from conftest import write_lines

from elcrec import ElcrecError
from elcrec.data.readers import MalformedInput, read_interactions

RAW = "tests/data/raw"


def test_amazon_json_mixes_json_and_python_literals(fixtures):
    frame = read_interactions("amazon_json", [fixtures / "raw/reviews_Sports_and_Outdoors_5.json.gz"])
    assert list(frame.columns) == ["user", "item", "time"]
    assert len(frame) == 1056 and frame["user"].nunique() == 94
    first = frame.iloc[0]  # the first line is a Python literal (every 7th line is)
    assert first["user"] == "A00020X" and first["item"] == "B0000019" and first["time"] == 1357943458


def test_yelp_json_dates_become_utc_seconds(tmp_path):
    path = write_lines(tmp_path / "r.json", ['{"user_id": "u", "business_id": "b", "date": "2019-01-01 00:00:01"}'])
    frame = read_interactions("yelp_json", [path])
    assert frame["time"].tolist() == [1546300801]


def test_movielens_from_zip_member(fixtures):
    frame = read_interactions("movielens_dat", [fixtures / "raw/ml-1m.zip"], {"member": "ratings.dat"})
    assert len(frame) == 1021 and frame["time"].dtype == "int64"


def test_mind_history_then_clicks_at_impression_time(tmp_path):
    path = write_lines(
        tmp_path / "behaviors.tsv",
        ["1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN3-1 N4-0 N5-1", "2\tU2\t11/12/2019 1:00:00 PM\t\tN6-0 N1-1"],
    )
    frame = read_interactions("mind_behaviors", [path], {"member": None})
    assert frame["user"].tolist() == ["U1"] * 4 + ["U2"]
    assert frame["item"].tolist() == ["N1", "N2", "N3", "N5", "N1"]
    assert frame["time"].tolist()[0] == 1573463158 and frame["time"].tolist()[-1] == 1573563600


def test_mind_fixture_zips(fixtures):
    paths = [fixtures / "raw/MINDsmall_train.zip", fixtures / "raw/MINDsmall_dev.zip"]
    frame = read_interactions("mind_behaviors", paths)
    assert frame["user"].nunique() == 70


def test_csv_tab_separated_with_iso_times(tmp_path):
    path = write_lines(tmp_path / "x.tsv", ["who\twhat\twhen", "a\tx\t2020-01-01T00:00:00", "a\ty\t2020-01-02"])
    frame = read_interactions("csv", [path], {"user_column": "who", "item_column": "what", "time_column": "when"})
    assert frame["item"].tolist() == ["x", "y"] and frame["time"].tolist() == [1577836800, 1577923200]


def test_csv_fixture(fixtures):
    options = {"user_column": "user_id", "item_column": "item_id", "time_column": "timestamp"}
    frame = read_interactions("csv", [fixtures / "raw/interactions.csv"], options)
    assert len(frame) == 973


@pytest.mark.parametrize(
    ("format_name", "lines", "options", "expected"),
    [
        ("amazon_json", ['{"reviewerID": "a", "asin": "b", "unixReviewTime": 1}', "{not json"], {}, ":2: expected one"),
        ("amazon_json", ['{"reviewerID": "a", "unixReviewTime": 1}'], {}, ":1: missing field 'asin'"),
        ("amazon_json", ['{"reviewerID": "a", "asin": "b", "unixReviewTime": "soon"}'], {}, ":1: field 'unixRev"),
        ("yelp_json", ['{"user_id": "u", "business_id": "b", "date": "yesterday"}'], {}, ":1: expected a time"),
        ("movielens_dat", ["1::2::3::4", "1::2::3"], {}, ":2: expected 'UserID::MovieID"),
        ("mind_behaviors", ["1\tU\t11/11/2019 9:05:58 AM\t\tN1-2"], {}, ":1: expected impressions like"),
        ("mind_behaviors", ["1\tU\t11/11/2019 9:05:58 AM\tN1"], {}, ":1: expected 5 tab-separated"),
        ("mind_behaviors", ["1\tU\t2019-11-11\t\tN1-1"], {}, ":1: expected a time like"),
        ("csv", ["user,item,timestamp", "a,b,1", "a,b"], {}, ":3: expected 3 fields, found 2"),
        ("csv", ["user,item,timestamp", "a,,1"], {}, ":2: empty user"),
        ("csv", ["user,item,timestamp", "a,b,noon"], {}, ":2: expected a time"),
        ("csv", ["u,item,timestamp", "a,b,1"], {}, ":1: header lacks column(s) ['user']"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, format_name, lines, options, expected):
    path = write_lines(tmp_path / "input.txt", lines)
    with pytest.raises(MalformedInput) as error:
        read_interactions(format_name, [path], options)
    assert str(error.value).startswith(str(path)) and expected in str(error.value)


def test_errors_inside_archives_name_the_member(tmp_path):
    path = tmp_path / "ml.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-1m/ratings.dat", "1::2::3::4\nbroken\n")
    with pytest.raises(MalformedInput, match=r"ml\.zip!ml-1m/ratings\.dat:2:"):
        read_interactions("movielens_dat", [path])
    with pytest.raises(MalformedInput, match="exactly one member named 'movies.dat'"):
        read_interactions("movielens_dat", [path], {"member": "movies.dat"})


def test_gzip_and_unknown_format(tmp_path):
    path = tmp_path / "r.json.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"reviewerID": "a", "asin": "b", "unixReviewTime": 5}\n\n')
    assert len(read_interactions("amazon_json", [path])) == 1
    with pytest.raises(ElcrecError, match="unknown raw format 'parquet'"):
        read_interactions("parquet", [path])
    with pytest.raises(ElcrecError, match="bad reader options"):
        read_interactions("amazon_json", [path], {"colour": "red"})
