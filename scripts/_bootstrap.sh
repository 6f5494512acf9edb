# Sourced by the other scripts: creates .venv from the lock (once, or when the project's
# dependency files change), sets DAGSTER_HOME and the offline defaults.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ ! -x .venv/bin/python || pyproject.toml -nt .venv/.installed || requirements.lock -nt .venv/.installed ]]; then
  PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  echo "setting up .venv with $("$PY" --version) (first run only)..." >&2
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.5"
  extra=()
  # Machines with a local wheel folder (CPU torch) use it; elsewhere the registry is used.
  [[ -d /opt/wheels ]] && extra+=(--find-links /opt/wheels)
  .venv/bin/uv pip install --quiet --python .venv/bin/python "${extra[@]}" \
    -c requirements.lock -e '.[dev]'
  touch .venv/.installed
fi

export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[[ -f "$DAGSTER_HOME/dagster.yaml" ]] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
export GX_ANALYTICS_ENABLED=false
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"   # the default run needs no hub; unset to use one
export TOKENIZERS_PARALLELISM=false
