"""The Dagster instance folder (``DAGSTER_HOME``) every entry point uses."""

import os
from pathlib import Path

from curation_assets.config import PROJECT_ROOT

#: Named in the README; holds run history, schedules and sensor state (git-ignored).
DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"


def ensure_dagster_home() -> Path:
    """Set ``DAGSTER_HOME`` (default ``.dagster_home/``) and give it the project's dagster.yaml.

    Dagster reads ``dagster.yaml`` only from ``$DAGSTER_HOME``; without the variable it
    keeps its storage in a throw-away folder, so every entry point calls this first.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    source = PROJECT_ROOT / "dagster.yaml"
    if not target.exists() and source.exists():
        target.write_text(source.read_text())
    return home
