#!/usr/bin/env bash
# Install Kade on a fresh Debian 12 machine (as root) and run its main job offline:
# bootstrap a busybox image from Debian's busybox-static and run a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s busybox-static tini python3-venv >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq busybox-static tini python3-venv python3-pip debootstrap >/dev/null
fi
python3 -m venv /opt/kade
/opt/kade/bin/pip install -q --upgrade pip >/dev/null
/opt/kade/bin/pip install -q .
ln -sf /opt/kade/bin/kade /usr/local/bin/kade
kade image bootstrap busybox >/dev/null
kade run --rm --name kade-hello busybox sh -c \
  'echo "Hello from Kade! This message comes from a busybox container:"; echo "  pid $$ in its own namespaces, hostname $(hostname), rootfs from a layered image."'
