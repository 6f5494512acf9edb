"""A real browser drives the review app by keyboard, and the decisions reach the warehouse.

Chromium (Debian's, through Playwright) signs in as an expert, accepts (a), rejects (r),
skips (s) and edits (e, a digit, Enter) examples of a queue the pipeline published; a
reviewer accepts one more over HTTP. Dagster then materializes the review stages in
process, and ``reviewed`` / ``verified`` hold exactly what was decided.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

import dagster as dg
import duckdb
import httpx
import pandas as pd
import pytest

from curation_assets.curation.review import decisions
from curation_assets.definitions import build_definitions
from curation_assets.runs.pipeline import run_everything
from curation_assets_tests.fixtures import (
    LABELS,
    make_rows,
    page_fields,
    small_settings,
    write_inbox,
)
from curation_assets_tests.test_review_app import PASSWORD, _free_port, _login

pytestmark = pytest.mark.integration  # see pyproject: ./scripts/test --fast skips these

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    names = ("chromium", "chromium-browser", "google-chrome")
    path = os.environ.get("CHROMIUM_PATH") or next(filter(None, map(shutil.which, names)), None)
    if not path:
        pytest.skip(
            "no Chromium found: install one (Debian/Ubuntu: sudo apt-get install chromium; or "
            ".venv/bin/playwright install chromium) or set CHROMIUM_PATH to a Chromium or "
            "Chrome binary"
        )
    pytest.importorskip("playwright.sync_api")
    return path


def _warehouse(settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.sql(sql).df()


def _publish_if_needed(settings) -> None:
    """Publish ``review_queue`` to the store unless the review_queue asset already does."""
    if len(decisions.load_queue(settings.decision_store)):
        return
    queue = _warehouse(settings, "SELECT * FROM review_queue")
    queue = queue[[c for c in decisions.QUEUE_COLUMNS if c in queue.columns]]
    decisions.publish_queue(settings.decision_store, queue)


@pytest.fixture
def server(tmp_path):
    """The pipeline's first pass (ingest -> review_queue), users, and a running app."""
    chromium = _chromium()
    settings = small_settings(
        tmp_path / "data", base_model="unused", min_verified_examples=1, min_validation_examples=0
    )
    write_inbox(settings.inbox, make_rows(6, seed=3), bad_lines=0)
    with dg.instance_for_test() as instance:
        run_everything(settings, instance, skip_training=True)
        _publish_if_needed(settings)
        decisions.add_user(settings.decision_store, "dr_who", PASSWORD, "expert")
        decisions.add_user(settings.decision_store, "rev", PASSWORD, "reviewer")
        port = _free_port()
        env = {
            **os.environ,
            "CURATION_DATA_DIR": str(settings.data_dir),
            "CURATION_LABELS": ",".join(LABELS),
        }
        log = (tmp_path / "server.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "curation_assets.cli", "review", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.time() < deadline, "the app did not start"
                time.sleep(0.1)
        try:
            yield settings, instance, base, chromium
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
            log.close()


def test_keyboard_review_reaches_verified(server):
    from playwright.sync_api import expect, sync_playwright

    settings, instance, base, chromium = server
    done: dict[str, str] = {}
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on(
            "console",
            lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None,
        )
        page.goto(f"{base}/review?queue=coverage")
        expect(page).to_have_url(f"{base}/login")
        page.fill("#username", "dr_who")
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        shown = page.locator("#example-id")
        expect(shown).to_be_visible()

        def by_key(key: str) -> str:
            current = shown.inner_text()
            page.keyboard.press(key)
            expect(shown).not_to_have_text(current)
            return current

        done[by_key("a")] = "accept"
        done[by_key("r")] = "reject"
        skipped = by_key("s")
        edited = shown.inner_text()
        old_label = page.locator("#response").inner_text()
        new_label = next(label for label in LABELS if label != old_label)
        page.keyboard.press("e")
        expect(page.locator("#label")).to_be_focused()
        page.keyboard.press(str(LABELS.index(new_label) + 1))
        expect(page.locator("#label")).to_have_value(new_label)
        page.keyboard.press("Enter")
        expect(shown).not_to_have_text(edited)
        expect(page.locator("#flash")).to_have_text(f"edit: {edited}")
        done[edited] = "edit"
        progress = page.locator("#progress").inner_text()
        browser.close()
    assert not problems, problems  # no CSP violation, no script error
    assert progress.startswith("3 done")

    stored = decisions.load_all(settings.decision_store)
    assert dict(zip(stored["example_id"], stored["decision"], strict=True)) == done
    assert set(stored["role"]) == {"expert"} and set(stored["origin"]) == {"app"}
    assert stored["seconds_spent"].notna().all() and skipped not in set(stored["example_id"])
    assert stored.set_index("example_id").loc[edited, "corrected_response"] == new_label

    # a reviewer's accept is reviewed, never verified
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        assert _login(client, "rev").status_code == 303
        fields = page_fields(client.get("/review?queue=coverage").text)
        by_reviewer = fields["example_id"]
        assert by_reviewer not in done
        data = {"csrf": fields["csrf"], "token": fields["token"], "decision": "accept"}
        assert client.post("/decide", data=data).status_code == 303

    job = build_definitions(settings).resolve_job_def("curate_job")
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=[dg.AssetKey(k) for k in ("review_queue", "reviewed", "verified")],
    )
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"reviewed", "verified"} <= materialized

    reviewed = _warehouse(settings, "SELECT * FROM reviewed").set_index("example_id")
    verified = _warehouse(settings, "SELECT * FROM verified").set_index("example_id")
    accepted = next(eid for eid, kind in done.items() if kind == "accept")
    rejected = next(eid for eid, kind in done.items() if kind == "reject")
    assert set(verified.index) == {accepted, edited}
    assert verified.loc[edited, "response"] == new_label and verified.loc[edited, "edited"]
    assert verified.loc[edited, "original_response"] == old_label
    assert (
        not verified.loc[accepted, "edited"] and verified.loc[accepted, "verified_by"] == "dr_who"
    )
    assert rejected not in reviewed.index
    assert reviewed.loc[by_reviewer, "decided_by_role"] == "reviewer"
    assert by_reviewer not in verified.index
