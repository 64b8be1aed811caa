#!/usr/bin/env bash
# Installs the Debian packages the gateway's tests and demo run against, if missing.
# Idempotent and quick when everything is there: it only calls apt-get for what lacks.
set -euo pipefail

# command that proves the package is there  →  Debian package that provides it
declare -A NEEDS=(
  [mosquitto]=mosquitto
  [mosquitto_passwd]=mosquitto
  [mosquitto_pub]=mosquitto-clients
  [openssl]=openssl
  [gpsd]=gpsd
  [gpsfake]=gpsd-tools
  [gpspipe]=gpsd-clients
  # The AsyncAPI CLI (tools/asyncapi-cli, pinned to a version that runs on Debian 12's
  # Node.js 18) validates docs/asyncapi.yaml in the tests; `make test` installs it by npm.
  # A Node.js already there (NodeSource's, say) is used as it is.
  [node]=nodejs
  [npm]=npm
  # The console's tests run in a real browser: Debian's Chromium and its WebDriver.
  [chromium]=chromium
  [chromedriver]=chromium-driver
  # The bulletin's tests turn its PDF into page images and read its text back.
  [pdftoppm]=poppler-utils
  [pdftotext]=poppler-utils
)
# `make bench` also compares against the FFmpeg command line.
if [ "${1:-}" = "--bench" ]; then
  NEEDS[ffmpeg]=ffmpeg
fi

missing=()
for command in "${!NEEDS[@]}"; do
  if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ]; then
    missing+=("${NEEDS[$command]}")
  fi
done
# Chinese text in the console's screenshots needs a CJK font (Chromium draws boxes without).
# (grep without -q: with pipefail, -q stopping early would fail the pipe with SIGPIPE.)
if ! fc-list :lang=zh 2>/dev/null | grep . >/dev/null; then
  missing+=(fonts-wqy-microhei)
fi
# The bulletin (gateway/bulletin): Noto's CJK fonts, serif and sans, for its text and
# charts; WeasyPrint's HTML → PDF needs Pango, and HarfBuzz's subsetter to embed only the
# glyphs used (without it a PDF carries whole 20 MB font collections).
if ! fc-list 2>/dev/null | grep 'Noto Serif CJK SC' >/dev/null; then
  missing+=(fonts-noto-cjk)
fi
# ldconfig lives in /sbin, which a non-root PATH may lack.
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
for library in libpango-1.0.so.0:libpango-1.0-0 libpangoft2-1.0.so.0:libpangoft2-1.0-0 \
  libharfbuzz-subset.so.0:libharfbuzz-subset0; do
  if ! "$ldconfig" -p | grep "${library%%:*}" >/dev/null; then
    missing+=("${library##*:}")
  fi
done
# PostgreSQL's server programs (initdb, pg_ctl) are not on PATH: the Debian package puts
# them in /usr/lib/postgresql/<version>/bin (tests/servers.py takes the newest there).
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
echo "installing Debian packages: $packages"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install: $packages" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The packages' own services are not wanted: the tests and the demo start their own.
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $packages
# gpsd's package starts a system gpsd on port 2947 where systemd runs; the tests start
# their own on free ports, so a system one is merely left alone.
# So does postgresql's, a system cluster on port 5432: left alone too; the tests run a
# throwaway cluster of their own (as the `postgres` user when run as root, via runuser).
