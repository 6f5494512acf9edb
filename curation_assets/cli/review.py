"""``curation review``: serve the review web app (after failing runs left by a killed
process, so that they do not keep the pool slot the app's users wait for)."""

from typing import Annotated

import typer

from curation_assets.cli.common import OK, CurationCommand, load_settings
from curation_assets.runs.instance import ensure_dagster_home

app = typer.Typer()


@app.command("review", cls=CurationCommand, short_help="serve the review web app")
def review(
    host: Annotated[
        str | None, typer.Option("--host", help="default: CURATION_REVIEW_HOST (127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="default: CURATION_REVIEW_PORT (8765)")
    ] = None,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="mark the session cookie Secure (HTTPS)")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", help="the web server's log level")
    ] = "info",
) -> int:
    """Serve the review web app until stopped (Ctrl-C). Add users first: curation users
    add NAME --role reviewer|expert|admin."""
    settings = load_settings()
    from curation_assets.review_app import serve
    from curation_assets.runs.recovery import recover_on_start

    ensure_dagster_home()
    recover_on_start()  # a killed run must not keep the pool slot the app's users wait for
    host = host or settings.review_host
    port = port or settings.review_port
    print(f"review app on http://{host}:{port}  (decision store: {settings.decision_store})")
    serve(settings, host, port, https_only=secure_cookies, log_level=log_level)
    return OK
