"""The canonical record every input format is mapped to, and its stable identity.

A canonical record has ``prompt`` (the text, instruction or question) and ``response``
(a label for classification data, an answer for instruction data), plus provenance.
``example_id`` is a hash of the *normalized* content, computed in DuckDB SQL so that the
same definition serves ingest, dedup and lineage.
"""

import duckdb
import pandas as pd

#: Column names recognised automatically, in order of preference. Instruction data with
#: an ``input`` column gets it appended to the instruction (Alpaca convention).
PROMPT_COLUMNS = ("prompt", "text", "instruction", "question", "query", "utterance", "sentence")
RESPONSE_COLUMNS = ("response", "label", "category", "intent", "output", "completion", "answer")
CONTEXT_COLUMNS = ("input", "context")
#: Markers that mean "no input" in instruction datasets; treated as an empty input.
NO_INPUT_MARKERS = ("", "<noinput>", "<no input>", "noinput", "none", "n/a", "null")

#: Normalization used for identity: Unicode NFC, lower case, whitespace collapsed.
NORMALIZE_SQL = "lower(regexp_replace(trim(nfc_normalize({col})), '\\s+', ' ', 'g'))"
#: The normalized prompt (duplicate detection, train/validation overlap, ladder rungs).
NORMALIZED_PROMPT_SQL = NORMALIZE_SQL.format(col="prompt")


def example_id_sql(prompt_col: str = "prompt", response_col: str = "response") -> str:
    """SQL expression for the stable example id (first 16 hex chars of SHA-256)."""
    p = NORMALIZE_SQL.format(col=prompt_col)
    r = NORMALIZE_SQL.format(col=response_col)
    return f"substr(sha256({p} || chr(31) || {r}), 1, 16)"


def example_id(prompt: str, response: str) -> str:
    """The example id of one pair (same SQL as the pipeline uses)."""
    con = duckdb.connect()
    try:
        query = f"SELECT {example_id_sql('$p', '$r')}"
        return con.execute(query, {"p": prompt, "r": response}).fetchall()[0][0]  # type: ignore[index]
    finally:
        con.close()


def resolve_columns(columns: list[str], mapping: dict[str, str]) -> dict[str, str | None]:
    """Pick the source columns for prompt, response and context.

    ``mapping`` (source column -> canonical name) wins over the automatic names.
    Returns ``{"prompt": col|None, "response": col|None, "context": col|None}``.
    """
    lowered = {c.lower(): c for c in columns}
    chosen: dict[str, str | None] = {"prompt": None, "response": None, "context": None}
    for source, target in mapping.items():
        if target in chosen and source in columns:
            chosen[target] = source
    for target, names in (
        ("prompt", PROMPT_COLUMNS),
        ("response", RESPONSE_COLUMNS),
        ("context", CONTEXT_COLUMNS),
    ):
        if chosen[target] is None:
            chosen[target] = next((lowered[n] for n in names if n in lowered), None)
    return chosen


def to_canonical(frame: pd.DataFrame, mapping: dict[str, str]) -> tuple[pd.DataFrame, str | None]:
    """Map a source frame to ``prompt``/``response`` columns (vectorized).

    Returns the frame with canonical columns added and, when a required column cannot
    be found at all, a reason string instead (the whole file is then quarantined).
    """
    cols = resolve_columns([str(c) for c in frame.columns], mapping)
    missing = [name for name in ("prompt", "response") if cols[name] is None]
    if missing:
        return frame, (
            f"no column for required field(s) {', '.join(missing)}; found columns "
            f"{sorted(map(str, frame.columns))}; map them with CURATION_COLUMN_MAPPING"
        )
    out = frame.copy()
    prompt = _as_text(out[cols["prompt"]])
    if cols["context"] is not None:
        context = _as_text(out[cols["context"]])
        has_context = context.notna() & ~context.str.strip().str.lower().isin(NO_INPUT_MARKERS)
        prompt = prompt.where(~has_context, prompt + "\n\n" + context)
    out["prompt"] = prompt
    out["response"] = _as_text(out[cols["response"]])
    out.attrs["source_columns"] = dict(cols)  # for reasons that name the user's column
    return out, None


def field_name(canonical: str, source_columns: dict[str, str | None] | None) -> str:
    """How a reason names a canonical field: the user's column, and what it maps to
    (``label (mapped to response)``); the canonical name alone when they are the same."""
    source = (source_columns or {}).get(canonical)
    if not source or source == canonical:
        return canonical
    return f"{source} (mapped to {canonical})"


def _as_text(series: pd.Series) -> pd.Series:
    """Strings stay strings, other scalars become their text, nulls stay null."""
    return series.map(lambda v: None if v is None or v != v else str(v), na_action="ignore")
