#!/usr/bin/env bash
# install-deps.sh — the Debian 12 packages fuseline builds, runs and tests
# with (README "Dependencies" says why each is there). Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential meson ninja-build pkg-config \
  libssl-dev openssl libxml2-dev libxml2-utils libusb-1.0-0-dev \
  libp11-kit-dev p11-kit softhsm2 libsqlite3-dev sqlite3 libjson-c-dev check \
  umockdev libumockdev-dev opensc gnutls-bin efitools sbsigntool libengine-pkcs11-openssl device-tree-compiler \
  python3 valgrind ca-certificates >/dev/null
echo "install-deps: done"
