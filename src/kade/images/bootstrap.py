"""Offline base images made from the host: busybox and Debian.

Docker Hub is not reachable everywhere, so `kade image bootstrap` builds base
images from Debian's packages: `busybox-static` (one static binary, every applet
linked beside it) and `debootstrap` (a minbase Debian). Both are reproducible:
file times and the image's created time come from the host's package files.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile

from kade.errors import FailedPrecondition, InvalidArgument
from kade.images.service import ImageService
from kade.oci.platform import host_arch
from kade.util.ids import now_rfc3339

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
"""


def find_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.exists(path) and _is_static(path):
            return path
    raise FailedPrecondition("no static busybox on this host: "
                             "install Debian's busybox-static (apt-get install busybox-static)")


def _is_static(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
    return head[:4] == b"\x7fELF" and b"ld-linux" not in head


def _applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    return sorted({a for a in out.stdout.split() if a and "/" not in a and a != "busybox"})


def busybox_layer(busybox: str) -> tuple[bytes, float]:
    """A one-layer rootfs: /bin/busybox, every applet hard-linked in /bin."""
    mtime = int(os.stat(busybox).st_mtime)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            tar.addfile(_info(name, tarfile.DIRTYPE, mode, mtime))

        for d in ("bin", "dev", "etc", "home", "proc", "root", "sys", "usr", "usr/sbin",
                  "var", "var/spool", "var/spool/mail", "var/www"):
            add_dir(d, 0o700 if d == "root" else 0o755)
        add_dir("tmp", 0o1777)
        with open(busybox, "rb") as f:
            data = f.read()
        info = _info("bin/busybox", tarfile.REGTYPE, 0o755, mtime)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for applet in _applets(busybox):
            link = _info(f"bin/{applet}", tarfile.LNKTYPE, 0o755, mtime)
            link.linkname = "bin/busybox"
            tar.addfile(link)
        for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP),
                           ("etc/shadow", "root:*:19000:0:99999:7:::\n")):
            body = text.encode()
            info = _info(name, tarfile.REGTYPE, 0o600 if "shadow" in name else 0o644, mtime)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue(), float(mtime)


def _info(name: str, kind: bytes, mode: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, mtime, 0, 0
    return info


def base_config(created: float, cmd: list[str], created_by: str) -> dict:
    when = now_rfc3339(created)
    return {
        "architecture": host_arch(), "os": "linux", "created": when,
        "config": {"Env": [DEFAULT_PATH], "Cmd": cmd},
        "history": [{"created": when, "created_by": created_by}],
        "rootfs": {"type": "layers", "diff_ids": []},
    }


def bootstrap_busybox(images: ImageService, tag: str = "busybox:latest") -> str:
    busybox = find_busybox()
    data, mtime = busybox_layer(busybox)
    layer = images.ingest_layer(io.BytesIO(data))
    config = base_config(mtime, ["sh"], f"/bin/sh -c #(nop) ADD file:{os.path.basename(busybox)}"
                         f" in / ")
    config["history"].append({"created": config["created"],
                              "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
                              "empty_layer": True})
    return images.create(config, [layer], [tag])


def bootstrap_debian(images: ImageService, suite: str = "bookworm",
                     tag: str | None = None, mirror: str | None = None) -> str:
    if suite not in ("bookworm", "bullseye", "trixie", "sid", "stable", "testing"):
        raise InvalidArgument(f'unknown debian suite "{suite}"')
    if not os.path.exists("/usr/sbin/debootstrap"):
        raise FailedPrecondition("debootstrap is not installed: apt-get install debootstrap")
    mirror = mirror or _host_mirror()
    with tempfile.TemporaryDirectory(prefix="kade-debootstrap-") as tmp:
        target = os.path.join(tmp, "rootfs")
        proc = subprocess.run(["debootstrap", "--variant=minbase", suite, target, mirror],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["?"]
            raise FailedPrecondition(f'debootstrap of "{suite}" failed: {last[0]}')
        _trim_rootfs(target)
        layer_path = os.path.join(tmp, "layer.tar")
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", target, "-cf",
                        layer_path, "."], check=True)
        with open(layer_path, "rb") as f:
            layer = images.ingest_layer(f)
    created = os.stat("/var/lib/dpkg/status").st_mtime if os.path.exists(
        "/var/lib/dpkg/status") else 0.0
    config = base_config(created, ["bash"], f"debootstrap --variant=minbase {suite}")
    return images.create(config, [layer], [tag or f"debian:{suite}"])


def _trim_rootfs(target: str) -> None:
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        path = os.path.join(target, sub)
        for name in os.listdir(path) if os.path.isdir(path) else ():
            full = os.path.join(path, name)
            if os.path.isfile(full):
                os.unlink(full)


def _host_mirror() -> str:
    """The host's Debian mirror from apt's sources (deb822 `URIs:` or one-line `deb`)."""
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            with open(path) as f:
                lines = [ln.split("#", 1)[0].split() for ln in f]
        except OSError:
            continue
        for words in lines:
            if words[:1] == ["URIs:"] or words[:1] == ["deb"]:
                for word in words[1:]:
                    if word.startswith("http") and "security" not in word:
                        return word
    raise FailedPrecondition("no debian mirror found in the host's apt sources: pass --mirror")
