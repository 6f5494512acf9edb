"""``curation decisions``: import decisions into the decision store, export the published
review queue (JSONL or Label Studio tasks, each item naming its source file and line)."""

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from curation_assets.cli import common

if TYPE_CHECKING:
    from curation_assets.config import Settings

app = typer.Typer(cls=common.CurationGroup, no_args_is_help=True)

#: Refused lines printed after an import (the count names them all).
SHOWN_ERRORS = 20


@app.command(
    "import",
    cls=common.CurationCommand,
    short_help="append decisions from a JSONL or CSV file, or a Label Studio JSON export",
)
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            show_default=False,
            help="the decisions file (.jsonl, .csv or .json)",
        ),
    ],
    role: Annotated[
        Literal["reviewer", "expert"],
        typer.Option(
            "--role",
            help="role of the annotators of a Label Studio export (JSONL/CSV carry their own)",
        ),
    ] = "reviewer",
) -> int:
    """Append decisions from a JSONL or CSV file (one decision a line), or a Label Studio
    JSON export. Idempotent: decisions already in the store are counted, not added again.
    Exits 1 when lines were refused (each named with its line number), 2 when the file
    cannot be read."""
    return import_decisions(common.load_settings(), file, role)


def import_decisions(settings: "Settings", file: Path, role: str = "reviewer") -> int:
    """Import ``file``; print one line of counts and the first refused lines."""
    if not file.exists():
        return common.error(f"no such file: {file}")
    if not file.is_file():
        return common.error(f"not a file: {file}")
    with common.spinner(f"importing {file} ..."):
        from curation_assets.curation.review import decisions

        try:
            report = decisions.import_file(file, settings.decision_store, label_studio_role=role)
        except UnicodeError as exc:
            return common.error(f"cannot read {file}: not UTF-8 text ({exc})")
        except OSError as exc:  # the file (refused input) or the store (the work failed)
            return common.error(f"cannot import {file}: {exc}", _code_for(exc, file))
    print(
        f"{file}: {report.added} added, {report.already_present} already in the store, "
        f"{len(report.errors)} refused -> {settings.decision_store}"
    )
    for line_no, reason in report.errors[:SHOWN_ERRORS]:
        print(f"  line {line_no}: {reason}", file=sys.stderr)
    return common.FAILED if report.errors else common.OK


def _code_for(exc: OSError, file: Path) -> int:
    """2 when the error is about the input file itself, else 1."""
    return common.REFUSED if exc.filename in (None, str(file)) else common.FAILED


@app.command(
    "export-queue",
    cls=common.CurationCommand,
    short_help="write the published review queue to a file",
)
def export_queue(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", show_default=False, help="where to write the queue")
    ],
    fmt: Annotated[
        Literal["jsonl", "label-studio"],
        typer.Option(
            "--format",
            help="jsonl (one item a line, default) or label-studio (tasks and a labeling config)",
        ),
    ] = "jsonl",
) -> int:
    """Write the published review queue to FILE, each item with the record, file and line
    it comes from; label-studio also writes FILE's labeling interface next to it
    (NAME.label_config.xml). Exits 1 when FILE cannot be written."""
    settings = common.load_settings()
    from curation_assets.curation.review import decisions

    try:
        with common.spinner(f"exporting the review queue to {file} ..."):
            count = decisions.export_queue(settings.decision_store, file, fmt)
            if count:
                _add_source_lines(settings, file, fmt)
        print(f"{count} queue items -> {file}")
        if fmt == "label-studio":
            config = file.with_name(file.stem + ".label_config.xml")
            config.write_text(decisions.label_studio_config(settings.labels), encoding="utf-8")
            print(f"labeling interface for Label Studio -> {config}")
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        return common.error(f"cannot write {file}: {exc}", common.FAILED)
    if count == 0:
        print("the queue is empty: materialize review_queue first", file=sys.stderr)
    return common.OK


def _source_lines(settings: "Settings") -> dict[str, dict]:
    """example_id -> the record of the queue item (``record_id``, ``source_file``,
    ``line_no``): the published ``review_queue`` names the record kept by the filters."""
    from curation_assets.curation import warehouse

    con = common.published(settings)
    try:
        if not (
            warehouse.table_exists(con, "review_queue")
            and warehouse.table_exists(con, "raw_scrapes")
        ):
            return {}
        rows = con.execute(
            "SELECT q.example_id, q.record_id, r.source_file, r.line_no FROM review_queue q "
            "LEFT JOIN raw_scrapes r USING (record_id)"
        ).fetchall()
    finally:
        con.close()
    return {
        eid: {
            "record_id": rid,
            "source_file": src,
            "line_no": int(line) if line is not None else None,
        }
        for eid, rid, src, line in rows
    }


def _add_source_lines(settings: "Settings", file: Path, fmt: str) -> None:
    """Add where each exported item comes from (file and line), so that a reviewer working
    outside the app can find the original row (the prompt in the queue is PII-masked)."""
    where = _source_lines(settings)
    if not where:
        return
    empty = {"record_id": None, "source_file": None, "line_no": None}
    if fmt == "jsonl":
        items = [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]
        text = "".join(
            json.dumps({**item, **where.get(item["example_id"], empty)}, ensure_ascii=False) + "\n"
            for item in items
        )
        file.write_text(text, encoding="utf-8")
    else:
        tasks = json.loads(file.read_text(encoding="utf-8"))
        for task in tasks:
            task["data"].update(where.get(task["data"]["example_id"], empty))
        file.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
