"""The review web app over HTTP: sign-in, CSRF, roles, hostile content, queue rules, and a
real uvicorn server killed (SIGKILL) under eight concurrent reviewers."""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import duckdb
import httpx
import pandas as pd
import pytest
from markupsafe import escape
from starlette.testclient import TestClient

from curation_assets.config import Settings
from curation_assets.curation.review import decisions
from curation_assets.review_app import create_app
from curation_assets_tests.fixtures import nothing_left_reasons, page_fields

LABELS = ("billing", "delivery", "login")
PASSWORD = "s3cret-pass"
ROLES = {"ann": "reviewer", "bob": "reviewer", "cy": "reviewer", "dr_chen": "expert"}
ROLES["root"] = "admin"

pytestmark = pytest.mark.usefixtures("quick_password_hashes")  # the app, not the hash


def _items(n: int, queue: str = "coverage", **columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "example_id": [f"{queue[0]}{i:03d}" for i in range(n)],
            "queue": queue,
            "priority": range(1, n + 1),
            "queue_reason": "coverage sample",
            "prompt": [f"where is my parcel number {i}" for i in range(n)],
            "response": "delivery",
            "source": "tickets",
            "batch": "batch_a.jsonl",
        }
    )
    return frame.assign(**columns)


def _settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(data_dir=tmp_path / "data", labels=LABELS, **overrides)


@pytest.fixture(scope="module")
def users_store(tmp_path_factory, quick_password_hashes) -> Path:
    """A store holding the users (hashed once, copied into each test's store)."""
    store = tmp_path_factory.mktemp("users") / "decisions.sqlite"
    for name, role in ROLES.items():
        decisions.add_user(store, name, PASSWORD, role)
    return store


def _world(tmp_path: Path, items: pd.DataFrame, users: Path, **overrides) -> Settings:
    settings = _settings(tmp_path, **overrides)
    settings.decision_store.parent.mkdir(parents=True)
    shutil.copy(users, settings.decision_store)
    decisions.publish_queue(settings.decision_store, items)
    return settings


def _login(client: TestClient | httpx.Client, name: str, password: str = PASSWORD):
    csrf = page_fields(client.get("/login").text)["csrf"]
    return client.post("/login", data={"csrf": csrf, "username": name, "password": password})


def _client(settings: Settings, name: str | None = None) -> TestClient:
    client = TestClient(create_app(settings, secret="test-secret"), follow_redirects=False)
    if name:
        assert _login(client, name).status_code == 303
    return client


def _decide(client, decision: str, queue: str = "coverage", **extra) -> tuple[str, object]:
    page = page_fields(client.get(f"/review?queue={queue}").text)
    data = {"csrf": page["csrf"], "token": page["token"], "decision": decision, **extra}
    return page["example_id"], client.post("/decide", data=data)


def _stored(settings: Settings) -> pd.DataFrame:
    return decisions.load_all(settings.decision_store)


@pytest.fixture
def world(tmp_path, users_store):
    return _world(tmp_path, _items(6), users_store)


def test_login_is_required_and_wrong_passwords_are_refused(world):
    client = _client(world)
    assert client.get("/review").headers["location"] == "/login"
    assert client.get("/bulk").headers["location"] == "/login"
    assert client.post("/decide", data={"decision": "accept"}).status_code == 403
    assert _login(client, "ann", "wrong password").status_code == 401
    assert _login(client, "nobody", PASSWORD).status_code == 401
    assert client.get("/review").headers["location"] == "/login"

    response = _login(client, "ann")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/review").status_code == 200
    # signing out needs the CSRF token too, then the session is gone
    assert client.post("/logout", data={}).status_code == 403
    csrf = page_fields(client.get("/review").text)["csrf"]
    assert client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/review").headers["location"] == "/login"
    assert _stored(world).empty


def test_failed_sign_ins_are_throttled(world):
    client = _client(world)
    for _ in range(5):
        assert _login(client, "bob", "not it at all").status_code == 401
    assert _login(client, "bob").status_code == 429  # even the right password, for a while


def test_csrf_missing_or_wrong_is_refused_and_nothing_recorded(world):
    client = _client(world, "ann")
    page = page_fields(client.get("/review").text)
    for csrf in (None, "", "wrong" + page["csrf"][5:]):
        data = {"token": page["token"], "decision": "accept"}
        if csrf is not None:
            data["csrf"] = csrf
        assert client.post("/decide", data=data).status_code == 403
    other = _client(world, "bob")  # bob's valid CSRF token is not valid in ann's session
    other_csrf = page_fields(other.get("/review").text)["csrf"]
    data = {"csrf": other_csrf, "token": page["token"], "decision": "accept"}
    assert client.post("/decide", data=data).status_code == 403
    cross = client.post(
        "/decide",
        data={**data, "csrf": page["csrf"]},
        headers={"sec-fetch-site": "cross-site"},
    )
    assert cross.status_code == 403
    assert _stored(world).empty
    # bulk and admin forms are protected the same way
    bulk = page_fields(client.get("/bulk").text)
    data = {"token": bulk["token"], "decision": "accept", "example_id": "c000"}
    assert client.post("/bulk", data=data).status_code == 403
    assert _stored(world).empty


def test_roles_come_from_the_server_not_the_form(world):
    reviewer = _client(world, "ann")
    eid, response = _decide(reviewer, "accept", role="expert", reviewer="dr_chen")
    assert response.status_code == 303
    expert = _client(world, "dr_chen")
    eid2, response = _decide(expert, "accept", role="reviewer")
    assert response.status_code == 303
    stored = _stored(world)[["example_id", "reviewer", "role", "origin"]]
    assert stored.values.tolist() == [
        [eid, "ann", "reviewer", "app"],
        [eid2, "dr_chen", "expert", "app"],
    ]

    # reviewers and experts cannot manage users; an admin can
    for client in (reviewer, expert):
        assert client.get("/admin").status_code == 403
        csrf = page_fields(client.get("/review").text)["csrf"]
        data = {"csrf": csrf, "username": "mallory", "password": PASSWORD, "role": "admin"}
        assert client.post("/admin/users", data=data).status_code == 403
    assert decisions.get_user(world.decision_store, "mallory") is None
    admin = _client(world, "root")
    csrf = page_fields(admin.get("/admin").text)["csrf"]
    data = {"csrf": csrf, "username": "newbie", "password": PASSWORD, "role": "reviewer"}
    assert admin.post("/admin/users", data=data).status_code == 303
    assert decisions.get_user(world.decision_store, "newbie")["role"] == "reviewer"


def test_a_demoted_or_removed_user_loses_their_powers_at_once(world):
    expert = _client(world, "dr_chen")
    decisions.add_user(world.decision_store, "dr_chen", PASSWORD, "reviewer", replace=True)
    assert expert.get("/review").headers["location"] == "/login"  # signed out at once
    assert _login(expert, "dr_chen").status_code == 303
    eid, response = _decide(expert, "accept")
    assert response.status_code == 303
    assert _stored(world).set_index("example_id").loc[eid, "role"] == "reviewer"


def test_edits_only_take_allowed_labels(world):
    client = _client(world, "dr_chen")
    eid, response = _decide(client, "edit", label="weather")
    assert response.status_code == 400 and _stored(world).empty
    eid, response = _decide(client, "edit", label="")
    assert response.status_code == 400 and _stored(world).empty
    eid, response = _decide(client, "edit", label="billing", note="was a refund")
    assert response.status_code == 303
    row = _stored(world).iloc[0]
    assert (row.example_id, row.decision, row.corrected_response) == (eid, "edit", "billing")
    assert row.note == "was a refund"
    # "editing" to the label it already has is an accept
    eid2, response = _decide(client, "edit", label="delivery")
    assert response.status_code == 303
    assert _stored(world).set_index("example_id").loc[eid2, "decision"] == "accept"
    _, response = _decide(client, "approve")
    assert response.status_code == 400


def test_tokens_are_per_user_signed_and_recorded_once(world):
    ann, bob = _client(world, "ann"), _client(world, "bob")
    page = page_fields(ann.get("/review").text)
    data = {"csrf": page["csrf"], "token": page["token"], "decision": "reject"}
    data["seconds_spent"] = "99999"  # ignored: measured on the server
    assert ann.post("/decide", data=data).status_code == 303
    assert ann.post("/decide", data=data).status_code == 303  # a retry: stored once
    stored = _stored(world)
    assert len(stored) == 1 and 0 <= stored.loc[0, "seconds_spent"] <= 900
    forged = {**data, "token": page["token"][:-3] + "AAA"}
    assert ann.post("/decide", data=forged).status_code == 400
    bob_csrf = page_fields(bob.get("/review").text)["csrf"]
    stolen = {**data, "csrf": bob_csrf}  # ann's item token in bob's session
    assert bob.post("/decide", data=stolen).status_code == 403
    assert len(_stored(world)) == 1


def test_queue_rules_for_reviewers_and_experts(tmp_path, users_store):
    settings = _world(tmp_path, _items(3), users_store, reviews_required=2)
    ann, bob, cy = (_client(settings, n) for n in ("ann", "bob", "cy"))
    expert = _client(settings, "dr_chen")
    first, _ = _decide(ann, "accept")
    assert first == "c000"
    assert page_fields(ann.get("/review").text)["example_id"] == "c001"  # never shown again
    assert page_fields(bob.get("/review").text)["example_id"] == "c000"  # needs 2 reviews
    _decide(bob, "accept")
    # c000 has its two reviews; cy is served c001 and c002 even though ann holds c001
    assert page_fields(cy.get("/review").text)["example_id"] == "c002"
    assert _bulk_ids(cy) == ["c002", "c001"]  # c001 was just served to ann: last
    assert page_fields(expert.get("/review").text)["example_id"] == "c000"  # to verify
    _decide(expert, "accept")
    assert _bulk_ids(ann) == ["c001", "c002"] and _bulk_ids(bob) == ["c001", "c002"]
    progress = re.search(r'id="progress"><b>(\d+)</b> done · <b>(\d+)</b>', ann.get("/review").text)
    assert progress.groups() == ("1", "2")

    # skip moves an item to the end of one's own queue and records nothing
    before = len(_stored(settings))
    skipped, response = _decide(cy, "skip")
    assert response.status_code == 303 and len(_stored(settings)) == before
    assert page_fields(cy.get("/review").text)["example_id"] != skipped
    _decide(cy, "accept")
    _decide(cy, "accept")
    assert 'id="queue-done"' in cy.get("/review").text


def test_nothing_left_page_says_why_by_reason(tmp_path, users_store):
    """Issue #14: counts by reason, adding up to the queue, instead of "0 decided by you,
    N items in the queue"; a disagreement waits for an expert; skips are still offered."""
    items = pd.concat([_items(4), _items(2, "suspect")], ignore_index=True)
    settings = _world(tmp_path, items, users_store, reviews_required=2)
    ann, bob, cy = (_client(settings, n) for n in ("ann", "bob", "cy"))
    expert = _client(settings, "dr_chen")
    # c000: ann and bob agree; c001: they disagree; c002: expert only; c003: ann only
    _decide(ann, "accept")
    _decide(bob, "accept")
    _decide(ann, "reject")
    _decide(bob, "accept")
    skipped, _ = _decide(expert, "skip")  # still offered, after the rest
    assert skipped == "c000"
    with decisions.connect(settings.decision_store) as con:
        for eid, who, role in (("c002", "dr_chen", "expert"), ("c003", "ann", "reviewer")):
            raw = {
                "example_id": eid,
                "reviewer": who,
                "role": role,
                "decision": "accept",
                "decided_at": "2026-11-20T10:00:00+00:00",
            }
            decisions.record(con, raw)
    assert _decide(cy, "accept")[0] == "c003"  # its second review; nothing else for cy
    page = cy.get("/review").text
    assert nothing_left_reasons(page) == {
        "decided_by_you": 1,
        "decided_by_expert": 1,
        "waiting_for_expert": 1,
        "reviewed_by_others": 1,
        "total": 4,
    }
    assert "waiting for an expert" in page and "2 reviews per item" in page
    assert "The suspect queue has 2 items for you." in page
    # the expert is still offered c001, c003 and the skipped c000 (last)
    assert page_fields(expert.get("/review").text)["example_id"] == "c001"
    from curation_assets.review_app import store

    counts = store.standing(
        settings.decision_store, {"username": "dr_chen", "role": "expert"}, "coverage", 2
    )
    assert counts["open"] == 3 and counts["skipped"] == 1 and counts["decided_by_you"] == 1
    assert counts["total"] == 4 == sum(counts[r] for r in store.STANDING)
    left = store.progress(
        settings.decision_store, {"username": "dr_chen", "role": "expert"}, "coverage", 2
    )["left"]
    assert left == counts["open"]


def test_nothing_left_page_before_any_queue_is_published(tmp_path, users_store):
    settings = _world(tmp_path, _items(0), users_store)
    page = _client(settings, "ann").get("/review").text
    assert 'id="queue-empty"' in page and "No coverage queue has been published yet" in page


def _bulk_ids(client, n: int = 10) -> list[str]:
    page = client.get(f"/bulk?queue=coverage&n={n}").text
    return re.findall(r'name="example_id" value="([^"]+)"', page)


def test_bulk_decisions(world):
    client = _client(world, "ann")
    page = client.get("/bulk?queue=coverage&n=4").text
    fields = page_fields(page)
    shown = re.findall(r'name="example_id" value="([^"]+)"', page)
    assert shown == ["c000", "c001", "c002", "c003"]
    data = {"csrf": fields["csrf"], "token": fields["token"], "decision": "reject"}
    bad = client.post("/bulk", data={**data, "example_id": ["c000", "c005"]})  # c005 not served
    assert bad.status_code == 400 and _stored(world).empty
    assert (
        client.post("/bulk", data={**data, "decision": "edit", "example_id": "c000"}).status_code
        == 400
    )
    ok = client.post("/bulk", data={**data, "example_id": ["c000", "c002"]})
    assert ok.status_code == 303
    stored = _stored(world)
    assert sorted(stored["example_id"]) == ["c000", "c002"]
    assert set(stored["decision"]) == {"reject"} and set(stored["reviewer"]) == {"ann"}
    assert re.findall(r'name="example_id" value="([^"]+)"', client.get("/bulk?n=4").text) == [
        "c001",
        "c003",
        "c004",
        "c005",
    ]


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
    "<svg><script>alert(4)</script></svg>",
    '<a href="javascript:alert(5)">click</a>',
    "' onmouseover='alert(6)",
    '" autofocus onfocus="alert(7)',
    "</textarea><script>alert(8)</script>",
    "</div></section><iframe src=//evil.example></iframe>",
    "<base href=//evil.example/><style>body{display:none}</style>",
    "<!-- <script>alert(9)</script> -->",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _assert_inert(html: str, shown: bool = True) -> None:
    """No payload survives as markup: only our own script, no handlers, no js: URLs."""
    for payload in XSS:
        assert payload not in html
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in {"img", "svg", "iframe", "base", "style", "a"} or (
            tag == "a" and not attrs.get("href", "").lower().startswith("javascript")
        ), (tag, attrs)
        if tag == "script":
            assert attrs == {"src": "/static/review.js", "defer": None}
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert "autofocus" not in attrs or tag == "input", (tag, attrs)
    if shown:  # the payload is there, as text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("task_type", ["classification", "instruction"])
def test_hostile_content_is_escaped_everywhere(tmp_path, users_store, task_type):
    n = len(XSS)
    payload = pd.Series(XSS)
    items = _items(
        n,
        prompt=payload + " mail me at eve@example.org",
        response=payload.iloc[::-1].to_numpy(),
        queue_reason=payload.to_numpy(),
        source=payload.to_numpy(),
        batch=payload.iloc[::-1].to_numpy(),
        flags=[json.dumps([{"rule": p, "reason": p}]) for p in XSS],
        pii=[json.dumps([{"kind": p, "start": len(p) + 9, "end": len(p) + 24}]) for p in XSS],
        near_duplicates=[json.dumps([{"example_id": p, "prompt": p}]) for p in XSS],
    )
    items.loc[0, "example_id"] = '"><script>alert(10)</script>'
    settings = _world(tmp_path, items, users_store, task_type=task_type)
    client = _client(settings, "dr_chen")
    first = client.get("/review")
    assert '<mark class="pii"' in first.text  # the email is masked
    assert "default-src 'none'" in first.headers["content-security-policy"]
    assert "script-src 'self'" in first.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in first.headers["content-security-policy"]
    assert first.headers["x-content-type-options"] == "nosniff"
    bulk = client.get("/bulk?n=20").text
    _assert_inert(bulk)
    assert len(_bulk_ids(client, 20)) == n
    for _ in range(n):
        page = client.get("/review")
        _assert_inert(page.text, shown=False)
        shown = items.set_index("example_id").loc[page_fields(page.text)["example_id"]]
        payload = shown.prompt.removesuffix(" mail me at eve@example.org")
        assert str(escape(payload)) in page.text  # the payload is there, as text
        fields = page_fields(page.text)
        extra = {"corrected_response": XSS[1]} if task_type == "instruction" else {}
        decision = "edit" if extra else "reject"
        data = {"csrf": fields["csrf"], "token": fields["token"], "decision": decision, **extra}
        assert client.post("/decide", data=data).status_code == 303
    assert len(_stored(settings)) == n
    history = client.get("/history")
    _assert_inert(history.text, shown=False)
    assert "&lt;script&gt;alert(10)" in history.text  # the hostile example id, as text
    if task_type == "instruction":
        assert "&lt;img src=x onerror=alert(2)&gt;" in history.text  # the correction
    reopened = client.get("/review?queue=coverage&example_id=" + quote(items.loc[0, "example_id"]))
    assert reopened.status_code == 200
    _assert_inert(reopened.text)


def test_templates_never_mark_data_safe():
    root = Path(__file__).resolve().parent.parent / "curation_assets" / "review_app"
    for path in [*root.glob("templates/*.html"), *root.glob("*.py")]:
        text = path.read_text()
        assert "|safe" not in text.replace(" ", "") and "Markup(" not in text, path
        assert not re.search(r"\son\w+=", text), path  # no inline event handlers
    assert "<script>" not in "".join(p.read_text() for p in root.glob("templates/*.html"))


def test_healthz(world):
    body = _client(world).get("/healthz").json()
    assert body["status"] == "ok"
    assert body["queue_items"] == {"coverage": 6, "suspect": 0}
    assert body["decisions"] == 0 and body["queue_published_at"]


# --- a real server, killed under load ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "CURATION_DATA_DIR": str(data_dir), "CURATION_LABELS": ",".join(LABELS)}
    env.pop("CURATION_REVIEW_SECRET", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "curation_assets.cli",
            "review",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            pytest.fail(log.read_text()[-3000:])
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the review app did not start: " + log.read_text()[-3000:])


N_CLIENTS, PER_CLIENT, KILL_AFTER = 8, 15, 40
REVIEW_STAGES = ("review_queue", "reviewed", "verified")


@pytest.fixture
def spawned():
    """Servers a test started; killed at teardown even when the test fails."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.integration
def test_sigkill_under_load_while_dagster_runs_loses_and_duplicates_nothing(tmp_path, spawned):
    """Eight reviewers submit while Dagster materializes the review stages; the server is
    SIGKILLed mid-load and restarted. Every acknowledged decision is stored exactly once,
    and the next materialization of ``reviewed`` holds every accepted example."""
    import dagster as dg

    from curation_assets.definitions import build_definitions
    from curation_assets.runs.pipeline import run_everything
    from curation_assets_tests.fixtures import make_rows, small_settings, write_inbox

    settings = small_settings(
        tmp_path / "data",
        base_model="unused",
        coverage_sample_size=2 * N_CLIENTS * PER_CLIENT,
        suspect_encoder="none",
        min_verified_examples=1,
        min_validation_examples=0,
    )
    write_inbox(settings.inbox, make_rows(100, seed=11), bad_lines=0)
    names = [f"rev{i}" for i in range(N_CLIENTS)]
    with dg.instance_for_test() as instance:
        run_everything(settings, instance, skip_training=True)
        queue = decisions.load_queue(settings.decision_store)
        assert (queue["queue"] == "coverage").sum() >= N_CLIENTS * PER_CLIENT
        for name in names:
            decisions.add_user(settings.decision_store, name, PASSWORD, "reviewer")
        job = build_definitions(settings).resolve_job_def("curate_job")

        run_windows: list[tuple[float, float]] = []

        def materialize_review_stages() -> set[str]:
            begin = time.perf_counter()
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                asset_selection=[dg.AssetKey(k) for k in REVIEW_STAGES],
            )
            # only reviewers decide here, so verified fails its audit (too few examples) and
            # is not published: only its own step fails
            failed = {e.step_key for e in result.all_events if e.is_step_failure}
            assert failed <= {"verified"}, failed  # its audit, in its own step
            run_windows.append((begin, time.perf_counter()))
            return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}

        port, log = _free_port(), tmp_path / "server.log"
        base = f"http://127.0.0.1:{port}"
        server = _start_server(settings.data_dir, port, log)
        spawned.append(server)
        secret = settings.decision_store.parent / "review_app.secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600

        acked: list[tuple[str, str]] = []
        stamps: list[float] = []
        lock = threading.Lock()
        errors: list[str] = []

        def reviewer(name: str) -> None:
            client = httpx.Client(base_url=base, follow_redirects=False, timeout=10)
            pending, done, deadline = None, 0, time.time() + 240
            logged_in = False
            while done < PER_CLIENT and time.time() < deadline:
                try:
                    if not logged_in:
                        logged_in = _login(client, name).status_code == 303
                        continue
                    if pending is None:
                        pending = page_fields(client.get("/review?queue=coverage").text)
                    data = {
                        "csrf": pending["csrf"],
                        "token": pending["token"],
                        "decision": "accept",
                    }
                    response = client.post("/decide", data=data)
                    if response.status_code != 303:
                        errors.append(f"{name}: {response.status_code} {response.text[:200]}")
                        return
                    with lock:
                        acked.append((name, pending["example_id"]))
                        stamps.append(time.perf_counter())
                    pending, done = None, done + 1
                except httpx.TransportError:  # server down: retry the same submission
                    time.sleep(0.05)
            client.close()

        threads = [threading.Thread(target=reviewer, args=(n,)) for n in names]
        started = time.perf_counter()
        for t in threads:
            t.start()
        runs = 0
        while len(acked) < KILL_AFTER and time.perf_counter() - started < 120:
            published = materialize_review_stages()  # a run during the load
            assert {"review_queue", "reviewed"} <= published and "verified" not in published
            runs += 1
        before_kill = len(acked)
        rate = (before_kill - 1) / max(stamps[before_kill - 1] - stamps[0], 1e-9)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
        server = _start_server(settings.data_dir, port, log)  # same secret: sessions survive
        spawned.append(server)
        while any(t.is_alive() for t in threads):
            materialize_review_stages()
            runs += 1
        for t in threads:
            t.join(10)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)

        assert not errors, errors
        during_runs = sum(any(a <= t <= b for a, b in run_windows) for t in stamps)
        assert runs >= 1 and during_runs >= KILL_AFTER // 2  # decided while Dagster ran
        assert before_kill >= KILL_AFTER > 0
        assert len(acked) == N_CLIENTS * PER_CLIENT
        stored = decisions.load_all(settings.decision_store)
        pairs = list(zip(stored["reviewer"], stored["example_id"], strict=True))
        assert len(pairs) == len(set(pairs))  # no duplicates
        assert set(pairs) == set(acked)  # every acknowledged decision, and nothing else
        assert set(stored["origin"]) == {"app"}

        materialize_review_stages()
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            reviewed = {r[0] for r in con.execute("SELECT example_id FROM reviewed").fetchall()}
        assert {eid for _, eid in acked} <= reviewed
    print(
        f"\n{rate:.1f} decisions/s with {N_CLIENTS} clients; {during_runs} decided during "
        f"{runs} Dagster runs of the review stages; {len(stored)} stored, 0 lost, 0 duplicated"
    )
