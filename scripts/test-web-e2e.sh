#!/usr/bin/env bash
# End-to-end tests of the browser visualizer in real headless Chromium
# (Debian's chromium, driven by playwright-core; no browser is downloaded).
# Installs what they need first, idempotently: chromium and chromium-driver
# (apt), playwright-core (npm, pinned in web/e2e/package.json), and the
# site's build tools (scripts/ensure-web-tools.sh). web/e2e/run.mjs tests
# the app; web/e2e/delivery.mjs tests how `pmemlab serve` delivers it.
# Screenshots and results: target/e2e-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
  echo "== installing chromium and chromium-driver (Debian)"
  as_root apt-get update -q
  as_root apt-get install -y -q chromium chromium-driver
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "== installing nodejs and npm (Debian)"
  as_root apt-get install -y -q nodejs npm
fi
# playwright-core and axe-core (the accessibility audit), at the versions
# web/e2e/package.json pins.
want=$(node -p "const d = require('./web/e2e/package.json').dependencies; d['playwright-core'] + ' ' + d['axe-core']")
have=$(node -p "const v = (m) => { try { return require('./web/e2e/node_modules/' + m + '/package.json').version } catch (e) { return '' } }; v('playwright-core') + ' ' + v('axe-core')")
if [ "$want" != "$have" ]; then
  echo "== installing playwright-core and axe-core ($want; no browser)"
  (cd web/e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

./scripts/build-web.sh
artifacts=target/e2e-artifacts
rm -rf "$artifacts"
mkdir -p "$artifacts"
cargo build --release -q -p pmemlab
pmemlab="${CARGO_TARGET_DIR:-target}/release/pmemlab"
# An event log exported by the native runner, for the replay test.
"$pmemlab" demo --json >"$artifacts/native-demo-log.json"
node web/e2e/run.mjs target/site "$artifacts" "$artifacts/native-demo-log.json"
node web/e2e/hostile.mjs target/site "$artifacts"
# Delivery: the site as `pmemlab serve` sends it (compressed, within budget).
node web/e2e/delivery.mjs "$pmemlab" target/site "$artifacts"
