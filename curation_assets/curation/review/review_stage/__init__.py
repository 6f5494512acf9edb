"""The review stages: ``review_queue`` -> ``reviewed`` -> ``verified``, in DuckDB SQL.

Two queues, two purposes (see the project notes on expert budgets):

* ``coverage``: a stratified sample of ``filtered`` (by label, source, length tertile and
  whether rule warnings fired). Within a label its shortest and longest example come
  first (edge cases), then every stratum in turn, in proportion to its size, each in a
  stable hash order; labels are interleaved, so the first N cover every label evenly.
  Experts confirm or fix it one by one, and only these decisions build ``verified``: a
  representative training set.
* ``suspect``: the examples most likely wrong (``curation.review.suspects``: confident learning on
  out-of-sample probabilities), excluding the coverage sample. Fixes made here clean the
  large set (they flow into ``reviewed``, marked ``from_queue = 'suspect'``) and show
  systematic errors; they reach ``verified`` only if ``verified_takes_suspect_fixes``.

Once an example in a queue has a decision it stays in that queue on later rebuilds, so new
data never pushes decided work out. Who decides (``curation.review.agreement``): an expert's latest
decision; else ``reviews_required`` reviewers whose latest votes agree; reviewers who
disagree send the example to an expert (``needs_expert``, first in its queue).

Decisions come from the separate decision store (``curation.review.decisions``) as a data
frame and are joined here; the warehouse never holds a lock that a reviewer waits on.

Modules: ``common`` (decisions as a table, column helpers, the queue names and
statuses), ``queue`` (``review_queue``: the coverage sample, suspect scores, the published
queue), ``verification`` (``reviewed`` and ``verified``, expert time, split overlap) and
``patterns`` (what the queues and the decisions show). This package exposes their public
names.
"""

from curation_assets.curation.review.review_stage.common import (
    DECISION_COLUMNS,
    QUEUES,
    STATUSES,
    SUSPECT_TABLE,
    register_decisions,
)
from curation_assets.curation.review.review_stage.patterns import (
    review_patterns,
    suspect_patterns,
)
from curation_assets.curation.review.review_stage.queue import (
    QueueConfig,
    annotate_filtered,
    build_review_queue,
    queue_for_app,
    score_suspects,
)
from curation_assets.curation.review.review_stage.verification import (
    build_reviewed,
    build_verified,
    expert_time,
    split_overlap,
    split_overlap_sql,
)

__all__ = [
    "DECISION_COLUMNS",
    "QUEUES",
    "QueueConfig",
    "STATUSES",
    "SUSPECT_TABLE",
    "annotate_filtered",
    "build_review_queue",
    "build_reviewed",
    "build_verified",
    "expert_time",
    "queue_for_app",
    "register_decisions",
    "review_patterns",
    "score_suspects",
    "split_overlap",
    "split_overlap_sql",
    "suspect_patterns",
]
