#!/usr/bin/env bash
# Install Kade on a fresh Debian 12 machine (as root) and show its main job offline:
# bootstrap a base image from Debian's busybox-static, build examples/hello-world
# from its Dockerfile, push it to a private registry served by Kade on localhost,
# remove it, and run it,
# so that it is pulled back from the registry exactly as `docker run` would.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PKGS="busybox-static tini python3-venv python3-pip debootstrap nftables"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq $PKGS >/dev/null
fi
# Debian's own python3, not whatever `python3` is first on PATH (a version manager's
# build may start slower, and every kade command pays that start)
clear=""
grep -qx 'home = /usr/bin' /opt/kade/pyvenv.cfg 2>/dev/null || clear="--clear"
/usr/bin/python3 -m venv $clear /opt/kade
/opt/kade/bin/pip install -q --upgrade pip >/dev/null
/opt/kade/bin/pip install -q .
ln -sf /opt/kade/bin/kade /usr/local/bin/kade

kade image bootstrap busybox >/dev/null

# a registry of our own, on a free loopback port
port=$(/opt/kade/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
registry_root=$(mktemp -d /tmp/kade-registry.XXXXXX)
kade registry serve --addr "127.0.0.1:$port" --root "$registry_root" 2>/dev/null &
registry_pid=$!
cleanup() { kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null; rm -rf "$registry_root"; }
trap cleanup EXIT
/opt/kade/bin/python - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
PY

image="localhost:$port/hello-world"
kade build -q -t "$image" examples/hello-world >/dev/null
kade push "$image"
kade rmi "$image" >/dev/null
kade builder prune -a -f >/dev/null  # its layers live on in the build cache otherwise
kade run --rm "$image"
