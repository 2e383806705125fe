#!/usr/bin/env bash
# End-to-end test of the chat page (make e2e): installs Chromium and playwright-core if
# missing, builds the server, runs tests/e2e/chat.e2e.mjs. Screenshots land in artifacts/e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# Debian's Chromium; Playwright's own browser download cannot work without the internet.
if [ ! -x /usr/bin/chromium ]; then
  echo "e2e: installing chromium"
  apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "e2e: installing nodejs and npm"
  apt_install nodejs npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "e2e: playwright-core needs Node.js >= 20, found $(node --version)" >&2
  exit 1
fi

# playwright-core, pinned in tests/e2e/package.json and package-lock.json.
pinned=$(node -p 'require("./tests/e2e/package.json").dependencies["playwright-core"]')
installed=$(node -p 'try { require("./tests/e2e/node_modules/playwright-core/package.json").version } catch { "" }')
if [ "$installed" != "$pinned" ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi

# The binary under test: MESSENGER_BIN if given, else a fresh debug build.
if [ -z "${MESSENGER_BIN:-}" ]; then
  cargo build
  export MESSENGER_BIN=target/debug/messenger
fi

node tests/e2e/chat.e2e.mjs
