#!/usr/bin/env bash
# Lints internal/httpapi/openapi.json (or the document given as $1) with Redocly CLI (the `recommended`
# ruleset) and Spectral (`spectral:oas`), both pinned in package-lock.json.
# Prints each linter's error and warning counts and every problem found;
# exits non-zero when either reports an error (warnings are printed, not fatal).
set -euo pipefail
cd "$(dirname "$0")"
doc=${1:-../../internal/httpapi/openapi.json}

# npm ci only when node_modules was not installed from this very lockfile
# (it takes half a minute).
if ! cmp -s package-lock.json node_modules/.keyward-installed-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.keyward-installed-lock
fi

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
status=0

# Both write a JSON report whatever they find; their own exit codes are not
# used, the counts are.
npx --no-install redocly lint "$doc" --config redocly.yaml --format=json >/tmp/keyward-redocly.json 2>/tmp/keyward-redocly.err || true
npx --no-install spectral lint "$doc" --ruleset .spectral.yaml --format=json --quiet >/tmp/keyward-spectral.json 2>/tmp/keyward-spectral.err || true

node - <<'JS' || status=1
const fs = require('fs');
function read(name) {
  const text = fs.readFileSync(`/tmp/keyward-${name}.json`, 'utf8');
  try { return JSON.parse(text); } catch (e) {
    console.log(`${name}: no JSON report:`, fs.readFileSync(`/tmp/keyward-${name}.err`, 'utf8').slice(0, 2000));
    process.exit(1);
  }
}
let failed = false;
const r = read('redocly');
for (const p of r.problems) {
  console.log(`redocly ${p.severity} ${p.ruleId} ${p.location?.[0]?.pointer ?? ''}: ${p.message}`);
}
console.log(`redocly (recommended): ${r.totals.errors} errors, ${r.totals.warnings} warnings`);
failed ||= r.totals.errors > 0;
const s = read('spectral');
const severity = ['error', 'warning', 'info', 'hint'];
for (const p of s) {
  console.log(`spectral ${severity[p.severity]} ${p.code} ${p.path.join('.')}: ${p.message}`);
}
const count = (n) => s.filter((p) => p.severity === n).length;
console.log(`spectral (spectral:oas): ${count(0)} errors, ${count(1)} warnings`);
failed ||= count(0) > 0;
process.exit(failed ? 1 : 0);
JS
exit $status
