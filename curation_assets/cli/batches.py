"""``curation batches``: the batches a failed audit holds back, and accepting one on
purpose (recorded in the audit trail; the next run publishes it)."""

from typing import TYPE_CHECKING, Annotated

import typer

from curation_assets.cli import common

if TYPE_CHECKING:
    from curation_assets.config import Settings

app = typer.Typer(cls=common.CurationGroup, no_args_is_help=True)


@app.command(
    "list", cls=common.CurationCommand, short_help="held batches, the stage that holds them and why"
)
def list_batches() -> int:
    """List the held batches: the stage that holds each, why, and its staged rows."""
    held = _held(common.load_settings())
    if not held:
        print("no batch is held back")
    for row in held:
        print(f"{row['batch']}  held at {row['stage']}  ({row['records']} records): ")
        print(f"    {row['reason']}")
        print(f"    staged rows: {row['staged_table']} (in the warehouse)")
    return common.OK


@app.command(
    "accept",
    cls=common.CurationCommand,
    short_help="publish a held batch on purpose (recorded in the audit trail)",
)
def accept(
    batch: Annotated[
        str,
        typer.Argument(
            metavar="BATCH", show_default=False, help="the batch (inbox file name) to accept"
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", show_default=False, help="why (kept in the audit trail)")
    ],
    by: Annotated[
        str | None,
        typer.Option("--by", help="who accepts it (default: your login; an admin user)"),
    ] = None,
) -> int:
    """Accept a held batch on purpose; the next run publishes it. Once the review app has
    users, --by must name an admin. Exits 2 when the batch is not held, --by is not an
    admin, or the reason is empty."""
    settings = common.load_settings()
    from curation_assets.curation import overrides
    from curation_assets.curation.review import decisions

    held = _held(settings)
    matches = [row for row in held if row["batch"] == batch]
    if not matches:
        names = ", ".join(sorted({r["batch"] for r in held})) or "none"
        return common.error(f"{batch} is not held back (held: {names})")
    store = settings.decision_store
    users = decisions.list_users(store) if store.exists() else []
    if users:
        admins = {u["username"] for u in users if u["role"] == "admin"}
        if by not in admins:
            return common.error(
                "accepting a held batch needs an admin of the review app: pass --by NAME "
                f"(admins: {', '.join(sorted(admins)) or 'none; add one with curation users add'})"
            )
    for row in matches:
        try:
            done = overrides.accept(store, row["stage"], row["batch"], row["sha256"], reason, by)
        except ValueError as exc:
            return common.error(exc, common.REFUSED)
        print(
            f"accepted {row['batch']} at {row['stage']} by {done['accepted_by']} "
            f"({done['recorded_at']}): {done['reason']}"
        )
    print("it is published by the next run: `curation run`, or materialize it in the UI")
    return common.OK


def _held(settings: "Settings") -> list[dict]:
    """The held batches of the published snapshot (none before the first run)."""
    from curation_assets.curation import publish, warehouse

    con = common.published(settings)
    try:
        if not warehouse.table_exists(con, publish.HELD_TABLE):
            return []
        return publish.held(con)
    finally:
        con.close()
