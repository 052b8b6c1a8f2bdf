"""Image verbs as a docker user sees them."""

import io
import os
import tarfile

import pytest


def test_images_lists_bootstrapped_busybox(kade):
    out = kade("images").stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:2] == ["busybox", "latest"]
    assert kade("images", "--format", "{{.Repository}}:{{.Tag}}").stdout == "busybox:latest\n"
    bad = kade("images", "--format", "{{.Nope}}", check=False)
    assert bad.returncode == 1 and "can't evaluate field Nope" in bad.stderr
    bad = kade("history", "--format", "{{.Nope}}", "busybox", check=False)
    assert bad.returncode == 1 and "historyContext" in bad.stderr
    bad = kade("image", "prune", "-f", "--filter", "bogus=1", check=False)
    assert (bad.returncode, bad.stderr) == (1, 'Error: invalid filter "bogus"\n')


def test_tag_inspect_history_rmi(kade):
    kade("tag", "busybox", "mybox:1")
    info = kade("image", "inspect", "-f", "{{.Config.Cmd}} {{.Os}}", "mybox:1").stdout
    assert info.strip() == "[sh] linux"
    hist = kade("history", "busybox").stdout.splitlines()
    assert hist[0].split()[0] == "IMAGE" and len(hist) == 3
    out = kade("rmi", "mybox:1").stdout
    assert out.strip() == "Untagged: mybox:1"


def test_rmi_refuses_image_in_use(kade):
    kade("create", "--name", "user1", "busybox", "true")
    p = kade("rmi", "busybox", check=False)
    assert p.returncode == 1 and "container" in p.stderr
    kade("rm", "user1")


def test_import_with_changes(kade, tmp_path):
    data = b"hello\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("greeting")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "rootfs.tar"
    path.write_bytes(buf.getvalue())
    image_id = kade("import", "-c", 'CMD ["/greeting"]', "-m", "hi", str(path),
                    "imp:1").stdout.strip()
    assert image_id.startswith("sha256:")
    assert kade("image", "inspect", "-f", "{{.Config.Cmd}}", "imp:1").stdout == "[/greeting]\n"
    kade("rmi", "imp:1")


def test_import_refuses_escaping_archive(kade, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    path = tmp_path / "evil.tar"
    path.write_bytes(buf.getvalue())
    before = kade("images", "-q").stdout
    p = kade("import", str(path), "evil:1", check=False)
    assert p.returncode != 0 and "escape" in p.stderr
    assert kade("images", "-q").stdout == before
    assert not (tmp_path.parent / "escape").exists()


def test_system_check_reports_a_consistent_store(kade):
    p = kade("system", "check")
    assert p.returncode == 0, p.stdout + p.stderr


def test_hard_links_count_once_and_imports_get_the_default_path(kade, tmp_path):
    busybox = open("/bin/busybox", "rb").read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(busybox), 0o755
        tar.addfile(info, io.BytesIO(busybox))
        for applet in ("true", "sh", "ls", "echo", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.LNKTYPE, "bin/busybox"
            tar.addfile(link)
    path = tmp_path / "links.tar"
    path.write_bytes(buf.getvalue())
    kade("import", str(path), "links:1")  # no ENV PATH in this image
    size = kade("image", "inspect", "-f", "{{.Size}}", "links:1").stdout.strip()
    assert int(size) < 2 * len(busybox)
    assert kade("run", "--rm", "links:1", "echo", "found").stdout == "found\n"
    # the --rm container and its layer are gone when run returns: rmi deletes the
    # image's layer too (a container layer left on it would keep it)
    assert kade("rmi", "links:1").stdout.count("Deleted:") == 2


def test_images_options_and_filters(kade, tmp_path):
    busybox = kade("images", "-q", "--no-trunc", "busybox").stdout.strip()
    assert busybox.startswith("sha256:") and len(busybox) == 71
    kade("tag", "busybox", "filt/one:a")
    path = tmp_path / "empty.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("marker")
        tar.addfile(info, io.BytesIO(b""))
    kade("import", "-c", "LABEL role=later", str(path), "filt/two:b")

    def refs(*f):
        return kade("images", "--format", "{{.Repository}}:{{.Tag}}", *f).stdout.split()

    assert refs("--filter", "reference=filt/*") == ["filt/two:b", "filt/one:a"]
    assert refs("--filter", "label=role=later") == ["filt/two:b"]
    assert "filt/two:b" in refs("--filter", "since=busybox")
    assert set(refs("--filter", "before=filt/two:b")) == {"busybox:latest", "filt/one:a"}
    assert kade("images", "--filter", "bogus=1", check=False).returncode == 1
    header = kade("images", "--digests", "filt/one").stdout.splitlines()[0].split()
    assert header[:3] == ["REPOSITORY", "TAG", "DIGEST"]
    kade("rmi", "filt/one:a", "filt/two:b")


def test_history_quiet_and_no_trunc(kade):
    assert kade("history", "-q", "busybox").stdout.splitlines()[0] == \
        kade("images", "-q", "busybox").stdout.strip()
    created_by = kade("history", "--no-trunc", "--format", "{{.CreatedBy}}", "busybox").stdout
    assert '/bin/sh -c #(nop)  CMD ["sh"]' in created_by


def test_dangling_images_and_prune(kade, tmp_path):
    path = tmp_path / "d.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("d")
        tar.addfile(info, io.BytesIO(b""))
    image_id = kade("import", str(path)).stdout.strip()  # no name: dangling
    assert image_id[7:19] in kade("images", "-q", "--filter", "dangling=true").stdout
    out = kade("image", "prune", "-f").stdout
    assert f"deleted: {image_id}" in out and "Total reclaimed space:" in out
    assert image_id[7:19] not in kade("images", "-aq").stdout
    kade("tag", "busybox", "unused:1")
    kade("image", "prune", "-a", "-f")  # busybox is unused too: everything goes
    assert kade("images", "-q").stdout == ""
    kade("image", "bootstrap", "busybox")


def test_system_df_and_container_prune(kade):
    kade("run", "--name", "dfc", "busybox", "sh", "-c", "echo data > /d")
    rows = kade("system", "df").stdout.splitlines()
    assert rows[0].split()[:2] == ["TYPE", "TOTAL"] and rows[1].startswith("Images")
    verbose = kade("system", "df", "-v").stdout
    assert "Containers space usage:" in verbose and "dfc" in verbose
    out = kade("container", "prune", "-f").stdout
    assert "Deleted Containers:" in out and "Total reclaimed space:" in out
    assert kade("ps", "-aq").stdout == ""


@pytest.mark.skipif(not os.path.exists("/usr/sbin/debootstrap"),
                    reason="needs Debian's debootstrap (apt-get install debootstrap)")
def test_bootstrap_debian_bookworm_runs(kade):
    # debootstrap fetches Debian's packages from the host's apt mirror (allowed here)
    kade("image", "bootstrap", "debian:bookworm", timeout=900)
    out = kade("run", "--rm", "debian:bookworm", "sh", "-c",
               "cat /etc/debian_version; dpkg-query -W -f='${Status}' bash").stdout
    assert out.startswith("12.") and out.endswith("install ok installed")
    assert kade("image", "inspect", "-f", "{{.Config.Cmd}}", "debian:bookworm").stdout == \
        "[bash]\n"
    kade("rmi", "debian:bookworm")
