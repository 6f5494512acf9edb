"""The review web app: Starlette routes over the page handlers, security headers outside
everything, a signed session cookie; rendered with autoescaping Jinja2 templates.

Reads the published queue and writes decisions in the SQLite decision store only; it
never opens the DuckDB warehouse, so it keeps working while a Dagster run writes it.
The handlers live in ``pages`` (shared: templates, signed-in user, CSRF), ``accounts``
(sign-in, sign-out, users) and ``reviewing`` (queue items, decisions, history).
"""

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from curation_assets.config import Settings
from curation_assets.curation.review import decisions
from curation_assets.review_app import store
from curation_assets.review_app.accounts import AccountPages
from curation_assets.review_app.pages import HERE, SESSION_COOKIE, SESSION_MAX_AGE
from curation_assets.review_app.reviewing import ReviewPages
from curation_assets.review_app.security import SecurityHeaders, load_secret

__all__ = [
    "HERE",
    "SESSION_COOKIE",
    "SESSION_MAX_AGE",
    "ReviewApp",
    "create_app",
    "serve",
]


class ReviewApp(AccountPages, ReviewPages):
    """Every page handler, bound to one decision store and one set of settings."""

    async def healthz(self, request: Request) -> JSONResponse:
        try:
            numbers = await run_in_threadpool(store.counts, self.store)
        except Exception as exc:  # the store is unreadable: say so, with the reason
            return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", **numbers})

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/review?queue=coverage", status_code=303)

    async def error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        user = None
        if exc.status_code != 403 or request.session.get("user"):
            user = await self.user(request)
        return self.render(
            request,
            "error.html",
            exc.status_code,
            user=user,
            status=exc.status_code,
            detail=exc.detail,
        )


class _Static(StaticFiles):
    """Static files; a path the OS refuses (a NUL byte, a loop, too long) is a 404."""

    def lookup_path(self, path: str):
        try:
            return super().lookup_path(path)
        except (ValueError, OSError):
            return "", None


class _App(Starlette):
    """Starlette with the security headers outside everything, the error middleware
    included: a 500 from an unhandled exception carries them too."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None, secret: str | None = None, https_only: bool = False
) -> Starlette:
    """The ASGI app for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    decisions.connect(settings.decision_store).close()  # create the store and its tables
    secret = secret or load_secret(settings.decision_store)
    app = ReviewApp(settings, secret)
    routes = [
        Route("/", app.home),
        Route("/healthz", app.healthz),
        Route("/login", app.login_page, methods=["GET"]),
        Route("/login", app.login, methods=["POST"]),
        Route("/logout", app.logout, methods=["POST"]),
        Route("/review", app.review, methods=["GET"]),
        Route("/decide", app.decide, methods=["POST"]),
        Route("/bulk", app.bulk_page, methods=["GET"]),
        Route("/bulk", app.bulk, methods=["POST"]),
        Route("/history", app.history, methods=["GET"]),
        Route("/admin", app.admin, methods=["GET"]),
        Route("/admin/users", app.add_user, methods=["POST"]),
        Mount("/static", _Static(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE,
            same_site="lax",
            https_only=https_only,
        ),
    ]
    return _App(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: app.error},
    )


def serve(
    settings: Settings, host: str, port: int, https_only: bool = False, log_level: str = "info"
) -> None:
    """Run the app with uvicorn (one process; SQLite calls run in its thread pool)."""
    import uvicorn

    uvicorn.run(
        create_app(settings, https_only=https_only),
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        proxy_headers=False,
    )
