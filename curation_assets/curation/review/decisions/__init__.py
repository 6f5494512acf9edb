"""The decision store: an append-only SQLite file, separate from the DuckDB warehouse.

DuckDB allows one writer process, so reviewers (and the review web app) write here and
never block a pipeline run, nor are blocked by one. Decisions are never updated or
deleted (triggers refuse it): a changed mind is a new decision, and the latest one wins.

The same file holds what the review web app needs, so that it never opens the warehouse:
``queue_items`` (the published review queue, replaced atomically by ``publish_queue``),
``users`` (argon2 password hashes and roles), ``skips`` and ``leases`` (per-user queue
state, not decisions) and ``app_submissions`` (one row per form the app accepted, so a
retried submission never records a decision twice). ``sessions`` (hashes of the app's
signed-in session ids, so that sign-out and a password reset end a session on the server)
and ``login_attempts`` (the sign-in throttle, shared by every worker) are app state too.

The file holds password hashes: it is created owner-only (0600, in a 0700 folder when
the folder is new), and an existing store or side file is tightened when opened.

Modules: ``store`` (the file, schema, connections and transactions, owner-only files),
``events`` (decision events: validate, record, import, load, audit trail), ``queue`` (the
published review queue), ``label_studio`` (Label Studio config and export), ``accounts``
(users, sessions, sign-in throttle). This package exposes their public names, so callers write
``decisions.add_user`` or ``decisions.load_all``.
"""

from curation_assets.curation.review.decisions.accounts import (
    MIN_PASSWORD_CHARS,
    add_user,
    begin_login_attempt,
    create_session,
    end_login_attempt,
    end_session,
    end_sessions,
    get_user,
    list_users,
    session_user,
    verify_password,
)
from curation_assets.curation.review.decisions.events import (
    AuditTrail,
    ImportReport,
    audit_trail,
    high_water_mark,
    import_file,
    load_all,
    record,
    record_submissions,
    validate,
)
from curation_assets.curation.review.decisions.label_studio import (
    label_studio_config,
    label_studio_decisions,
)
from curation_assets.curation.review.decisions.queue import (
    JSON_COLUMNS,
    QUEUE_COLUMNS,
    QUEUES,
    export_queue,
    load_queue,
    publish_queue,
)
from curation_assets.curation.review.decisions.store import (
    DECISIONS,
    FIELDS,
    ROLES,
    DecisionError,
    connect,
    connection,
    immediate,
    owner_only,
    private_secret_file,
)

__all__ = [
    "AuditTrail",
    "DECISIONS",
    "DecisionError",
    "FIELDS",
    "ImportReport",
    "JSON_COLUMNS",
    "MIN_PASSWORD_CHARS",
    "QUEUES",
    "QUEUE_COLUMNS",
    "ROLES",
    "add_user",
    "audit_trail",
    "begin_login_attempt",
    "connect",
    "connection",
    "create_session",
    "end_login_attempt",
    "end_session",
    "end_sessions",
    "export_queue",
    "get_user",
    "high_water_mark",
    "immediate",
    "import_file",
    "label_studio_config",
    "label_studio_decisions",
    "list_users",
    "load_all",
    "load_queue",
    "owner_only",
    "private_secret_file",
    "publish_queue",
    "record",
    "record_submissions",
    "session_user",
    "validate",
    "verify_password",
]
