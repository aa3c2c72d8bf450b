#!/usr/bin/env bash
# Runs a real nginx (Debian's package) in front of a test upstream that echoes
# request headers, with auth_request to a freshly built `keyward serve`, and
# proves: no key → 401 from nginx; a valid key → the upstream sees
# X-Keyward-Subject; a scope the token lacks → 403; a forged subject header is
# overwritten; a revoked key → 401 within the revocation bound. nginx runs in
# the foreground on free ports with its config in a temp dir, never as the
# system service. Prints one line per check and a total.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # url pid log
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "exited:"; cat "$3"; exit 1; }
    sleep 0.1
  done
  echo "$1 did not answer"; cat "$3"; exit 1
}
json() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

go build -o "$work/keyward" ./cmd/keyward
kport=$(free_port); uport=$(free_port); nport=$(free_port)
admin=$("$work/keyward" admin-key generate)
# nginx is the trusted proxy: its X-Forwarded-For is believed.
KEYWARD_BOOTSTRAP_ADMIN_KEY=$admin "$work/keyward" serve --addr "127.0.0.1:$kport" --data-dir "$work/data" \
  --trusted-proxies 127.0.0.1 >"$work/serve.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$kport/healthz" "${pids[-1]}" "$work/serve.log"
/usr/bin/python3 test/gateway/upstream.py "$uport" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$uport/" "${pids[-1]}" "$work/upstream.log"

k="http://127.0.0.1:$kport"
api() { curl -s -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -X POST "$k$2" -d "$3"; }
target=$(api "$admin" /clerk/v1/machines '{"name":"orders-api"}' | json '["id"]')
caller=$(api "$admin" /clerk/v1/machines "{\"name\":\"billing\",\"scoped_machines\":[\"$target\"]}")
caller_id=$(echo "$caller" | json '["id"]'); caller_key=$(echo "$caller" | json '["secret_key"]')
other_key=$(api "$admin" /clerk/v1/machines '{"name":"stranger"}' | json '["secret_key"]')
token=$(api "$caller_key" /clerk/v1/m2m_tokens '{}' | json '["token"]')
fresh=$(api "$caller_key" /clerk/v1/m2m_tokens '{}') # to be revoked
revocable=$(echo "$fresh" | json '["token"]'); revocable_id=$(echo "$fresh" | json '["id"]')
unscoped=$(api "$other_key" /clerk/v1/m2m_tokens '{}' | json '["token"]')

mkdir -p "$work/tmp"
sed -e "s|@WORK@|$work|g" -e "s|@NGINX_PORT@|$nport|g" -e "s|@KEYWARD@|127.0.0.1:$kport|g" \
  -e "s|@UPSTREAM@|127.0.0.1:$uport|g" -e "s|@TARGET@|$target|g" test/gateway/nginx.conf >"$work/nginx.conf"
"$NGINX" -t -q -c "$work/nginx.conf" -e "$work/nginx-error.log" 2>/dev/null || "$NGINX" -t -c "$work/nginx.conf"
"$NGINX" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)
wait_http "http://127.0.0.1:$nport/" "${pids[-1]}" "$work/nginx-error.log"
n="http://127.0.0.1:$nport"

passed=0; failed=0
check() { # name, then a command that succeeds when the check holds
  local name=$1; shift
  if "$@"; then echo "ok   $name"; passed=$((passed+1)); else echo "FAIL $name"; failed=$((failed+1)); fi
}
status_is() { [ "$(curl -s -o /dev/null -w '%{http_code}' "${@:2}")" = "$1" ]; }
no_key_401() { status_is 401 "$n/anything" && curl -s -D - -o /dev/null "$n/anything" | grep -qi '^WWW-Authenticate: Bearer realm="keyward"'; }
subject_seen() {
  local body; body=$(curl -s -H "Authorization: Bearer $token" "$n/anything")
  [ "$(echo "$body" | json '["headers"].get("x-keyward-subject")')" = "$caller_id" ] &&
    [ "$(echo "$body" | json '["headers"].get("x-keyward-kind")')" = "m2m_token" ]
}
forged_overwritten() {
  local body; body=$(curl -s -H "Authorization: Bearer $token" -H "X-Keyward-Subject: mch_forged" "$n/anything")
  [ "$(echo "$body" | json '["headers"].get("x-keyward-subject")')" = "$caller_id" ]
}
revoked_401() {
  local start end tries=0; start=$(date +%s%N)
  api "$admin" "/clerk/v1/m2m_tokens/$revocable_id/revoke" '{}' >/dev/null
  # The bound on one node is the next request; allow the cluster bound
  # (FallbackTTL, 5 s) before calling it a failure.
  for _ in $(seq 1 50); do
    tries=$((tries+1))
    if status_is 401 -H "Authorization: Bearer $revocable" "$n/anything"; then
      end=$(date +%s%N); echo "     revoked key refused $(( (end-start)/1000000 )) ms after the revoke call began (attempt $tries)"; return 0
    fi
    sleep 0.1
  done
  return 1
}

check "no key: 401 from nginx, with keyward's Bearer challenge" no_key_401
check "a garbage key: 401" status_is 401 -H "Authorization: Bearer mt_garbage" "$n/anything"
check "a valid key: the upstream sees X-Keyward-Subject and X-Keyward-Kind" subject_seen
check "a forged X-Keyward-Subject from the client is overwritten" forged_overwritten
check "a token that may call $target passes /orders/" status_is 200 -H "Authorization: Bearer $token" "$n/orders/1"
check "a token that may not call $target: 403 at /orders/" status_is 403 -H "Authorization: Bearer $unscoped" "$n/orders/1"
check "the key to be revoked passes before" status_is 200 -H "Authorization: Bearer $revocable" "$n/anything"
check "a revoked key: 401 within the revocation bound" revoked_401
check "the other key still passes" status_is 200 -H "Authorization: Bearer $token" "$n/anything"

echo "nginx gateway: $passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
  echo "keyward log (last lines):"; tail -20 "$work/serve.log"; echo "nginx error log:"; tail -20 "$work/nginx-error.log"
  exit 1
fi
