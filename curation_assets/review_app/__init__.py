"""The review web app (issue #4): plain Starlette + Jinja2, no Dagster imports.

``create_app(settings)`` builds the ASGI app; ``serve`` runs it (``curation review``).
"""

from curation_assets.review_app.app import create_app, serve

__all__ = ["create_app", "serve"]
