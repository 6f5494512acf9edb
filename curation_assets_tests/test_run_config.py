"""Launchpad run parameters: the names of Settings, empty keeps the configured value, a
value given changes that run only and is listed in its metadata."""

import dataclasses
import typing

import pytest

from curation_assets.config import Settings
from curation_assets.defs.shared.run_config import (
    FilteredConfig,
    FineTuneConfig,
    ReviewQueueConfig,
    SettingsOverrides,
)

CONFIGS = (FilteredConfig, ReviewQueueConfig, FineTuneConfig)
SETTING_TYPES = typing.get_type_hints(Settings)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_every_override_is_a_setting_of_the_same_type_and_described(config):
    own = {"refit_suspect_models"}  # a run action, not a setting
    for name, field in config.model_fields.items():
        assert field.description, name
        if name in own:
            continue
        assert name in SETTING_TYPES, f"{config.__name__}.{name} is not a Settings field"
        assert field.annotation == SETTING_TYPES[name] | None, name
        assert field.default is None


def test_empty_keeps_the_settings_and_a_value_replaces_it_for_the_run():
    settings = Settings(min_prompt_chars=8, near_duplicate_threshold=0.8)
    assert FilteredConfig().applied_to(settings) == settings
    assert FilteredConfig().metadata() == {}
    config = FilteredConfig(min_prompt_chars=20)
    changed = config.applied_to(settings)
    assert changed.min_prompt_chars == 20
    assert dataclasses.replace(changed, min_prompt_chars=8) == settings
    assert config.metadata()["run_overrides"].value == {"min_prompt_chars": 20}
    # the run action is not a setting
    assert ReviewQueueConfig(refit_suspect_models=True).overrides() == {}


def test_the_launchpad_shows_the_overrides_of_each_stage():
    from curation_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    for node, config in (
        ("filter_raw_scrapes", FilteredConfig),
        ("review_queue", ReviewQueueConfig),
        ("fine_tuned_model", FineTuneConfig),
    ):
        schema = job.graph.node_named(node).definition.config_schema.as_field().config_type
        assert set(schema.fields) == set(config.model_fields), node
        assert all(not f.is_required for f in schema.fields.values()), node


def test_a_subclass_keeps_only_settings_names():
    class Odd(SettingsOverrides):
        not_a_setting: int | None = None
        seed: int | None = None

    assert Odd(not_a_setting=3, seed=7).overrides() == {"seed": 7}
