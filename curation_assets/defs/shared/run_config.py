"""Run parameters a person can change in the launchpad, for one run.

Each stage's ``dg.Config`` lists the settings it is worth trying another value of for one
run (thresholds, queue sizes, hyper-parameters). Their names are the names of
:class:`~curation_assets.config.Settings` (so of ``CURATION_<NAME>`` and the README table):
one setting, one name. A field left empty (``null``, the default) keeps the value the code
location was started with; a value given replaces it for this run only, and the run's
metadata lists what was replaced (``run_overrides``).
"""

import dataclasses

import dagster as dg
from pydantic import Field

from curation_assets.config import Settings


class SettingsOverrides(dg.Config):
    """Base of the launchpad configs: every field is an optional ``Settings`` override."""

    def overrides(self) -> dict[str, object]:
        """The fields given a value for this run (name -> value as ``Settings`` holds it)."""
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        names = {f.name for f in dataclasses.fields(Settings)}
        return {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if k in names}

    def applied_to(self, settings: Settings) -> Settings:
        """``settings`` with this run's overrides."""
        return dataclasses.replace(settings, **self.overrides())

    def metadata(self) -> dict[str, dg.MetadataValue]:
        """The overrides as run metadata (empty when none was given)."""
        given = self.overrides()
        return {"run_overrides": dg.MetadataValue.json(given)} if given else {}


def _override(description: str):
    return Field(default=None, description=f"{description} Empty: the configured value.")


class FilteredConfig(SettingsOverrides):
    """Launchpad options of ``filtered``: the rule thresholds for this run."""

    min_prompt_chars: int | None = _override("Shortest prompt kept, in characters.")
    max_prompt_chars: int | None = _override("Longest prompt kept, in characters.")
    min_response_chars: int | None = _override("Shortest response kept, in characters.")
    max_response_chars: int | None = _override("Longest response kept, in characters.")
    near_duplicate_threshold: float | None = _override(
        "Word 5-gram Jaccard above which two examples are near duplicates (0: off)."
    )
    min_language_score: float | None = _override("Lowest language-identification score kept.")
    max_rule_drop_rate: float | None = _override(
        "Share of one batch a single rule may drop before the batch is held back."
    )


class ReviewQueueConfig(SettingsOverrides):
    """Launchpad options of ``review_queue``: queue sizes, and a forced suspect refit."""

    refit_suspect_models: bool = Field(
        default=False, description="Refit the suspect models even if nothing calls for it."
    )
    coverage_sample_size: int | None = _override("Examples in the coverage sample.")
    suspect_queue_size: int | None = _override("Examples in the suspect queue.")


class FineTuneConfig(SettingsOverrides):
    """Launchpad options of ``fine_tuned_model``: the hyper-parameters of this run."""

    base_model: str | None = _override("Hub id or local path of the base model, or auto.")
    epochs: float | None = _override("Passes over the train split.")
    learning_rate: float | None = _override("Peak learning rate.")
    batch_size: int | None = _override("Examples per optimizer step.")
    max_length: int | None = _override("Tokens per example (0: the task's default).")
    seed: int | None = _override("Random seed of the run.")
    lora: bool | None = _override("Train LoRA adapters (peft) instead of every weight.")
    lora_r: int | None = _override("Rank of the LoRA adapters.")
