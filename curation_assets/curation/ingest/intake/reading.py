"""One inbox entry into canonical records and quarantine rows (``read_file``)."""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curation_assets.curation.ingest import documents
from curation_assets.curation.ingest.intake.entries import (
    SUPPORTED_SUFFIXES,
    batch_key,
    entry_size,
    fingerprint,
    is_hf_dataset_dir,
    read_key,
    refusal,
)
from curation_assets.curation.ingest.intake.formats import (
    RAW_PREVIEW_CHARS,
    Bad,
    _originals,
    _read_csv,
    _read_hf_dataset,
    _read_json,
    _read_jsonl,
    _read_parquet,
)
from curation_assets.curation.records import field_name, to_canonical

RECORD_COLUMNS = ["batch", "source_file", "line_no", "source", "prompt", "response", "original"]
QUARANTINE_COLUMNS = ["batch", "source_file", "line_no", "reason", "raw"]


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
