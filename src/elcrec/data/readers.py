"""One reader per raw format. Each turns raw files into an interaction table.

A reader returns a DataFrame with columns `user` (str), `item` (str) and `time` (int64, unix
seconds or any order-preserving integer), rows in file order; the file order is the stable
tie-break on equal times downstream. A malformed line raises MalformedInput naming the file
(and archive member), the line number, what was expected and what was found.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import pandas as pd
from tqdm import tqdm

from elcrec import ElcrecError


class MalformedInput(ElcrecError):
    def __init__(self, where: str, line_number: int | None, message: str) -> None:
        location = where if line_number is None else f"{where}:{line_number}"
        super().__init__(f"{location}: {message}")


@contextmanager
def open_text(path: Path, member: str | None = None, encoding: str = "utf-8") -> Iterator[tuple[TextIO, str]]:
    """Open a plain, gzip, zip or tar file as text; yield the handle and a name for messages."""
    path = Path(path)
    name = path.name
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            chosen = _choose_member(path, archive.namelist(), member)
            with archive.open(chosen) as raw:
                yield io.TextIOWrapper(raw, encoding=encoding, newline=""), f"{path}!{chosen}"
        return
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        with tarfile.open(path) as archive:
            names = [entry.name for entry in archive.getmembers() if entry.isfile()]
            chosen = _choose_member(path, names, member)
            raw = archive.extractfile(chosen)
            yield io.TextIOWrapper(raw, encoding=encoding, newline=""), f"{path}!{chosen}"
        return
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding=encoding, newline="") as handle:
            yield handle, str(path)
        return
    with open(path, encoding=encoding, newline="") as handle:
        yield handle, str(path)


def _choose_member(path: Path, names: list[str], member: str | None) -> str:
    if member is None:
        raise MalformedInput(str(path), None, f"an archive needs a `member` reader option; it holds {names[:10]}")
    matches = [name for name in names if name == member or name.endswith("/" + member)]
    if len(matches) != 1:
        raise MalformedInput(
            str(path), None, f"expected exactly one member named {member!r}, found {len(matches)} in {names[:10]}"
        )
    return matches[0]


def _lines(handle: TextIO, where: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(tqdm(handle, desc=Path(where).name, unit=" lines", mininterval=5), 1):
        line = line.rstrip("\r\n")
        if line.strip():
            yield number, line


def _table(users: list[str], items: list[str], times: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": pd.Series(users, dtype="object"),
            "item": pd.Series(items, dtype="object"),
            "time": pd.Series(times, dtype="int64"),
        }
    )


def _parse_record(line: str, where: str, number: int) -> dict:
    """JSON, or the Python-literal dicts of the older Amazon dumps."""
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        pass
    try:
        record = ast.literal_eval(line)
    except (ValueError, SyntaxError) as error:
        raise MalformedInput(where, number, f"expected one JSON object per line, found {line[:80]!r}") from error
    if not isinstance(record, dict):
        raise MalformedInput(where, number, f"expected a JSON object, found {type(record).__name__}")
    return record


def _field(record: dict, field: str, where: str, number: int) -> object:
    if field not in record or record[field] in (None, ""):
        raise MalformedInput(where, number, f"missing field {field!r} (fields found: {sorted(record)[:8]})")
    return record[field]


def _datetime_seconds(text: str, fmt: str | None, where: str, number: int) -> int:
    try:
        moment = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
    except ValueError as error:
        expected = fmt or "an ISO date-time"
        raise MalformedInput(where, number, f"expected a time like {expected!r}, found {text!r}") from error
    return int(moment.replace(tzinfo=UTC).timestamp()) if moment.tzinfo is None else int(moment.timestamp())


def _json_lines_reader(
    paths: list[Path],
    user_field: str,
    item_field: str,
    time_of: Callable[[dict, str, int], int],
    member: str | None,
) -> pd.DataFrame:
    users, items, times = [], [], []
    for path in paths:
        with open_text(path, member) as (handle, where):
            for number, line in _lines(handle, where):
                record = _parse_record(line, where, number)
                users.append(str(_field(record, user_field, where, number)))
                items.append(str(_field(record, item_field, where, number)))
                times.append(time_of(record, where, number))
    return _table(users, items, times)


def read_amazon_json(
    paths: list[Path],
    user_field: str = "reviewerID",
    item_field: str = "asin",
    time_field: str = "unixReviewTime",
    member: str | None = None,
) -> pd.DataFrame:
    """Amazon 2014 review dumps: one JSON (or Python-literal) object per line, unix times."""

    def time_of(record: dict, where: str, number: int) -> int:
        value = _field(record, time_field, where, number)
        try:
            return int(value)
        except (TypeError, ValueError) as error:
            raise MalformedInput(
                where, number, f"field {time_field!r}: expected unix seconds, found {value!r}"
            ) from error

    return _json_lines_reader(paths, user_field, item_field, time_of, member)


def read_yelp_json(
    paths: list[Path],
    user_field: str = "user_id",
    item_field: str = "business_id",
    time_field: str = "date",
    member: str | None = None,
) -> pd.DataFrame:
    """Yelp Open Dataset reviews: one JSON object per line, `date` as 'YYYY-MM-DD HH:MM:SS'."""

    def time_of(record: dict, where: str, number: int) -> int:
        return _datetime_seconds(str(_field(record, time_field, where, number)), None, where, number)

    return _json_lines_reader(paths, user_field, item_field, time_of, member)


def read_movielens_dat(
    paths: list[Path], member: str | None = "ratings.dat", encoding: str = "latin-1"
) -> pd.DataFrame:
    """MovieLens 1M `ratings.dat`: `UserID::MovieID::Rating::Timestamp`; every rating counts."""
    users, items, times = [], [], []
    for path in paths:
        with open_text(path, member if zipfile.is_zipfile(path) else None, encoding) as (handle, where):
            for number, line in _lines(handle, where):
                fields = line.split("::")
                if len(fields) != 4 or not all(field.strip().lstrip("-").isdigit() for field in fields):
                    raise MalformedInput(
                        where,
                        number,
                        f"expected 'UserID::MovieID::Rating::Timestamp' (4 integers), found {line[:80]!r}",
                    )
                users.append(fields[0])
                items.append(fields[1])
                times.append(int(fields[3]))
    return _table(users, items, times)


MIND_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def read_mind_behaviors(paths: list[Path], member: str | None = "behaviors.tsv") -> pd.DataFrame:
    """MIND `behaviors.tsv` (train and dev): per impression, the user's click history then the
    clicked impressions (`-1`), all stamped with the impression time. Duplicates are left in;
    the registry's `dedupe: first` keeps each user's first occurrence after time ordering."""
    users, items, times = [], [], []
    for path in paths:
        with open_text(path, member if zipfile.is_zipfile(path) else None) as (handle, where):
            for number, line in _lines(handle, where):
                fields = line.split("\t")
                if len(fields) != 5:
                    raise MalformedInput(
                        where,
                        number,
                        f"expected 5 tab-separated columns (id, user, time, history, impressions), found {len(fields)}",
                    )
                _, user, moment, history, impressions = fields
                seconds = _datetime_seconds(moment, MIND_TIME_FORMAT, where, number)
                clicked = []
                for token in impressions.split():
                    news, _, label = token.rpartition("-")
                    if not news or label not in ("0", "1"):
                        raise MalformedInput(
                            where, number, f"expected impressions like 'N123-1' or 'N123-0', found {token!r}"
                        )
                    if label == "1":
                        clicked.append(news)
                for news in history.split() + clicked:
                    users.append(user)
                    items.append(news)
                    times.append(seconds)
    return _table(users, items, times)


def read_csv(
    paths: list[Path],
    user_column: str = "user",
    item_column: str = "item",
    time_column: str = "timestamp",
    delimiter: str = "auto",
    time_format: str | None = None,
    member: str | None = None,
) -> pd.DataFrame:
    """A user's own interactions: a header row naming the user, item and time columns; comma
    or tab separated (`auto` picks from the header). Times are integers (unix seconds or any
    increasing counter) or date-times (ISO, or `time_format` for strptime)."""
    users, items, times = [], [], []
    for path in paths:
        with open_text(path, member) as (handle, where):
            header = handle.readline()
            separator = ("\t" if "\t" in header else ",") if delimiter == "auto" else delimiter
            columns = next(csv.reader([header], delimiter=separator), [])
            missing = [name for name in (user_column, item_column, time_column) if name not in columns]
            if missing:
                raise MalformedInput(where, 1, f"header lacks column(s) {missing}; found columns {columns}")
            positions = [columns.index(name) for name in (user_column, item_column, time_column)]
            for number, row in enumerate(csv.reader(handle, delimiter=separator), 2):
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    raise MalformedInput(where, number, f"expected {len(columns)} fields, found {len(row)}")
                user, item, moment = (row[position].strip() for position in positions)
                if not user or not item or not moment:
                    raise MalformedInput(where, number, "empty user, item or time field")
                users.append(user)
                items.append(item)
                times.append(_csv_time(moment, time_format, where, number))
    return _table(users, items, times)


def _csv_time(text: str, time_format: str | None, where: str, number: int) -> int:
    if time_format is None:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return int(float(text))
        except ValueError:
            pass
    return _datetime_seconds(text, time_format, where, number)


READERS: dict[str, Callable[..., pd.DataFrame]] = {
    "amazon_json": read_amazon_json,
    "yelp_json": read_yelp_json,
    "movielens_dat": read_movielens_dat,
    "mind_behaviors": read_mind_behaviors,
    "csv": read_csv,
}


def read_interactions(format_name: str, paths: list[Path], options: dict | None = None) -> pd.DataFrame:
    if format_name not in READERS:
        raise ElcrecError(f"unknown raw format {format_name!r}; known formats: {sorted(READERS)}")
    try:
        return READERS[format_name](list(map(Path, paths)), **(options or {}))
    except TypeError as error:
        raise ElcrecError(f"reader {format_name!r}: bad reader options {options}: {error}") from error
