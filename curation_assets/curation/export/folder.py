"""One folder per data version, written, audited and published the write-audit-publish way.

``<data_dir>/datasets/verified/`` holds one folder per version::

    <version>/                 the data version (SHA-256 of the exported rows)
      README.md                the dataset card (its configs: the Parquet files per split)
      dataset_dict.json        datasets.save_to_disk: load_from_disk(<version>)
      train/  validation/      (Arrow files, dataset_info.json, state.json)
      data/train-00000-of-00001.parquet        the Hub's layout: load_dataset(<version>)
      data/validation-00000-of-00001.parquet
    latest -> <version>        the newest published version (a relative symlink; a text
                               file holding the version where links are not possible)
    staged/<version>/          a version whose audit failed (never published)

A version is written into a hidden temporary folder, audited there (``audit_folder``: it
loads back with ``load_from_disk``, each split and each Parquet file has the rows of
``verified``, no example is in both splits, the card's header parses), and only then
renamed into place, then ``latest`` is replaced atomically: a reader sees the previous
version or the new one, never a half-written or unaudited one. A version that exists
already and passes its audit again is not rewritten (only its card, atomically, when its
licence changed).
"""

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING

from curation_assets.curation.export import card
from curation_assets.curation.export.dataset import SPLITS, VerifiedRows, exported_columns
from curation_assets.curation.export.licences import BUNDLED_SOURCES, Licensing, licensing
from curation_assets.curation.export.provenance import Provenance

if TYPE_CHECKING:
    import datasets

LATEST = "latest"
STAGED = "staged"
_TEMPORARY = ".writing-"
#: A temporary folder older than this is left over by a killed run and is removed.
_STALE_SECONDS = 3600


def export_root(data_dir: Path) -> Path:
    """Where the versions of the verified dataset live."""
    return Path(data_dir) / "datasets" / "verified"


@dataclass(frozen=True)
class Audit:
    """The audit of a written folder: what failed (``failures``: one dict per failed
    expectation, the shape of the warehouse audits) and the rows it reloaded per split."""

    failures: list[dict] = field(default_factory=list)
    reloaded: dict[str, int] = field(default_factory=dict)
    evaluated: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Written:
    """The outcome of one export."""

    version: str
    folder: Path  # the published version, or its staged copy when the audit failed
    published: bool
    unchanged: bool  # the version existed (and passed its audit): its data was not rewritten
    card_updated: bool  # ... but its card was, for a new licence
    latest_moved: bool
    card: str
    audit: Audit
    licensing: Licensing


def write_version(
    rows: VerifiedRows,
    provenance: Provenance,
    root: Path,
    *,
    task_type: str,
    languages: tuple[str, ...] = (),
    declared_license: str | None = None,
    source_folders: tuple[Path, ...] = (BUNDLED_SOURCES,),
) -> Written:
    """Write ``rows`` as the folder of their version under ``root``, audit it, publish it
    (rename into place, move ``latest``) if it passed, else keep it under ``staged/``.

    A version that exists and passes its audit again keeps its files; only its card is
    replaced (atomically) when the licence changed, e.g. once one was declared."""
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    licence = licensing(provenance.batch_hashes, declared_license, source_folders)
    final = root / rows.version
    done = {"version": rows.version, "licensing": licence}
    if final.is_dir():
        audit = audit_folder(final, rows.counts)
        if audit.passed:
            text = (final / "README.md").read_text(encoding="utf-8")
            updated = card.read_header(text).get("license") != licence.header
            if updated:
                dataset = _load(final)
                text = _write_card(
                    rows, provenance, licence, dataset, final, task_type, languages, published=True
                )
            return Written(
                **done,
                folder=final,
                published=True,
                unchanged=True,
                card_updated=updated,
                latest_moved=point_latest(root, rows.version),
                card=text,
                audit=audit,
            )
    temporary = root / f"{_TEMPORARY}{rows.version[:16]}-{uuid.uuid4().hex[:8]}"
    dataset = _write_data(rows, temporary)
    text = _write_card(rows, provenance, licence, dataset, temporary, task_type, languages)
    audit = audit_folder(temporary, rows.counts)
    if audit.passed:
        _install(temporary, final)
        shutil.rmtree(root / STAGED / rows.version, ignore_errors=True)
        folder, moved = final, point_latest(root, rows.version)
    else:
        folder, moved = root / STAGED / rows.version, False
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(exist_ok=True)
        os.rename(temporary, folder)
    return Written(
        **done,
        folder=folder,
        published=audit.passed,
        unchanged=False,
        card_updated=False,
        latest_moved=moved,
        card=text,
        audit=audit,
    )


def _write_data(rows: VerifiedRows, folder: Path) -> "datasets.DatasetDict":
    """Write the dataset into ``folder``: ``save_to_disk`` (one shard per split, so that an
    empty split loads back too) and one Parquet file per split."""
    dataset = rows.dataset_dict()
    with _no_progress_bars():
        dataset.save_to_disk(str(folder), num_shards=dict.fromkeys(SPLITS, 1))
        for split in SPLITS:
            path = folder / card.PARQUET_FILE.format(split=split)
            path.parent.mkdir(parents=True, exist_ok=True)
            dataset[split].to_parquet(str(path))
    return dataset


def _write_card(
    rows: VerifiedRows,
    provenance: Provenance,
    licence: Licensing,
    dataset: "datasets.DatasetDict",
    folder: Path,
    task_type: str,
    languages: tuple[str, ...],
    published: bool = False,
) -> str:
    """Render the card of the data in ``folder`` and write it there (atomically). In a
    ``published`` folder readers may open, a card that fails its audit is never written
    (a new version's folder is audited as a whole before anyone can see it)."""
    sizes = {s: (folder / card.PARQUET_FILE.format(split=s)).stat().st_size for s in SPLITS}
    yaml_header = card.header(dataset, licence, task_type, sizes, languages)
    text = card.render(rows, provenance, licence, yaml_header)
    failed = [name for name, ok, _ in card_checks(text) if not ok]
    if published and failed:
        raise ValueError(f"the rendered dataset card fails its audit: {failed}")
    temporary = folder / f"{_TEMPORARY}README-{uuid.uuid4().hex[:8]}"
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, folder / "README.md")
    return text


def _load(folder: Path) -> "datasets.DatasetDict":
    import datasets

    return datasets.load_from_disk(str(folder))


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """``datasets`` without its progress bars (they would flood the run's log)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def audit_folder(folder: Path, counts: dict[str, int]) -> Audit:
    """Reload ``folder`` and compare it with ``counts`` (rows of ``verified`` per split):
    ``load_from_disk`` gives both splits with the exported columns and those rows, each
    split's Parquet file too, every example is in one split only, and the card's header
    parses with a licence and the Parquet files of each split."""
    import datasets
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    failures: list[dict] = []
    evaluated = []

    def expect(validation: str, expectation: str, ok: bool, observed: object) -> None:
        evaluated.append(expectation)
        if not ok:
            failures.append(
                {
                    "severity": "critical",
                    "validation": validation,
                    "expectation": expectation,
                    "unexpected_count": None,
                    "observed_value": observed,
                    "sample": None,
                }
            )

    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as exc:  # noqa: BLE001 - a folder that does not load fails the audit
        expect("load_from_disk", "ExpectFolderToLoad()", False, f"{type(exc).__name__}: {exc}")
        return Audit(failures, evaluated=len(evaluated))
    splits = sorted(loaded) if isinstance(loaded, datasets.DatasetDict) else ["(one dataset)"]
    expect(
        "load_from_disk",
        f"ExpectSplitsToEqual(value={list(SPLITS)})",
        splits == sorted(SPLITS),
        splits,
    )
    if splits != sorted(SPLITS):
        return Audit(failures, evaluated=len(evaluated))
    columns = [c.name for c in exported_columns()]
    reloaded = {}
    for split in SPLITS:
        part, expected = loaded[split], counts.get(split, 0)
        reloaded[split] = part.num_rows
        expect(
            split,
            f"ExpectRowCountToEqualVerified(value={expected})",
            part.num_rows == expected,
            part.num_rows,
        )
        expect(
            split,
            f"ExpectColumnsToEqual(value={columns})",
            part.column_names == columns,
            part.column_names,
        )
        ids = part.data.column("example_id")
        distinct = pc.count_distinct(ids).as_py()
        expect(
            split, "ExpectColumnValuesToBeUnique(column=example_id)", distinct == len(ids), distinct
        )
        parquet = folder / card.PARQUET_FILE.format(split=split)
        rows = pq.read_metadata(parquet).num_rows if parquet.is_file() else None
        expect(
            f"{split} parquet",
            f"ExpectRowCountToEqualVerified(value={expected})",
            rows == expected,
            rows,
        )
    train, validation = (loaded[s].data.column("example_id") for s in SPLITS)
    shared = pc.sum(pc.is_in(validation, value_set=train.combine_chunks())).as_py() or 0
    expect("splits", "ExpectNoExampleIdInBothSplits()", shared == 0, shared)
    _audit_card(folder, expect)
    return Audit(failures, reloaded, len(evaluated))


def card_checks(text: str) -> list[tuple[str, bool, object]]:
    """The audit of a card's text: (expectation, passed, observed) for its licence and for
    the Parquet files its configs name per split."""
    meta = card.read_header(text)
    checks: list[tuple[str, bool, object]] = [
        ("ExpectHeaderToHaveLicense()", bool(meta.get("license")), meta.get("license"))
    ]
    configs = meta.get("configs") or [{}]
    files = {f["split"]: f["path"] for f in configs[0].get("data_files", [])}
    for split in SPLITS:
        wanted = card.PARQUET_FILE.format(split=split)
        pattern = files.get(split, "")
        ok = bool(pattern) and fnmatch(wanted, pattern)
        checks.append((f"ExpectConfigsToName(path={wanted})", ok, pattern))
    return checks


def _audit_card(folder: Path, expect) -> None:
    path = folder / "README.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    for expectation, ok, observed in card_checks(text):
        expect("card", expectation, ok, observed)


def _install(temporary: Path, final: Path) -> None:
    """Rename the audited ``temporary`` folder to ``final`` (replacing a broken one)."""
    if final.is_dir():  # exists but failed its audit: swap it out
        broken = final.with_name(f"{_TEMPORARY}broken-{uuid.uuid4().hex[:8]}")
        os.rename(final, broken)
        os.rename(temporary, final)
        shutil.rmtree(broken, ignore_errors=True)
        return
    os.rename(temporary, final)


def point_latest(root: Path, version: str) -> bool:
    """Make ``latest`` name ``version`` (atomically: a new link or file replaces the old
    one in one rename); False when it named it already."""
    if latest_version(root) == version:
        return False
    pointer = root / f"{_TEMPORARY}latest-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink(version, pointer, target_is_directory=True)
    except OSError:  # no symbolic links here (Windows without the privilege): a text file
        pointer.write_text(version + "\n", encoding="utf-8")
    os.replace(pointer, root / LATEST)
    return True


def latest_version(root: Path) -> str | None:
    """The version ``latest`` names, or None before the first export."""
    pointer = root / LATEST
    if pointer.is_symlink():
        return Path(os.readlink(pointer)).name
    if pointer.is_file():
        return pointer.read_text(encoding="utf-8").strip() or None
    return None


def _remove_stale_temporaries(root: Path) -> None:
    cutoff = time.time() - _STALE_SECONDS
    for path in root.glob(f"{_TEMPORARY}*"):
        try:
            if path.lstat().st_mtime < cutoff:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        except OSError:
            continue
