"""Sensors and the schedule evaluate against a real instance and request the right work."""

import json
from datetime import UTC, datetime

import dagster as dg
import pytest

from curation_assets.curation.review import decisions
from curation_assets.definitions import build_definitions
from curation_assets.defs.resources import build_resources
from curation_assets_tests.fixtures import make_rows, small_settings, write_inbox

pytestmark = pytest.mark.integration  # see pyproject: ./scripts/test --fast skips these


@pytest.fixture
def setup(tmp_path):
    settings = small_settings(tmp_path / "data", base_model="unused")
    with dg.instance_for_test() as instance:
        yield settings, build_definitions(settings), instance


def _sensor_context(instance, defs, settings, cursor=None):
    return dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=build_resources(settings)
    )


def test_inbox_sensor_adds_partitions_and_reingests_changed_files(setup):
    settings, defs, instance = setup
    sensor = defs.resolve_sensor_def("inbox_sensor")
    write_inbox(settings.inbox, make_rows(3), name="one.jsonl")
    context = _sensor_context(instance, defs, settings)
    result = sensor(context)
    assert [r.partition_key for r in result.run_requests] == ["one.jsonl"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["one.jsonl"]
    instance.add_dynamic_partitions("inbox_files", ["one.jsonl"])

    again = sensor(_sensor_context(instance, defs, settings, context.cursor))
    assert again.run_requests == []  # same content: nothing to do

    write_inbox(settings.inbox, make_rows(4), name="one.jsonl")  # content changed
    changed_context = _sensor_context(instance, defs, settings, context.cursor)
    changed = sensor(changed_context)
    assert [r.partition_key for r in changed.run_requests] == ["one.jsonl"]
    assert changed.dynamic_partitions_requests == []  # the partition already exists
    assert (
        json.loads(changed_context.cursor)["one.jsonl"] != json.loads(context.cursor)["one.jsonl"]
    )


def test_decisions_sensor_reports_new_decisions_once(setup):
    settings, defs, instance = setup
    sensor = defs.resolve_sensor_def("decisions_sensor")
    context = _sensor_context(instance, defs, settings)
    assert isinstance(sensor(context), dg.SkipReason)  # empty store
    con = decisions.connect(settings.decision_store)
    decisions.record(
        con, {"example_id": "e1", "reviewer": "a", "role": "reviewer", "decision": "accept"}
    )
    con.close()
    context = _sensor_context(instance, defs, settings, context.cursor)
    result = sensor(context)
    events = result.asset_events
    assert [e.asset_key.to_user_string() for e in events] == ["review_decisions"]
    assert events[0].metadata["decisions"].value == 1
    assert isinstance(
        sensor(_sensor_context(instance, defs, settings, context.cursor)), dg.SkipReason
    )


def test_nightly_schedule_ingests_new_files_else_refreshes(setup):
    settings, defs, instance = setup
    schedule = defs.resolve_schedule_def("nightly_refresh")
    when = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        repository_def=defs.get_repository_def(),
        resources={"settings": settings},
    )
    refresh = schedule.evaluate_tick(context)
    assert [
        sorted(k.to_user_string() for k in r.asset_selection) for r in refresh.run_requests
    ] == [["filtered", "rejections", "review_queue"]]
    write_inbox(settings.inbox, make_rows(3), name="new.jsonl")
    ingest = schedule.evaluate_tick(context)
    assert [
        (r.partition_key, sorted(k.to_user_string() for k in r.asset_selection))
        for r in ingest.run_requests
    ] == [("new.jsonl", ["quarantine", "raw_scrapes"])]
    assert instance.get_dynamic_partitions("inbox_files") == ["new.jsonl"]


def test_automation_refilters_after_ingest_but_never_trains_unchecked_data(setup):
    settings, defs, instance = setup
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    write_inbox(settings.inbox, make_rows(5), name="one.jsonl")
    instance.add_dynamic_partitions("inbox_files", ["one.jsonl"])
    defs.resolve_job_def("ingest_job").execute_in_process(
        instance=instance, partition_key="one.jsonl"
    )
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=baseline.cursor)
    assert result.get_num_requested(dg.AssetKey("filtered")) == 1
    assert result.get_num_requested(dg.AssetKey("review_queue")) == 1
    # verified has never passed its checks, so the fine-tune must not be requested
    assert result.get_num_requested(dg.AssetKey("fine_tuned_model")) == 0


def test_training_condition_fires_on_changed_content_only():
    """Materializing ``verified`` again with the same data version starts no fine-tune."""
    from curation_assets.defs.automation.conditions import ON_NEW_PASSING_DATA

    @dg.asset
    def upstream(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        version = context.run.tags["content"]
        return dg.MaterializeResult(data_version=dg.DataVersion(version))

    @dg.asset(deps=[upstream], automation_condition=ON_NEW_PASSING_DATA)
    def trained() -> None:
        return None

    defs = dg.Definitions(assets=[upstream, trained])
    key = dg.AssetKey("trained")
    with dg.instance_for_test() as instance:

        def materialize(content: str, *assets) -> None:
            dg.materialize(list(assets), instance=instance, tags={"content": content})

        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        materialize("a", upstream)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert result.get_num_requested(key) == 1  # never trained: first data
        materialize("a", upstream, trained)
        cursor = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        ).cursor
        materialize("a", upstream)  # rebuilt, same content
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert result.get_num_requested(key) == 0
        materialize("b", upstream)  # new content
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(key) == 1
