"""Automation conditions shared by the stages."""

import dagster as dg

#: Like ``eager()``, but a never-ingested inbox partition (a failed file, say) must not
#: hold back everything downstream forever, so the "no missing deps" clause is dropped.
ON_NEW_DATA = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())

#: Like ``ON_NEW_DATA``, but only when an input's *data version* (a hash of its content)
#: changed, not merely when it was materialized again: a rebuild that produced the same
#: data (one accept in the suspect queue, say, which never reaches ``verified``) starts
#: nothing downstream.
ON_CHANGED_DATA = (
    dg.AutomationCondition.in_latest_time_window()
    & (
        dg.AutomationCondition.newly_missing()
        | dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed())
    ).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("on_changed_data")

#: ``ON_NEW_DATA``, and only while every input passed its blocking checks: a failed audit
#: upstream (whose version was not published) starts nothing downstream.
ON_NEW_PASSING_INPUTS = (
    ON_NEW_DATA & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("on_new_passing_inputs")

#: Train only when an input's content changed and passed every blocking check of the
#: assets it depends on: never twice on the same data.
ON_NEW_PASSING_DATA = ON_CHANGED_DATA & dg.AutomationCondition.all_deps_blocking_checks_passed()
