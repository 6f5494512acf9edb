"""The stage's settings (``FilterConfig``) and the rule set they select (:func:`rules`)."""

from dataclasses import dataclass, field
from pathlib import Path

from curation_assets.curation.filtering import (
    dedup,
    document_rules,
    generic_rules,
    language,
    pair_rules,
    pii,
    rule_engine,
)
from curation_assets.curation.filtering.tables import CONTAMINATION

#: Records of web-document batches (HTML/WARC/WET), and the others (pairs, labelled data).
DOCUMENT_SQL = document_rules.DOCUMENT_BATCH_SQL
NON_DOCUMENT_SQL = f"NOT ({DOCUMENT_SQL})"
#: The matches of decontamination, read by the ``contaminated`` rule.
CONTAMINATION_TABLE = CONTAMINATION.name


@dataclass(frozen=True)
class FilterConfig:
    """Every threshold of the stage (``Settings`` fills it; defaults are the published ones)."""

    task_type: str = "classification"  # "classification" or "instruction"
    labels: tuple[str, ...] = ()
    min_prompt_chars: int = 8
    max_prompt_chars: int = 2_000
    min_response_chars: int = 1
    max_response_chars: int = 8_000
    languages: tuple[str, ...] = ("en",)  # empty: no language rule
    min_language_score: float = language.DEFAULT_MIN_SCORE
    language_max_chars: int = language.DEFAULT_MAX_CHARS  # characters read, pairs
    #: characters read from a web document (its start decides; cost is linear in length)
    language_document_chars: int = language.DEFAULT_DOCUMENT_CHARS
    dedup_threshold: float | None = 0.8  # word 5-gram Jaccard; None: no near-dup rule
    decontamination_ngram: int = 8
    pii_kinds: tuple[str, ...] = pii.PII_KINDS  # empty: no redaction
    pii_key: bytes = b""  # keys the hash of each masked value
    eval_files: tuple[Path, ...] = ()
    pair_thresholds: dict = field(default_factory=dict)  # keyword args of pair_rules


def rules(cfg: FilterConfig) -> list[rule_engine.Rule]:
    """The rule set: generic rules, then pair rules (non-document records) or document rules
    (records of HTML/WARC/WET batches), language, near duplicates and contamination."""
    length_rules = generic_rules.rules_for(
        min_prompt_chars=cfg.min_prompt_chars,
        max_prompt_chars=cfg.max_prompt_chars,
        min_response_chars=cfg.min_response_chars,
        max_response_chars=cfg.max_response_chars,
        labels=cfg.labels if cfg.task_type == "classification" else (),
    )
    # web documents have no response and their own length rules (Gopher word counts)
    generic = document_rules.only_where(
        [r for r in length_rules if r.scope == "record"], NON_DOCUMENT_SQL
    )
    corpus_generic = [r for r in length_rules if r.scope == "corpus"]
    pairs = document_rules.only_where(
        pair_rules.pair_rules(labelled=cfg.task_type == "classification", **cfg.pair_thresholds),
        NON_DOCUMENT_SQL,
    )
    documents = document_rules.only_where(document_rules.document_rules(), DOCUMENT_SQL)
    out = [*generic, *corpus_generic, *pairs, *documents]
    if cfg.languages:
        out.append(language.language_rule(allowed=cfg.languages, min_score=cfg.min_language_score))
    if cfg.dedup_threshold is not None:
        out.append(dedup.near_duplicate_rule(threshold=cfg.dedup_threshold))
    out.append(
        rule_engine.Rule(
            "contaminated",
            "shares word n-grams with an evaluation or validation text (would inflate accuracy)",
            f"record_id IN (SELECT record_id FROM {CONTAMINATION_TABLE} WHERE eval_id IS NOT NULL)",
            detail=(
                f"(SELECT 'overlaps ' || eval_id || ' (' || overlap_ngrams || ' n-grams)' "
                f"FROM {CONTAMINATION_TABLE} c WHERE c.record_id = filter_flags.record_id "
                "ORDER BY overlap_ngrams DESC LIMIT 1)"
            ),
            scope="corpus",
        )
    )
    return out
