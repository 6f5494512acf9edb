"""What a user does in the UI works for real, against `dagster dev` (webserver + daemon).

A file dropped in the inbox becomes a `raw_scrapes` partition through the inbox sensor (no
one turns a sensor on), then the UI's "Materialize" mutation runs filtered -> review_queue
-> reviewed -> verified, and every asset's blocking `expectations` check passes on the
materialization of that run. Everything goes through the webserver's GraphQL API, the one
the UI uses. The fine-tune is left out (too slow here).
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from curation_assets_tests.fixtures import (
    REPO,
    dagster_env,
    make_rows,
    reviewed_inbox,
    small_settings,
)

pytestmark = pytest.mark.integration  # see pyproject: ./scripts/test --fast skips these

LOCATION = "curation_assets"
REPOSITORY = "__repository__"
BATCH = "batch_a.jsonl"
#: What the user selects. `filtered` and `rejections` are one multi-asset that cannot be
#: subset (Dagster refuses `filtered` alone with InvalidSubsetError), so both are launched.
SELECTED = ["filtered", "review_queue", "reviewed", "verified"]
LAUNCHED = [*SELECTED, "rejections"]


def _groups(asset: str) -> list[str]:
    """The expectation-group checks of ``asset`` (declared next to its stage's suites)."""
    from curation_assets.defs.filtering.suites import GROUPS as filtering
    from curation_assets.defs.review.suites import GROUPS as review

    return list({**filtering, **review}[asset])
SENSORS = {"inbox_sensor", "decisions_sensor", "curation_automation"}
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_signals() -> None:
    """In the child: its own process group, and SIGINT/SIGTERM not ignored.

    `dagster dev` inherits ignored signals from a background parent and then cannot be
    stopped; with default handlers it shuts its webserver, daemon and code server down.
    """
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class DagsterDev:
    def __init__(self, base: str, proc: subprocess.Popen, logs: Path):
        self.base, self.proc, self.logs = base, proc, logs

    def query(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.base}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            raw = urllib.request.urlopen(request, timeout=60).read()
        except urllib.error.HTTPError as error:  # an invalid query: the errors come with a 400
            raw = error.read()
        body = json.loads(raw)
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]

    def tail(self, chars: int = 3000) -> str:
        """The end of dagster dev's output: daemon logs (stdout) and run logs (stderr)."""
        parts = []
        for name in ("stdout", "stderr"):
            text = (self.logs / f"dagster_dev.{name}").read_text(errors="replace")
            parts.append(f"--- dagster dev {name} (tail) ---\n{text[-chars:]}")
        return "\n".join(parts)

    def wait_for(self, what: str, probe, deadline_s: float, every_s: float = 2.0):
        """Poll ``probe()`` until it returns something truthy; fail with the logs if not."""
        deadline = time.monotonic() + deadline_s
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"dagster dev exited ({self.proc.returncode}) {what}\n{self.tail()}")
            try:
                found = probe()
            except (urllib.error.URLError, ConnectionError):  # not listening yet
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"no success after {deadline_s:.0f} s {what}\n{self.tail()}")
            time.sleep(every_s)


@pytest.fixture
def dagster_dev(tmp_path):
    """`dagster dev` on the repo's workspace, with its own DAGSTER_HOME and data folder."""
    # The fine-tune is not part of this test, but automation starts it once `verified`
    # passes: point it at a tiny local model so that it stays cheap (built below).
    settings = small_settings(tmp_path / "data", base_model=str(tmp_path / "tiny_base"))
    env = dagster_env(settings, tmp_path)
    port = _free_port()
    with (
        (tmp_path / "dagster_dev.stdout").open("wb") as out,
        (tmp_path / "dagster_dev.stderr").open("wb") as err,
    ):
        proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml"]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=_default_signals,
        )
    server = DagsterDev(f"http://127.0.0.1:{port}", proc, tmp_path)
    try:
        from curation_assets_tests.tiny_models import build_tiny_classifier_base

        build_tiny_classifier_base(settings.base_model, [r["text"] for r in make_rows(40, 1)])
        yield server, settings
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to the whole group (dagster dev shuts down its children), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):  # a run worker that outlived dagster dev
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


REPOSITORY_Q = f"""{{ repositoryOrError(repositorySelector: {{
    repositoryLocationName: "{LOCATION}", repositoryName: "{REPOSITORY}"}}) {{
  __typename ... on Repository {{
    sensors {{ name sensorState {{ status }} }}
    schedules {{ name scheduleState {{ status }} }} }} }} }}"""

INGESTED_Q = f"""{{ assetOrError(assetKey: {{path: ["raw_scrapes"]}}) {{
  ... on Asset {{ assetMaterializations(partitions: ["{BATCH}"], limit: 1) {{
    runId partition
    runOrError {{ ... on Run {{ status tags {{ key value }} }} }} }} }} }} }}"""

LAUNCH_M = """mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } } } }"""

RUN_Q = """query Run($runId: ID!) { runOrError(runId: $runId) {
  ... on Run { status assetMaterializations { assetKey { path } }
    assetCheckSelection { assetKey { path } name } } } }"""

RUN_ERRORS_Q = """query RunErrors($runId: ID!) { runOrError(runId: $runId) {
  ... on Run { eventConnection(limit: 2000) { events {
    __typename ... on MessageEvent { level stepKey message }
    ... on ErrorEvent { error { message } } } } } } }"""

ASSET_Q = """query Asset($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) { ... on Asset { assetMaterializations(limit: 10) { runId } } }
  assetCheckExecutions(assetKey: $key, checkName: "expectations", limit: 10) {
    runId status
    evaluation { success targetMaterialization { runId }
      metadataEntries { label ... on IntMetadataEntry { intValue } } } } }"""


def _run_errors(server: DagsterDev, run_id: str) -> str:
    events = server.query(RUN_ERRORS_Q, {"runId": run_id})["runOrError"]["eventConnection"]
    lines = [
        f"{e.get('stepKey')}: {e.get('message')} {(e.get('error') or {}).get('message', '')}"
        for e in events["events"]
        if e.get("level") == "ERROR" or e.get("error")
    ]
    return "\n".join(lines)[-6000:]


def test_inbox_file_then_ui_materialize_runs_the_review_stages(dagster_dev):
    server, settings = dagster_dev

    # the code location is loaded; every sensor and the schedule run without a toggle
    def loaded():
        repo = server.query(REPOSITORY_Q)["repositoryOrError"]
        return repo if repo["__typename"] == "Repository" else None

    repo = server.wait_for("loading the code location", loaded, deadline_s=180)
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert {name: sensors.get(name) for name in SENSORS} == dict.fromkeys(SENSORS, "RUNNING")
    assert {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]} == {
        "nightly_refresh": "RUNNING"
    }

    # the user records decisions and drops a file, with the UI running
    reviewed_inbox(settings, settings.data_dir / "decisions.jsonl")
    assert [p.name for p in settings.inbox.iterdir()] == [BATCH]

    # 1. the inbox sensor adds the partition and ingests it
    def ingested():
        found = server.query(INGESTED_Q)["assetOrError"]["assetMaterializations"]
        if found and found[0]["runOrError"]["status"] in TERMINAL:
            return found[0]
        return None

    ingest = server.wait_for(f"ingesting {BATCH} (inbox sensor)", ingested, deadline_s=240)
    assert ingest["partition"] == BATCH
    ingest_run = ingest["runOrError"]
    assert ingest_run["status"] == "SUCCESS", _run_errors(server, ingest["runId"])
    assert {"key": "dagster/sensor_name", "value": "inbox_sensor"} in ingest_run["tags"]

    # 2. "Materialize" on the selected assets, as the UI sends it (with their checks)
    params = {
        "mode": "default",
        "runConfigData": {},
        "executionMetadata": {"tags": []},
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [key]} for key in LAUNCHED],
            # what the UI's Materialize selects: the assets and all of their checks (the
            # audit, one check per expectation group, filtered's held_batches)
            "assetCheckSelection": [
                {"assetKey": {"path": [key]}, "name": name}
                for key in LAUNCHED
                for name in ["expectations", *_groups(key)]
            ]
            + [{"assetKey": {"path": ["filtered"]}, "name": "held_batches"}],
        },
    }
    launched = server.query(LAUNCH_M, {"executionParams": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished():
        run = server.query(RUN_Q, {"runId": run_id})["runOrError"]
        return run if run["status"] in TERMINAL else None

    run = server.wait_for(f"waiting for run {run_id}", finished, deadline_s=300)
    assert run["status"] == "SUCCESS", f"run {run_id}:\n{_run_errors(server, run_id)}"

    # 3. each selected asset has a materialization from that run, and its blocking
    # expectations check passed on exactly that materialization
    materialized = {"/".join(m["assetKey"]["path"]) for m in run["assetMaterializations"]}
    assert materialized >= set(LAUNCHED), materialized
    checked = sorted(
        c["assetKey"]["path"][0] for c in run["assetCheckSelection"] if c["name"] == "expectations"
    )
    assert checked == sorted(LAUNCHED), checked
    for key in LAUNCHED:
        data = server.query(ASSET_Q, {"key": {"path": [key]}})
        runs = [m["runId"] for m in data["assetOrError"]["assetMaterializations"]]
        assert run_id in runs, f"{key}: no materialization from run {run_id} ({runs})"
        ours = [e for e in data["assetCheckExecutions"] if e["runId"] == run_id]
        assert len(ours) == 1, f"{key}: expectations did not run in {run_id}"
        check = ours[0]
        assert check["status"] == "SUCCEEDED", f"{key}:expectations {check}"
        assert check["evaluation"]["success"], f"{key}:expectations {check}"
        assert check["evaluation"]["targetMaterialization"]["runId"] == run_id
        counts = {m["label"]: m.get("intValue") for m in check["evaluation"]["metadataEntries"]}
        assert counts["expectations_failed"] == 0, f"{key}: {counts}"
        assert counts["expectations_evaluated"] > 0, f"{key}: {counts}"


def test_the_ui_queries_match_the_installed_graphql_schema():
    """The queries above are valid for this Dagster version (fails fast, no server)."""
    from dagster_graphql.schema import create_schema
    from graphql import parse, validate

    schema = create_schema().graphql_schema
    for query in (REPOSITORY_Q, INGESTED_Q, LAUNCH_M, RUN_Q, RUN_ERRORS_Q, ASSET_Q):
        assert validate(schema, parse(query)) == [], query
