"""Rules for instruction/response pairs and labelled data, as pure DuckDB SQL.

Web-text quality filters destroy instruction data (see the project notes), so these rules
target the problems found by hand in Alpaca (AlpacaDataCleaned): answers to inputs that
were never given, several instructions merged into one, empty or "N/A" responses, code
requests answered without code, image/audio generation requests, leftover no-input
markers, nonsense or truncated text, stray control characters and mojibake. For labelled
data: the same text carrying different labels.

Each rule is a :class:`~curation_assets.curation.filtering.rule_engine.Rule` whose
``condition`` reads the columns of ``raw_scrapes`` (``prompt``, ``response``, ``original``,
``record_id``), so the whole set runs in the one DuckDB pass of
:func:`rule_engine.run_filters`. Every condition is
NULL-safe (``run_filters`` treats NULL as "fired"). Thresholds are keyword arguments named
after what they measure.

Instruction data reaches ``raw_scrapes`` as ``instruction + "\\n\\n" + input`` (see
``records.to_canonical``), so the instruction is the prompt up to its first blank line and
the input is the rest.

Integration (the ``filtered`` stage), on the one connection it already opens::

    rule_set = generic_rules.rules_for(...) + pair_rules.pair_rules(
        labelled=settings.task_type == "classification"
    )
    annotators.store_annotations(con)  # rebuilds table ``annotations`` from raw_scrapes
    rule_engine.run_filters(con, rule_set)

The ``mojibake`` rule reads ``annotations`` through a semi-join on ``record_id``, so
``run_filters`` needs no change (a LEFT JOIN of ``annotations`` there works as well);
records missing from the table count as clean, so refresh it before every run. The
``conflicting_labels`` reason lists the labels with a window over the rows it flagged,
which is how ``run_filters`` builds ``rejections`` (one query per rule over its flagged
rows).

Modules: ``patterns`` (the regular expressions and SQL fragments the rules share, each
with what it matches), ``sql`` (the SQL builders the rules are written with),
``instruction_rules`` and ``text_rules`` (one function per rule: name, reason, condition,
with its thresholds' defaults) and ``rules`` (``pair_rules``, which lists them). This
package exposes the public names of each (its ``__all__``).
"""

from curation_assets.curation.filtering.pair_rules import (
    instruction_rules,
    patterns,
    rules,
    text_rules,
)
from curation_assets.curation.filtering.pair_rules.instruction_rules import *  # noqa: F403
from curation_assets.curation.filtering.pair_rules.patterns import *  # noqa: F403
from curation_assets.curation.filtering.pair_rules.rules import *  # noqa: F403
from curation_assets.curation.filtering.pair_rules.text_rules import *  # noqa: F403

__all__ = [*patterns.__all__, *instruction_rules.__all__, *text_rules.__all__, *rules.__all__]
