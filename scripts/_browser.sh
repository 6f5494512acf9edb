# Sourced by scripts/test: the review app's browser tests drive Debian's Chromium through
# Playwright (no browser download). Installs it once where apt-get can (root, Debian).
if [[ -z "${CHROMIUM_PATH:-}" ]]; then
  CHROMIUM_PATH="$(command -v chromium || command -v chromium-browser || true)"
  if [[ -z "$CHROMIUM_PATH" && "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests (first run only)..." >&2
    (apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 \
           && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }) \
      || echo "could not install chromium: browser tests will be skipped" >&2
    CHROMIUM_PATH="$(command -v chromium || true)"
  fi
fi
export CHROMIUM_PATH
