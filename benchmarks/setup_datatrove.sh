#!/usr/bin/env bash
# A separate virtual environment for the datatrove comparison in bench_filter_stage.py.
#
# datatrove is NOT a dependency of curation_assets: it lives in .venv-datatrove (ignored
# by git) and the benchmark runs it as a subprocess (benchmarks/_datatrove_runner.py).
#
#   benchmarks/setup_datatrove.sh            # creates ./.venv-datatrove (about 1-2 min)
#   DATATROVE_VENV=/tmp/dt benchmarks/setup_datatrove.sh
#
# datatrove tokenizes English words with spaCy (a blank "en" pipeline, no model download);
# its 'processing' extra does not list spaCy (only the heavy 'multilingual' extra does), so
# spaCy is pinned here explicitly. Nothing is downloaded at run time by the components the
# benchmark uses.
set -euo pipefail

DATATROVE_VERSION="${DATATROVE_VERSION:-0.10.1}"
SPACY_VERSION="${SPACY_VERSION:-3.8.18}"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${DATATROVE_VENV:-$root/.venv-datatrove}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet \
    "datatrove[processing]==${DATATROVE_VERSION}" "spacy==${SPACY_VERSION}" pyarrow
"$venv/bin/python" -c "import datatrove, spacy; from importlib.metadata import version; print('datatrove', version('datatrove'), 'spacy', spacy.__version__)"
echo "ready: $venv"
