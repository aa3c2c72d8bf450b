#!/usr/bin/env bash
# Drives the unchanged OpenStack Freezer client (Debian's python3-freezerclient,
# library and `freezer` CLI) against a freshly built `keyward serve`: every
# client-registry call, the 404 and 409 paths included. Prints one line per
# call and a total; exits non-zero if any call fails.
set -euo pipefail
cd "$(dirname "$0")/../../.."

if ! dpkg-query -W -f='${Status}' python3-freezerclient 2>/dev/null | grep -q 'install ok installed'; then
  echo "installing python3-freezerclient"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-freezerclient >/dev/null
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/keyward" ./cmd/keyward
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEYWARD_BOOTSTRAP_ADMIN_KEY=$("$work/keyward" admin-key generate)
export KEYWARD_BOOTSTRAP_ADMIN_KEY
"$work/keyward" serve --addr "127.0.0.1:$port" --data-dir "$work/data" >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "keyward serve exited:"; cat "$work/serve.log"; exit 1; }
  sleep 0.1
done

# The Debian package installs into the system Python, whatever python3 is first on PATH.
KEYWARD_URL="http://127.0.0.1:$port" KEYWARD_ADMIN_KEY="$KEYWARD_BOOTSTRAP_ADMIN_KEY" \
  /usr/bin/python3 test/clients/freezer/drive.py "$work" || { status=$?; echo "server log (last lines):"; tail -20 "$work/serve.log"; exit $status; }
