#!/usr/bin/env bash
# Builds keyward's release binaries: static (CGO_ENABLED=0), trimmed paths,
# the version and VCS revision stamped in, one archive per platform and a
# SHA256SUMS file over them.
#   scripts/release.sh v0.2.0            # into ./dist
#   DIST=/tmp/out PLATFORMS=linux/amd64 scripts/release.sh v0.2.0
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:?usage: scripts/release.sh VERSION (e.g. v0.2.0)}"
dist="${DIST:-dist}"
read -r -a platforms <<< "${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}"

rm -rf "$dist"
mkdir -p "$dist"
for p in "${platforms[@]}"; do
  os="${p%/*}" arch="${p#*/}"
  name="keyward_${version#v}_${os}_${arch}"
  mkdir -p "$dist/$name"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" GOFLAGS=-buildvcs=true \
    go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$dist/$name/keyward" ./cmd/keyward
  cp LICENSE README.md "$dist/$name/"
  tar -C "$dist" -czf "$dist/$name.tar.gz" "$name"
  rm -rf "${dist:?}/$name"
  echo "built $dist/$name.tar.gz"
done
(cd "$dist" && sha256sum ./*.tar.gz > SHA256SUMS)
cat "$dist/SHA256SUMS"
