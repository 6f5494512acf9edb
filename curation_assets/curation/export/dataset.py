"""The rows of ``verified`` a fine-tune may use, read as Arrow, and the ``DatasetDict``.

The train and validation splits are exported with every column ``verified`` declares
except ``split`` (the split is the ``DatasetDict`` key) and ``near_validation`` (set only on
excluded rows); rows whose split is ``excluded`` (train examples that share n-grams with a
validation example) are left out and counted. Nothing is converted row by row: DuckDB
returns Arrow tables and ``datasets.Dataset`` wraps them as they are.

The data version is a SHA-256 of the exported rows computed in SQL, in the style of the
``verified`` asset's own version: every exported column of every row, ordered by split and
``example_id``, timestamps as epoch microseconds (so the session's time zone never changes
it), salted with :data:`LAYOUT`.
"""

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from curation_assets.curation.review.tables import VERIFIED
from curation_assets.curation.schema import Column

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

#: The splits of the exported dataset, in order.
SPLITS = ("train", "validation")
#: Rows of ``verified`` with this split are never exported.
EXCLUDED = "excluded"
#: Columns of ``verified`` that are not exported.
NOT_EXPORTED = ("split", "near_validation")
#: Part of every data version: a change of the exported layout gives the same rows a new one.
LAYOUT = "curation_assets verified dataset, layout 1"


def exported_columns() -> tuple[Column, ...]:
    """The declared columns of ``verified`` that the dataset holds, in their order."""
    return tuple(c for c in VERIFIED.columns if c.name not in NOT_EXPORTED)


@dataclass(frozen=True)
class VerifiedRows:
    """What one read of ``verified`` gave: the exported rows per split, the rows per split
    that ``verified`` holds (``excluded`` too), and the data version of the export."""

    splits: dict[str, "pa.Table"]
    counts: dict[str, int]
    version: str

    @property
    def excluded(self) -> int:
        return self.counts.get(EXCLUDED, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.get(split, 0) for split in SPLITS)

    def dataset_dict(self) -> "datasets.DatasetDict":
        """The splits as a ``DatasetDict`` (the Arrow tables as they are; the fingerprints
        derive from the version, so the same rows give the same files)."""
        import datasets

        return datasets.DatasetDict(
            {
                split: datasets.Dataset(
                    table,
                    split=datasets.NamedSplit(split),
                    fingerprint=hashlib.sha256(f"{self.version}:{split}".encode()).hexdigest()[:16],
                )
                for split, table in self.splits.items()
            }
        )


def read_verified(con: duckdb.DuckDBPyConnection, table: str = VERIFIED.name) -> VerifiedRows:
    """The exported rows of ``table`` (the published ``verified``), its counts per split
    and the data version, read on ``con`` (the warehouse or a snapshot view)."""
    names = ", ".join(_quoted(c.name) for c in exported_columns())
    splits = {
        split: _utc(
            con.sql(
                f"SELECT {names} FROM {table} WHERE split = '{split}' ORDER BY example_id"
            ).to_arrow_table()
        )
        for split in SPLITS
    }
    counts = dict(con.execute(f"SELECT split, count(*) FROM {table} GROUP BY split").fetchall())
    return VerifiedRows(splits, {k: int(v) for k, v in counts.items()}, data_version(con, table))


def data_version(con: duckdb.DuckDBPyConnection, table: str = VERIFIED.name) -> str:
    """SHA-256 of the exported rows (see the module's docstring)."""
    fields = ", ".join(
        f"{c.name} := {_stable(c)}" for c in (Column("split", "VARCHAR", ""), *exported_columns())
    )
    splits = ", ".join(f"'{s}'" for s in SPLITS)
    row = con.execute(
        f"""SELECT sha256(? || chr(10) || coalesce(string_agg(
                to_json(struct_pack({fields}))::VARCHAR, chr(10) ORDER BY split, example_id), ''))
            FROM {table} WHERE split IN ({splits})""",
        [LAYOUT],
    ).fetchall()
    return row[0][0]


def _stable(column: Column) -> str:
    """The column as the version hashes it: timestamps as epoch microseconds."""
    name = _quoted(column.name)
    return f"epoch_us({name})" if column.type.upper().startswith("TIMESTAMP") else name


def _utc(table: "pa.Table") -> "pa.Table":
    """Time-zone aware timestamps in UTC (DuckDB labels them with the session's zone, which
    would make the features depend on the machine); the instants are unchanged."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            utc = pa.timestamp(field.type.unit, tz="UTC")
            table = table.set_column(i, field.name, table.column(i).cast(utc))
    return table


def _quoted(name: str) -> str:
    return f'"{name}"'
