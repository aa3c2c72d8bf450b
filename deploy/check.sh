#!/usr/bin/env bash
# CI checks for the packaging: the version stamp, the systemd unit, the Helm
# chart and the release script. Installs helm (pinned, from the Go module
# proxy) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

helm_version=v3.22.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "-- keyward version names the commit"
go build -buildvcs=true -o "$work/keyward" ./cmd/keyward
rev=$(git rev-parse --short=12 HEAD)
"$work/keyward" version | tee "$work/version"
grep -q "$rev" "$work/version" || { echo "keyward version does not name revision $rev"; exit 1; }

echo "-- systemd unit"
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/local/bin/keyward|$work/keyward|" deploy/systemd/keyward.service > "$work/keyward.service"
  systemd-analyze verify "$work/keyward.service"
  echo "systemd-analyze verify: ok"
else
  echo "systemd-analyze not installed; skipped"
fi

echo "-- helm lint and template"
helm=$(command -v helm || true)
if [ -z "$helm" ]; then
  bin="${HELM_BIN_DIR:-$HOME/.cache/keyward-ci/bin}"
  if [ ! -x "$bin/helm" ]; then
    echo "installing helm $helm_version"
    GOFLAGS= GOBIN="$bin" go install "helm.sh/helm/v3/cmd/helm@$helm_version"
  fi
  helm="$bin/helm"
fi
"$helm" lint --strict deploy/helm/keyward
"$helm" template kw deploy/helm/keyward > "$work/rendered.yaml"
for kind in Deployment Service PodDisruptionBudget; do
  grep -q "^kind: $kind$" "$work/rendered.yaml" || { echo "helm template rendered no $kind"; exit 1; }
done
grep -q "secretKeyRef" "$work/rendered.yaml" || { echo "the master key does not come from a Secret"; exit 1; }
grep -q "readinessProbe" "$work/rendered.yaml" || { echo "no readiness probe"; exit 1; }
echo "helm template: Deployment, Service, PodDisruptionBudget rendered"

echo "-- release script (linux/amd64)"
DIST="$work/dist" PLATFORMS=linux/amd64 scripts/release.sh v0.0.0-ci >/dev/null
(cd "$work/dist" && sha256sum -c SHA256SUMS)
tar -xzf "$work/dist/keyward_0.0.0-ci_linux_amd64.tar.gz" -C "$work"
"$work/keyward_0.0.0-ci_linux_amd64/keyward" version | grep -q "^keyward v0.0.0-ci" || { echo "release binary has the wrong version"; exit 1; }
echo "packaging: ok"
