"""The rootfs sequence, recorded: what a container's mount setup would do, without root."""

from __future__ import annotations

import errno
import os
import stat

import pytest
from runtime_fakes import RecordingSyscalls, fail_on

from kade import errors
from kade.oci.mount import Mount
from kade.runtime import linux as L
from kade.runtime import rootfs
from kade.runtime.rootfs import Device, Hierarchy, MountEntry, RootfsConfig

ROOT = "/bundle/rootfs"   # the recording double joins paths (kade.util.inroot is tested apart)


def test_parse_options_splits_flags_data_and_propagation():
    flags, data, propagation, attr_set, attr_clr = rootfs.parse_options(
        ["nosuid", "noexec", "ro", "mode=755", "size=65536k", "rprivate", "rro"])
    assert flags == L.MS_NOSUID | L.MS_NOEXEC | L.MS_RDONLY
    assert data == "mode=755,size=65536k"
    assert propagation == (L.MS_PRIVATE | L.MS_REC,)
    assert (attr_set, attr_clr) == (L.MOUNT_ATTR_RDONLY, 0)


def test_later_options_win():
    assert rootfs.parse_options(["ro", "rw"])[0] == 0
    assert rootfs.parse_options(["noatime", "atime", "rbind"])[0] == L.MS_BIND | L.MS_REC


def test_recursive_atime_clears_the_atime_bits():
    _, _, _, attr_set, attr_clr = rootfs.parse_options(["rnoatime"])
    assert (attr_set, attr_clr) == (L.MOUNT_ATTR_NOATIME, L.MOUNT_ATTR__ATIME)


def test_idmapped_mounts_are_refused():
    with pytest.raises(errors.NotImplementedYet, match='"idmap"'):
        rootfs.parse_options(["idmap"])


def test_parse_mount_makes_bind_sources_bundle_relative():
    m = rootfs.parse_mount({"destination": "data/", "type": "bind", "source": "vol",
                            "options": ["ro"]}, "/b")
    assert m == MountEntry("/data", "bind", "/b/vol", L.MS_BIND | L.MS_RDONLY)
    assert m.is_bind


def test_parse_mount_keeps_one_leading_slash():
    m = rootfs.parse_mount({"destination": "//data", "type": "tmpfs", "source": "tmpfs"}, "/b")
    assert m.destination == "/data"


def test_a_snapshot_mount_becomes_an_entry_at_the_rootfs():
    m = rootfs.entry_from_mount(Mount("overlay", "overlay", ("lowerdir=/l", "upperdir=/u"), ""))
    assert (m.destination, m.type, m.data) == ("/", "overlay", "lowerdir=/l,upperdir=/u")


def test_host_cgroup_layout_shows_v1_only_on_a_hybrid_host(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
        "27 1 254:0 / / rw - ext4 /dev/vda rw\n")
    layout = rootfs.host_cgroup_layout.__wrapped__(str(info))
    assert layout == (
        Hierarchy("cpu,cpuacct", "cgroup", "cpu,cpuacct", frozenset({"cpu", "cpuacct"})),
        Hierarchy("systemd", "cgroup", "name=systemd", frozenset({"name=systemd"})))


def test_host_cgroup_layout_on_a_v2_host(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert rootfs.host_cgroup_layout.__wrapped__(str(info)) == (
        Hierarchy("", "cgroup2", "", frozenset()),)


def _config(tmp_path, spec_extra=None, **kwargs):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    spec = {"root": {"path": "rootfs"},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                        "options": ["nosuid", "noexec", "nodev"]},
                       {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "strictatime", "mode=755"]}],
            "linux": {"maskedPaths": ["/proc/kcore", "/sys/firmware", "/nope"],
                      "readonlyPaths": ["/proc/sys"]}}
    spec.update(spec_extra or {})
    return rootfs.rootfs_config(spec, str(tmp_path), **kwargs)


def test_rootfs_config_from_a_spec(tmp_path):
    cfg = _config(tmp_path)
    assert cfg.root == str(tmp_path / "rootfs")
    assert cfg.setup_dev and {d.path for d in cfg.devices} == {
        "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
    assert cfg.propagation == L.MS_PRIVATE | L.MS_REC
    assert cfg.masked_paths == ("/proc/kcore", "/sys/firmware", "/nope")


def test_spec_devices_override_the_defaults(tmp_path):
    cfg = _config(tmp_path, {"linux": {"devices": [
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}})
    by_path = {d.path: d for d in cfg.devices}
    assert by_path["/dev/null"].mode == 0o600
    assert by_path["/dev/fuse"] == Device("/dev/fuse", "c", 10, 229)


def test_rootfs_config_refuses_a_missing_root(tmp_path):
    with pytest.raises(errors.NotFound, match="is not a directory"):
        rootfs.rootfs_config({"root": {"path": "nothere"}}, str(tmp_path))


@pytest.mark.parametrize(("name", "tree", "root"), [
    ("shared", L.MS_SHARED | L.MS_REC, L.MS_SHARED),
    ("rshared", L.MS_SHARED | L.MS_REC, L.MS_SHARED | L.MS_REC),
    ("unbindable", L.MS_PRIVATE | L.MS_REC, L.MS_UNBINDABLE),
    ("runbindable", L.MS_PRIVATE | L.MS_REC, L.MS_UNBINDABLE | L.MS_REC),
    ("slave", L.MS_SLAVE | L.MS_REC, 0),
    ("private", L.MS_PRIVATE | L.MS_REC, 0),
])
def test_root_propagation(tmp_path, name, tree, root):
    cfg = _config(tmp_path, {"linux": {"rootfsPropagation": name}})
    assert (cfg.propagation, cfg.root_propagation) == (tree, root)
    assert bool(cfg.private_parent) == ("shared" in name)


def test_a_bad_root_propagation_is_refused(tmp_path):
    with pytest.raises(errors.InvalidArgument, match='"sideways"'):
        _config(tmp_path, {"linux": {"rootfsPropagation": "sideways"}})


def test_shared_propagation_makes_the_rootfs_parent_private_then_the_root_shared():
    sc = RecordingSyscalls()
    cfg = RootfsConfig(root=ROOT, setup_dev=False, propagation=L.MS_SHARED | L.MS_REC,
                       root_propagation=L.MS_SHARED, private_parent="/")
    rootfs.prepare(sc, cfg)
    assert sc.named("mount")[:2] == [("mount", None, "/", None, L.MS_SHARED | L.MS_REC, None),
                                     ("mount", None, "/", None, L.MS_PRIVATE, None)]
    assert sc.calls[-1] == ("mount", None, "/", None, L.MS_SHARED, None)
    assert ("pivot_root", ".", ".") in sc.calls


def test_without_a_mount_namespace_nothing_changes_propagation_and_it_chroots():
    sc = RecordingSyscalls()
    calls = []
    rootfs.prepare(sc, RootfsConfig(root=ROOT, setup_dev=False, mount_ns=False),
                   before_pivot=lambda: calls.append(len(sc.calls)))
    assert sc.calls[0] == ("mount", ROOT, ROOT, None, L.MS_BIND | L.MS_REC, None)
    assert sc.calls[-3:] == [("chdir", ROOT), ("chroot", "."), ("chdir", "/")]
    assert not sc.named("pivot_root")
    assert calls == [1]           # after the mounts, before the jail


def test_a_refused_sysfs_is_bound_from_the_host():
    def refuse_sysfs(name, args):
        return PermissionError(1, "nope") if name == "mount" and args[2] == "sysfs" else None
    sc = RecordingSyscalls(dirs={"/sys"}, fail=refuse_sysfs)
    cfg = RootfsConfig(root=ROOT, setup_dev=False, mounts=(
        MountEntry("/sys", "sysfs", "sysfs", L.MS_RDONLY | L.MS_NOSUID),))
    rootfs.prepare(sc, cfg)
    binds = [c for c in sc.named("mount") if c[1] == "/sys"]
    assert binds[0][4] == L.MS_BIND | L.MS_REC
    assert binds[1][4] & (L.MS_REMOUNT | L.MS_RDONLY) == L.MS_REMOUNT | L.MS_RDONLY


def test_prepare_mounts_in_order_then_pivots():
    sc = RecordingSyscalls()
    cfg = RootfsConfig(root=ROOT, mounts=(
        MountEntry("/proc", "proc", "proc", L.MS_NOSUID),
        MountEntry("/dev", "tmpfs", "tmpfs", L.MS_NOSUID, "mode=755")), setup_dev=False)
    rootfs.prepare(sc, cfg)
    assert sc.calls == [
        ("mount", None, "/", None, L.MS_PRIVATE | L.MS_REC, None),
        ("mount", ROOT, ROOT, None, L.MS_BIND | L.MS_REC, None),
        ("makedirs", f"{ROOT}/proc"),
        ("mount", "proc", f"{ROOT}/proc", "proc", L.MS_NOSUID, None),
        ("makedirs", f"{ROOT}/dev"),
        ("mount", "tmpfs", f"{ROOT}/dev", "tmpfs", L.MS_NOSUID, "mode=755"),
        ("chdir", ROOT),
        ("pivot_root", ".", "."),
        ("fchdir", "/"),                     # the old root, whatever "." is now
        ("mount", None, ".", None, L.MS_SLAVE | L.MS_REC, None),
        ("umount2", ".", L.MNT_DETACH),
        ("chdir", "/"),
    ]


def test_a_rootfs_mount_replaces_the_self_bind():
    sc = RecordingSyscalls()
    overlay = rootfs.entry_from_mount(Mount("overlay", "overlay", ("lowerdir=/l",), "/"))
    rootfs.prepare(sc, RootfsConfig(root=ROOT, rootfs_mounts=(overlay,), setup_dev=False))
    assert sc.named("mount")[1] == ("mount", "overlay", ROOT, "overlay", 0, "lowerdir=/l")
    assert ("mount", ROOT, ROOT, None, L.MS_BIND | L.MS_REC, None) not in sc.calls


def test_read_only_bind_is_remounted_and_propagation_applied():
    sc = RecordingSyscalls(dirs={"/host/data"})
    m = MountEntry("/data", "bind", "/host/data", L.MS_BIND | L.MS_REC | L.MS_RDONLY,
                   propagation=(L.MS_SLAVE | L.MS_REC,))
    rootfs.mount_entry(sc, RootfsConfig(root=ROOT), m)
    assert sc.calls == [
        ("makedirs", f"{ROOT}/data"),
        ("mount", "/host/data", f"{ROOT}/data", None, L.MS_BIND | L.MS_REC, None),
        ("mount", "/host/data", f"{ROOT}/data", None,
         L.MS_BIND | L.MS_REC | L.MS_RDONLY | L.MS_REMOUNT, None),
        ("mount", None, f"{ROOT}/data", None, L.MS_SLAVE | L.MS_REC, None),
    ]


def test_a_file_bind_gets_a_file_to_mount_on():
    sc = RecordingSyscalls(files={"/host/resolv.conf"})
    m = MountEntry("/etc/resolv.conf", "bind", "/host/resolv.conf", L.MS_BIND)
    rootfs.mount_entry(sc, RootfsConfig(root=ROOT), m)
    assert sc.calls[:2] == [("makedirs", f"{ROOT}/etc"), ("touch", f"{ROOT}/etc/resolv.conf")]


def test_a_failed_mount_names_the_step():
    sc = RecordingSyscalls(fail=fail_on("mount", f"{ROOT}/proc"))
    with pytest.raises(errors.FailedPrecondition) as e:
        rootfs.mount_entry(sc, RootfsConfig(root=ROOT), MountEntry("/proc", "proc", "proc"))
    assert str(e.value) == 'mount "proc" to rootfs at "/proc": operation not permitted'


def test_a_missing_bind_source_is_an_error():
    with pytest.raises(errors.FailedPrecondition, match="no such file or directory"):
        rootfs.mount_entry(RecordingSyscalls(), RootfsConfig(root=ROOT),
                           MountEntry("/d", "bind", "/missing", L.MS_BIND))


def test_recursive_attributes_use_mount_setattr():
    sc = RecordingSyscalls()
    m = MountEntry("/m", "tmpfs", "tmpfs", attr_set=L.MOUNT_ATTR_RDONLY)
    rootfs.mount_entry(sc, RootfsConfig(root=ROOT), m)
    assert sc.calls[-1] == ("mount_setattr", f"{ROOT}/m", L.MOUNT_ATTR_RDONLY, 0)


def test_dev_gets_nodes_and_symlinks():
    sc = RecordingSyscalls()
    cfg = RootfsConfig(root=ROOT, devices=(Device("/dev/null", "c", 1, 3),
                                           Device("/dev/kvm", "c", 10, 232, uid=5, gid=6)))
    rootfs.prepare(sc, cfg)
    assert ("mknod", f"{ROOT}/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3)) in sc.calls
    assert ("chown", f"{ROOT}/dev/kvm", 5, 6) in sc.calls
    links = {(c[1], c[2]) for c in sc.named("symlink")}
    assert links == {(t, ROOT + p) for t, p in rootfs.DEV_SYMLINKS}


def test_devices_are_bound_when_mknod_is_not_allowed():
    sc = RecordingSyscalls(fail=fail_on("mknod", f"{ROOT}/dev/null"))
    rootfs.prepare(sc, RootfsConfig(root=ROOT, devices=(Device("/dev/null", "c", 1, 3),)))
    i = sc.calls.index(("touch", f"{ROOT}/dev/null"))
    assert sc.calls[i + 1] == ("mount", "/dev/null", f"{ROOT}/dev/null", None, L.MS_BIND, None)


def test_the_console_is_bound_by_path():
    sc = RecordingSyscalls()
    rootfs.bind_console(sc, ROOT, "/dev/pts/7")
    assert sc.calls[-2:] == [("touch", f"{ROOT}/dev/console"),
                             ("mount", "/dev/pts/7", f"{ROOT}/dev/console", None, L.MS_BIND,
                              None)]


V1 = (Hierarchy("memory", "cgroup", "memory", frozenset({"memory"})),
      Hierarchy("cpu,cpuacct", "cgroup", "cpu,cpuacct", frozenset({"cpu", "cpuacct"})))
CGROUP_FLAGS = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | L.MS_RDONLY


def test_cgroup_v1_with_a_cgroup_namespace():
    sc = RecordingSyscalls()
    cfg = RootfsConfig(root=ROOT, cgroup_ns=True, cgroups=V1)
    rootfs.mount_entry(sc, cfg, MountEntry("/sys/fs/cgroup", "cgroup", "cgroup", CGROUP_FLAGS))
    base = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC
    dest = f"{ROOT}/sys/fs/cgroup"
    assert sc.named("mount", "symlink") == [
        ("mount", "tmpfs", dest, "tmpfs", base, "mode=755"),
        ("mount", "cgroup", f"{dest}/memory", "cgroup", CGROUP_FLAGS, "memory"),
        ("mount", "cgroup", f"{dest}/cpu,cpuacct", "cgroup", CGROUP_FLAGS, "cpu,cpuacct"),
        ("symlink", "cpu,cpuacct", f"{dest}/cpu"),
        ("symlink", "cpu,cpuacct", f"{dest}/cpuacct"),
        ("mount", "tmpfs", dest, "tmpfs", base | L.MS_REMOUNT | L.MS_RDONLY, "mode=755"),
    ]


def test_cgroup_v2_with_a_cgroup_namespace():
    sc = RecordingSyscalls()
    cfg = RootfsConfig(root=ROOT, cgroup_ns=True,
                       cgroups=(Hierarchy("", "cgroup2", "", frozenset()),))
    rootfs.mount_entry(sc, cfg, MountEntry("/sys/fs/cgroup", "cgroup", "cgroup", CGROUP_FLAGS))
    assert sc.named("mount") == [
        ("mount", "cgroup2", f"{ROOT}/sys/fs/cgroup", "cgroup2", CGROUP_FLAGS, None)]


def test_finish_read_only_paths_masks_and_root():
    sc = RecordingSyscalls(dirs={"/sys/firmware", "/proc/sys"}, files={"/proc/kcore"})
    cfg = RootfsConfig(root=ROOT, readonly=True, readonly_paths=("/proc/sys", "/gone"),
                       masked_paths=("/proc/kcore", "/sys/firmware", "/nope"))
    rootfs.finish(sc, cfg)
    assert sc.calls == [
        ("mount", "/proc/sys", "/proc/sys", None, L.MS_BIND | L.MS_REC, None),
        ("mount", "/proc/sys", "/proc/sys", None,
         L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | L.MS_REC, None),
        ("mount", "/dev/null", "/proc/kcore", None, L.MS_BIND, None),
        ("mount", "tmpfs", "/sys/firmware", "tmpfs", L.MS_RDONLY, None),
        ("mount", None, "/", None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY, None),
    ]


def test_pivot_failure_names_the_rootfs():
    sc = RecordingSyscalls(fail=fail_on("pivot_root", ".", errno.EINVAL))
    with pytest.raises(errors.FailedPrecondition,
                       match=f'pivot_root to "{ROOT}": invalid argument'):
        rootfs.pivot_root(sc, ROOT)
