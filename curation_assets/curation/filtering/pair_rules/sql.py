"""SQL builders the pair rules share: RE2 matches and replacements with the pattern
quoted as a SQL literal, a lazily gated condition, substring tests, and NULL safety."""


def re_match(column: str, pattern: str) -> str:
    """``regexp_matches`` with the pattern quoted as a SQL literal."""
    return f"regexp_matches({column}, '{pattern.replace(chr(39), chr(39) * 2)}')"


def re_replace(column: str, pattern: str, replacement: str) -> str:
    """``regexp_replace`` of every match, pattern and replacement quoted as SQL literals."""
    pattern = pattern.replace(chr(39), chr(39) * 2)
    return f"regexp_replace({column}, '{pattern}', '{replacement}', 'g')"


def re_full(column: str, pattern: str) -> str:
    """``regexp_full_match`` with the pattern quoted as a SQL literal."""
    return f"regexp_full_match({column}, '{pattern.replace(chr(39), chr(39) * 2)}')"


def when(gate: str, condition: str) -> str:
    """``condition`` evaluated only where the cheap ``gate`` holds (DuckDB's CASE is lazy)."""
    return f"CASE WHEN {gate} THEN {condition} ELSE FALSE END"


def contains_any(column: str, *needles: str) -> str:
    """``column`` contains one of the ``needles`` (no quotes in them)."""
    return "(" + " OR ".join(f"contains({column}, '{n}')" for n in needles) + ")"


def null_safe(condition: str) -> str:
    """NULL (a missing field) never fires: ``run_filters`` reads NULL as fired."""
    return f"coalesce({condition}, FALSE)"


__all__ = ["contains_any", "null_safe", "re_full", "re_match", "re_replace", "when"]
