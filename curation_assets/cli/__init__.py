"""The ``curation`` command (Typer): run the demo job, trace an example, manage
decisions, users and the review web app. ``main`` is the console script; one module per
concern (runs, trace, decisions, review, users, batches; common holds what they share,
progress the live bars of a run on a terminal)."""

import json
import os
import sys
from typing import Annotated

import typer

from curation_assets.cli import batches, decisions, review, runs, trace, users
from curation_assets.cli.common import (
    EXIT_CODES,
    FAILED,
    OK,
    PIPE_CLOSED,
    CurationCommand,
    CurationGroup,
    PipeClosed,
    load_settings,
)
from curation_assets.cli.runs import START_STAGES

__all__ = ["START_STAGES", "app", "main"]

app = typer.Typer(
    name="curation",
    cls=CurationGroup,
    help="The curation command: run the demo job, trace an example, manage decisions, "
    "users and the review web app.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("curation_assets")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def _show_version(value: bool) -> None:
    if value:
        print(f"curation {_version()}")
        raise typer.Exit(OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            expose_value=False,
            help="show the version and exit",
        ),
    ] = False,
) -> None:
    """The group's own option (--version); each subcommand has its own --help."""


_settings = typer.Typer()


@_settings.command("settings", cls=CurationCommand, short_help="print the effective settings")
def settings() -> int:
    """Print the effective settings as JSON (defaults, then CURATION_* variables; lists
    as comma lists, the form the variables take)."""
    print(json.dumps(load_settings().describe(), indent=2))
    return OK


app.add_typer(runs.app)
app.add_typer(trace.app)
app.add_typer(decisions.app, name="decisions", help="the decision store")
app.add_typer(review.app)
app.add_typer(users.app, name="users", help="accounts of the review web app")
app.add_typer(batches.app, name="batches", help="batches held back by a failed audit")
app.add_typer(_settings)


def main(argv: list[str] | None = None) -> int:
    """Run ``curation`` with ``argv`` (default: the process's arguments) and return its
    exit code; a closed output pipe (``curation settings | head``) ends it quietly."""
    try:
        status = _invoke(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except (BrokenPipeError, PipeClosed):
        # the reader went away: send what is left to /dev/null, exit as a SIGPIPE would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return PIPE_CLOSED


def _invoke(argv: list[str] | None) -> int:
    """Typer's standalone mode prints usage errors and ends with ``SystemExit``: keep
    its code instead of exiting."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="curation", standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or OK
        print(exc.code, file=sys.stderr)
        return FAILED
    return OK
