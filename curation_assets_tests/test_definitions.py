"""The code location: it loads, the public asset contract holds, automation is wired."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from curation_assets.config import Settings
from curation_assets.definitions import build_definitions
from curation_assets_tests.fixtures import CONTRACT


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    return build_definitions(
        Settings(data_dir=data, nightly_cron="30 1 * * *", timezone="Europe/Berlin")
    )


@pytest.mark.integration
def test_dagster_cli_validates_the_code_location(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CURATION_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_dg_lists_every_stage_from_the_defs_folder(tmp_path):
    """``dg list defs`` (the ``dg`` CLI on ``[tool.dg.project]``) sees the whole graph,
    each asset in its stage's group, and ``dg check defs`` passes."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CURATION_DATA_DIR": str(tmp_path)}
    dg_cli = str(Path(sys.executable).with_name("dg"))
    listed = subprocess.run(
        [dg_cli, "list", "defs", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    groups = {a["asset_key"]: a["group_name"] for a in found["assets"]}
    assert set(CONTRACT) <= set(groups)
    assert groups["raw_scrapes"] == "ingest" and groups["verified"] == "review"
    assert {s["name"] for s in found["sensors"]} >= {"crash_recovery", "inbox_sensor"}
    assert {j["name"] for j in found["jobs"]} == {"ingest_job", "curate_job", "refresh_job"}
    checked = subprocess.run(
        [dg_cli, "check", "defs"], capture_output=True, text=True, env=env, timeout=300
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_lineage_contract(defs):
    graph = defs.resolve_asset_graph()
    for upstream, downstream in zip(CONTRACT, CONTRACT[1:], strict=False):
        parents = {k.to_user_string() for k in graph.get(dg.AssetKey(downstream)).parent_keys}
        assert upstream in parents, f"{upstream} -> {downstream} missing"


def test_every_asset_has_a_blocking_expectation_suite_on_the_path(defs):
    graph = defs.resolve_asset_graph()
    materializable = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    checked = {k.asset_key for k in graph.asset_check_keys}
    secondary = {"quarantine", "rejections"}  # written in the same step as their sibling
    missing = [
        k.to_user_string()
        for k in materializable
        if k not in checked and k.to_user_string() not in secondary
    ]
    assert missing == []
    ancestors = graph.get_ancestor_asset_keys(dg.AssetKey("fine_tuned_model"))
    for key in graph.get_check_keys_for_assets(ancestors):
        # every audit is blocking; ``filtered:held_batches`` only reports held batches
        assert graph.get_check_spec(key).blocking == (key.name == "expectations"), key
    for key in ancestors - {dg.AssetKey("quarantine"), dg.AssetKey("rejections")}:
        if graph.get(key).is_materializable:
            assert dg.AssetCheckKey(key, "expectations") in graph.asset_check_keys, key


def test_fine_tune_automation_requires_passing_checks(defs):
    condition = defs.resolve_assets_def("fine_tuned_model").get_asset_spec().automation_condition
    # a clause of the top-level AND: required, not merely named (a negation names it too)
    assert condition.name == "AND"
    assert dg.AutomationCondition.all_deps_blocking_checks_passed() in condition.operands
    assert defs.resolve_assets_def("fine_tuned_model").op.pool == "gpu"


def test_schedule_and_sensors_run_out_of_the_box(defs):
    schedule = defs.resolve_schedule_def("nightly_refresh")
    assert schedule.cron_schedule == "30 1 * * *"
    assert schedule.execution_timezone == "Europe/Berlin"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    for name in ("inbox_sensor", "decisions_sensor", "curation_automation"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING


def test_resources_are_typed_and_point_where_the_settings_say(defs, tmp_path):
    from curation_assets.curation.review import decisions
    from curation_assets.defs.resources import DecisionStoreResource

    resources = defs.resources
    settings = resources["settings"]
    store = resources["decision_store"]
    assert isinstance(store, DecisionStoreResource) and isinstance(store, dg.ConfigurableResource)
    assert store.file == settings.decision_store
    assert resources["duckdb"].database == str(settings.warehouse)
    # the resource reads the store it names
    own = DecisionStoreResource(path=str(tmp_path / "d.sqlite"))
    assert own.high_water_mark() == (0, None) and own.load_all().empty
    con = decisions.connect(own.file)
    decisions.record(
        con, {"example_id": "e1", "decision": "accept", "reviewer": "bob", "role": "reviewer"}
    )
    con.close()
    assert own.high_water_mark()[0] == 1
    assert own.load_all().example_id.tolist() == ["e1"]


def _resources_from_env(tmp_path, monkeypatch) -> dict:
    """The resources of settings read from an environment that names the warehouse and
    the suspect encoder (and not the decision store)."""
    from curation_assets.defs.resources import build_resources

    monkeypatch.setenv("CURATION_WAREHOUSE_PATH", str(tmp_path / "env.duckdb"))
    monkeypatch.setenv("CURATION_SUSPECT_ENCODER", "none")
    monkeypatch.delenv("CURATION_DECISION_STORE_PATH", raising=False)
    return build_resources(Settings.from_env(data_dir=tmp_path))


def test_settings_from_the_environment_are_bound_as_env_vars(tmp_path, monkeypatch):
    from curation_assets.defs.resources import build_resources

    resources = _resources_from_env(tmp_path, monkeypatch)
    # the UI's Resources page names the variable where the value came from the environment
    assert resources["duckdb"].database == dg.EnvVar("CURATION_WAREHOUSE_PATH")
    assert resources["encoder"].model == dg.EnvVar("CURATION_SUSPECT_ENCODER")
    assert isinstance(resources["duckdb"].database, dg.EnvVar)
    assert resources["decision_store"].path == str(tmp_path / "decisions.sqlite")
    # ...and a value set in code is bound as that value, even with the variable set
    other = build_resources(Settings(data_dir=tmp_path, warehouse_path=tmp_path / "code.duckdb"))
    assert other["duckdb"].database == str(tmp_path / "code.duckdb")
    # the encoder cache is the run process's own unless CURATION_CACHE_DIR names one
    monkeypatch.delenv("CURATION_CACHE_DIR", raising=False)
    assert build_resources(Settings(data_dir=tmp_path))["encoder"].cache_dir is None
    monkeypatch.setenv("CURATION_CACHE_DIR", str(tmp_path / "cache"))
    cached = build_resources(Settings(data_dir=tmp_path))["encoder"].cache_dir
    assert cached == dg.EnvVar("CURATION_CACHE_DIR") and isinstance(cached, dg.EnvVar)


@pytest.mark.integration  # a Dagster run
def test_a_run_resolves_the_env_vars(tmp_path, monkeypatch):
    from dagster_duckdb import DuckDBResource

    from curation_assets.defs.resources import EncoderResource

    resources = _resources_from_env(tmp_path, monkeypatch)

    @dg.asset
    def probe(duckdb: DuckDBResource, encoder: EncoderResource) -> str:
        with duckdb.get_connection() as con:
            con.execute("CREATE TABLE t AS SELECT 1 AS x")
        return encoder.model

    result = dg.materialize([probe], resources=resources)
    assert result.output_for_node("probe") == "none" and (tmp_path / "env.duckdb").is_file()


def test_the_encoder_resource_reaches_the_review_queue_config(tmp_path):
    from curation_assets.defs.resources import EncoderResource
    from curation_assets.defs.review.assets import queue_config

    settings = Settings(data_dir=tmp_path, suspect_encoder="minilm")
    assert (queue_config(settings).suspect_encoder, queue_config(settings).cache_dir) == (
        "minilm",
        None,
    )
    chosen = queue_config(settings, encoder=EncoderResource(model="none", cache_dir=str(tmp_path)))
    assert (chosen.suspect_encoder, chosen.cache_dir) == ("none", tmp_path)


def test_training_client_targets_a_subprocess_or_a_k8s_pod():
    from curation_assets.curation.training.launch import TrainingLaunch
    from curation_assets.defs.resources import TrainingClientResource

    launch = TrainingLaunch(["python", "-m", "train"], {"task_type": "classification"}, {})
    local = TrainingClientResource()
    assert isinstance(local.pipes_client(), dg.PipesSubprocessClient)
    assert local.run_kwargs(launch)["command"] == ["python", "-m", "train"]
    pod = TrainingClientResource(
        target="k8s",
        image="img:1",
        volume_claim="data",
        mount_path="/data",
        gpus=2,
        node_selector={"gpu": "h100"},
        extra_env={"HF_HOME": "/data/hf"},
    )
    kwargs = pod.run_kwargs(launch)
    assert kwargs["image"] == "img:1" and kwargs["extras"] == launch.extras
    assert kwargs["env"]["HF_HOME"] == "/data/hf"
    assert kwargs["base_pod_spec"]["node_selector"] == {"gpu": "h100"}
    limits = kwargs["base_pod_spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"
    with pytest.raises(dg.DagsterInvariantViolationError, match="dagster-k8s|image"):
        TrainingClientResource(target="k8s").pipes_client()
    with pytest.raises(Exception, match="target"):
        TrainingClientResource(target="ssh")
