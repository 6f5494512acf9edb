"""The review web app: Starlette routes, rendered with autoescaping Jinja2 templates.

Reads the published queue and writes decisions in the SQLite decision store only; it
never opens the DuckDB warehouse, so it keeps working while a Dagster run writes it.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from curation_assets.config import Settings
from curation_assets.curation.review import decisions
from curation_assets.review_app import store
from curation_assets.review_app.security import (
    ItemTokens,
    LoginThrottle,
    SecurityHeaders,
    csrf_ok,
    load_secret,
    new_csrf,
)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "curation_review"
SESSION_MAX_AGE = 12 * 3600
MAX_NOTE_CHARS = 2000
MAX_BULK = 100


class ReviewApp:
    """Handlers bound to one decision store and one set of settings."""

    def __init__(self, settings: Settings, secret: str) -> None:
        self.settings = settings
        self.store = settings.decision_store
        self.tokens = ItemTokens(secret)
        self.throttle = LoginThrottle(self.store)
        self.labels = list(settings.labels)
        self.classification = settings.task_type == "classification" and bool(self.labels)
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every template, whatever its file name
            undefined=StrictUndefined,
        )

    # --- helpers ----------------------------------------------------------------------

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        session = request.session
        if not session.get("csrf"):
            session["csrf"] = new_csrf()
        context.setdefault("user", None)
        context.setdefault("queue", "coverage")
        context.setdefault("error", None)
        context.setdefault("classification", self.classification)
        page = self.templates.get_template(name).render(
            csrf=session["csrf"],
            flash=session.pop("flash", None),
            queues=decisions.QUEUES,
            **context,
        )
        return HTMLResponse(page, status_code=status_code)

    async def user(self, request: Request) -> dict | None:
        """The signed-in user, looked up on every request: the cookie's session id must be
        a live session in the store (not signed out, expired, reset or removed)."""
        name = request.session.get("user")
        if not isinstance(name, str):
            return None
        found = await run_in_threadpool(
            decisions.session_user, self.store, request.session.get("sid")
        )
        if found is None or found["username"] != name:
            request.session.clear()
            return None
        return found

    async def posted(self, request: Request) -> tuple[dict, Any]:
        """(user, form) of a state-changing request: signed in and a valid CSRF token."""
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise HTTPException(403, "cross-site request refused")
        form = await request.form(max_fields=2 * MAX_BULK + 20, max_files=0)
        if not csrf_ok(request.session, form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        user = await self.user(request)
        if user is None:
            raise HTTPException(403, "sign in first")
        return user, form

    def queue_of(self, request: Request) -> str:
        queue = request.query_params.get("queue", "coverage")
        if queue not in decisions.QUEUES:
            raise HTTPException(404, f"no queue {queue!r}: coverage or suspect")
        return queue

    def read_token(self, form: Any, user: dict) -> tuple[dict, float]:
        token = self.tokens.read(str(form.get("token") or ""))
        if token is None:
            raise HTTPException(400, "this page expired or was altered: reload it")
        payload, seconds = token
        if payload.get("u") != user["username"]:
            raise HTTPException(403, "this item was served to someone else")
        return payload, seconds

    def decision(self, user: dict, example_id: str, kind: str, seconds: float, **extra) -> dict:
        return {
            "example_id": example_id,
            "reviewer": user["username"],
            "role": user["role"],  # from the users table, never from the form
            "decision": kind,
            "decided_at": datetime.now(UTC).isoformat(),
            "seconds_spent": round(seconds, 3),
            **extra,
        }

    # --- pages ------------------------------------------------------------------------

    async def healthz(self, request: Request) -> JSONResponse:
        try:
            numbers = await run_in_threadpool(store.counts, self.store)
        except Exception as exc:  # the store is unreadable: say so, with the reason
            return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", **numbers})

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/review?queue=coverage", status_code=303)

    async def login_page(self, request: Request) -> Response:
        if await self.user(request):
            return RedirectResponse("/review?queue=coverage", status_code=303)
        return self.render(request, "login.html")

    async def login(self, request: Request) -> Response:
        form = await request.form(max_fields=10, max_files=0)
        if not csrf_ok(request.session, form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        name = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        client = request.client.host if request.client else "-"
        attempt = await run_in_threadpool(self.throttle.begin, name, client)
        if attempt is None:  # reserved atomically: concurrent guesses are counted too
            return self.render(
                request, "login.html", 429, error="too many failed attempts: wait 5 minutes"
            )
        user = await run_in_threadpool(decisions.verify_password, self.store, name, password)
        if user is None:
            return self.render(request, "login.html", 401, error="wrong user name or password")
        await run_in_threadpool(self.throttle.succeeded, attempt, name, client)
        sid = await run_in_threadpool(
            decisions.create_session, self.store, user["username"], SESSION_MAX_AGE
        )
        request.session.clear()  # a fresh session (and CSRF token) for the signed-in user
        request.session.update(user=user["username"], sid=sid, csrf=new_csrf())
        return RedirectResponse("/review?queue=coverage", status_code=303)

    async def logout(self, request: Request) -> Response:
        form = await request.form(max_fields=10, max_files=0)
        if not csrf_ok(request.session, form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        # ended in the store: a copy of the cookie signs nobody in any more
        await run_in_threadpool(decisions.end_session, self.store, request.session.get("sid"))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def review(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        queue = self.queue_of(request)
        required = self.settings.reviews_required
        wanted = request.query_params.get("example_id")
        if wanted:
            item = await run_in_threadpool(store.get_item, self.store, queue, wanted)
            if item is None:
                raise HTTPException(404, "no such item in this queue")
        else:
            items = await run_in_threadpool(store.next_items, self.store, user, queue, required)
            item = items[0] if items else None
        done = await run_in_threadpool(store.progress, self.store, user, queue, required)
        if item is None:
            return await self.nothing_left(request, user, queue, done)
        return self.render(
            request,
            "review.html",
            user=user,
            queue=queue,
            item=item,
            progress=done,
            token=self.tokens.issue(user["username"], queue, [item["example_id"]]),
            prompt_pieces=store.pii_segments(item["prompt"], item["pii"], "prompt"),
            response_pieces=store.pii_segments(item["response"], item["pii"], "response"),
            labels=self.labels,
            label_known=item["response"] in self.labels,
        )

    async def nothing_left(self, request: Request, user: dict, queue: str, done: dict) -> Response:
        """The empty-queue page: why each item is not offered to this user (counts by
        reason, adding up to the queue size), and where work is left."""
        required = self.settings.reviews_required
        why = await run_in_threadpool(store.standing, self.store, user, queue, required)
        elsewhere = []
        for other in decisions.QUEUES:
            if other != queue:
                left = await run_in_threadpool(store.progress, self.store, user, other, required)
                if left["left"]:
                    elsewhere.append((other, left["left"]))
        return self.render(
            request,
            "done.html",
            user=user,
            queue=queue,
            progress=done,
            standing=why,
            required=max(int(required), 1),
            elsewhere=elsewhere,
        )

    async def decide(self, request: Request) -> Response:
        user, form = await self.posted(request)
        payload, seconds = self.read_token(form, user)
        queue, example_id = payload["q"], payload["e"][0]
        kind = str(form.get("decision") or "")
        back = RedirectResponse(f"/review?queue={queue}", status_code=303)
        if kind == "skip":
            await run_in_threadpool(store.skip, self.store, user, queue, example_id)
            return back
        if kind not in decisions.DECISIONS:
            raise HTTPException(400, "decision must be accept, reject, edit or skip")
        extra: dict[str, Any] = {"note": str(form.get("note") or "").strip()[:MAX_NOTE_CHARS]}
        if kind == "edit":
            corrected = await self.corrected(form, queue, example_id)
            if corrected is None:
                kind = "accept"  # the "edit" keeps the label it had: that is an accept
            else:
                extra["corrected_response"] = corrected
        raw = self.decision(user, example_id, kind, seconds, **extra)
        await run_in_threadpool(self.record, [(f"{payload['n']}:{example_id}", raw)])
        request.session["flash"] = f"{kind}: {example_id}"
        return back

    async def corrected(self, form: Any, queue: str, example_id: str) -> str | None:
        """The corrected response of an edit (None: unchanged); refuses labels not allowed."""
        if self.classification:
            value = str(form.get("label") or "")
            if value not in self.labels:
                raise HTTPException(400, "that label is not in the allowed set")
        else:
            value = str(form.get("corrected_response") or "").strip()
            if not value:
                raise HTTPException(400, "an edit needs the corrected response")
        item = await run_in_threadpool(store.get_item, self.store, queue, example_id)
        return None if item is not None and item["response"] == value else value

    def record(self, submissions: list[tuple[str, dict]]) -> None:
        with store.connection(self.store) as con:
            decisions.record_submissions(con, submissions, origin="app")
            store.release(con, [(raw["reviewer"], raw["example_id"]) for _, raw in submissions])

    async def bulk_page(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        queue = self.queue_of(request)
        try:
            n = max(1, min(MAX_BULK, int(request.query_params.get("n", "20"))))
        except ValueError:
            n = 20
        required = self.settings.reviews_required
        items = await run_in_threadpool(store.next_items, self.store, user, queue, required, n)
        done = await run_in_threadpool(store.progress, self.store, user, queue, required)
        ids = [item["example_id"] for item in items]
        return self.render(
            request,
            "bulk.html",
            user=user,
            queue=queue,
            items=items,
            n=n,
            progress=done,
            token=self.tokens.issue(user["username"], queue, ids),
        )

    async def bulk(self, request: Request) -> Response:
        user, form = await self.posted(request)
        payload, seconds = self.read_token(form, user)
        kind = str(form.get("decision") or "")
        if kind not in ("accept", "reject"):
            raise HTTPException(400, "bulk decisions are accept or reject")
        chosen = [str(v) for v in form.getlist("example_id")]
        served = set(payload["e"])
        if not chosen:
            raise HTTPException(400, "select at least one item")
        if any(eid not in served for eid in chosen):
            raise HTTPException(400, "an item was not on the page you were served")
        chosen = list(dict.fromkeys(chosen))
        each = seconds / len(chosen)  # the page's time, shared by the items decided
        await run_in_threadpool(
            self.record,
            [(f"{payload['n']}:{eid}", self.decision(user, eid, kind, each)) for eid in chosen],
        )
        request.session["flash"] = f"{kind}: {len(chosen)} item(s)"
        return RedirectResponse(f"/bulk?queue={payload['q']}", status_code=303)

    async def history(self, request: Request) -> Response:
        user = await self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        rows = await run_in_threadpool(store.history, self.store, user["username"])
        return self.render(request, "history.html", user=user, rows=rows)

    async def admin(self, request: Request, error: str | None = None) -> Response:
        user = await self.user(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        if user["role"] != "admin":
            raise HTTPException(403, "admins only")
        users = await run_in_threadpool(decisions.list_users, self.store)
        status = 400 if error else 200
        return self.render(
            request,
            "admin.html",
            status,
            user=user,
            users=users,
            roles=decisions.ROLES,
            error=error,
        )

    async def add_user(self, request: Request) -> Response:
        user, form = await self.posted(request)
        if user["role"] != "admin":
            raise HTTPException(403, "admins only")
        try:
            await run_in_threadpool(
                decisions.add_user,
                self.store,
                str(form.get("username") or "").strip(),
                str(form.get("password") or ""),
                str(form.get("role") or ""),
            )
        except ValueError as exc:
            return await self.admin(request, error=str(exc))
        request.session["flash"] = "user added"
        return RedirectResponse("/admin", status_code=303)

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
