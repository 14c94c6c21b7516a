#!/usr/bin/env bash
# Builds the Debian packages (make package) into dist/: shelterwatch and
# shelterwatch-grafana-plugin for amd64 and arm64 with nfpm (pinned,
# built into .tools/bin). The web console and the plugin's editors must be
# built first (make console plugin-web): the binary embeds the console.
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_VERSION=v2.48.0
if ! go version -m .tools/bin/nfpm 2>/dev/null | grep -q "nfpm/v2[[:space:]]*${NFPM_VERSION}[[:space:]]"; then
  echo "package: building nfpm ${NFPM_VERSION} into .tools/bin"
  GOBIN="$PWD/.tools/bin" go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@${NFPM_VERSION}"
fi

# A Debian version starts with a digit: 0.<commits>+g<commit>.
VERSION=${PKG_VERSION:-0.$(git rev-list --count HEAD)+g$(git rev-parse --short HEAD)}
DATE=$(git log -1 --format=%aD)
mkdir -p dist
for arch in ${PKG_ARCHES:-amd64 arm64}; do
  # nfpm reads fixed paths: one architecture is staged at a time.
  dir=".tools/tmp/pkg/stage"
  rm -rf "$dir"
  mkdir -p "$dir"
  # PIE: the kernel places the gateway at a random address (and Debian
  # expects a position-independent executable).
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildmode=pie \
    -ldflags "-s -w -X github.com/shelterwatch/shelterwatch/gateway/app.Version=$VERSION" \
    -o "$dir/shelter-gateway" ./gateway/cmd/shelter-gateway
  sed -e "s/VERSION/$VERSION/" -e "s/DATE/$DATE/" packaging/debian/changelog | gzip -9n > "$dir/changelog.gz"
  GOARCH="$arch" VERSION="$VERSION" .tools/bin/nfpm package \
    --config packaging/nfpm.yaml --packager deb --target dist/

  # The Grafana plugin: its folder as Grafana loads it, with the backend
  # of this architecture only.
  plugin=".tools/tmp/pkg/grafana"
  rm -rf "$plugin"
  mkdir -p "$plugin/img"
  cp dashboards/plugin/plugin.json dashboards/plugin/web/dist/module.js "$plugin/"
  cp dashboards/plugin/img/*.svg "$plugin/img/"
  CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildmode=pie -ldflags "-s -w" \
    -o "$plugin/gpx_shelterwatch_linux_$arch" ./dashboards/plugin/cmd/gpx_shelterwatch
  GOARCH="$arch" VERSION="$VERSION" .tools/bin/nfpm package \
    --config packaging/nfpm-grafana.yaml --packager deb --target dist/
done
ls -l dist/*.deb
