"""Declared warehouse tables: each dataset table's columns, types and meanings, in one place.

A stage declares its tables in a ``tables.yaml`` beside its code (one mapping per table:
its description, its columns in order, each with type, description and an optional
constraint, and an optional ``primary_key`` over several columns; a column given without a
body is the shared column of that name from ``columns.yaml``), and its ``tables.py`` binds
them to names with :func:`load_tables`. The declaration is the single source for the DDL of
the tables a stage creates empty (``Table.create``), for the column schema the Dagster
catalog shows (``dagster/column_schema``) and for the contract checked at every publish
(:func:`curation_assets.curation.publish.finish` refuses a table whose columns drifted from
its declaration, so a changed query cannot publish a shape that readers do not expect).

Declaring a table registers it by name (:func:`declared`), so the publish step finds the
declaration of every table it publishes without importing the stages.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import yaml

_DECLARED: dict[str, "Table"] = {}


@dataclass(frozen=True)
class Column:
    """One column: DuckDB type, what it means, and an optional constraint for ``create``."""

    name: str
    type: str
    description: str
    constraint: str = ""


@dataclass(frozen=True)
class Table:
    """One warehouse table as readers may rely on it."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()  # a key over several columns (one: a column constraint)

    def __post_init__(self) -> None:
        _DECLARED[self.name] = self

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self) -> str:
        """The column list (and table constraint) of ``CREATE TABLE``."""
        parts = [
            " ".join(part for part in (_quoted(c.name), c.type, c.constraint) if part)
            for c in self.columns
        ]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(map(_quoted, self.primary_key))})")
        return ", ".join(parts)

    def create(self, con: duckdb.DuckDBPyConnection, replace: bool = False) -> None:
        """Create the table (empty) if it does not exist yet (``replace``: even if it does)."""
        verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE IF NOT EXISTS"
        con.execute(f"{verb} {self.name} ({self.ddl()})")

    def drift(self, con: duckdb.DuckDBPyConnection, types: bool = False) -> list[str]:
        """How the stored table differs from this declaration (empty: it conforms).

        Column names and their order always count; ``types`` compares the DuckDB types too
        (the publish contract leaves them out: a column computed from zero rows can come
        out as another type, while its name and place never change).
        """
        actual = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
            [self.name],
        ).fetchall()
        if not actual:
            return [f"{self.name} does not exist"]
        names = [name for name, _ in actual]
        problems = []
        if names != self.column_names:
            missing = [c for c in self.column_names if c not in names]
            extra = [c for c in names if c not in self.column_names]
            problems.append(
                f"{self.name}: columns {names} differ from the declared {self.column_names}"
                + (f" (missing {missing})" if missing else "")
                + (f" (undeclared {extra})" if extra else "")
            )
        if types:
            declared = {c.name: c.type for c in self.columns}
            problems += [
                f"{self.name}.{name}: type {kind}, declared {declared[name]}"
                for name, kind in actual
                if name in declared and kind != declared[name]
            ]
        return problems


class SchemaDriftError(RuntimeError):
    """A table about to be published does not have its declared columns."""


def declared(name: str) -> Table | None:
    """The declaration of table ``name``, if a loaded stage declared one."""
    return _DECLARED.get(name)


def require_declared_columns(con: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    """Raise :class:`SchemaDriftError` when a declared table's columns drifted."""
    problems = [p for t in tables if (table := declared(t)) for p in table.drift(con)]
    if problems:
        raise SchemaDriftError(
            "refusing to publish tables whose columns differ from their declaration "
            "(update the stage's tables.py with the query): " + "; ".join(problems)
        )


def _quoted(name: str) -> str:
    return f'"{name}"'


def load_tables(module_file: str, *names: str) -> tuple[Table, ...]:
    """The tables ``names`` declared in the ``tables.yaml`` beside ``module_file``.

    Every table the file declares must be asked for, so that none is declared but unbound.
    """
    path = Path(module_file).with_name("tables.yaml")
    declared_here = _read(path)
    if sorted(declared_here) != sorted(names):
        raise ValueError(f"{path} declares {sorted(declared_here)}, asked for {sorted(names)}")
    shared = shared_columns()
    tables = []
    for name in names:
        body = declared_here[name]
        columns = tuple(
            shared[column] if spec is None else Column(column, **spec)
            for column, spec in body["columns"].items()
        )
        key = tuple(body.get("primary_key", ()))
        tables.append(Table(name, body["description"], columns, key))
    return tuple(tables)


@cache
def shared_columns() -> dict[str, Column]:
    """Columns that mean the same in every table that has them (``columns.yaml``)."""
    specs = _read(Path(__file__).with_name("columns.yaml"))
    return {name: Column(name, **spec) for name, spec in specs.items()}


def _read(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
