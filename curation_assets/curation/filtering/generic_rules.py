"""The generic rules every record but a web document gets: prompt and response lengths,
exact duplicates (the first seen is kept) and, with a label set, labels outside it."""

from curation_assets.curation.filtering.rule_engine import Rule


def rules_for(
    *,
    min_prompt_chars: int,
    max_prompt_chars: int,
    min_response_chars: int,
    max_response_chars: int,
    labels: tuple[str, ...] = (),
) -> list[Rule]:
    """The rule set with its thresholds (from ``Settings``)."""
    prompt_len = "length(trim(prompt))"
    response_len = "length(trim(response))"
    rules = [
        Rule(
            "prompt_too_short",
            f"prompt shorter than {min_prompt_chars} characters",
            f"{prompt_len} < {int(min_prompt_chars)}",
        ),
        Rule(
            "prompt_too_long",
            f"prompt longer than {max_prompt_chars} characters",
            f"{prompt_len} > {int(max_prompt_chars)}",
        ),
        Rule(
            "response_too_short",
            f"response shorter than {min_response_chars} characters",
            f"{response_len} < {int(min_response_chars)}",
        ),
        Rule(
            "response_too_long",
            f"response longer than {max_response_chars} characters",
            f"{response_len} > {int(max_response_chars)}",
        ),
        Rule(
            "exact_duplicate",
            "same normalized prompt and response as an earlier record (kept: the first seen)",
            "_dup_rank > 1",
            detail="'duplicate of ' || first_record_id",
            scope="corpus",
        ),
    ]
    if labels:
        quoted = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
        rules.append(
            Rule(
                "label_not_allowed",
                f"label is not one of the {len(labels)} allowed labels",
                f"response NOT IN ({quoted})",
                detail="'got ' || coalesce('\"' || response || '\"', 'NULL')",
            )
        )
    return rules
