"""What every ``curation`` subcommand shares: the exit codes, the command group that turns
a returned status into the exit code, settings, error lines, a spinner and the published
tables."""

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    import duckdb

    from curation_assets.config import Settings

#: Exit codes: 0 ok, 1 the work failed, 2 a usage error or refused input.
OK, FAILED, REFUSED = 0, 1, 2
#: A closed output pipe (like a SIGPIPE), and an interrupt (Ctrl-C).
PIPE_CLOSED, INTERRUPTED = 141, 130

EXIT_CODES = (
    "[bold]Exit codes[/bold]\n\n"
    "0  done (a run that only waits for review work included)\n\n"
    "1  the work failed: a failed or held run, refused decision lines, an unknown id for "
    "trace, a file that cannot be written\n\n"
    "2  usage error or refused input: a bad option or value, a missing or unreadable file, "
    "a refused user, a batch that is not held, nothing published yet, a bad CURATION_* "
    "value\n\n"
    "130  interrupted (Ctrl-C)\n\n"
    "141  the output pipe was closed (curation settings | head)"
)


class PipeClosed(Exception):
    """The reader of stdout went away (raised instead of ``BrokenPipeError``, which Typer
    would turn into exit 1)."""


class _PlainHelpFlag:
    """Typer 0.29 coerces the help flag's unset value (None) through a pydantic adapter,
    which imports pydantic (about 0.5 s) in every command; False keeps it a plain flag."""

    def get_help_option(self, ctx: typer.Context) -> Any:
        """The ``-h/--help`` option, unset meaning False."""
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None and option.default is None:
            option.default = False
        return option


class CurationCommand(_PlainHelpFlag, TyperCommand):
    """A ``curation`` subcommand (``cls=`` of every ``@app.command``)."""


class CurationGroup(_PlainHelpFlag, TyperGroup):
    """The ``curation`` group: a command returns its exit status (an int) and this raises
    it as the exit code; a closed pipe and Ctrl-C end quietly."""

    context_class = typer.Context

    def make_context(self, *args: Any, **kwargs: Any) -> typer.Context:
        """Parse the top-level arguments (``--help`` writes here)."""
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError as exc:
            raise PipeClosed from exc

    def invoke(self, ctx: typer.Context) -> Any:
        """Run the subcommand; a non-zero status it returns becomes the exit code."""
        try:
            status = super().invoke(ctx)
        except BrokenPipeError as exc:
            raise PipeClosed from exc
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(INTERRUPTED) from None
        if isinstance(status, int) and status != OK:
            raise typer.Exit(status)
        return status


def error(message: object, code: int = REFUSED) -> int:
    """Write one error line to stderr and return ``code`` (the command returns it)."""
    print(message, file=sys.stderr)
    return code


def load_settings() -> "Settings":
    """The effective settings; a bad ``CURATION_*`` value is one line and exit 2."""
    from curation_assets.config import Settings

    try:
        return Settings.from_env()
    except ValueError as exc:
        raise typer.Exit(error(f"invalid setting: {exc}")) from None


@contextlib.contextmanager
def spinner(message: str) -> Iterator[None]:
    """A spinner on stderr while a slow step runs, shown only on a terminal (never in
    logs, pipes or tests) and cleared when the step ends."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield


def published(settings: "Settings") -> "duckdb.DuckDBPyConnection":
    """A read-only view of the published tables (the Parquet snapshot: never locked)."""
    from curation_assets.curation import publish
    from curation_assets.defs.shared.checks import snapshot_dir

    return publish.open_snapshot(snapshot_dir(settings))
