"""Read one inbox entry (JSONL/JSON, CSV/TSV, Parquet, a saved HF dataset, a web page or
crawl) into canonical records.

Nothing is lost: every unit of an entry (a line, an array element, a CSV/Parquet row, or
the whole entry when it cannot be read) ends up either as a record or as a quarantine row
with its line number and a reason. Reading never raises for bad data and never follows a
link out of the inbox: entries that are not read (hidden names, folders, special files,
dangling or outside links) are refused as one quarantine row that says why.
"""

import csv
import hashlib
import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curation_assets.curation.ingest import documents
from curation_assets.curation.records import example_id_sql, field_name, to_canonical
from curation_assets.curation.warehouse import ensure_tables

RECORD_COLUMNS = ["batch", "source_file", "line_no", "source", "prompt", "response", "original"]
QUARANTINE_COLUMNS = ["batch", "source_file", "line_no", "reason", "raw"]
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

SUPPORTED_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet"}

Bad = list[tuple[int, str, str]]  # (line_no, reason, raw preview) per quarantined unit


@dataclass
class IngestResult:
    """What one inbox entry became: records, quarantine rows and the entry's accounting."""

    records: pd.DataFrame
    quarantine: pd.DataFrame
    file_format: str
    sha256: str
    units_read: int  # lines, elements or rows found (records + quarantined)
    batch: str = ""
    source_file: str = ""
    read_key: str = ""  # content + reading settings: equal key, equal rows (see read_key)


def batch_key(path: Path) -> str:
    """Partition key of an inbox entry: its name (unique within the inbox)."""
    return path.name


def is_hf_dataset_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / marker).exists() for marker in ("state.json", "dataset_dict.json")
    )


def list_inbox(inbox: Path) -> list[Path]:
    """Every entry of the inbox, sorted by name: each is a batch, read or refused.

    Hidden names, folders, links and special files are listed too, so that their
    refusal is recorded (see :func:`refusal`) instead of skipped without a trace.
    """
    if not inbox.is_dir():
        return []
    return sorted(inbox.iterdir(), key=lambda p: p.name)


def refusal(path: Path, inbox: Path | None = None) -> str | None:
    """Why the entry ``path`` of ``inbox`` (default: its folder) is not read, or None.

    Never reads through a link that leaves the inbox, and never opens special files
    (a FIFO would block the reader forever).
    """
    root = (inbox or path.parent).resolve()
    kind = "folder" if path.is_dir() and not path.is_symlink() else "file"
    if path.name.startswith("."):
        return (
            f"hidden {kind}: names starting with '.' are not ingested (editor, system and "
            "partial-upload files); rename it without the dot to ingest it"
        )
    if path.is_symlink():
        target = os.readlink(path)
        resolved = path.resolve()
        if not resolved.exists():
            return f"dangling symbolic link (to {target}): its target does not exist"
        if not resolved.is_relative_to(root):
            return (
                f"symbolic link to {target}, outside the inbox: links are never followed "
                "out of the inbox; copy the file in instead"
            )
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        if not is_hf_dataset_dir(path):
            return (
                "a folder, not a saved HF dataset (no state.json or dataset_dict.json): "
                "folders are not searched; put its files in the inbox itself"
            )
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                entry = Path(dirpath, name)
                if entry.is_symlink() and not entry.resolve().is_relative_to(root):
                    rel = entry.relative_to(path)
                    return f"the dataset folder holds a link out of the inbox ({rel})"
        return None
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device): only files and folders are read"
    return None


def entry_size(path: Path) -> int:
    """Bytes of a file or of every file of a folder (0 for what cannot be sized safely)."""
    try:
        if path.is_symlink() and refusal(path) is not None:
            return path.lstat().st_size
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def fingerprint(path: Path, inbox: Path | None = None) -> str:
    """SHA-256 of a file or of every file of a dataset folder; of the refusal for an
    entry that is not read (its content is never opened)."""
    digest = hashlib.sha256()
    reason = refusal(path, inbox) if os.path.lexists(path) else "gone"
    if reason is not None:
        digest.update(f"refused\0{reason}\0{entry_size(path)}".encode())
        return digest.hexdigest()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_key(sha256: str, mapping: dict[str, str], max_record_bytes: int) -> str:
    """What the stored rows of a batch depend on: content, mapping, limits, reader rules."""
    text = json.dumps([sha256, mapping, max_record_bytes, READER_VERSION], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_file(
    path: Path, mapping: dict[str, str], max_record_bytes: int, inbox: Path | None = None
) -> IngestResult:
    """Read the inbox entry ``path`` into canonical records plus quarantine rows."""
    batch, source_file = batch_key(path), str(path)
    sha = fingerprint(path, inbox)
    try:
        reason = refusal(path, inbox)
    except OSError as exc:  # vanished or unreadable while we looked at it
        reason = f"cannot inspect the entry: {type(exc).__name__}: {exc}"
    if reason is not None:
        return _refused(path, sha, "refused", mapping, max_record_bytes, reason)
    name = path.name.lower()
    try:
        if is_hf_dataset_dir(path):
            fmt, (frame, bad) = "hf_dataset", _read_hf_dataset(path)
        elif path.suffix.lower() in {".jsonl", ".ndjson"}:
            fmt, (frame, bad) = "jsonl", _read_jsonl(path.read_bytes())
        elif name.endswith(".json"):
            fmt, (frame, bad) = "json", _read_json(path.read_bytes())
        elif path.suffix.lower() in {".csv", ".tsv"}:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            fmt, (frame, bad) = "csv", _read_csv(path.read_bytes(), delimiter)
        elif path.suffix.lower() == ".parquet":
            fmt, (frame, bad) = "parquet", _read_parquet(path)
        elif documents.is_document_file(path):  # HTML pages, WARC/WET crawls: main text
            fmt = documents.document_format(path) or "html"
            frame, bad = documents.read_document_file(path)
        else:
            return _refused(
                path,
                sha,
                "unknown",
                mapping,
                max_record_bytes,
                f"unsupported format {path.suffix or '(no suffix)'}; "
                f"expected one of {sorted(SUPPORTED_SUFFIXES)}, a web page or crawl "
                f"({', '.join(sorted(documents.DOCUMENT_SUFFIXES))}) or a saved HF dataset folder",
            )
        records, quarantine = _to_records(frame, bad, mapping, max_record_bytes, path.stem)
    except Exception as exc:  # noqa: BLE001 - any unreadable entry is refused, not raised
        return _refused(
            path,
            sha,
            path.suffix.lstrip(".") or "unknown",
            mapping,
            max_record_bytes,
            f"unreadable file: {type(exc).__name__}: {str(exc)[:500]}",
        )
    quarantine.insert(0, "batch", batch)
    quarantine.insert(1, "source_file", source_file)
    quarantine["line_no"] = quarantine["line_no"].astype("Int64")
    records["batch"] = batch
    records["source_file"] = source_file
    return IngestResult(
        records[RECORD_COLUMNS].reset_index(drop=True),
        quarantine[QUARANTINE_COLUMNS].reset_index(drop=True),
        fmt,
        sha,
        len(records) + len(quarantine),
        batch,
        source_file,
        read_key(sha, mapping, max_record_bytes),
    )


def _to_records(
    frame: pd.DataFrame, bad: Bad, mapping: dict[str, str], max_record_bytes: int, stem: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map parsed units to canonical records; what cannot be mapped goes to quarantine."""
    quarantine = pd.DataFrame(bad, columns=["line_no", "reason", "raw"])
    if frame.empty:
        return pd.DataFrame(columns=RECORD_COLUMNS), quarantine
    originals = _originals(frame)  # before mapping adds canonical columns
    raw = frame.get("__raw", originals)
    canonical, problem = to_canonical(frame, mapping)
    if problem is not None:
        whole = pd.DataFrame({"line_no": frame["__line_no"], "reason": problem, "raw": raw})
        quarantine = pd.concat([quarantine, whole], ignore_index=True)
        return pd.DataFrame(columns=RECORD_COLUMNS), quarantine
    records, rejected = _validate(canonical, originals, raw, max_record_bytes, stem)
    return records, pd.concat([quarantine, rejected], ignore_index=True)


def _refused(
    path: Path, sha: str, fmt: str, mapping: dict[str, str], max_record_bytes: int, reason: str
) -> IngestResult:
    """The whole entry as one quarantined unit, with the reason and its size."""
    size = entry_size(path)
    quarantine = pd.DataFrame(
        [
            {
                "batch": batch_key(path),
                "source_file": str(path),
                "line_no": None,
                "reason": f"{reason} ({size:,} bytes)",
                "raw": None,
            }
        ],
        columns=QUARANTINE_COLUMNS,
    )
    quarantine["line_no"] = quarantine["line_no"].astype("Int64")
    return IngestResult(
        pd.DataFrame(columns=RECORD_COLUMNS),
        quarantine,
        fmt,
        sha,
        1,
        batch_key(path),
        str(path),
        read_key(sha, mapping, max_record_bytes),
    )


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


def _validate(
    frame: pd.DataFrame,
    originals: pd.Series,
    raw: pd.Series,
    max_record_bytes: int,
    default_source: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split canonical rows into usable records and quarantine rows (vectorized)."""
    sizes = pd.Series(
        pc.binary_length(pa.array(originals, type=pa.large_string())).to_numpy(),
        index=frame.index,
    )
    prompt_blank = frame["prompt"].isna() | (frame["prompt"].fillna("").str.strip() == "")
    response_blank = frame["response"].isna() | (frame["response"].fillna("").str.strip() == "")
    reason = pd.Series(None, index=frame.index, dtype="object")
    columns = frame.attrs.get("source_columns")
    for name in ("response", "prompt"):  # the prompt's reason wins when both are missing
        missing = f"missing required field: {field_name(name, columns)}"
        reason = reason.mask(frame[name].isna(), missing)
    reason = reason.mask(prompt_blank & response_blank, "empty record: no prompt and no response")
    reason = reason.mask(
        sizes > max_record_bytes,
        "oversized record: " + sizes.astype(str) + f" bytes > limit {max_record_bytes}",
    )
    bad = reason.notna()
    quarantine = pd.DataFrame(
        {
            "line_no": frame.loc[bad, "__line_no"],
            "reason": reason[bad],
            "raw": raw[bad].str.slice(0, RAW_PREVIEW_CHARS),
        }
    )
    good = frame.loc[~bad]
    source = (
        good["source"].astype("string").fillna(default_source)
        if "source" in good
        else pd.Series(default_source, index=good.index)
    )
    records = pd.DataFrame(
        {
            "line_no": good["__line_no"].astype("int64"),
            "source": source.astype(str),
            "prompt": good["prompt"],
            "response": good["response"],
            "original": originals[~bad],
        }
    )
    return records, quarantine


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


def store_batch(
    con: duckdb.DuckDBPyConnection,
    result: IngestResult,
    ingested_at: datetime,
    atomic: bool = True,
) -> None:
    """Replace one batch's rows in ``raw_scrapes``, ``quarantine`` and ``ingest_batches``.

    Idempotent: re-ingesting the same file replaces its rows, so it adds nothing; an
    empty file is an empty batch (zero units) that is still recorded. The
    example id is computed in DuckDB from the normalized content. The writes go in one
    transaction (``atomic``); pass ``atomic=False`` inside the caller's own transaction.
    """
    ensure_tables(con)
    batch, source_file = result.batch, result.source_file
    if not batch:
        raise ValueError("an ingest result must name its batch")
    con.register("_records", result.records)
    con.register("_quarantine", result.quarantine)
    if atomic:
        con.execute("BEGIN TRANSACTION")
    try:
        for table in ("raw_scrapes", "quarantine", "ingest_batches"):
            con.execute(f"DELETE FROM {table} WHERE batch = ?", [batch])
        con.execute(
            f"""INSERT INTO raw_scrapes
                SELECT batch || ':' || line_no, {example_id_sql()}, batch, source_file,
                       line_no, source, prompt, response, original, $ts
                FROM _records""",
            {"ts": ingested_at},
        )
        con.execute(
            "INSERT INTO quarantine SELECT batch, source_file, line_no, reason, raw, $ts "
            "FROM _quarantine",
            {"ts": ingested_at},
        )
        con.execute(
            "INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch,
                source_file,
                result.file_format,
                result.sha256,
                result.units_read,
                len(result.records),
                len(result.quarantine),
                ingested_at,
                result.read_key,
            ],
        )
        if atomic:
            con.execute("COMMIT")
    except Exception:
        if atomic:
            con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_records")
        con.unregister("_quarantine")
