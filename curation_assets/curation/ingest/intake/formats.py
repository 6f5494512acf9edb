"""Readers of each file format, in bulk; every unit ends up a row or a quarantined unit."""

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

#: Raw text kept in quarantine rows, enough for a person to see what was wrong.
RAW_PREVIEW_CHARS = 2_000
#: Deepest JSON nesting accepted in one record; deeper lines are quarantined alone
#: (real records nest a few levels; a 100k-deep line would exhaust the recursion limit).
MAX_JSON_DEPTH = 100
#: Longest CSV record (bytes) an open quote may span before the parser gives up on it,
#: quarantines the line that opened it and resumes on the next line.
MAX_CSV_RECORD_CHARS = 1 << 20
#: Bumped when reading rules change, so that unchanged files are read again once.
READER_VERSION = "2"
UTF8_BOM = b"\xef\xbb\xbf"


Bad = list[tuple[int, str, str]]  # (line_no, reason, raw preview) per quarantined unit


def _parse_object(text: str, line_no: int, what: str, bad: Bad) -> dict | None:
    """One JSON unit parsed into a dict, or a quarantine entry in ``bad`` saying why not."""
    preview = text[:RAW_PREVIEW_CHARS]
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        bad.append((line_no, f"malformed JSON: {exc.msg} (column {exc.colno})", preview))
        return None
    except RecursionError:
        bad.append((line_no, f"JSON nested too deeply (over {MAX_JSON_DEPTH} levels)", preview))
        return None
    if not isinstance(value, dict):
        bad.append((line_no, f"JSON {what} is a {type(value).__name__}, not an object", preview))
        return None
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        bad.append((line_no, f"JSON nested too deeply (over {MAX_JSON_DEPTH} levels)", preview))
        return None
    value["__line_no"] = line_no
    value["__raw"] = text
    return value


def _depth(value: object) -> int:
    """Nesting depth of a parsed JSON value (iterative: safe on any depth)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _read_jsonl(data: bytes) -> tuple[pd.DataFrame, Bad]:
    rows: list[dict] = []
    bad: Bad = []
    for line_no, raw_line in enumerate(data.removeprefix(UTF8_BOM).splitlines(), start=1):
        if not raw_line.strip():
            continue  # blank separator lines carry no record
        try:
            text = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            preview = raw_line.decode("utf-8", "replace")[:RAW_PREVIEW_CHARS]
            bad.append((line_no, f"invalid UTF-8 encoding at byte {exc.start}", preview))
            continue
        value = _parse_object(text, line_no, "line", bad)
        if value is not None:
            rows.append(value)
    return pd.DataFrame(rows), bad


def _read_json(data: bytes) -> tuple[pd.DataFrame, Bad]:
    """A ``.json`` export: an array of objects, one (pretty-printed) object, or JSONL."""
    body = data.removeprefix(UTF8_BOM)
    if body.lstrip()[:1] == b"[":
        return _read_json_array(body.decode("utf-8", errors="surrogateescape"))
    if body.lstrip()[:1] == b"{" and body.strip().count(b"\n"):
        try:
            json.loads(body)
        except (ValueError, RecursionError):
            pass  # several objects (JSONL named .json) or broken: read line by line
        else:
            bad: Bad = []
            value = _parse_object(body.decode("utf-8"), 1, "document", bad)
            return pd.DataFrame([value] if value else []), bad
    return _read_jsonl(body)


def _read_json_array(text: str) -> tuple[pd.DataFrame, Bad]:
    """Elements of a JSON array, each its own unit; its ``line_no`` is its position in
    the array (1-based: a compact array is all on one line)."""
    decoder = json.JSONDecoder()
    rows: list[dict] = []
    bad: Bad = []
    pos, unit_no = text.index("[") + 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        unit_no += 1
        if pos >= len(text):
            bad.append((unit_no, "JSON array is not closed: the file ends inside it", ""))
            break
        if text[pos] == "]":
            rest = text[pos + 1 :].strip()
            if rest:
                bad.append((unit_no, "text after the end of the JSON array", rest[:2000]))
            break
        try:
            value, end = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            what = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            rest = text[pos : pos + RAW_PREVIEW_CHARS]
            bad.append((unit_no, f"malformed JSON array from element {unit_no} on: {what}", rest))
            break
        unit = text[pos:end]
        if _has_surrogates(unit):
            bad.append((unit_no, "invalid UTF-8 encoding", _printable(unit)))
        elif not isinstance(value, dict):
            kind = type(value).__name__
            bad.append((unit_no, f"JSON array element is a {kind}, not an object", unit[:2000]))
        elif _depth(value) > MAX_JSON_DEPTH:
            reason = f"JSON nested too deeply (over {MAX_JSON_DEPTH} levels)"
            bad.append((unit_no, reason, unit[:2000]))
        else:
            value["__line_no"] = unit_no
            value["__raw"] = unit
            rows.append(value)
        pos = end
    return pd.DataFrame(rows), bad


class _Lines:
    """Physical lines of a text, handed to ``csv.reader`` one at a time, with pushback:
    when a record does not parse, all but its first line are read again."""

    def __init__(self, text: str, limit: int) -> None:
        self._source = iter(io.StringIO(text, newline=""))  # \n, \r\n and lone \r
        self._pending: list[str] = []
        self._limit = limit
        self.taken: list[str] = []
        self.line_no = 0  # physical lines handed out so far
        self._size = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._size > self._limit:
            raise StopIteration  # an open quote ran too long: the reader sees the end
        line = self._pending.pop() if self._pending else next(self._source)
        self.taken.append(line)
        self._size += len(line)
        self.line_no += 1
        return line

    def start_record(self) -> int:
        """Begin a record; returns its first line's number."""
        self.taken, self._size = [], 0
        return self.line_no + 1

    def retry_after_first(self) -> str:
        """Give back every line of the failed record but its first; return the first."""
        first, rest = self.taken[0], self.taken[1:]
        self._pending.extend(reversed(rest))
        self.line_no -= len(rest)
        self.taken, self._size = [], 0
        return first


def _read_csv(data: bytes, delimiter: str) -> tuple[pd.DataFrame, Bad]:
    """Strict CSV: a record that does not parse (an unterminated quote, a stray quote) is
    quarantined on its first line and reading resumes on the next line."""
    text = data.decode("utf-8-sig", errors="surrogateescape")
    lines = _Lines(text, MAX_CSV_RECORD_CHARS)
    header: list[str] | None = None
    rows: list[dict] = []
    bad: Bad = []
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        line_no = lines.start_record()
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if not lines.taken:
                break
            first = lines.retry_after_first()
            raw = first.rstrip("\r\n")
            bad.append((line_no, f"malformed CSV: {exc}", _printable(raw)))
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank lines carry no record
        if header is None:
            header = fields
            if any(_has_surrogates(h) for h in header):
                raise ValueError("the header line is not valid UTF-8")
            continue
        raw = delimiter.join(fields)
        if any(_has_surrogates(f) for f in fields):
            bad.append((line_no, "invalid UTF-8 encoding", _printable(raw)))
        elif len(fields) != len(header):
            if len(lines.taken) > 1:  # a quote spanning lines: only its first line is bad
                first = lines.retry_after_first()
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                reason = (
                    f"malformed CSV: a quoted field opened here spans lines and gives "
                    f"{len(fields)} fields, expected {len(header)}"
                )
                bad.append((line_no, reason, _printable(first.rstrip("\r\n"))))
            else:
                reason = f"expected {len(header)} fields, got {len(fields)}"
                bad.append((line_no, reason, raw[:RAW_PREVIEW_CHARS]))
        else:
            row = dict(zip(header, fields, strict=True))
            row["__line_no"] = line_no
            rows.append(row)
    return pd.DataFrame(rows), bad


def _read_parquet(path: Path) -> tuple[pd.DataFrame, Bad]:
    import pyarrow.parquet as pq

    return _arrow_frame(pq.read_table(path))


def _read_hf_dataset(path: Path) -> tuple[pd.DataFrame, Bad]:
    import datasets  # heavy import, only when a dataset folder arrives

    loaded = datasets.load_from_disk(str(path))
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    tables = []
    for split, ds in splits:
        table = ds.with_format("arrow")[: len(ds)] if len(ds) else ds.data.table.slice(0, 0)
        if split is not None:
            table = table.append_column("split", pa.array([split] * len(table), pa.string()))
        tables.append(table)
    return _arrow_frame(pa.concat_tables(tables, promote_options="permissive"))


def _arrow_frame(table: pa.Table) -> tuple[pd.DataFrame, Bad]:
    """An Arrow table as a frame of text and scalars: nested columns become JSON text,
    binary columns UTF-8 text; a row whose binary value is not text is quarantined."""
    columns: dict[str, object] = {}
    problems: dict[int, str] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        columns[name] = _arrow_column(name, column, problems)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))
    frame["__line_no"] = range(1, len(frame) + 1)
    if not problems:
        return frame, []
    rows = sorted(problems)
    previews = _originals(frame.loc[rows]).str.slice(0, RAW_PREVIEW_CHARS)
    bad = [(i + 1, problems[i], previews[i]) for i in rows]
    return frame.drop(index=rows), bad


def _arrow_column(name: str, column: pa.ChunkedArray, problems: dict[int, str]):
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = pa.chunked_array([c.dictionary_decode() for c in column.chunks], kind.value_type)
        kind = column.type
    if pa.types.is_nested(kind):
        return [
            None if v is None else json.dumps(v, ensure_ascii=False, default=str)
            for v in column.to_pylist()
        ]
    binary = pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
    if binary:
        try:
            return column.cast(pa.large_string()).to_pandas()  # validates UTF-8
        except pa.ArrowInvalid:
            pass
    if binary or pa.types.is_fixed_size_binary(kind):
        values = []
        for i, value in enumerate(column.to_pylist()):
            try:
                values.append(None if value is None else value.decode("utf-8"))
            except UnicodeDecodeError as exc:
                problems.setdefault(
                    i, f"column {name!r} holds binary data, not UTF-8 text (byte {exc.start})"
                )
                values.append(value.decode("utf-8", "replace"))
        return values
    return column.to_pandas()


def _originals(frame: pd.DataFrame) -> pd.Series:
    """The original fields of each row as a JSON object string (helper columns dropped)."""
    fields = frame.drop(columns=[c for c in frame.columns if str(c).startswith("__")])
    text = fields.to_json(orient="records", lines=True, force_ascii=False, default_handler=str)
    # split on "\n" only: str.splitlines() also breaks on U+0085/U+2028/U+2029, which
    # to_json leaves unescaped inside values, and would misalign rows.
    lines = text.rstrip("\n").split("\n") if text else []
    return pd.Series(lines, index=frame.index, dtype="object")


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _printable(value: str) -> str:
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")[:RAW_PREVIEW_CHARS]
