"""Raw web documents (HTML pages, WARC and WET crawls) read into one row per document.

The main text of a page is extracted with trafilatura (offline, no network). Every
document-bearing unit of a file becomes one row: either with its ``text``, or with a
``reason`` why it yielded none (a 404, a PDF, a page whose main text is empty), so the
ingest can quarantine it and nothing is lost.

Mapping to canonical records (``to_ingest``): ``prompt`` = the extracted main text,
``response`` = "" (a web page has no label or answer). The title and URL stay in the
record's ``original`` fields: putting them in ``response`` would make the same article
crawled at two URLs (or under two titles) two different examples, so exact dedup by
``example_id`` would miss it, and training would treat a title as a target.
"""

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

#: Columns of ``read_html`` / ``read_warc`` frames, one row per document.
DOCUMENT_COLUMNS = [
    "line_no",  # 1 for an HTML file; the record's ordinal in a WARC/WET file (1-based)
    "url",
    "title",
    "text",  # extracted main text; None when ``reason`` is set
    "reason",  # why the unit yielded no text; None for a usable document
    "record_type",  # "html" for an HTML file, else the WARC-Type
    "content_type",
    "http_status",
    "warc_record_id",
    "warc_date",
    "offset",  # byte offset of the WARC record in the (compressed) file
    "html_bytes",
    "raw_preview",  # start of the raw payload, kept only when ``reason`` is set
]

#: File name endings (lower case) read as web documents, and the format each one is.
DOCUMENT_SUFFIXES: dict[str, str] = {
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".html.gz": "html",
    ".htm.gz": "html",
    ".warc": "warc",
    ".warc.gz": "warc",
    ".wet": "wet",
    ".wet.gz": "wet",  # Common Crawl names them *.warc.wet.gz
}

#: WARC record types that carry a document; the others (warcinfo, request, metadata)
#: are crawl bookkeeping and are not units of the file.
DOCUMENT_RECORD_TYPES = ("response", "resource", "revisit", "conversion")
HTML_TYPES = ("text/html", "application/xhtml+xml")
#: Payloads larger than this are not parsed (trafilatura's own limit is 20 MB).
MAX_HTML_BYTES = 20_000_000
#: Characters of a raw payload kept with a quarantined document.
RAW_PREVIEW_CHARS = 2_000


@dataclass(frozen=True)
class Extracted:
    """What one HTML page yielded: its title and main text, or why there is no text."""

    title: str | None
    text: str | None
    url: str | None = None
    reason: str | None = None


def document_format(path: Path) -> str | None:
    """``"html"``, ``"warc"`` or ``"wet"`` when ``path`` is a web-document file, else None."""
    name = path.name.lower()
    for suffix in sorted(DOCUMENT_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return DOCUMENT_SUFFIXES[suffix]
    return None


def is_document_file(path: Path) -> bool:
    return document_format(path) is not None


def extract(
    html: bytes | str, url: str | None = None, *, favor_precision: bool = True
) -> Extracted:
    """Main text and title of one HTML page (trafilatura; comments excluded, tables kept).

    ``favor_precision`` is FineWeb's setting: less boilerplate, a little less text.
    """
    import trafilatura
    from trafilatura.metadata import extract_title, extract_url

    if not html or not html.strip():
        return Extracted(None, None, url, "empty page")
    if len(html) > MAX_HTML_BYTES:
        return Extracted(None, None, url, f"page too large: {len(html)} > {MAX_HTML_BYTES} bytes")
    try:
        tree = trafilatura.load_html(html)
    except Exception as exc:  # noqa: BLE001 - a broken page is a reason, not a crash
        return Extracted(None, None, url, f"unparsable HTML: {type(exc).__name__}: {exc}")
    if tree is None:
        return Extracted(None, None, url, "not parsable as HTML")
    title = _clean(extract_title(tree))
    url = url or extract_url(tree)
    text = trafilatura.extract(
        tree,
        url=url,
        include_comments=False,
        include_tables=True,
        favor_precision=favor_precision,
        deduplicate=False,
    )
    text = _clean(text)
    if not text:
        return Extracted(title, None, url, "no main text found in the page")
    return Extracted(title, text, url)


def read_html(path: Path, *, favor_precision: bool = True) -> pd.DataFrame:
    """One row for an ``.html`` / ``.html.gz`` file (url from its canonical link, if any)."""
    row = _empty_row(1, record_type="html", content_type="text/html")
    try:
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        row["reason"] = f"unreadable file: {type(exc).__name__}: {exc}"
        return _frame([row])
    row["html_bytes"] = len(data)
    found = extract(data, favor_precision=favor_precision)
    row.update(url=found.url, title=found.title, text=found.text, reason=found.reason)
    if found.reason:
        row["raw_preview"] = _preview(data)
    return _frame([row])


def read_warc(path: Path, *, favor_precision: bool = True) -> pd.DataFrame:
    """One row per document record of a WARC or WET file (``.warc``, ``.warc.gz``, ``.wet.gz``).

    HTML responses are extracted; WET ``conversion`` records and plain-text responses
    already are text. Non-200 responses, revisits, truncated or non-text payloads get a
    reason. A file that breaks mid-way keeps the rows read so far plus one row saying
    where it broke.
    """
    with path.open("rb") as handle:
        return _read_warc_stream(handle, favor_precision=favor_precision)


def read_documents(path: Path, *, favor_precision: bool = True) -> pd.DataFrame:
    """``read_html`` or ``read_warc``, by the file's name."""
    fmt = document_format(path)
    if fmt == "html":
        return read_html(path, favor_precision=favor_precision)
    if fmt in ("warc", "wet"):
        return read_warc(path, favor_precision=favor_precision)
    raise ValueError(f"not a web-document file: {path.name}")


def to_ingest(docs: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Split documents into rows for the canonical mapping and (line_no, reason, raw) rows.

    The first frame has ``prompt`` (the text), ``response`` ("") and the document's
    provenance (url, title, WARC fields; they end up in ``original``) plus ``__line_no``,
    the shape ingest's readers return for JSONL/CSV.
    """
    ok = docs["reason"].isna() & docs["text"].notna()
    bad = [
        (int(r.line_no), str(r.reason or "no text"), str(r.raw_preview or r.url or ""))
        for r in docs[~ok].itertuples()
    ]
    good = docs[ok]
    frame = pd.DataFrame(
        {
            "prompt": good["text"],
            "response": "",
            "url": good["url"],
            "title": good["title"],
            "record_type": good["record_type"],
            "warc_record_id": good["warc_record_id"],
            "warc_date": good["warc_date"],
            "__line_no": good["line_no"].astype("int64"),
        }
    ).dropna(axis="columns", how="all")
    return frame.reset_index(drop=True), bad


def read_document_file(path: Path) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """``to_ingest(read_documents(path))``: what ingest's ``read_file`` needs for a page/crawl."""
    return to_ingest(read_documents(path))


def _read_warc_stream(handle: IO[bytes], *, favor_precision: bool) -> pd.DataFrame:
    from warcio.archiveiterator import ArchiveIterator

    rows: list[dict] = []
    ordinal = 0
    iterator = ArchiveIterator(handle)
    try:
        for record in iterator:
            ordinal += 1
            headers = record.rec_headers
            url = headers.get_header("WARC-Target-URI") or headers.get_header("uri")
            web = bool(url) and url.lower().startswith(("http://", "https://"))
            if record.rec_type is None or (record.format != "warc" and not web):
                if not (url or "").startswith("filedesc:"):  # an ARC file's header
                    rows.append(_unreadable(ordinal, "not a WARC record"))
                continue
            if record.rec_type not in DOCUMENT_RECORD_TYPES:
                continue
            if url and not web:
                continue  # dns:, metadata:// (crawler logs and manifests): not documents
            row = _empty_row(ordinal, record_type=record.rec_type, url=url)
            row["warc_record_id"] = record.rec_headers.get_header("WARC-Record-ID")
            row["warc_date"] = record.rec_headers.get_header("WARC-Date")
            payload = record.content_stream().read()
            row["offset"] = iterator.get_record_offset()  # only after the payload is read
            row["html_bytes"] = len(payload)
            missing = getattr(record.raw_stream, "limit", 0) or 0
            if missing > 0:  # the file ended inside this record: warcio returns what it has
                row["reason"] = (
                    f"truncated WARC record: the file ends {missing} of {record.length} bytes early"
                )
            else:
                _fill_from_record(row, record, payload, favor_precision)
            if row["reason"]:
                row["raw_preview"] = _preview(payload)
            rows.append(row)
    except Exception as exc:  # noqa: BLE001 - a corrupt tail is reported, not raised
        rows.append(_unreadable(ordinal + 1, f"{type(exc).__name__}: {exc}"))
    if ordinal == 0:
        rows.append(_unreadable(1, "no WARC record in the file"))
    return _frame(rows)


def _unreadable(line_no: int, why: str) -> dict:
    return _empty_row(line_no, record_type="unreadable", reason=f"unreadable WARC record: {why}")


def _fill_from_record(row: dict, record, payload: bytes, favor_precision: bool) -> None:
    http = record.http_headers
    content_type = (
        http.get_header("Content-Type") if http else record.rec_headers.get_header("Content-Type")
    )
    row["content_type"] = content_type
    media_type = (content_type or "").split(";")[0].strip().lower()
    if http is not None and record.rec_type in ("response", "revisit"):
        status = http.get_statuscode()
        row["http_status"] = int(status) if status and status.isdigit() else None
    if record.rec_type == "revisit":
        row["reason"] = "revisit record: payload identical to an earlier capture, not stored"
    elif row["http_status"] is not None and row["http_status"] != 200:
        row["reason"] = f"HTTP status {row['http_status']}"
    elif record.rec_type == "conversion" or media_type == "text/plain":
        text = _clean(payload.decode("utf-8", errors="replace"))
        row["text"] = text or None
        row["reason"] = None if text else "empty text record"
    elif media_type and media_type not in HTML_TYPES:
        row["reason"] = f"not an HTML page: {media_type}"
    else:
        truncated = record.rec_headers.get_header("WARC-Truncated")
        found = extract(payload, row["url"], favor_precision=favor_precision)
        row.update(title=found.title, text=found.text, reason=found.reason)
        if found.reason and truncated:
            row["reason"] = f"{found.reason} (payload truncated by the crawler: {truncated})"


def _empty_row(line_no: int, **values) -> dict:
    row: dict = dict.fromkeys(DOCUMENT_COLUMNS)
    row["line_no"] = line_no
    row.update(values)
    return row


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=DOCUMENT_COLUMNS)
    frame["line_no"] = frame["line_no"].astype("int64")
    for column in ("http_status", "offset", "html_bytes"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _preview(payload: bytes) -> str:
    return payload[: RAW_PREVIEW_CHARS * 2].decode("utf-8", errors="replace")[:RAW_PREVIEW_CHARS]


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.replace("\r\n", "\n").replace("\x00", "").strip()
    return text or None
