"""Every role can be tried on the demo (issue #14): on the queue a first demo run publishes
and the bundled decisions, a new reviewer and a new expert find open items, and once they
decided them the "nothing left" page says why, with counts that add up to the queue."""

import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from curation_assets.config import Settings
from curation_assets.curation.review import decisions, review_stage
from curation_assets.review_app import create_app
from curation_assets_tests.fixtures import filter_inbox, nothing_left_reasons, page_fields

pytestmark = pytest.mark.integration  # see pyproject: ./scripts/test --fast skips these

SAMPLE = Path(__file__).resolve().parent.parent / "curation_assets" / "sample_data"
PASSWORD = "demo-pass-1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Settings:
    """The decision store of a first demo run: bundled decisions imported, the queue the
    pipeline builds from them published (the product's core functions, default settings),
    plus the two users the README has you create."""
    from curation_assets.defs.review.assets import queue_config

    settings = Settings(data_dir=tmp_path_factory.mktemp("demo"), inbox_dir=SAMPLE / "inbox")
    con = filter_inbox(settings)
    report = decisions.import_file(
        SAMPLE / "decisions" / "review_decisions.jsonl", settings.decision_store
    )
    assert report.errors == []
    store = decisions.load_all(settings.decision_store)
    review_stage.build_review_queue(con, store, queue_config(settings), settings.labels)
    decisions.publish_queue(settings.decision_store, review_stage.queue_for_app(con))
    con.close()
    decisions.add_user(settings.decision_store, "carol", PASSWORD, "reviewer")
    decisions.add_user(settings.decision_store, "dr_chen", PASSWORD, "expert")
    return settings


def _client(settings: Settings, name: str) -> TestClient:
    client = TestClient(create_app(settings, secret="test-secret"), follow_redirects=False)
    csrf = page_fields(client.get("/login").text)["csrf"]
    response = client.post("/login", data={"csrf": csrf, "username": name, "password": PASSWORD})
    assert response.status_code == 303
    return client


def _work_through(client: TestClient, queue: str, limit: int = 50) -> list[str]:
    """Decide every item the app serves (one at a time), until it has nothing left."""
    decided = []
    for _ in range(limit):
        page = client.get(f"/review?queue={queue}").text
        if 'id="queue-done"' in page:
            return decided
        fields = page_fields(page)
        data = {"csrf": fields["csrf"], "token": fields["token"], "decision": "accept"}
        assert client.post("/decide", data=data).status_code == 303
        decided.append(fields["example_id"])
    raise AssertionError(f"still items after {limit} decisions")


def test_a_new_reviewer_and_a_new_expert_find_work_and_are_told_why_when_done(demo):
    offered = {
        who: {queue: counts["open"] for queue, counts in by_queue.items()}
        for who, by_queue in _manifest()["expected_pipeline"]["review_app_for_new_users"].items()
    }
    left = _manifest()["decisions"]["left_open"]
    undecided = {i["example_id"] for i in left["coverage_undecided"]}
    awaiting = {i["example_id"] for i in left["coverage_awaiting_expert"]}
    carol, chen = _client(demo, "carol"), _client(demo, "dr_chen")

    # the reviewer: the coverage items nobody decided, then why nothing else is offered
    done = _work_through(carol, "coverage")
    assert set(done) == undecided and len(done) == offered["new_reviewer"]["coverage"]
    page = carol.get("/review?queue=coverage").text
    why = nothing_left_reasons(page)
    assert why == {
        "decided_by_you": 12,
        "decided_by_expert": 480,
        "reviewed_by_others": 8,
        "total": 500,
    }
    assert sum(n for reason, n in why.items() if reason != "total") == why["total"] == 500
    assert "Nothing left for you: " not in page and "0 decided by you" not in page
    assert "reviewed by others" in page and "decided by an expert" in page
    suspects = offered["new_reviewer"]["suspect"]
    assert f"The suspect queue has {suspects} items for you." in page

    # the expert: carol's 12 (reviewed, not verified) and the 8 waiting for an expert
    done = _work_through(chen, "coverage")
    assert set(done) == undecided | awaiting
    assert len(done) == offered["new_expert"]["coverage"] == 20
    why = nothing_left_reasons(chen.get("/review?queue=coverage").text)
    assert why == {"decided_by_you": 20, "decided_by_expert": 480, "total": 500}
    assert sum(n for reason, n in why.items() if reason != "total") == why["total"]
    # what carol sees now: the 8 others reviewed are verified by dr_chen
    why = nothing_left_reasons(carol.get("/review?queue=coverage").text)
    assert why == {"decided_by_you": 12, "decided_by_expert": 488, "total": 500}

    # the suspect queue: the reviewer's handful, then the reasons
    done = _work_through(carol, "suspect")
    assert len(done) == suspects == len(left["suspect_undecided"])
    why = nothing_left_reasons(carol.get("/review?queue=suspect").text)
    assert why["decided_by_you"] == suspects and why["total"] == 500
    assert sum(n for reason, n in why.items() if reason != "total") == 500
    assert "for you." not in carol.get("/review?queue=suspect").text  # no queue has work left

    # experts are offered every suspect item without an expert decision: bulk through them
    expected = offered["new_expert"]["suspect"]
    total = 0
    for _ in range(10):
        page = chen.get("/bulk?queue=suspect&n=100").text
        ids = re.findall(r'name="example_id" value="([^"]+)"', page)
        if not ids:
            break
        fields = page_fields(page)
        data = {"csrf": fields["csrf"], "token": fields["token"], "decision": "accept"}
        assert chen.post("/bulk", data={**data, "example_id": ids}).status_code == 303
        total += len(ids)
    assert total == expected
    why = nothing_left_reasons(chen.get("/review?queue=suspect").text)
    assert why["decided_by_you"] == expected and why["total"] == 500
    assert why["decided_by_you"] + why["decided_by_expert"] == 500


def _manifest() -> dict:
    return json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))
