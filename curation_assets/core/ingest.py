"""Read one dropped file (JSONL, CSV/TSV, Parquet, a saved HF dataset) into canonical records.

Nothing is lost: every line or row of the file ends up either as a record or as a
quarantine row with its line number and a reason. Reading never raises for bad data;
an unreadable file becomes a single quarantine row.
"""

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curation_assets.core import documents
from curation_assets.core.records import example_id_sql, to_canonical
from curation_assets.core.warehouse import ensure_tables

RECORD_COLUMNS = ["batch", "source_file", "line_no", "source", "prompt", "response", "original"]
QUARANTINE_COLUMNS = ["batch", "source_file", "line_no", "reason", "raw"]
#: Raw text kept in quarantine rows, enough for a person to see what was wrong.
RAW_PREVIEW_CHARS = 2_000

SUPPORTED_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet"}


@dataclass
class IngestResult:
    """What one file became: records, quarantine rows and the file's accounting."""

    records: pd.DataFrame
    quarantine: pd.DataFrame
    file_format: str
    sha256: str
    units_read: int  # lines or rows found in the file (records + quarantined)


def batch_key(path: Path) -> str:
    """Partition key of a dropped file: its name (unique within the inbox)."""
    return path.name


def is_hf_dataset_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / marker).exists() for marker in ("state.json", "dataset_dict.json")
    )


def list_inbox(inbox: Path) -> list[Path]:
    """Files (and saved HF dataset folders) waiting in the inbox, sorted by name."""
    if not inbox.exists():
        return []
    found = [
        p
        for p in inbox.iterdir()
        if not p.name.startswith(".") and (p.is_file() or is_hf_dataset_dir(p))
    ]
    return sorted(found, key=lambda p: p.name)


def fingerprint(path: Path) -> str:
    """SHA-256 of a file, or of every file of a dataset folder."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_file(path: Path, mapping: dict[str, str], max_record_bytes: int) -> IngestResult:
    """Read ``path`` into canonical records plus quarantine rows."""
    batch = batch_key(path)
    sha = fingerprint(path) if path.exists() else ""
    try:
        if is_hf_dataset_dir(path):
            fmt, frame, bad = "hf_dataset", _read_hf_dataset(path), []
        elif path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
            fmt, (frame, bad) = "jsonl", _read_jsonl(path.read_bytes())
        elif path.suffix.lower() in {".csv", ".tsv"}:
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            fmt, (frame, bad) = "csv", _read_csv(path.read_bytes(), delimiter)
        elif path.suffix.lower() == ".parquet":
            fmt, frame, bad = "parquet", _read_parquet(path), []
        elif documents.is_document_file(path):  # HTML pages, WARC/WET crawls: main text
            fmt = documents.document_format(path) or "html"
            frame, bad = documents.read_document_file(path)
        else:
            return _whole_file_quarantined(
                path,
                batch,
                sha,
                "unknown",
                f"unsupported format {path.suffix or '(no suffix)'}; "
                f"expected one of {sorted(SUPPORTED_SUFFIXES)}, a web page or crawl "
                f"({', '.join(sorted(documents.DOCUMENT_SUFFIXES))}) or a saved HF dataset folder",
            )
    except Exception as exc:  # noqa: BLE001 - any unreadable file is quarantined, not raised
        return _whole_file_quarantined(
            path,
            batch,
            sha,
            path.suffix.lstrip(".") or "unknown",
            f"unreadable file: {type(exc).__name__}: {exc}",
        )

    quarantine = pd.DataFrame(bad, columns=["line_no", "reason", "raw"])
    if frame.empty:
        records = pd.DataFrame(columns=RECORD_COLUMNS)
    else:
        originals = _originals(frame)  # before mapping adds canonical columns
        raw = frame.get("__raw", originals)
        canonical, problem = to_canonical(frame, mapping)
        if problem is not None:
            whole = pd.DataFrame({"line_no": frame["__line_no"], "reason": problem, "raw": raw})
            quarantine = pd.concat([quarantine, whole], ignore_index=True)
            records = pd.DataFrame(columns=RECORD_COLUMNS)
        else:
            records, rejected = _validate(canonical, originals, raw, max_record_bytes, path.stem)
            quarantine = pd.concat([quarantine, rejected], ignore_index=True)
    quarantine.insert(0, "batch", batch)
    quarantine.insert(1, "source_file", str(path))
    quarantine["line_no"] = quarantine["line_no"].astype("Int64")
    records["batch"] = batch
    records["source_file"] = str(path)
    units = len(records) + len(quarantine)
    return IngestResult(
        records[RECORD_COLUMNS].reset_index(drop=True),
        quarantine[QUARANTINE_COLUMNS].reset_index(drop=True),
        fmt,
        sha,
        units,
    )


def _whole_file_quarantined(
    path: Path, batch: str, sha: str, fmt: str, reason: str
) -> IngestResult:
    quarantine = pd.DataFrame(
        [
            {
                "batch": batch,
                "source_file": str(path),
                "line_no": None,
                "reason": reason,
                "raw": None,
            }
        ],
        columns=QUARANTINE_COLUMNS,
    )
    quarantine["line_no"] = quarantine["line_no"].astype("Int64")
    return IngestResult(pd.DataFrame(columns=RECORD_COLUMNS), quarantine, fmt, sha, 1)


def _read_jsonl(data: bytes) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    rows: list[dict] = []
    bad: list[tuple[int, str, str]] = []
    for line_no, raw_line in enumerate(data.splitlines(), start=1):
        if not raw_line.strip():
            continue  # blank separator lines carry no record
        try:
            text = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            preview = raw_line.decode("utf-8", "replace")[:RAW_PREVIEW_CHARS]
            bad.append((line_no, f"invalid UTF-8 encoding at byte {exc.start}", preview))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            bad.append(
                (
                    line_no,
                    f"malformed JSON: {exc.msg} (column {exc.colno})",
                    text[:RAW_PREVIEW_CHARS],
                )
            )
            continue
        if not isinstance(value, dict):
            bad.append(
                (
                    line_no,
                    f"JSON line is a {type(value).__name__}, not an object",
                    text[:RAW_PREVIEW_CHARS],
                )
            )
            continue
        value["__line_no"] = line_no
        value["__raw"] = text
        rows.append(value)
    return pd.DataFrame(rows), bad


def _read_csv(data: bytes, delimiter: str) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[dict] = []
    bad: list[tuple[int, str, str]] = []
    start = 1
    try:
        for fields in reader:
            line_no, start = start, reader.line_num + 1
            if header is None:
                header = fields
                continue
            if not any(f.strip() for f in fields):
                continue
            raw = delimiter.join(fields)
            if any(_has_surrogates(f) for f in fields):
                bad.append((line_no, "invalid UTF-8 encoding", _printable(raw)))
            elif len(fields) != len(header):
                bad.append(
                    (
                        line_no,
                        f"expected {len(header)} fields, got {len(fields)}",
                        raw[:RAW_PREVIEW_CHARS],
                    )
                )
            else:
                row = dict(zip(header, fields, strict=True))
                row["__line_no"] = line_no
                rows.append(row)
    except csv.Error as exc:
        bad.append((start, f"malformed CSV: {exc}; the rest of the file was not read", ""))
    if header is not None and any(_has_surrogates(h) for h in header):
        raise ValueError("the header line is not valid UTF-8")
    return pd.DataFrame(rows), bad


def _read_parquet(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    frame["__line_no"] = range(1, len(frame) + 1)
    return frame


def _read_hf_dataset(path: Path) -> pd.DataFrame:
    import datasets  # heavy import, only when a dataset folder arrives

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        parts = []
        for split, ds in loaded.items():
            part = ds.to_pandas()
            part["split"] = split
            parts.append(part)
        frame = pd.concat(parts, ignore_index=True)
    else:
        frame = loaded.to_pandas()
    frame["__line_no"] = range(1, len(frame) + 1)
    return frame


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
    reason = reason.mask(frame["response"].isna(), "missing required field: response")
    reason = reason.mask(frame["prompt"].isna(), "missing required field: prompt")
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

    Idempotent: re-ingesting the same file replaces its rows, so it adds nothing. The
    example id is computed in DuckDB from the normalized content. The writes go in one
    transaction (``atomic``); pass ``atomic=False`` inside the caller's own transaction.
    """
    ensure_tables(con)
    frames = [f for f in (result.records, result.quarantine) if len(f)]
    if not frames:
        raise ValueError("an ingest result without rows has no batch")
    batch = str(frames[0]["batch"].iloc[0])
    source_file = str(frames[0]["source_file"].iloc[0])
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
            "INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch,
                source_file,
                result.file_format,
                result.sha256,
                result.units_read,
                len(result.records),
                len(result.quarantine),
                ingested_at,
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
