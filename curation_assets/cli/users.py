"""``curation users``: the accounts of the review web app (kept in the decision store)."""

import sys
from typing import Annotated, Literal

import typer

from curation_assets.cli import common

app = typer.Typer(cls=common.CurationGroup, no_args_is_help=True)


@app.command(
    "add", cls=common.CurationCommand, short_help="create a user (or reset one with --replace)"
)
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False, help="the login name")],
    role: Annotated[
        Literal["reviewer", "expert", "admin"],
        typer.Option(
            "--role",
            metavar="ROLE",
            show_default=False,
            help="reviewer (reviews queue items), expert (verifies them), "
            "admin (accepts held batches)",
        ),
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
    replace: Annotated[bool, typer.Option("--replace", help="reset an existing user")] = False,
) -> int:
    """Create a user of the review web app, or reset one's password and role with
    --replace. The password is asked twice, or read from one line of stdin. Exits 2 when
    the passwords differ or the user is refused (an existing name, a short password)."""
    settings = common.load_settings()
    from curation_assets.curation.review import decisions

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            return common.error("the passwords differ")
    try:
        decisions.add_user(settings.decision_store, name, password, role, replace=replace)
    except ValueError as exc:
        return common.error(exc, common.REFUSED)
    print(f"user {name} ({role}) -> {settings.decision_store}")
    return common.OK


@app.command("list", cls=common.CurationCommand, short_help="list users and roles")
def list_users() -> int:
    """List the users of the review web app: name, role and when each was created."""
    settings = common.load_settings()
    from curation_assets.curation.review import decisions

    store = settings.decision_store
    users = decisions.list_users(store) if store.exists() else []
    if not users:
        print(
            f"no users yet (decision store: {store}); add one with: "
            "curation users add NAME --role reviewer|expert|admin"
        )
    for user in users:
        print(f"{user['username']}\t{user['role']}\t{user['created_at']}")
    return common.OK
