"""The lineage graph is served by a real Dagster webserver (what a user sees in the UI)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from curation_assets_tests.fixtures import CONTRACT

pytestmark = pytest.mark.integration  # see pyproject: ./scripts/test --fast skips these

QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } hasAssetChecks } }"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def webserver(tmp_path):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CURATION_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/server_info", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read().decode()[-2000:])
            time.sleep(0.5)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    deadline = time.time() + 60
    while True:  # the code location may still be loading
        body = json.loads(urllib.request.urlopen(request, timeout=30).read())
        if body.get("data", {}).get("assetNodes") or time.time() > deadline:
            return body
        time.sleep(1)


def test_ui_serves_the_lineage_graph(webserver):
    nodes = _graphql(webserver, QUERY)["data"]["assetNodes"]
    edges = {
        "/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]}
        for n in nodes
    }
    for upstream, downstream in zip(CONTRACT, CONTRACT[1:], strict=False):
        assert upstream in edges[downstream]
    assert all(n["hasAssetChecks"] for n in nodes if n["assetKey"]["path"][0] in CONTRACT)
