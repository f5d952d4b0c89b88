#!/usr/bin/env bash
# install-deps.sh — the Debian 12 packages fuseline builds, runs and tests
# with (README "Dependencies" says why each is there). Run as root; as
# another user it re-runs itself through sudo.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
  exec sudo bash "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential meson ninja-build pkg-config \
  man-db groff-base systemd \
  libssl-dev openssl libxml2-dev libxml2-utils libusb-1.0-0-dev \
  libp11-kit-dev p11-kit softhsm2 libsqlite3-dev sqlite3 libpq-dev postgresql libjson-c-dev check \
  umockdev libumockdev-dev opensc gnutls-bin efitools sbsigntool libengine-pkcs11-openssl device-tree-compiler \
  python3 xxd e2fsprogs util-linux valgrind ca-certificates cryptsetup-bin bzip2 \
  clang libclang-rt-14-dev jq \
  postgresql-client >/dev/null
echo "install-deps: done"
