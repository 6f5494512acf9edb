"""The ``Rule`` type: a name, a reason a person can read, and the SQL condition that fires
it; plus the SQL of its reason and the fingerprint of a rule set."""

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One filter rule: fires (rejects) when ``condition`` is TRUE for a record."""

    name: str
    reason: str
    condition: str
    detail: str | None = None  # optional SQL text appended to the reason, per record
    #: "record": the condition reads only the record (and per-record annotation tables), so
    #: its flag is computed once per record and cached; "corpus": it compares records with
    #: each other (window functions, dedup tables) and is re-evaluated on every run.
    scope: str = "record"
    #: Optional SQL predicate over a record: the rule applies only where it holds and never
    #: fires elsewhere (``rules_documents.only_where``). Record-scope rules are evaluated in
    #: one SELECT per combination of these predicates, restricted by WHERE, rather than
    #: wrapped in CASE: DuckDB does not share common subexpressions across CASE branches.
    where: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in ("record", "corpus"):
            raise ValueError(f"rule {self.name}: scope must be 'record' or 'corpus'")

    def sql_condition(self) -> str:
        """The condition with ``where`` folded in (as CASE), for a single SELECT."""
        if self.where is None:
            return self.condition
        return f"CASE WHEN {self.where} THEN ({self.condition}) ELSE FALSE END"


def reason_sql(rule: Rule) -> str:
    """SQL of the ``rejections.reason`` of a record the rule fired on: the reason, then
    ``': '`` and the rule's ``detail`` when it has one."""
    base = "'" + rule.reason.replace("'", "''") + "'"
    return f"{base} || ': ' || ({rule.detail})" if rule.detail else base


def ruleset_fingerprint(rules: list[Rule]) -> str:
    """A hash of the rules (name, condition, where, reason, detail): cached flags and
    reasons are valid while it holds."""
    text = "\x1f".join(
        "\x1e".join((r.name, r.condition, r.where or "", r.reason, r.detail or "")) for r in rules
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]
