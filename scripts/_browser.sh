# Sourced by scripts/test: the review app's browser tests drive a Chromium through Playwright.
# This only looks for one (it installs nothing); without one the browser tests are skipped.
# Looked for, in order: CHROMIUM_PATH, chromium, chromium-browser, google-chrome(-stable),
# then a Chromium that `playwright install chromium` put in Playwright's cache.
_find_chromium() {
  local c
  for c in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$c" 2>/dev/null && return 0
  done
  local cache="${PLAYWRIGHT_BROWSERS_PATH:-}"
  if [[ -z "$cache" || "$cache" == 0 ]]; then
    cache="$HOME/.cache/ms-playwright"
    [[ "$(uname -s)" == Darwin ]] && cache="$HOME/Library/Caches/ms-playwright"
  fi
  # Newest revision first.
  compgen -G "$cache/chromium-*/chrome-linux*/chrome" \
    || compgen -G "$cache/chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium" \
    || compgen -G "$cache/chromium_headless_shell-*/chrome-*linux*/*headless*shell" \
    || return 1
}
if [[ -n "${CHROMIUM_PATH:-}" && ! -x "$CHROMIUM_PATH" ]]; then
  echo "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file" >&2
  CHROMIUM_PATH=""
fi
if [[ -z "${CHROMIUM_PATH:-}" ]]; then
  CHROMIUM_PATH="$(_find_chromium | sort -V | tail -n 1 || true)"
fi
unset -f _find_chromium
if [[ -n "$CHROMIUM_PATH" ]]; then
  export CHROMIUM_PATH
else
  unset CHROMIUM_PATH
  echo "no Chromium found: the browser tests will be skipped. To run them, install one" \
    "(Debian/Ubuntu: sudo apt-get install chromium; or .venv/bin/playwright install chromium)" \
    "or set CHROMIUM_PATH to a Chromium or Chrome binary." >&2
fi
