"""Small helpers that turn query results into Dagster metadata a person wants to read:
tables as real tables (the UI sorts and shows them inline), figures rounded, plots as
image files the UI links to directly."""

import math
from pathlib import Path

import dagster as dg

from curation_assets.curation.schema import Table

#: Decimals kept for the floats shown in tables and metadata.
DECIMALS = 4


def cell(value: object, limit: int = 160) -> str:
    """One markdown table cell: escaped, on one line, shortened."""
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rounded(value: float | None) -> float | None:
    """A float for display, rounded to ``DECIMALS`` (None, NaN and infinities as they are)."""
    if value is None or not math.isfinite(float(value)):
        return None if value is None else float(value)
    return round(float(value), DECIMALS)


def _scalar(value: object, limit: int) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | str):
        return value if not isinstance(value, str) or len(value) <= limit else cell(value, limit)
    if isinstance(value, float):
        return rounded(value) if math.isfinite(value) else None  # tables hold JSON numbers
    if hasattr(value, "item"):  # numpy scalars
        return _scalar(value.item(), limit)
    return cell(value, limit)


def _column_type(values: list) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "float"
    return "string"


def as_table(rows: list[dict], empty: str = "(no rows)", limit: int = 160) -> dg.MetadataValue:
    """Rows (dicts with the same keys) as a Dagster table: typed columns, floats rounded,
    long text shortened. ``empty`` (text) when there are no rows."""
    if not rows:
        return dg.MetadataValue.text(empty)
    header = list(rows[0])
    records = [{str(h): _scalar(r.get(h), limit) for h in header} for r in rows]
    columns = [
        dg.TableColumn(str(h), _column_type([rec[str(h)] for rec in records])) for h in header
    ]
    for column in columns:  # a table column holds one type: ints in a float column
        if column.type == "float":
            for rec in records:
                if rec[column.name] is not None:
                    rec[column.name] = float(rec[column.name])
    return dg.MetadataValue.table(
        records=[dg.TableRecord(rec) for rec in records], schema=dg.TableSchema(columns=columns)
    )


def image(png: bytes, path: Path) -> dg.MetadataValue:
    """Write ``png`` to ``path`` (atomically) and return metadata that links to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(png)
    tmp.replace(path)
    return dg.MetadataValue.path(str(path))


def line_plot_png(points: list[tuple[float, float]], xlabel: str, ylabel: str, title: str) -> bytes:
    """A small line plot of ``points`` as PNG bytes (matplotlib, headless)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=90)
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def thinned(rows: list, most: int = 50) -> list:
    """At most ``most`` rows, evenly spaced, always keeping the first and the last."""
    if len(rows) <= most:
        return list(rows)
    step = (len(rows) - 1) / (most - 1)
    return [rows[round(i * step)] for i in range(most)]


def rounded_floats(metadata: dict) -> dict:
    """``metadata`` with float values (plain or FloatMetadataValue) rounded for display."""
    out = {}
    for key, value in metadata.items():
        raw = value.value if isinstance(value, dg.FloatMetadataValue) else value
        is_float = isinstance(raw, float)
        out[key] = dg.MetadataValue.float(rounded(raw)) if is_float else value
    return out


def table_metadata(table: Table) -> dict[str, object]:
    """Definition metadata of a dataset asset stored as ``table``: its declared columns
    (the catalog's column schema, with descriptions) and its table name."""
    schema = dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in table.columns]
    )
    return {
        "dagster/column_schema": schema,
        "dagster/table_name": f"warehouse.main.{table.name}",
    }


def column_lineage(table: Table, upstream: Table, renamed: dict[str, str] | None = None) -> dict:
    """``dagster/column_lineage`` of ``table``: each column that carries the column of the
    same name in ``upstream`` (or the one ``renamed`` maps it to) depends on it."""
    sources = {name: name for name in table.column_names if name in upstream.column_names}
    sources.update(renamed or {})
    key = dg.AssetKey(upstream.name)
    lineage = dg.TableColumnLineage(
        deps_by_column={
            column: [dg.TableColumnDep(asset_key=key, column_name=source)]
            for column, source in sources.items()
        }
    )
    return {"dagster/column_lineage": lineage}
