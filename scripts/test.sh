#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine (as root),
# then run the whole suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PKGS="busybox-static gcc libc6-dev tini runc docker.io podman skopeo docker-registry apache2-utils openssl debootstrap python3-venv python3-pip iproute2 util-linux nftables tmux docker-compose"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq $PKGS >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/ruff check src tests
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
code=$?
set -e
# pytest's 5 means no test ran at all: that is a failure here, not a pass
[ "$code" -eq 5 ] && exit 1
exit "$code"
