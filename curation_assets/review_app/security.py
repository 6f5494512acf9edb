"""Secrets, CSRF tokens, signed item tokens, login throttling and security headers.

Three pieces stay written here, each for a reason a library did not meet (issue #16):

- CSRF: a synchronizer token kept in the signed session cookie (Starlette's
  ``SessionMiddleware``), compared here. starlette-csrf 3.0 reads the token from a
  request header only, which a plain HTML form cannot send; its middleware reads the
  request without the body, so a subclass cannot take the form field either; it sets
  its cookie as the response goes out, after the page was rendered, so the first page
  (the sign-in form) cannot carry the token; and its double-submit cookie is not tied
  to the session, so it survives sign-in and can be planted by whoever can set a cookie
  for the host.
- Sign-in throttle: kept in the decision store (see ``LoginThrottle``). ``limits``
  keeps its moving windows in memory (one process) or in Redis, Memcached or MongoDB;
  it cannot reserve under two keys at once, nor give back one attempt of a key.
- Security headers: Starlette has no middleware for CSP, nosniff, frame and referrer
  headers; ``SecurityHeaders`` is the dozen lines that add them.
"""

import hmac
import os
import secrets
import time
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from curation_assets.curation.review import decisions

SECRET_ENV = "CURATION_REVIEW_SECRET"
SECRET_FILE = "review_app.secret"
#: Longest time an item token stays valid, and the cap on ``seconds_spent``.
TOKEN_MAX_AGE = 24 * 3600
MAX_SECONDS_SPENT = 900.0

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def load_secret(store: Path) -> str:
    """``CURATION_REVIEW_SECRET``, else a random secret kept in a 0600 file next to the
    store (created atomically: concurrent workers all get the same one)."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    return decisions.private_secret_file(
        store.parent / SECRET_FILE, lambda: secrets.token_urlsafe(48)
    )


def new_csrf() -> str:
    """A fresh CSRF token for a session (256 random bits)."""
    return secrets.token_urlsafe(32)


def csrf_ok(session: dict, submitted: object) -> bool:
    """Synchronizer-token check: the form's token equals the one kept in the session."""
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


class ItemTokens:
    """Signed, timestamped tokens naming what was served to whom.

    The signature's timestamp is the server's serving time, so ``seconds_spent`` is
    measured server-side (submit time minus serve time, capped at ``MAX_SECONDS_SPENT``);
    the nonce makes every served page a distinct submission, so a retried post is
    recorded once.
    """

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="curation-review-item")

    def issue(self, username: str, queue: str, example_ids: list[str]) -> str:
        payload = {"u": username, "q": queue, "e": example_ids, "n": secrets.token_hex(8)}
        return self._serializer.dumps(payload)

    def read(self, token: str) -> tuple[dict, float] | None:
        """(payload, seconds since it was served) or None if forged or expired."""
        try:
            payload, signed_at = self._serializer.loads(
                token, max_age=TOKEN_MAX_AGE, return_timestamp=True
            )
        except (BadSignature, SignatureExpired):
            return None
        elapsed = max(0.0, time.time() - signed_at.timestamp())
        return payload, min(elapsed, MAX_SECONDS_SPENT)


class LoginThrottle:
    """At most ``per_user`` password checks per user name, and ``per_client`` per client
    address, in ``window`` seconds, counting failed and in-progress attempts.

    Kept in the decision store: reserving an attempt is one transaction, so concurrent
    requests, threads and worker processes share the count and none slips through. The
    per-client limit is higher, so that one person guessing behind a shared proxy locks
    out the accounts they guess, not everyone behind it. A success clears the account's
    failures and gives back its own reservation, never the client's other failures.

    Not ``limits``: its ``MemoryStorage`` counts per process (and forgets on a restart),
    its other storages need a Redis, Memcached or MongoDB server, and its moving window
    can neither reserve under the account and the address in one step (a refused
    address would still have used up an account attempt) nor give back one attempt of
    the address after a success (sign-ins behind a shared proxy would lock it).
    """

    def __init__(
        self, store: Path, per_user: int = 5, per_client: int = 30, window: float = 300.0
    ) -> None:
        self.store, self.window = store, window
        self.per_user, self.per_client = per_user, per_client

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str]:
        return f"user:{username[:100]}", f"ip:{client}"

    def begin(self, username: str, client: str) -> str | None:
        """An attempt id to check one password under, or None: too many attempts."""
        user_key, client_key = self._keys(username, client)
        limits = {user_key: self.per_user, client_key: self.per_client}
        return decisions.begin_login_attempt(self.store, limits, self.window)

    def succeeded(self, attempt: str, username: str, client: str) -> None:
        decisions.end_login_attempt(self.store, attempt, clear=self._keys(username, client)[:1])


class SecurityHeaders:
    """ASGI middleware adding CSP, nosniff, frame and referrer headers to every response,
    and ``Cache-Control: no-store`` to everything but static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
