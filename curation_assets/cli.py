"""The ``curation`` command: run the demo job, trace an example, import decisions."""

import argparse
import json
import shutil
import sys
import time
from importlib import resources
from pathlib import Path

from curation_assets.config import Settings
from curation_assets.instance import ensure_dagster_home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="curation", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="materialize the whole graph on the bundled sample")
    demo.add_argument("--fresh", action="store_true", help="start from an empty data folder")
    run = sub.add_parser("run", help="ingest the inbox and materialize everything downstream")
    run.add_argument("--skip-training", action="store_true")
    trace = sub.add_parser("trace", help="show one example's path through every stage")
    trace.add_argument("id", help="an example_id, or a record id such as FILE:LINE")
    trace.add_argument("--json", action="store_true", help="machine-readable output")
    dec = sub.add_parser("decisions", help="the decision store")
    dec_sub = dec.add_subparsers(dest="action", required=True)
    imp = dec_sub.add_parser("import", help="append decisions from a JSONL or CSV file")
    imp.add_argument("file", type=Path)
    sub.add_parser("settings", help="print the effective settings")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    if args.command == "settings":
        print(json.dumps(settings.describe(), indent=2))
        return 0
    if args.command == "trace":
        return _trace(settings, args.id, args.json)
    if args.command == "decisions":
        return _import_decisions(settings, args.file)
    if args.command == "demo":
        return _demo(settings, fresh=args.fresh)
    return _run(settings, skip_training=args.skip_training)


def _import_decisions(settings: Settings, file: Path) -> int:
    from curation_assets.core import decisions

    if not file.exists():
        print(f"no such file: {file}", file=sys.stderr)
        return 2
    report = decisions.import_file(file, settings.decision_store)
    print(
        f"{file}: {report.added} added, {report.already_present} already in the store, "
        f"{len(report.errors)} refused -> {settings.decision_store}"
    )
    for line_no, reason in report.errors[:20]:
        print(f"  line {line_no}: {reason}", file=sys.stderr)
    return 1 if report.errors else 0


def _demo(settings: Settings, fresh: bool) -> int:
    """Copy the bundled sample into the inbox, import its decisions, run everything."""
    if fresh and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    sample = Path(str(resources.files("curation_assets") / "sample_data"))
    settings.inbox.mkdir(parents=True, exist_ok=True)
    for file in sorted((sample / "inbox").iterdir()):
        if not (settings.inbox / file.name).exists():
            shutil.copy2(file, settings.inbox / file.name)
    for file in sorted((sample / "decisions").glob("*.jsonl")):
        _import_decisions(settings, file)
    return _run(settings, skip_training=False)


def _run(settings: Settings, skip_training: bool) -> int:
    from curation_assets.pipeline import run_everything

    home = ensure_dagster_home()
    started = time.perf_counter()
    summary = run_everything(settings, skip_training=skip_training)
    elapsed = time.perf_counter() - started
    print()
    print("=" * 72)
    for line in summary["lines"]:
        print(line)
    print(f"wall time: {elapsed:.0f} s")
    print()
    print(f"warehouse (DuckDB): {settings.warehouse}")
    print(f"decision store (SQLite): {settings.decision_store}")
    print(f"models: {settings.models}")
    print(f"Dagster instance (DAGSTER_HOME): {home}")
    print("open the UI: ./scripts/ui  (then http://127.0.0.1:3000, Assets > Lineage)")
    print("trace an example: .venv/bin/curation trace <example_id>")
    print("=" * 72)
    return 0 if summary["success"] else 1


def _trace(settings: Settings, key: str, as_json: bool) -> int:
    import duckdb

    from curation_assets.core import decisions, lineage

    if not settings.warehouse.exists():
        print(f"no warehouse at {settings.warehouse}: run the pipeline first", file=sys.stderr)
        return 2
    try:
        con = duckdb.connect(str(settings.warehouse), read_only=True)
    except duckdb.IOException as exc:
        print(
            f"the warehouse is busy (a run is writing to it); try again shortly: {exc}",
            file=sys.stderr,
        )
        return 3
    try:
        result = lineage.trace(con, decisions.load_all(settings.decision_store), key)
    finally:
        con.close()
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{key}: {result['summary']}")
    for stage, rows in result.items():
        if stage == "summary" or not rows:
            continue
        print(f"\n[{stage}]")
        for row in rows:
            print("  " + ", ".join(f"{k}={v}" for k, v in row.items() if v is not None))
    return 0 if result["raw_scrapes"] or result["quarantine"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
