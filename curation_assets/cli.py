"""The ``curation`` command: run the demo job, trace an example, manage decisions, users
and the review web app."""

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from importlib import resources
from pathlib import Path

from curation_assets.config import Settings
from curation_assets.runs.instance import ensure_dagster_home

#: Stages ``curation run --from`` may start at (pipeline.START_STAGES; not imported here
#: so that light commands do not load Dagster).
START_STAGES = ("filtered", "review_queue", "reviewed", "verified")


def main(argv: list[str] | None = None) -> int:
    """The command line; a closed output pipe (``curation settings | head``) ends it quietly."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # the reader went away: send what is left to /dev/null, exit as a SIGPIPE would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("curation_assets")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def _add_run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show Dagster's full DEBUG event log instead of one line per stage",
    )


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _dispatch(args)


def build_parser() -> argparse.ArgumentParser:
    """The ``curation`` command line (every argument has a help text)."""
    parser = argparse.ArgumentParser(prog="curation", description=__doc__)
    parser.add_argument("--version", action="version", version=f"curation {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="materialize the whole graph on the bundled sample")
    demo.add_argument("--fresh", action="store_true", help="start from an empty data folder")
    _add_run_flags(demo)
    run = sub.add_parser(
        "run",
        help="ingest the inbox and materialize everything downstream",
        description="Ingest every inbox file, then materialize filtered -> review_queue -> "
        "reviewed -> verified -> fine_tuned_model (and the evaluation, ladder and lineage). "
        "Exits 0 when everything is done or when it only waits for review work, 1 on a "
        "failure (a held batch, a failed audit, an error).",
    )
    run.add_argument(
        "--skip-training",
        action="store_true",
        help="stop after verified: no fine-tune, evaluation, quality ladder or lineage",
    )
    run.add_argument(
        "--from",
        dest="from_stage",
        choices=START_STAGES,
        metavar="STAGE",
        help="start at STAGE and run only it and what is downstream of it, without "
        "re-ingesting the inbox (after importing decisions: --from review_queue). "
        f"One of: {', '.join(START_STAGES)}",
    )
    _add_run_flags(run)
    trace = sub.add_parser("trace", help="show one example's path through every stage")
    trace.add_argument("id", help="an example_id, or a record id such as FILE:LINE")
    trace.add_argument("--json", action="store_true", help="machine-readable output")
    dec = sub.add_parser("decisions", help="the decision store")
    dec_sub = dec.add_subparsers(dest="action", required=True)
    imp = dec_sub.add_parser(
        "import", help="append decisions from a JSONL or CSV file, or a Label Studio JSON export"
    )
    imp.add_argument("file", type=Path, help="the decisions file (.jsonl, .csv or .json)")
    imp.add_argument(
        "--role",
        choices=["reviewer", "expert"],
        default="reviewer",
        help="role of the annotators of a Label Studio export (JSONL/CSV carry their own)",
    )
    exp = dec_sub.add_parser("export-queue", help="write the published review queue to a file")
    exp.add_argument("file", type=Path, help="where to write the queue")
    exp.add_argument(
        "--format",
        choices=["jsonl", "label-studio"],
        default="jsonl",
        help="jsonl (one item a line, default) or label-studio (tasks and a labeling config)",
    )
    review = sub.add_parser("review", help="serve the review web app")
    review.add_argument("--host", help="default: CURATION_REVIEW_HOST (127.0.0.1)")
    review.add_argument("--port", type=int, help="default: CURATION_REVIEW_PORT (8765)")
    review.add_argument(
        "--secure-cookies", action="store_true", help="mark the session cookie Secure (HTTPS)"
    )
    review.add_argument(
        "--log-level", default="info", help="the web server's log level (default: info)"
    )
    users = sub.add_parser("users", help="accounts of the review web app")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="create a user (or reset one with --replace)")
    add.add_argument("name", help="the login name")
    add.add_argument(
        "--role",
        choices=["reviewer", "expert", "admin"],
        required=True,
        help="reviewer (reviews queue items), expert (verifies them), admin (accepts held batches)",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--replace", action="store_true", help="reset an existing user")
    users_sub.add_parser("list", help="list users and roles")
    batches = sub.add_parser("batches", help="batches held back by a failed audit")
    batches_sub = batches.add_subparsers(dest="action", required=True)
    batches_sub.add_parser("list", help="held batches, the stage that holds them and why")
    accept = batches_sub.add_parser(
        "accept", help="publish a held batch on purpose (recorded in the audit trail)"
    )
    accept.add_argument("batch", help="the batch (inbox file name) to accept")
    accept.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    accept.add_argument("--by", help="who accepts it (default: your login; an admin user)")
    sub.add_parser("settings", help="print the effective settings")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.command == "settings":
        print(json.dumps(settings.describe(), indent=2))
        return 0
    if args.command == "trace":
        return _trace(settings, args.id, args.json)
    if args.command == "decisions" and args.action == "export-queue":
        return _export_queue(settings, args.file, args.format)
    if args.command == "decisions":
        return _import_decisions(settings, args.file, args.role)
    if args.command == "review":
        return _review(settings, args)
    if args.command == "users":
        return _users(settings, args)
    if args.command == "batches":
        return _batches(settings, args)
    if args.command == "demo":
        return _demo(settings, fresh=args.fresh, verbose=args.verbose)
    return _run(
        settings,
        skip_training=args.skip_training,
        verbose=args.verbose,
        from_stage=args.from_stage,
    )


def _import_decisions(settings: Settings, file: Path, role: str = "reviewer") -> int:
    from curation_assets.curation.review import decisions

    if not file.exists():
        print(f"no such file: {file}", file=sys.stderr)
        return 2
    report = decisions.import_file(file, settings.decision_store, label_studio_role=role)
    print(
        f"{file}: {report.added} added, {report.already_present} already in the store, "
        f"{len(report.errors)} refused -> {settings.decision_store}"
    )
    for line_no, reason in report.errors[:20]:
        print(f"  line {line_no}: {reason}", file=sys.stderr)
    return 1 if report.errors else 0


def _export_queue(settings: Settings, file: Path, fmt: str) -> int:
    from curation_assets.curation.review import decisions

    count = decisions.export_queue(settings.decision_store, file, fmt)
    if count:
        _add_source_lines(settings, file, fmt)
    print(f"{count} queue items -> {file}")
    if fmt == "label-studio":
        config = file.with_name(file.stem + ".label_config.xml")
        config.write_text(decisions.label_studio_config(settings.labels), encoding="utf-8")
        print(f"labeling interface for Label Studio -> {config}")
    if count == 0:
        print("the queue is empty: materialize review_queue first", file=sys.stderr)
    return 0


def _source_lines(settings: Settings) -> dict[str, dict]:
    """example_id -> the record of the queue item (``record_id``, ``source_file``,
    ``line_no``): the published ``review_queue`` names the record kept by the filters."""
    from curation_assets.curation import warehouse

    con = _published(settings)
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


def _add_source_lines(settings: Settings, file: Path, fmt: str) -> None:
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


def _review(settings: Settings, args: argparse.Namespace) -> int:
    from curation_assets.review_app import serve
    from curation_assets.runs.recovery import recover_on_start

    ensure_dagster_home()
    recover_on_start()  # a killed run must not keep the pool slot the app's users wait for
    host = args.host or settings.review_host
    port = args.port or settings.review_port
    print(f"review app on http://{host}:{port}  (decision store: {settings.decision_store})")
    serve(settings, host, port, https_only=args.secure_cookies, log_level=args.log_level)
    return 0


def _users(settings: Settings, args: argparse.Namespace) -> int:
    from curation_assets.curation.review import decisions

    if args.action == "list":
        users = (
            decisions.list_users(settings.decision_store)
            if settings.decision_store.exists()
            else []
        )
        if not users:
            print(
                f"no users yet (decision store: {settings.decision_store}); add one with: "
                "curation users add NAME --role reviewer|expert|admin"
            )
        for user in users:
            print(f"{user['username']}\t{user['role']}\t{user['created_at']}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 2
    try:
        decisions.add_user(
            settings.decision_store, args.name, password, args.role, replace=args.replace
        )
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"user {args.name} ({args.role}) -> {settings.decision_store}")
    return 0


def _demo(settings: Settings, fresh: bool, verbose: bool = False) -> int:
    """Copy the bundled sample into the inbox, import its decisions, run everything."""
    from curation_assets.runs.recovery import recover_on_start

    ensure_dagster_home()
    recover_on_start()  # before anything else; run_everything checks again (a no-op then)
    if fresh and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    sample = Path(str(resources.files("curation_assets") / "sample_data"))
    settings.inbox.mkdir(parents=True, exist_ok=True)
    for file in sorted((sample / "inbox").iterdir()):
        if not (settings.inbox / file.name).exists():
            shutil.copy2(file, settings.inbox / file.name)
    for file in sorted((sample / "decisions").glob("*.jsonl")):
        _import_decisions(settings, file)
    return _run(settings, skip_training=False, verbose=verbose)


def _run(
    settings: Settings,
    skip_training: bool,
    verbose: bool = False,
    from_stage: str | None = None,
) -> int:
    from curation_assets.runs.pipeline import run_everything

    home = ensure_dagster_home()
    if not verbose:
        _quiet_libraries()
    started = time.perf_counter()
    # run_everything first fails runs left by a killed process and frees their pool slots
    summary = run_everything(
        settings,
        skip_training=skip_training,
        verbose=verbose,
        from_stage=from_stage,
        emit=_emit,
    )
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
    if summary["state"] == "waiting":
        print("curate run: waiting for review (see above); nothing failed")
    elif summary["state"] == "failed":
        print("curate run: FAILED (see above)", file=sys.stderr)
    return 0 if summary["state"] in ("ok", "waiting") else 1


def _emit(line: str) -> None:
    """A progress line, written at once (a closed pipe stops the lines, not the run)."""
    with contextlib.suppress(BrokenPipeError):
        print(line, flush=True)


def _quiet_libraries() -> None:
    """No library progress bars between the stage lines (``--verbose`` keeps them)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")


def _published(settings: Settings):
    """A read-only view of the published tables (the Parquet snapshot: never locked)."""
    from curation_assets.curation import publish
    from curation_assets.defs.shared.checks import snapshot_dir

    return publish.open_snapshot(snapshot_dir(settings))


def _held(settings: Settings) -> list[dict]:
    from curation_assets.curation import publish, warehouse

    con = _published(settings)
    try:
        if not warehouse.table_exists(con, publish.HELD_TABLE):
            return []
        return publish.held(con)
    finally:
        con.close()


def _batches(settings: Settings, args: argparse.Namespace) -> int:
    from curation_assets.curation import overrides
    from curation_assets.curation.review import decisions

    held = _held(settings)
    if args.action == "list":
        if not held:
            print("no batch is held back")
        for row in held:
            print(f"{row['batch']}  held at {row['stage']}  ({row['records']} records): ")
            print(f"    {row['reason']}")
            print(f"    staged rows: {row['staged_table']} (in the warehouse)")
        return 0
    matches = [row for row in held if row["batch"] == args.batch]
    if not matches:
        names = ", ".join(sorted({r["batch"] for r in held})) or "none"
        print(f"{args.batch} is not held back (held: {names})", file=sys.stderr)
        return 2
    users = (
        decisions.list_users(settings.decision_store) if settings.decision_store.exists() else []
    )
    by = args.by
    if users:
        admins = {u["username"] for u in users if u["role"] == "admin"}
        if by not in admins:
            print(
                "accepting a held batch needs an admin of the review app: pass --by NAME "
                f"(admins: {', '.join(sorted(admins)) or 'none; add one with curation users add'})",
                file=sys.stderr,
            )
            return 2
    for row in matches:
        try:
            done = overrides.accept(
                settings.decision_store, row["stage"], row["batch"], row["sha256"], args.reason, by
            )
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(
            f"accepted {row['batch']} at {row['stage']} by {done['accepted_by']} "
            f"({done['recorded_at']}): {done['reason']}"
        )
    print("it is published by the next run: `curation run`, or materialize it in the UI")
    return 0


def _trace(settings: Settings, key: str, as_json: bool) -> int:
    from curation_assets.curation import warehouse
    from curation_assets.curation.lineage import trace
    from curation_assets.curation.review import decisions

    con = _published(settings)
    try:
        if not warehouse.table_exists(con, "raw_scrapes"):
            print(
                f"nothing published under {settings.data_dir} yet: run the pipeline first",
                file=sys.stderr,
            )
            return 2
        result = trace.trace(con, decisions.load_all(settings.decision_store), key)
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
    return 0 if result["raw_scrapes"] or result["quarantine"] or result["held"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
