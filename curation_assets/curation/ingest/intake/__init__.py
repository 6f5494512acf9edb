"""Read one inbox entry (JSONL/JSON, CSV/TSV, Parquet, a saved HF dataset, a web page or
crawl) into canonical records.

Nothing is lost: every unit of an entry (a line, an array element, a CSV/Parquet row, or
the whole entry when it cannot be read) ends up either as a record or as a quarantine row
with its line number and a reason. Reading never raises for bad data and never follows a
link out of the inbox: entries that are not read (hidden names, folders, special files,
dangling or outside links) are refused as one quarantine row that says why.

Modules: ``entries`` (what the inbox holds: batch keys, refusals, fingerprints),
``formats`` (the readers of JSONL/JSON, CSV/TSV, Parquet and saved HF datasets, each
returning rows and quarantined units), ``reading`` (``read_file``: one entry into
canonical records and quarantine rows), ``storing`` (``store_batch`` into the warehouse,
``store_inbox`` for a whole inbox at fixed times).
This package exposes their public names (``intake.read_file``, ``intake.list_inbox``, ...).
"""

from curation_assets.curation.ingest.intake.entries import (
    SUPPORTED_SUFFIXES,
    batch_key,
    entry_size,
    fingerprint,
    is_hf_dataset_dir,
    list_inbox,
    read_key,
    refusal,
)
from curation_assets.curation.ingest.intake.formats import (
    MAX_CSV_RECORD_CHARS,
    MAX_JSON_DEPTH,
    RAW_PREVIEW_CHARS,
    READER_VERSION,
    UTF8_BOM,
    Bad,
)
from curation_assets.curation.ingest.intake.reading import (
    QUARANTINE_COLUMNS,
    RECORD_COLUMNS,
    IngestResult,
    read_file,
)
from curation_assets.curation.ingest.intake.storing import (
    store_batch,
    store_inbox,
)

__all__ = [
    "Bad",
    "IngestResult",
    "MAX_CSV_RECORD_CHARS",
    "MAX_JSON_DEPTH",
    "QUARANTINE_COLUMNS",
    "RAW_PREVIEW_CHARS",
    "READER_VERSION",
    "RECORD_COLUMNS",
    "SUPPORTED_SUFFIXES",
    "UTF8_BOM",
    "batch_key",
    "entry_size",
    "fingerprint",
    "is_hf_dataset_dir",
    "list_inbox",
    "read_file",
    "read_key",
    "refusal",
    "store_batch",
    "store_inbox",
]
