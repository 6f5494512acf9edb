"""What every page handler of the review app stands on: the settings, the autoescaping
Jinja2 templates (Starlette's ``Jinja2Templates`` over a strict, always-escaping
environment), who is signed in (looked up in the store on every request), the CSRF
check of a state-changing request and the signed item tokens.

``ReviewPages`` (``reviewing``) and ``AccountPages`` (``accounts``) build on ``Pages``;
``app.ReviewApp`` joins them.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from curation_assets.config import Settings
from curation_assets.curation.review import decisions
from curation_assets.review_app.security import ItemTokens, LoginThrottle, csrf_ok, new_csrf

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "curation_review"
SESSION_MAX_AGE = 12 * 3600
MAX_NOTE_CHARS = 2000
MAX_BULK = 100


def page_basics(request: Request) -> dict[str, Any]:
    """What every page gets (a ``Jinja2Templates`` context processor): the session's CSRF
    token (one is made on the first page), the flash message (shown once) and the queues."""
    session = request.session
    if not session.get("csrf"):
        session["csrf"] = new_csrf()
    return {
        "csrf": session["csrf"],
        "flash": session.pop("flash", None),
        "queues": decisions.QUEUES,
    }


def page_templates() -> Jinja2Templates:
    """The app's templates: every one autoescaped whatever its file name, and an undefined
    name is an error, not ''. (Starlette takes these options only as a ready environment.)"""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
    return Jinja2Templates(env=env, context_processors=[page_basics])


class Pages:
    """Handlers bound to one decision store and one set of settings."""

    def __init__(self, settings: Settings, secret: str) -> None:
        self.settings = settings
        self.store = settings.decision_store
        self.tokens = ItemTokens(secret)
        self.throttle = LoginThrottle(self.store)
        self.labels = list(settings.labels)
        self.classification = settings.task_type == "classification" and bool(self.labels)
        self.templates = page_templates()

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """Template ``name`` with ``context``, the page defaults and (from
        ``page_basics``) the session's CSRF token, its flash message and the queues."""
        context.setdefault("user", None)
        context.setdefault("queue", "coverage")
        context.setdefault("error", None)
        context.setdefault("classification", self.classification)
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

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
        form = await self.checked_form(request, max_fields=2 * MAX_BULK + 20)
        user = await self.user(request)
        if user is None:
            raise HTTPException(403, "sign in first")
        return user, form

    async def checked_form(self, request: Request, max_fields: int) -> Any:
        """The posted form (no files), refused without the session's CSRF token."""
        form = await request.form(max_fields=max_fields, max_files=0)
        if not csrf_ok(request.session, form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        return form

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
