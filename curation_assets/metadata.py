"""Small helpers that turn query results into Dagster metadata a person wants to read."""

import dagster as dg


def cell(value: object, limit: int = 160) -> str:
    """One markdown table cell: escaped, on one line, shortened."""
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md_table(rows: list[dict], empty: str = "(no rows)") -> dg.MetadataValue:
    """Rows (dicts with the same keys) as a markdown table."""
    if not rows:
        return dg.MetadataValue.md(empty)
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(r[h]) for h in header) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))
