"""The review web app (issue #4): plain Starlette + Jinja2, no Dagster imports.

``create_app(settings)`` builds the ASGI app; ``serve`` runs it (``curation review``).
Modules: ``app`` (routes, middleware, serving), ``pages`` (what every handler shares:
templates, the signed-in user, CSRF), ``accounts`` (sign-in, sign-out, users),
``reviewing`` (queue items, decisions, history), ``security`` (secrets, tokens, the
sign-in throttle, headers) and ``store`` (what the app reads and writes in the store).
"""

from curation_assets.review_app.app import create_app, serve

__all__ = ["create_app", "serve"]
