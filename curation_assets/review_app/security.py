"""Secrets, CSRF tokens, signed item tokens, login throttling and security headers."""

import hmac
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    """``CURATION_REVIEW_SECRET``, else a random secret kept in a 0600 file next to the store."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    path = store.parent / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            value = path.read_text().strip()
            if value:
                return value
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it to make a new secret") from None
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def new_csrf() -> str:
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
    """At most ``limit`` failed sign-ins per user name (and per client) in ``window`` s."""

    def __init__(self, limit: int = 5, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque[float]:
        entries = self._failures[key]
        while entries and entries[0] < time.monotonic() - self.window:
            entries.popleft()
        return entries

    def blocked(self, *keys: str) -> bool:
        with self._lock:
            return any(len(self._recent(k)) >= self.limit for k in keys)

    def failed(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._recent(key).append(time.monotonic())

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


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
