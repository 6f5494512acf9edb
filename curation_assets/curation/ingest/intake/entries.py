"""What the inbox holds: one batch per entry, refusals with a reason, content fingerprints."""

import hashlib
import json
import os
import stat
from pathlib import Path

from curation_assets.curation.ingest.intake.formats import READER_VERSION

SUPPORTED_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet"}


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
