"""Paths from an image or a user resolve inside the container's root, never on the host.

Each test builds a hostile image (symlinks that point at "/" or climb out with
".."), runs the attack through the real CLI, and fails if anything of the host
is read or written: host markers must never show inside a container or volume,
and nothing may appear in the host's /tmp. Docker resolves these paths with the
container's root as "/" (FollowSymlinkInScope); so must Kade.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil

import pytest

TAG = secrets.token_hex(4)


@pytest.fixture(scope="module")
def marker():
    """A file only the host has: /etc/kade-marker-<random>."""
    path = f"/etc/kade-marker-{TAG}"
    with open(path, "w") as f:
        f.write(f"host secret {TAG}\n")
    yield os.path.basename(path)
    os.unlink(path)


@pytest.fixture
def host_tmp():
    """Names under the host's /tmp that an attack would create; asserted absent."""
    names: list[str] = []

    def name(prefix: str) -> str:
        names.append(f"{prefix}-{TAG}-{secrets.token_hex(2)}")
        return names[-1]
    yield name
    for n in names:
        p = os.path.join("/tmp", n)
        leaked = os.path.lexists(p)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        elif leaked:
            os.unlink(p)
        assert not leaked, f"the attack wrote {p} on the host"


def _image(kade, tmp_path, name: str, dockerfile: str, files: dict | None = None) -> str:
    """`kade build` of a hostile image from dockerfile and files (path -> str | bytes)."""
    ctx = tmp_path / name
    ctx.mkdir(parents=True, exist_ok=True)
    for rel, content in {"Dockerfile": dockerfile, **(files or {})}.items():
        (ctx / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
    ref = f"escape-{name}:{TAG}"
    kade("build", "-q", "-t", ref, str(ctx), timeout=120)
    return ref


def _host_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def test_volume_through_a_symlink_to_root_copies_the_image_not_the_host(kade, tmp_path,
                                                                          marker):
    img = _image(kade, tmp_path, "vol", 'FROM busybox\nRUN ln -s / /a\nVOLUME ["/a/etc"]\n')
    out = kade("run", "--rm", img, "sh", "-c", "ls -a /a/etc/ /etc/; cat /a/etc/shadow",
               check=False).stdout
    assert marker not in out
    shadow = _host_text("/etc/shadow")
    if shadow:
        assert shadow not in out
    # what the volume got is the image's /etc: its passwd, not the host's
    assert "root:x:0:0" in kade("run", "--rm", img, "cat", "/a/etc/passwd").stdout


def test_named_volume_through_a_relative_symlink_stays_in_the_container(kade, tmp_path,
                                                                        marker):
    img = _image(kade, tmp_path, "relvol", "FROM busybox\nRUN ln -s ../../../../ /b\n")
    vol = f"escape-vol-{TAG}"
    try:
        out = kade("run", "--rm", "-v", f"{vol}:/b/etc", img, "ls", "-a", "/b/etc/",
                   "/etc/").stdout
        assert marker not in out
        mountpoint = json.loads(kade("volume", "inspect", vol).stdout)[0]["Mountpoint"]
        names = os.listdir(mountpoint)
        assert marker not in names
        assert "passwd" in names  # the image's /etc was copied up
        with open(os.path.join(mountpoint, "passwd")) as f:
            assert f.read() != _host_text("/etc/passwd")
    finally:
        kade("volume", "rm", "-f", vol, check=False)


def test_workdir_through_a_symlink_to_root_stays_in_the_image(kade, tmp_path, host_tmp):
    built, run = host_tmp("kade-wd"), host_tmp("kade-wd-run")
    img = _image(kade, tmp_path, "wd", f"FROM busybox\nRUN ln -s / /w\n"
                                       f"WORKDIR /w/tmp/{built}\nRUN touch made-in-build\n")
    assert kade("run", "--rm", img, "ls", f"/tmp/{built}").stdout.split() == ["made-in-build"]
    out = kade("run", "--rm", "-w", f"/w/tmp/{run}", img, "sh", "-c",
               f"touch made-at-run && ls /tmp/{run}").stdout
    assert out.split() == ["made-at-run"]


@pytest.mark.parametrize("link", ["/proc/1/root/tmp", "../../../tmp"])
def test_bind_and_tmpfs_destinations_through_symlinks_stay_in_the_container(
        kade, tmp_path, host_tmp, link):
    img = _image(kade, tmp_path, "mnt", f"FROM busybox\nRUN ln -s {link} /x\n")
    src = tmp_path / "bindsrc"
    src.mkdir(exist_ok=True)
    (src / "from-host").write_text("bound\n")
    bind, mount, tmpfs = host_tmp("kade-bind"), host_tmp("kade-mount"), host_tmp("kade-tmpfs")
    proc = kade("run", "--rm", "-v", f"{src}:/x/{bind}",
                "--mount", f"type=bind,source={src},target=/x/{mount}",
                "--tmpfs", f"/x/{tmpfs}", img, "sh", "-c",
                f"ls /x/{bind} /x/{mount}; touch /x/{tmpfs}/t && ls /x/{tmpfs}", check=False)
    if proc.returncode == 0:  # refusing a magic link as runc does is fine too
        assert "from-host" in proc.stdout and "t\n" in proc.stdout
    else:
        assert "Traceback" not in proc.stderr and proc.returncode == 125


def test_cp_through_symlinks_stays_in_the_container(kade, tmp_path, host_tmp, marker):
    img = _image(kade, tmp_path, "cp", "FROM busybox\nRUN ln -s / /escape\n")
    name = f"escape-cp-{TAG}"
    src = tmp_path / "payload"
    src.write_text("payload\n")
    into_created, into_running = host_tmp("kade-cp"), host_tmp("kade-cp-live")
    kade("create", "--name", name, img, "sleep", "30")
    try:
        kade("cp", str(src), f"{name}:/escape/tmp/{into_created}")
        kade("start", name)
        kade("cp", str(src), f"{name}:/escape/tmp/{into_running}")
        listed = kade("exec", name, "ls", "/tmp").stdout.split()
        assert into_created in listed and into_running in listed
        out = kade("cp", f"{name}:/escape/etc/{marker}", str(tmp_path / "stolen"), check=False)
        assert out.returncode != 0 and not (tmp_path / "stolen").exists()
        got = kade("cp", f"{name}:/escape/etc/passwd", "-").stdout
        assert "root:x:0:0" in got and got != _host_text("/etc/passwd")
    finally:
        kade("rm", "-f", name, check=False)


def test_copy_and_add_through_a_symlink_land_in_the_image(kade, tmp_path, host_tmp):
    import io
    import tarfile
    copied, added = host_tmp("kade-copy"), host_tmp("kade-add")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("added.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"added\n"))
    img = _image(kade, tmp_path, "copy",
                 f"FROM busybox\nRUN ln -s / /c\nCOPY f.txt /c/tmp/{copied}/\n"
                 f"ADD a.tar /c/tmp/{added}/\n",
                 files={"f.txt": "copied\n", "a.tar": buf.getvalue()})
    out = kade("run", "--rm", img, "cat", f"/tmp/{copied}/f.txt", f"/tmp/{added}/added.txt")
    assert out.stdout == "copied\nadded\n"


def test_user_lookup_never_reads_a_host_passwd(kade, tmp_path):
    host = f"/tmp/kade-passwd-{TAG}"
    with open(host, "w") as f:
        f.write("kadeesc:x:4242:4242::/:/bin/sh\n")
    try:
        img = _image(kade, tmp_path, "pw",
                     f"FROM busybox\nRUN printf 'kadeesc:x:1111:1111::/:/bin/sh\\n' > {host}"
                     f" && ln -sf {host} /etc/passwd\n")
        # docker follows the link inside the image: the image's user, never the host's
        assert kade("run", "--rm", "-u", "kadeesc", img, "id", "-u").stdout.strip() == "1111"
        name = f"escape-pw-{TAG}"
        kade("run", "-d", "--name", name, img, "sleep", "30")
        try:
            out = kade("exec", "-u", "kadeesc", name, "id", "-u").stdout.strip()
            assert out == "1111"
        finally:
            kade("rm", "-f", name, check=False)
    finally:
        os.unlink(host)


def test_user_lookup_through_a_symlinked_etc_never_reads_the_host(kade, tmp_path):
    """/etc itself a symlink to a host-absolute directory (a scratch image)."""
    hostdir = f"/tmp/kade-etc-{TAG}"
    os.makedirs(hostdir)
    with open(f"{hostdir}/passwd", "w") as f:
        f.write("kadeesc:x:4242:4242::/:/bin/sh\n")
    rootfs = tmp_path / "scratchctx" / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / hostdir.lstrip("/")).mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "id"):
        os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / hostdir.lstrip("/") / "passwd").write_text("kadeesc:x:1111:1111::/:/bin/sh\n")
    os.symlink(hostdir, rootfs / "etc")
    try:
        img = _image(kade, tmp_path, "scratchctx", "FROM scratch\nCOPY rootfs/ /\n")
        assert kade("run", "--rm", "-u", "kadeesc", img, "id", "-u").stdout.strip() == "1111"
    finally:
        shutil.rmtree(hostdir)
