"""The Dagster layer, one folder per stage (assets, their checks and expectation suites side
by side), ``automation/`` (jobs, schedules, sensors, conditions), ``resources.py`` and
``shared/`` (check, gate and metadata helpers). Loaded with ``dg.load_from_defs_folder``
(``curation_assets.definitions``). Thin: the work is done by ``curation_assets.curation``.
"""
