"""The project's Great Expectations objects, built in code with stable names.

One ephemeral GX context per process (and Data Docs folder) holds:

- the SQL datasource ``warehouse`` (dialect ``duckdb``, from ``duckdb-engine``), whose
  SQLAlchemy engine is lent the caller's own DuckDB connection by :func:`borrowed`: GX's
  metric queries run inside the stage's open transaction and see the staged version. The
  lent connection cannot be begun, committed, rolled back or closed through SQLAlchemy, so
  the audit can never publish or discard the version it is auditing;
- per expectation group ``<asset>.<group>``: a query asset, a suite (``meta.version``: a
  hash of its expectations), a ``ValidationDefinition`` and a ``Checkpoint``;
- with a folder: validation results kept as JSON under ``<folder>/validations`` and a local
  Data Docs site under ``<folder>/data_docs`` (``index.html`` lists the latest results).

Suites live in the code (each stage's ``suites.py``), not in a GX file project: their
thresholds come from the run's settings, and a file project's YAML written by concurrent
step processes would race. Results and Data Docs are files, so they outlive the process.
"""

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb
import great_expectations as gx
from duckdb_engine import ConnectionWrapper, CursorWrapper
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from sqlalchemy.pool import NullPool

DATASOURCE = "warehouse"
#: Failing rows (or values) kept per failed expectation, in results and check metadata.
SAMPLE_SIZE = 5
SITE = "local_site"
#: Results listed on the Data Docs index (older pages stay on disk).
INDEX_LIMIT = 500

_LOCK = threading.RLock()
_LENT: list[duckdb.DuckDBPyConnection] = []
_PROJECTS: dict[Path | None, "Project"] = {}


class _LentCursor(CursorWrapper):
    def close(self) -> None:
        # a result SQLAlchemy did not read to the end would block the stage's next statement
        self._lent.abort()


class _Lent(ConnectionWrapper):
    """The stage's DuckDB connection as SQLAlchemy sees it: its transaction is the stage's."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__(con)
        self._con = con

    def cursor(self) -> _LentCursor:
        cursor = _LentCursor(self._con, self)
        cursor._lent = self._con
        return cursor

    def begin(self) -> None:  # duckdb-engine begins a transaction per SQLAlchemy connection
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def _connect() -> _Lent:
    if not _LENT:
        raise RuntimeError(
            f"the GX datasource {DATASOURCE!r} runs only inside expectations.run_validations"
        )
    return _Lent(_LENT[-1])


@contextmanager
def borrowed(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Lend ``con`` to the ``warehouse`` datasource for the body (one caller at a time)."""
    with _LOCK:
        _LENT.append(con)
        try:
            yield
        finally:
            _LENT.pop()


def project(docs_dir: Path | None) -> "Project":
    """This process's GX project for ``docs_dir`` (``None``: results kept in memory only)."""
    key = Path(docs_dir).resolve() if docs_dir is not None else None
    with _LOCK:
        if key not in _PROJECTS:
            _PROJECTS[key] = Project(key)
        return _PROJECTS[key]


def _config(docs_dir: Path | None) -> DataContextConfig:
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    )
    if docs_dir is None:
        config.data_docs_sites = {}
        return config
    files = {"class_name": "TupleFilesystemStoreBackend"}
    config.stores["validation_results_store"] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {**files, "base_directory": str(docs_dir / "validations")},
    }
    config.data_docs_sites = {
        SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {**files, "base_directory": str(docs_dir / "data_docs")},
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": INDEX_LIMIT,
            },
        }
    }
    return config


class Group(Protocol):
    """An expectation group (``expectations.Validation``)."""

    sql: str
    expectations: list[Any]  # each with ``build()``: a GX expectation
    row_id: tuple[str, ...]

    def version(self) -> str: ...


class Project:
    """The GX context and the named objects of every expectation group run so far."""

    def __init__(self, docs_dir: Path | None) -> None:
        self.docs_dir = docs_dir
        self.context = gx.get_context(mode="ephemeral", project_config=_config(docs_dir))
        # progress bars would flood the Dagster run logs
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_sql(
            DATASOURCE,
            # the dialect only: every connection is the caller's own (``borrowed``)
            connection_string="duckdb:///:memory:",
            kwargs={"creator": _connect, "poolclass": NullPool},
        )

    def checkpoint(self, name: str, validation: Group) -> tuple[Any, dict[str, Any]]:
        """The checkpoint ``name`` for ``validation`` (re-declared: its query and thresholds
        may change from run to run) and the declared expectation behind each GX id."""
        if name in self.source.get_asset_names():
            self.source.delete_asset(name)
        batch = self.source.add_query_asset(name, query=validation.sql)
        definition = batch.add_batch_definition_whole_table("all")
        for store in (self.context.checkpoints, self.context.validation_definitions):
            _delete(store, name)
        _delete(self.context.suites, name)
        suite = self.context.suites.add(
            gx.ExpectationSuite(name=name, meta={"version": validation.version()})
        )
        by_id = {suite.add_expectation(item.build()).id: item for item in validation.expectations}
        result_format: dict[str, Any] = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": SAMPLE_SIZE,
        }
        if validation.row_id:
            result_format["unexpected_index_column_names"] = list(validation.row_id)
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[
                    self.context.validation_definitions.add(
                        gx.ValidationDefinition(name=name, data=definition, suite=suite)
                    )
                ],
                result_format=result_format,
            )
        )
        return checkpoint, by_id

    def build_docs(self, identifiers: list[Any]) -> str:
        """Render the Data Docs pages of ``identifiers`` and the index; the index URL."""
        urls = self.context.build_data_docs(site_names=[SITE], resource_identifiers=identifiers)
        return urls[SITE]

    def page_url(self, identifier: Any) -> str | None:
        """The Data Docs page of one validation result."""
        sites = self.context.get_docs_sites_urls(resource_identifier=identifier)
        return sites[0]["site_url"] if sites else None


def _delete(store: Any, name: str) -> None:
    # GX raises a store-specific error for a missing name
    with contextlib.suppress(Exception):
        store.delete(name)
