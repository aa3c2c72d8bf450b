#!/usr/bin/env bash
# Drives the unchanged @clerk/backend (pinned in package-lock.json, installed
# with npm ci) against a freshly built `keyward serve`: run.mjs starts the
# server itself (fresh data dir, free port, a generated bootstrap admin key).
# Prints one line per SDK call and a total; exits non-zero if any call fails.
set -euo pipefail
cd "$(dirname "$0")/../../.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs and npm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/keyward" ./cmd/keyward

cd test/clients/clerk-js
# npm ci only when node_modules was not installed from this very lockfile.
if ! cmp -s package-lock.json node_modules/.keyward-installed-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.keyward-installed-lock
fi
node run.mjs "$work/keyward"
