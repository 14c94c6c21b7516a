#!/usr/bin/env bash
# Installs what the tests talk to, when it is missing: Debian packages when
# run as root, Go tools into ./.tools (git-ignored). Says clearly what is
# missing otherwise. Under CI=true a missing peer is an error.
set -euo pipefail
cd "$(dirname "$0")/.."

# program:debian-package pairs the test suite needs.
needs=(mosquitto:mosquitto mosquitto_pub:mosquitto-clients ffmpeg:ffmpeg chromium:chromium soffice:libreoffice-calc-nogui lintian:lintian debootstrap:debootstrap systemd-analyze:systemd)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# The browser tests' screenshots and layout need a Chinese font; a facility's
# own PCs and phones have one.
have_cjk_font() { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null | head -1)" ]; }

missing=()
for pair in "${needs[@]}"; do
  prog=${pair%%:*} pkg=${pair##*:}
  have "$prog" || missing+=("$pkg")
done
have_cjk_font || missing+=(fonts-wqy-microhei)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-deps: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
  else
    echo "test-deps: missing Debian packages: ${missing[*]}" >&2
    echo "test-deps: install them with: sudo apt-get install ${missing[*]}" >&2
    if [ "${CI:-}" = true ]; then
      echo "test-deps: CI=true and test peers are missing: failing" >&2
      exit 1
    fi
    echo "test-deps: tests that need them will be skipped" >&2
  fi
fi

# The Debian package may start a system-wide broker on 1883; the tests do not
# need it (they start their own on free ports) and the demo wants the port.
if [ "$(id -u)" = 0 ] && command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl stop mosquitto || true
fi
if ! have_cjk_font && [ "${CI:-}" = true ]; then
  echo "test-deps: no Chinese font (fonts-wqy-microhei) after install: failing" >&2
  exit 1
fi
for pair in "${needs[@]}"; do
  prog=${pair%%:*}
  if ! have "$prog" && [ "${CI:-}" = true ]; then
    echo "test-deps: $prog still missing after install: failing" >&2
    exit 1
  fi
done
# InfluxDB 1.8 is built from its Go module (about two minutes, once): the
# forwarder and history tests run against the real server.
INFLUXD_VERSION=v1.8.10
if [ ! -x .tools/bin/influxd ]; then
  echo "test-deps: building influxd $INFLUXD_VERSION into .tools/bin (once, about two minutes)"
  if ! GOBIN="$PWD/.tools/bin" go install "github.com/influxdata/influxdb/cmd/influxd@$INFLUXD_VERSION"; then
    echo "test-deps: could not build influxd" >&2
    if [ "${CI:-}" = true ]; then
      echo "test-deps: CI=true and InfluxDB is missing: failing" >&2
      exit 1
    fi
    echo "test-deps: tests that need InfluxDB will be skipped" >&2
  fi
fi
# go2rtc, a widely used RTSP server and relay, is the camera server the
# video source's outage and freeze tests restart and SIGSTOP (built once,
# about a minute; the bench uses the same binary).
./scripts/bench-deps.sh
if [ ! -x .tools/bin/go2rtc ]; then
  if [ "${CI:-}" = true ]; then
    echo "test-deps: CI=true and go2rtc is missing: failing" >&2
    exit 1
  fi
  echo "test-deps: go2rtc missing: the camera outage tests will be skipped" >&2
fi
echo "test-deps: ok"
