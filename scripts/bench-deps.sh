#!/usr/bin/env bash
# Builds what `make bench` compares the gateway with, when it is missing:
# go2rtc, a mature RTSP→WebRTC relay, into ./.tools/bin (git-ignored). The
# video bench runs the same load through it for the CPU comparison.
#
# go2rtc's module ships a C file (pkg/v4l2/device/videodev2_arch.c) in a
# package that does not use cgo, which stops the go command ("C source
# files not allowed when not using cgo"), so `go install module@version`
# cannot build it. The module is fetched into a scratch module instead,
# copied to a temporary directory without that file and built there
# (about a minute, once).
#
# A failed build is not fatal: the bench prints the comparison row as not
# available, with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

GO2RTC_VERSION=v1.9.9
bin=$root/.tools/bin/go2rtc

if [ -x "$bin" ] && [ "$("$bin" -version 2>/dev/null | grep -o "${GO2RTC_VERSION#v}" | head -1)" = "${GO2RTC_VERSION#v}" ]; then
  echo "bench-deps: ok"
  exit 0
fi

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT

build() {
  echo "bench-deps: building go2rtc $GO2RTC_VERSION into .tools/bin (once, about a minute)"
  mkdir -p "$tmp/mod" "$root/.tools/bin"
  (cd "$tmp/mod" && go mod init tmp >/dev/null 2>&1 && go get "github.com/AlexxIT/go2rtc@$GO2RTC_VERSION" >/dev/null 2>&1) || return 1
  local dir
  dir=$(cd "$tmp/mod" && go list -m -f '{{.Dir}}' github.com/AlexxIT/go2rtc) || return 1
  cp -r "$dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  rm -f "$tmp/src/pkg/v4l2/device/videodev2_arch.c"
  (cd "$tmp/src" && CGO_ENABLED=0 go build -trimpath -o "$bin" .)
}

if ! build; then
  echo "bench-deps: could not build go2rtc $GO2RTC_VERSION: the video bench will show the comparison as not available" >&2
  exit 0
fi
echo "bench-deps: ok"
