"""``curation trace``: one example's path through every stage, read from the published
snapshot (the file and line it came from, rules, queue, decisions, splits, models)."""

import json
from typing import Annotated

import typer

from curation_assets.cli.common import (
    FAILED,
    OK,
    CurationCommand,
    error,
    load_settings,
    published,
    spinner,
)

app = typer.Typer()


@app.command("trace", cls=CurationCommand, short_help="show one example's path through every stage")
def trace_command(
    key: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            show_default=False,
            help="an example_id, or a record id such as FILE:LINE",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> int:
    """Show one example's path through every stage: where it came from, the rules that
    rejected it and why, its queue, decisions, split and the models trained on it. Exits
    1 for an id that is nowhere, 2 when nothing is published yet."""
    settings = load_settings()
    with spinner(f"tracing {key} ..."):
        from curation_assets.curation import warehouse
        from curation_assets.curation.lineage import trace
        from curation_assets.curation.review import decisions

        con = published(settings)
        try:
            if not warehouse.table_exists(con, "raw_scrapes"):
                return error(
                    f"nothing published under {settings.data_dir} yet: run the pipeline first"
                )
            result = trace.trace(con, decisions.load_all(settings.decision_store), key)
        finally:
            con.close()
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return OK
    print(f"{key}: {result['summary']}")
    for stage, rows in result.items():
        if stage == "summary" or not rows:
            continue
        print(f"\n[{stage}]")
        for row in rows:
            print("  " + ", ".join(f"{k}={v}" for k, v in row.items() if v is not None))
    return OK if result["raw_scrapes"] or result["quarantine"] or result["held"] else FAILED
