"""Quality rules for raw web documents (Gopher, C4, FineWeb) as DuckDB SQL ``Rule``s.

Only for document data: these filters were designed for web pages, and they destroy
instruction data (datatrove's Gopher filter drops 66% of the self-instruct seed tasks).
Each rule reads one text column (``prompt`` by default), fires (rejects) when its
condition is TRUE, carries the published threshold as a keyword default, and reports
the measured value in its ``detail``. Restrict them with ``only_where(rules,
DOCUMENT_BATCH_SQL)`` so they fire on records from web-document files only.

Text is measured with DuckDB string and list functions, not spaCy, so counts differ a
little from datatrove's: a *token* is a run of non-whitespace; a *word* is a token with
its leading and trailing punctuation/symbols stripped (tokens of only punctuation are no
words); a *line* has non-whitespace on it; paragraphs are separated by blank lines.
Character fractions are over ``length(text)``. Each measure binds its lists once per row
(``list_transform([x], lambda v: ...)[1]``): DuckDB re-evaluates an expression captured
inside a lambda for every element, and a shared subexpression of several rules is
computed once per row (common subexpression elimination within one SELECT).

Modules: ``measures`` (the SQL expressions that measure a text: tokens, words, lines,
ratios, repeated n-grams), ``gopher``, ``c4`` and ``fineweb`` (the rule families built on
them), ``builders`` (what the families share: threshold rules and their detail) and
``rules`` (all of them, ``only_where``, and the per-document statistics query). This
package exposes the public names of the measures, the families and ``rules`` (their
``__all__``).
"""

from curation_assets.curation.filtering.document_rules import c4, fineweb, gopher, measures, rules
from curation_assets.curation.filtering.document_rules.c4 import *  # noqa: F403
from curation_assets.curation.filtering.document_rules.fineweb import *  # noqa: F403
from curation_assets.curation.filtering.document_rules.gopher import *  # noqa: F403
from curation_assets.curation.filtering.document_rules.measures import *  # noqa: F403
from curation_assets.curation.filtering.document_rules.rules import *  # noqa: F403

__all__ = [*measures.__all__, *gopher.__all__, *c4.__all__, *fineweb.__all__, *rules.__all__]
