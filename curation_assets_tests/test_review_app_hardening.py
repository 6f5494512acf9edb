"""Issue #13, the review app's hardening: sessions end on the server, the decision store
and secrets are owner-only, the sign-in throttle is atomic and per account and client,
error responses keep the security headers, and the ``review_decisions:integrity`` check
catches a tampered store."""

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from starlette.testclient import TestClient

from curation_assets.curation.review import decisions
from curation_assets.curation.review.decisions import events as decision_events
from curation_assets.review_app import create_app
from curation_assets.review_app import store as review_store
from curation_assets.review_app.app import SESSION_COOKIE
from curation_assets.review_app.security import SECRET_FILE, LoginThrottle, load_secret
from curation_assets_tests.fixtures import page_fields
from curation_assets_tests.test_review_app import (
    PASSWORD,
    _client,
    _free_port,
    _items,
    _login,
    _world,
    users_store,  # noqa: F401 - a fixture
)

if TYPE_CHECKING:
    import dagster as dg

pytestmark = pytest.mark.usefixtures("quick_password_hashes")  # the app, not the hash


@pytest.fixture
def world(tmp_path, users_store):  # noqa: F811
    return _world(tmp_path, _items(6), users_store)


def _replay(settings, cookie: str) -> TestClient:
    """A second client that holds only a copy of someone's session cookie."""
    client = TestClient(create_app(settings, secret="test-secret"), follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, cookie)
    return client


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- 1. sessions end on the server -----------------------------------------------------


def test_a_copied_cookie_stops_working_after_logout(world):
    client = _client(world, "ann")
    cookie = client.cookies[SESSION_COOKIE]
    page = page_fields(client.get("/review").text)
    assert _replay(world, cookie).get("/review").status_code == 200  # the copy works...
    assert client.post("/logout", data={"csrf": page["csrf"]}).status_code == 303
    stolen = _replay(world, cookie)  # ...until sign-out, even though its signature is good
    assert stolen.get("/review").headers["location"] == "/login"
    data = {"csrf": page["csrf"], "token": page["token"], "decision": "accept"}
    assert _replay(world, cookie).post("/decide", data=data).status_code == 403
    assert decisions.load_all(world.decision_store).empty
    # a restarted app (same secret, same store) still refuses it, and keeps live sessions
    other = _client(world, "bob")
    assert _replay(world, cookie).get("/history").headers["location"] == "/login"
    assert _replay(world, other.cookies[SESSION_COOKIE]).get("/history").status_code == 200


def test_a_password_reset_or_role_change_ends_every_session(world):
    laptop, phone = _client(world, "ann"), _client(world, "ann")
    cookies = [c.cookies[SESSION_COOKIE] for c in (laptop, phone)]
    bob = _client(world, "bob")
    decisions.add_user(world.decision_store, "ann", "a new password", "reviewer", replace=True)
    for cookie in cookies:
        assert _replay(world, cookie).get("/review").headers["location"] == "/login"
    assert laptop.get("/review").headers["location"] == "/login"
    assert bob.get("/review").status_code == 200  # other users keep their sessions
    assert _login(laptop, "ann").status_code == 401  # the old password is gone
    assert _login(laptop, "ann", "a new password").status_code == 303
    # demoting an expert signs them out; signed in again they decide as a reviewer
    expert = _client(world, "dr_chen")
    decisions.add_user(world.decision_store, "dr_chen", PASSWORD, "reviewer", replace=True)
    assert expert.get("/review").headers["location"] == "/login"
    assert decisions.end_sessions(world.decision_store, "bob") == 1
    assert bob.get("/review").headers["location"] == "/login"


def test_the_store_keeps_no_usable_session_id(world):
    client = _client(world, "ann")
    kept = sqlite3.connect(world.decision_store).execute("SELECT * FROM sessions").fetchall()
    assert len(kept) == 1 and kept[0][1] == "ann"
    assert decisions.session_user(world.decision_store, kept[0][0]) is None  # a hash only
    assert client.get("/review").status_code == 200


# --- 2. owner-only store and secrets ---------------------------------------------------


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # the usual default, which makes new files world-readable
    yield
    os.umask(old)


def test_the_store_is_created_owner_only(tmp_path, loose_umask):
    store = tmp_path / "fresh" / "decisions.sqlite"
    decisions.add_user(store, "ann", PASSWORD, "reviewer")
    decisions.record(
        decisions.connect(store),
        {"example_id": "e1", "reviewer": "ann", "role": "reviewer", "decision": "accept"},
    )
    assert _mode(store) == 0o600 and _mode(store.parent) == 0o700
    con = decisions.connect(store)  # held open: the WAL side files exist now
    try:
        for side in ("-wal", "-shm"):
            assert _mode(Path(f"{store}{side}")) == 0o600, side
    finally:
        con.close()


def test_an_existing_world_readable_store_is_tightened(tmp_path, loose_umask):
    store = tmp_path / "decisions.sqlite"
    raw = sqlite3.connect(store)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE t (x)")  # an old store, made with the default umask
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        path.chmod(0o644)
    decisions.connect(store).close()
    raw.close()
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        assert not path.exists() or _mode(path) == 0o600, path


def test_secret_files_are_created_once_owner_only_under_a_race(tmp_path, loose_umask, monkeypatch):
    monkeypatch.delenv("CURATION_REVIEW_SECRET", raising=False)
    store = tmp_path / "d" / "decisions.sqlite"
    start, values = threading.Barrier(16), []

    def worker():
        start.wait()
        values.append(load_secret(store))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(values) == 16 and len(set(values)) == 1 and len(values[0]) > 40
    secret = store.parent / SECRET_FILE
    assert _mode(secret) == 0o600 and secret.read_text().strip() == values[0]
    assert sorted(p.name for p in store.parent.iterdir()) == [SECRET_FILE]  # no leftovers
    secret.chmod(0o644)  # an old, loose one is tightened and kept
    assert load_secret(store) == values[0] and _mode(secret) == 0o600


# --- 3. the sign-in throttle -----------------------------------------------------------


class _Server:
    """The app under uvicorn in a thread of this process (so a test can count calls)."""

    def __init__(self, settings) -> None:
        import uvicorn

        self.port = _free_port()
        config = uvicorn.Config(
            create_app(settings, secret="test-secret"),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "no server"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.mark.integration  # a uvicorn server, twelve clients at once
def test_concurrent_wrong_passwords_get_at_most_the_limit_of_checks(world, monkeypatch):
    checked, lock = [], threading.Lock()
    real = decisions.verify_password

    def counting(store, name, password):
        with lock:
            checked.append(name)
        time.sleep(0.3)  # as slow as a real argon2 check can get under load
        return real(store, name, password)

    monkeypatch.setattr(decisions, "verify_password", counting)
    n = 12
    with _Server(world) as base:
        clients = [httpx.Client(base_url=base, follow_redirects=False) for _ in range(n)]
        forms = [page_fields(c.get("/login").text)["csrf"] for c in clients]
        start, codes = threading.Barrier(n), []

        def guess(client, csrf):
            start.wait()
            data = {"csrf": csrf, "username": "bob", "password": "a wrong guess"}
            codes.append(client.post("/login", data=data).status_code)

        threads = [
            threading.Thread(target=guess, args=pair) for pair in zip(clients, forms, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(checked) <= 5, len(checked)
        assert sorted(codes) == [401] * len(checked) + [429] * (n - len(checked))
        # bob is locked out (even with the right password) but ann, behind the same
        # address, is not: the per-client limit is higher than the per-account one
        assert _login(clients[0], "bob").status_code == 429
        assert _login(clients[1], "ann").status_code == 303
        for client in clients:
            client.close()
    assert len(checked) <= 6


def test_throttle_per_account_and_per_client_shared_by_workers(tmp_path):
    store = tmp_path / "d.sqlite"
    one, two = (LoginThrottle(store, per_user=3, per_client=5) for _ in range(2))  # 2 workers
    attempts = [w.begin("bob", "10.0.0.1") for w in (one, two, one)]
    assert all(attempts) and one.begin("bob", "10.0.0.9") is None  # the account: 3 in all
    assert two.begin("ann", "10.0.0.1") and one.begin("cy", "10.0.0.1")
    assert two.begin("dr_chen", "10.0.0.1") is None  # the address: 5 failures in all
    assert one.begin("dr_chen", "10.0.0.2")  # another address is not affected
    # a success ends its own reservation and the account's failures, not the client's
    ok = one.begin("eve", "10.0.0.2")
    one.succeeded(ok, "eve", "10.0.0.2")
    assert two.begin("bob", "10.0.0.3") is None  # still locked: bob never signed in


# --- 4. error responses keep the security headers --------------------------------------


def _assert_secured(response) -> None:
    assert "default-src 'none'" in response.headers.get("content-security-policy", "")
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("x-frame-options") == "DENY"


@pytest.mark.parametrize(
    "path",
    [
        "/static/review.js%00.png",
        "/static/%00",
        "/static/" + "a" * 5000,
        "/static/../../../../etc/passwd",
        "/static/..%2f..%2fapp.py",
        "/static/%c0%ae%c0%ae/app.py",
        "/nowhere%00",
    ],
)
def test_hostile_static_paths_are_clean_404s_with_headers(world, path):
    client = TestClient(create_app(world, secret="test-secret"), raise_server_exceptions=False)
    response = client.get(path)
    assert response.status_code == 404, response.text[:200]
    _assert_secured(response)
    assert client.get("/static/review.js").status_code == 200


def test_a_500_from_an_exception_keeps_the_security_headers(world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the store went away")

    monkeypatch.setattr(review_store, "history", broken)
    client = TestClient(create_app(world, secret="test-secret"), raise_server_exceptions=False)
    assert _login(client, "ann").status_code == 200  # followed to the review page
    response = client.get("/history")
    assert response.status_code == 500
    _assert_secured(response)
    assert response.headers["cache-control"] == "no-store"
    assert "the store went away" not in response.text


# --- 5. the review_decisions integrity check ------------------------------------------


def _accept(eid: str, who: str = "ann", **extra) -> dict:
    return {"example_id": eid, "reviewer": who, "role": "reviewer", "decision": "accept", **extra}


def _tamper(store: Path, *sql: str) -> None:
    """What someone with write access to the file could do: drop the guards and edit."""
    con = sqlite3.connect(store, isolation_level=None)
    con.execute("DROP TRIGGER decisions_no_update")
    con.execute("DROP TRIGGER decisions_no_delete")
    for statement in sql:
        con.execute(statement)
    con.close()


def _store_with_decisions(tmp_path) -> Path:
    store = tmp_path / "decisions.sqlite"
    con = decisions.connect(store)
    for i in range(4):
        decisions.record(con, _accept(f"e{i}", note=7 if i == 0 else None, seconds_spent=i))
    decisions.record(con, _accept("e9", decision="edit", corrected_response="billing"))
    con.close()
    return store


def test_audit_trail_finds_rewrites_gaps_and_deletions(tmp_path):
    store = _store_with_decisions(tmp_path)
    clean = decisions.audit_trail(store)
    assert clean.count == clean.max_id == clean.sequence == 5
    assert clean.integrity().iloc[0].tolist() == [0, 0, 0, 0]
    again = decisions.audit_trail(store, (clean.count, clean.digest))
    assert not again.rewritten and again.digest == clean.digest

    _tamper(store, "UPDATE decisions SET decision = 'reject' WHERE decision_id = 2")
    assert decisions.audit_trail(store).integrity()["fingerprint_mismatches"][0] == 1
    # a careful forger also recomputes the fingerprint: the chained digest still changes
    row = decisions.audit_trail(store).frame.iloc[1].to_dict()
    row["seconds_spent"] = float(row["seconds_spent"])
    _tamper(
        store,
        f"UPDATE decisions SET fingerprint = '{decision_events._fingerprint(row)}' "
        "WHERE decision_id = 2",
    )
    forged = decisions.audit_trail(store, (clean.count, clean.digest))
    assert forged.integrity()["fingerprint_mismatches"][0] == 0 and forged.rewritten

    store2 = _store_with_decisions(tmp_path / "b")
    _tamper(store2, "DELETE FROM decisions WHERE decision_id = 3")
    assert decisions.audit_trail(store2).integrity()["missing_ids"][0] == 1
    _tamper(store2, "DELETE FROM decisions WHERE decision_id = 5")
    deleted = decisions.audit_trail(store2, (clean.count, clean.digest)).integrity()
    assert deleted["deleted_newest"][0] == 1 and deleted["rewritten_since_last_audit"][0] == 1


def _run_check(settings, instance) -> "dg.AssetCheckEvaluation":
    import dagster as dg

    from curation_assets.defs.resources import build_resources
    from curation_assets.defs.review.decision_store import (
        review_decisions,
        review_decisions_check,
    )

    job = dg.define_asset_job(
        "check_decisions", selection=dg.AssetSelection.checks(review_decisions_check)
    )
    defs = dg.Definitions(
        assets=[review_decisions],
        asset_checks=[review_decisions_check],
        jobs=[job],
        resources=build_resources(settings),
    )
    result = defs.resolve_job_def("check_decisions").execute_in_process(instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


@pytest.mark.integration  # a Dagster run of the check: its GX suite and the event log
def test_review_decisions_check_passes_then_fails_on_tampering(tmp_path):
    import dagster as dg

    from curation_assets_tests.fixtures import small_settings

    settings = small_settings(tmp_path / "data", base_model="unused")
    store = settings.decision_store
    con = decisions.connect(store)
    for i in range(3):
        decisions.record(con, _accept(f"e{i}"))
    label = settings.labels[0] if settings.labels else "billing"
    decisions.record(con, _accept("e5", decision="edit", corrected_response=label))
    con.close()
    with dg.instance_for_test() as instance:
        first = _run_check(settings, instance)
        assert first.passed, first.metadata["failed_expectations"]
        assert first.metadata["decisions"].value == 4
        # more decisions, appended: still passes against the previous evaluation
        decisions.record(decisions.connect(store), _accept("e6", who="bob"))
        assert _run_check(settings, instance).passed
        _tamper(
            store,
            "UPDATE decisions SET reviewer = 'mallory', fingerprint = 'x' WHERE decision_id = 1",
        )
        tampered = _run_check(settings, instance)
        assert not tampered.passed
        assert tampered.severity == dg.AssetCheckSeverity.ERROR
        failed = tampered.metadata["unexpected_counts"].value
        assert any("rewritten_since_last_audit" in k for k in failed), failed
        assert "ExpectDecisionFingerprintsToMatch()" in failed, failed


@pytest.mark.integration  # a Dagster run of the check: its GX suite and the event log
def test_review_decisions_check_refuses_labels_outside_the_allowed_set(tmp_path):
    import dagster as dg

    from curation_assets_tests.fixtures import small_settings

    settings = small_settings(tmp_path / "data", base_model="unused")
    assert settings.task_type == "classification" and settings.labels
    con = decisions.connect(settings.decision_store)  # an import does not know the labels
    decisions.record(con, _accept("e1", decision="edit", corrected_response="weather"))
    con.close()
    with dg.instance_for_test() as instance:
        evaluation = _run_check(settings, instance)
    assert not evaluation.passed
    assert any("corrected_response" in k for k in evaluation.metadata["unexpected_counts"].value)


@pytest.mark.integration  # a Dagster run of the check: its GX suite and the event log
def test_an_empty_store_passes(tmp_path):
    import dagster as dg

    from curation_assets_tests.fixtures import small_settings

    settings = small_settings(tmp_path / "data", base_model="unused")
    with dg.instance_for_test() as instance:
        evaluation = _run_check(settings, instance)
    assert evaluation.passed and evaluation.metadata["decisions"].value == 0
