"""Automation conditions shared by the stages."""

import dagster as dg

#: Like ``eager()``, but a never-ingested inbox partition (a failed file, say) must not
#: hold back everything downstream forever, so the "no missing deps" clause is dropped.
ON_NEW_DATA = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())

#: Train only when new data passed every blocking check of the assets it depends on.
ON_NEW_PASSING_DATA = ON_NEW_DATA & dg.AutomationCondition.all_deps_blocking_checks_passed()
