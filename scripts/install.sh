#!/usr/bin/env bash
# Install Kade on a fresh Debian 12 machine (as root) and show its main job offline:
# bootstrap a base image from Debian's busybox-static, build a hello-world image,
# push it to a private registry served by Kade on localhost, remove it, and run it,
# so that it is pulled back from the registry exactly as `docker run` would.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PKGS="busybox-static tini python3-venv python3-pip debootstrap"
if ! dpkg -s $PKGS >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq $PKGS >/dev/null
fi
python3 -m venv /opt/kade
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
kade rm -f kade-hello-build >/dev/null 2>&1 || true
kade run --name kade-hello-build busybox sh -c 'cat > /hello <<"GREETING"
#!/bin/sh
cat <<TEXT

Hello from Kade!
This message shows that your installation appears to be working correctly.

To generate this message, Kade took the following steps:
 1. The Kade client did not find the "hello-world" image locally.
 2. It pulled the image, layer by layer, from the private registry that
    "kade registry serve" runs on localhost, and verified every layer.
 3. It created a new container from that image: its own pid, mount, uts, ipc
    and network namespaces, a layered overlay root, and docker'"'"'s default
    capabilities and seccomp profile.
 4. It ran the executable that produced this output and streamed it to your
    terminal.

Try something more ambitious: kade run -it busybox sh
TEXT
GREETING
chmod +x /hello' >/dev/null
kade commit -c 'CMD ["/hello"]' kade-hello-build "$image" >/dev/null
kade rm kade-hello-build >/dev/null
kade push "$image"
kade rmi "$image" >/dev/null
kade run --rm "$image"
