"""Stage 5, export: ``verified_dataset``, the published ``verified`` table as a Hugging Face
dataset (``DatasetDict`` train / validation) under ``<data_dir>/datasets/verified/``.

Write, audit, publish: the version is written into a temporary folder, reloaded and audited
there (the blocking check ``loads_back``), and only then renamed into place and named by
``latest``; a version that fails is kept under ``staged/`` and the asset is not
materialized. It refuses to run while a blocking check upstream has not passed, so nothing
unverified leaves the warehouse.

Pushing to the Hub is optional, configured by environment variables read here (or the
launchpad's ``VerifiedDatasetConfig`` for one run): ``CURATION_HF_DATASET_REPO`` (the
repository, e.g. ``org/support-intents``), a token in ``HF_TOKEN`` (or ``hf auth login``;
never in run config), and ``CURATION_HF_DATASET_LICENSE`` for batches whose licence is not
known from their sources.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curation_assets.curation import export
from curation_assets.curation.expectations import SuiteResult
from curation_assets.curation.export import hub
from curation_assets.curation.export.dataset import exported_columns
from curation_assets.curation.export.folder import LATEST
from curation_assets.defs.automation.conditions import ON_NEW_PASSING_INPUTS
from curation_assets.defs.resources import DUCKDB_POOL, SettingsParam
from curation_assets.defs.shared.checks import suite_result_to_check
from curation_assets.defs.shared.gate import require_upstream_checks_passed
from curation_assets.defs.shared.metadata import as_table

ASSET = "verified_dataset"
#: The blocking audit of the written folder.
CHECK = "loads_back"
#: The licence for batches whose sources do not say theirs.
LICENSE_VARIABLE = "CURATION_HF_DATASET_LICENSE"


class VerifiedDatasetConfig(dg.Config):
    """Launchpad options of ``verified_dataset``: where to push this run, and the licence.
    Empty fields take the environment's value (the variables in the descriptions)."""

    hub_repo: str | None = Field(
        default=None,
        description=f"Hub dataset repository to push to (owner/name). Empty: "
        f"{hub.REPO_VARIABLE}; neither: nothing is pushed. The token comes from "
        f"{hub.TOKEN_VARIABLE} or `hf auth login`, never from run config.",
    )
    hub_private: bool = Field(
        default=True, description="Create the Hub repository as private (if it is new)."
    )
    license: str | None = Field(
        default=None,
        description=f"Hub licence id (e.g. cc-by-4.0) of batches whose licence is not known "
        f"from their sources. Empty: {LICENSE_VARIABLE}; neither: `other`.",
    )

    def repo(self) -> str | None:
        return self.hub_repo or os.environ.get(hub.REPO_VARIABLE) or None

    def declared_license(self) -> str | None:
        return self.license or os.environ.get(LICENSE_VARIABLE) or None


@dg.asset(
    deps=["verified"],
    description=(
        "The published `verified` table as a Hugging Face dataset a fine-tune loads "
        "directly: a DatasetDict with `train` and `validation` (split `excluded` is left "
        "out) and the provenance columns, saved with `save_to_disk` and as the Hub's "
        "Parquet layout (`data/<split>-00000-of-00001.parquet`) with a dataset card, one "
        "folder per data version under `datasets/verified/` and a `latest` pointer; "
        f"pushed to the Hub when {hub.REPO_VARIABLE} and a token are set."
    ),
    kinds={"huggingface", "parquet"},
    pool=DUCKDB_POOL,  # it reads the warehouse (the connection is closed before writing)
    automation_condition=ON_NEW_PASSING_INPUTS,
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset=ASSET,
            blocking=True,
            description="Audit before publishing the folder: it loads back with "
            "`datasets.load_from_disk` with the rows of `verified` per split (the Parquet "
            "files too), no example_id in both splits, and a card header with a licence "
            "and the Parquet files of each split.",
        )
    ],
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(c.name, c.type, description=c.description)
                for c in exported_columns()
            ]
        )
    },
)
def verified_dataset(
    context: dg.AssetExecutionContext,
    config: VerifiedDatasetConfig,
    duckdb: DuckDBResource,
    settings: SettingsParam,
) -> Iterator:
    require_upstream_checks_passed(context)  # nothing unverified may leave
    labelled = settings.task_type == "classification"
    with duckdb.get_connection() as con:
        rows = export.read_verified(con)
        provenance = export.read_provenance(con, labelled)
    root = export.export_root(settings.data_dir)
    written = export.write_version(
        rows,
        provenance,
        root,
        task_type=settings.task_type,
        languages=settings.languages,
        declared_license=config.declared_license(),
    )
    check = _check_result(written, rows.counts)
    if not written.published:
        context.log.error(f"{ASSET}: version {rows.version[:12]} failed its audit, not published")
        yield check
        return
    push, push_error = _push(written, config)
    context.log.info(
        f"{ASSET}: {rows.total} examples (version {rows.version[:12]}, "
        f"{'unchanged' if written.unchanged else 'written'}) in {written.folder}; {push.message}"
    )
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(written.folder)),
            "latest": dg.MetadataValue.path(str(root / LATEST)),
            "dagster/row_count": rows.total,
            **{f"{split}_examples": rows.counts.get(split, 0) for split in export.SPLITS},
            "excluded_examples": rows.excluded,
            "data_version": rows.version,
            "unchanged": written.unchanged,
            "card_updated": written.card_updated,
            "license": ", ".join(written.licensing.ids),
            "unknown_licence_batches": dg.MetadataValue.json(
                list(written.licensing.unknown_batches)
            ),
            "splits": as_table(provenance.splits),
            **(
                {"per_label": as_table(provenance.per_label)}
                if labelled
                else {"lengths": as_table(provenance.lengths)}
            ),
            "hub": push.message,
            **({"hub_url": dg.MetadataValue.url(push.url)} if push.url else {}),
            "how_to_load": dg.MetadataValue.md(_how_to_load(root, written.folder)),
            "card": dg.MetadataValue.md(_card_markdown(written.card)),
            "dagster/column_lineage": dg.TableColumnLineage(
                deps_by_column={
                    c.name: [
                        dg.TableColumnDep(asset_key=dg.AssetKey("verified"), column_name=c.name)
                    ]
                    for c in exported_columns()
                }
            ),
        },
        data_version=dg.DataVersion(rows.version),
    )
    yield check
    if push_error is not None:
        raise dg.Failure(
            description=f"{ASSET} was exported to {written.folder} but the push to the Hub "
            f"failed: {push_error}",
            allow_retries=False,
        )


def _push(written: export.Written, config: VerifiedDatasetConfig) -> tuple[export.Push, str | None]:
    """Push when configured; a failed push is reported after the materialization."""
    repo = config.repo()
    token = hub.token_from_environment() if repo else None
    try:
        return export.push(
            written.folder, written.version, repo, token, private=config.hub_private
        ), None
    except Exception as exc:  # noqa: BLE001 - the local export stands; the run fails after it
        error = f"{type(exc).__name__}: {exc}"
        return export.Push(False, f"push to {repo} FAILED: {error}"), error


def _check_result(written: export.Written, counts: dict[str, int]) -> dg.AssetCheckResult:
    audit = written.audit
    summary = SuiteResult(
        success=audit.passed,
        evaluated=audit.evaluated,
        succeeded=audit.evaluated - len(audit.failures),
        failures=audit.failures,
        rows_validated=audit.reloaded,
    )
    result = suite_result_to_check(summary)
    metadata = {
        **result.metadata,
        "published": written.published,
        "folder": dg.MetadataValue.path(str(written.folder)),
        "verified_rows": dg.MetadataValue.json(dict(sorted(counts.items()))),
    }
    if not written.published:
        metadata["how_to_fix"] = dg.MetadataValue.md(
            f"The written folder failed its audit and was **not published**: `latest` still "
            f"names the previous version. The failed version is kept in `{written.folder}` "
            "for inspection; materialize again once the cause is fixed."
        )
    return dg.AssetCheckResult(
        asset_key=ASSET,
        check_name=CHECK,
        passed=result.passed,
        severity=result.severity,
        metadata=metadata,
    )


def _card_markdown(card: str) -> str:
    """The card for the UI: its YAML header as a code block, then the body."""
    if card.startswith("---\n"):
        _, head, body = card.split("---\n", 2)
        return f"```yaml\n{head}```\n{body}"
    return card


def _how_to_load(root: Path, folder: Path) -> str:
    latest = root / LATEST
    return (
        "```python\nfrom datasets import load_dataset, load_from_disk\n\n"
        f'dataset = load_from_disk("{latest}")  # the newest version\n'
        f'dataset = load_from_disk("{folder}")  # exactly this version\n'
        f'dataset = load_dataset("{folder}")  # its Parquet files, via the card\n```'
    )
